/**
 * Truncated SVD of a small dense block A [rows, cols] for adaptive low-rank storage.
 * Eigen-decomposes the Gram matrix AᵀA [cols, cols] in float64 (Householder tridiagonal form
 * and implicit QL, deterministic; cols is a head dimension, so this is small), keeps the
 * fewest right singular vectors whose energy (sum of squared singular values) reaches
 * `energyThreshold` of the total, and returns A ≈ left · right with left = A·V_r [rows, r],
 * right = V_rᵀ [r, cols]. symmetricTopEigen computes only the r vectors kept (inverse
 * iteration); cyclic Jacobi is kept as the independent reference the tests compare against.
 */

import { SpgError } from "../errors.js";
import { gramOf, inverseFrobenius2Of } from "./simd/kernels.js";

/**
 * Eigenvalues (descending) and eigenvectors (columns of `vectors`, [n, n] row-major) of a
 * symmetric matrix: Householder tridiagonalization and the implicit QL algorithm (JAMA's
 * tred2/tql2, public domain), O(n³) with a small constant.
 */
export function symmetricEigen(
  matrix: Float64Array,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const V = Float64Array.from(matrix);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n);
  tql2(V, d, e, n);
  return sortDescending(d, V, n);
}

/**
 * Eigenvalues (descending, clamped at 0) of a symmetric matrix, and eigenvectors for only as
 * many of the largest as `vectorsWanted(values)` asks for (0: none). The eigenvalues are
 * symmetricEigen's bit for bit (same reduction and QL steps); the vectors come from inverse iteration on the same
 * tridiagonal form, carried back by its Householder reflectors: for a few leading vectors a
 * fraction of symmetricEigen's cost. `vectors` is [n, n] row-major with eigenvector j in
 * column j (columns past the count are zero), as symmetricEigen lays them out.
 */
export function symmetricTopEigen(
  matrix: Float64Array,
  n: number,
  vectorsWanted: (values: Float64Array) => number,
): { values: Float64Array; vectors: Float64Array | null } {
  const work = eigenWorkspace(n);
  const { reduced, d, e, reflectorScales, diagonal, offDiagonal, raw } = work;
  reduced.set(matrix);
  tred2(reduced, d, e, n, false, reflectorScales);
  diagonal.set(d);
  // tred2's e[i] couples rows i-1 and i (e[0] = 0)
  offDiagonal.set(e);
  tql2(reduced, d, e, n, false);
  raw.set(d);
  raw.sort((a, b) => b - a);
  const values = Float64Array.from(raw, (x) => Math.max(0, x));
  const count = vectorsWanted(values);
  if (count === 0) return { values, vectors: null };
  const vectors = new Float64Array(n * n);
  const found = tridiagonalEigenvectors(work, raw.subarray(0, count), n);
  for (let j = 0; j < count; j++) {
    const y = found.subarray(j * n, (j + 1) * n);
    // The basis of the tridiagonal form is Q = P_{n-1} ... P_1, P_k = I - u uᵀ / h with u in
    // column k above the diagonal and h = uᵀu / 2 (tred2's layout): apply P_1 first.
    for (let k = 1; k < n; k++) {
      const h = reflectorScales[k];
      if (h === 0) continue;
      let dot = 0;
      for (let m = 0; m < k; m++) dot += reduced[m * n + k] * y[m];
      const f = dot / h;
      for (let m = 0; m < k; m++) y[m] -= f * reduced[m * n + k];
    }
    for (let r = 0; r < n; r++) vectors[r * n + j] = y[r];
  }
  return { values, vectors };
}

/**
 * Scratch arrays of symmetricTopEigen for one size, reused from call to call (spg solves one
 * small eigenproblem per block; allocating some forty typed arrays each time cost more than
 * the arithmetic inside the evaluation loop). Nothing in it outlives a call, and nothing
 * called during one (vectorsWanted) may start another.
 */
interface EigenWorkspace {
  n: number;
  reduced: Float64Array;
  d: Float64Array;
  e: Float64Array;
  reflectorScales: Float64Array;
  diagonal: Float64Array;
  offDiagonal: Float64Array;
  raw: Float64Array;
  lu: TridiagonalLu;
  /** The inverse-iteration vectors, one row of n per eigenvalue. */
  found: Float64Array;
}

let workspace: EigenWorkspace | undefined;

function eigenWorkspace(n: number): EigenWorkspace {
  if (workspace?.n === n) return workspace;
  const vector = () => new Float64Array(n);
  workspace = {
    n,
    reduced: new Float64Array(n * n),
    d: vector(),
    e: vector(),
    reflectorScales: vector(),
    diagonal: vector(),
    offDiagonal: vector(),
    raw: vector(),
    lu: { d: vector(), dl: vector(), du: vector(), du2: vector(), swapped: new Uint8Array(n) },
    found: new Float64Array(n * n),
  };
  return workspace;
}

/**
 * Eigenvectors of the symmetric tridiagonal T (work.diagonal, work.offDiagonal[i] coupling
 * i-1 and i) for the given eigenvalues (descending), by inverse iteration (LAPACK dstein): a
 * fixed pseudo-random start per vector, T - λI factored with partial pivoting, and vectors of
 * eigenvalues closer than a cluster gap orthogonalized against each other at every step.
 * Fails rather than return a vector whose residual says it is not one. Returns work.found,
 * vector j in row j.
 */
function tridiagonalEigenvectors(work: EigenWorkspace, lambdas: Float64Array, n: number): Float64Array {
  const { diagonal, offDiagonal, lu, found } = work;
  let norm = 0;
  for (let i = 0; i < n; i++) {
    const row =
      Math.abs(diagonal[i]) + Math.abs(offDiagonal[i]) + (i + 1 < n ? Math.abs(offDiagonal[i + 1]) : 0);
    if (row > norm) norm = row;
  }
  const eps = 2 ** -52;
  if (norm === 0) {
    // T = 0: every unit vector is an eigenvector
    for (let j = 0; j < lambdas.length; j++) for (let i = 0; i < n; i++) found[j * n + i] = i === j ? 1 : 0;
    return found;
  }
  // LAPACK dstein's orthogonalization gap and tinvit's pivot floor, relative to ‖T‖.
  const clusterGap = 1e-3 * norm;
  const pivotFloor = eps * norm;
  const accepted = 16 * n * eps * norm;
  const maxIterations = 8;
  let previous = Number.POSITIVE_INFINITY;
  for (let j = 0; j < lambdas.length; j++) {
    // equal eigenvalues would factor to the same LU; nudge apart as tinvit does
    let lambda = lambdas[j];
    if (previous - lambda < 10 * pivotFloor) lambda = previous - 10 * pivotFloor;
    previous = lambda;
    factorShifted(diagonal, offDiagonal, lambda, n, pivotFloor, lu);
    const x = found.subarray(j * n, (j + 1) * n);
    startVector(x, n, j, 0);
    let converged = false;
    for (let iteration = 0; iteration < maxIterations && !converged; iteration++) {
      solveShifted(lu, x, n);
      for (let i = 0; i < j; i++) {
        if (Math.abs(lambdas[i] - lambdas[j]) > clusterGap) continue;
        const v = found.subarray(i * n, (i + 1) * n);
        let dot = 0;
        for (let k = 0; k < n; k++) dot += v[k] * x[k];
        for (let k = 0; k < n; k++) x[k] -= dot * v[k];
      }
      let size = 0;
      for (let k = 0; k < n; k++) size += x[k] * x[k];
      size = Math.sqrt(size);
      if (!(size > 0 && Number.isFinite(size))) {
        // nothing left outside the cluster's earlier vectors: start over from another vector
        startVector(x, n, j, iteration + 1);
        continue;
      }
      for (let k = 0; k < n; k++) x[k] /= size;
      converged = residual(diagonal, offDiagonal, lambdas[j], x, n) <= accepted;
    }
    if (!converged) {
      throw new SpgError("E_KV_LOWRANK", `inverse iteration for eigenvalue ${lambdas[j]} did not converge`, {
        fix: "disable stage2.lowRank for this model, and report the block that failed",
      });
    }
  }
  return found;
}

/**
 * A fixed pseudo-random start in [-1, 1) per (vector, attempt): generic (almost surely not
 * orthogonal to the wanted eigenvector), and the same on every machine (32-bit integer hash).
 */
function startVector(x: Float64Array, n: number, vector: number, attempt: number): void {
  let h = (Math.imul(vector + 1, 0x9e3779b1) ^ Math.imul(attempt + 1, 0x85ebca6b)) >>> 0;
  for (let k = 0; k < n; k++) {
    h = (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    x[k] = h / 2 ** 31 - 1;
  }
}

/** ‖T x − λ x‖₂ */
function residual(
  diagonal: Float64Array,
  offDiagonal: Float64Array,
  lambda: number,
  x: Float64Array,
  n: number,
): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let tx = (diagonal[i] - lambda) * x[i];
    if (i > 0) tx += offDiagonal[i] * x[i - 1];
    if (i + 1 < n) tx += offDiagonal[i + 1] * x[i + 1];
    sum += tx * tx;
  }
  return Math.sqrt(sum);
}

interface TridiagonalLu {
  d: Float64Array;
  dl: Float64Array;
  du: Float64Array;
  du2: Float64Array;
  swapped: Uint8Array;
}

/** LU with partial pivoting of T − λI (LAPACK dgttrf), zero pivots raised to pivotFloor. */
function factorShifted(
  diagonal: Float64Array,
  offDiagonal: Float64Array,
  lambda: number,
  n: number,
  pivotFloor: number,
  lu: TridiagonalLu,
): void {
  const { d, dl, du, du2, swapped } = lu;
  for (let i = 0; i < n; i++) {
    d[i] = diagonal[i] - lambda;
    dl[i] = i + 1 < n ? offDiagonal[i + 1] : 0;
    du[i] = dl[i];
    du2[i] = 0;
    swapped[i] = 0;
  }
  for (let i = 0; i + 1 < n; i++) {
    if (Math.abs(d[i]) >= Math.abs(dl[i])) {
      if (d[i] === 0) d[i] = pivotFloor;
      const fact = dl[i] / d[i];
      dl[i] = fact;
      d[i + 1] -= fact * du[i];
    } else {
      const fact = d[i] / dl[i];
      d[i] = dl[i];
      dl[i] = fact;
      const temp = du[i];
      du[i] = d[i + 1];
      d[i + 1] = temp - fact * d[i + 1];
      if (i + 2 < n) {
        du2[i] = du[i + 1];
        du[i + 1] = -fact * du[i + 1];
      }
      swapped[i] = 1;
    }
  }
  for (let i = 0; i < n; i++) if (Math.abs(d[i]) < pivotFloor) d[i] = d[i] < 0 ? -pivotFloor : pivotFloor;
}

/** Solves (T − λI) y = x with the factors (LAPACK dgttrs), y into x. */
function solveShifted(lu: TridiagonalLu, x: Float64Array, n: number): void {
  const { d, dl, du, du2, swapped } = lu;
  for (let i = 0; i + 1 < n; i++) {
    if (swapped[i] === 0) x[i + 1] -= dl[i] * x[i];
    else {
      const temp = x[i] - dl[i] * x[i + 1];
      x[i] = x[i + 1];
      x[i + 1] = temp;
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    let acc = x[i];
    if (i + 1 < n) acc -= du[i] * x[i + 1];
    if (i + 2 < n) acc -= du2[i] * x[i + 2];
    x[i] = acc / d[i];
  }
}

/** sqrt(a² + b²) without overflow or underflow; Math.hypot is several times slower in V8. */
function hypot(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  const big = x > y ? x : y;
  if (big === 0 || !Number.isFinite(big)) return big;
  const ratio = (x > y ? y : x) / big;
  return big * Math.sqrt(1 + ratio * ratio);
}

/** Eigenpairs ordered by value, largest first (ties by index), values clamped at 0. */
export function sortDescending(
  d: Float64Array,
  V: Float64Array,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i] || i - j);
  const values = Float64Array.from(order, (i) => Math.max(0, d[i]));
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors[k * n + dst] = V[k * n + src];
  });
  return { values, vectors };
}

/**
 * Householder reduction to tridiagonal form (diagonal d, e[i] coupling i-1 and i). Without
 * vectors, V keeps each reflector u_k in column k above the diagonal, and `reflectorScales`
 * (when given) receives h_k = u_kᵀu_k / 2, so the basis can be applied without building it.
 */
function tred2(
  V: Float64Array,
  d: Float64Array,
  e: Float64Array,
  n: number,
  withVectors = true,
  reflectorScales?: Float64Array,
): void {
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j];
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j];
        V[j * n + i] = f;
        g = e[j] + V[j * n + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j] * d[k];
          e[k] += V[k * n + j] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        for (let k = j; k <= i - 1; k++) V[k * n + j] -= f * e[k] + g * d[k];
        d[j] = V[(i - 1) * n + j];
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  if (!withVectors) {
    reflectorScales?.set(d);
    // The tridiagonal's diagonal is the reduced matrix's; the accumulation below only builds Q.
    for (let j = 0; j < n; j++) d[j] = V[j * n + j];
    e[0] = 0;
    return;
  }
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i];
    V[i * n + i] = 1;
    const h = d[i + 1];
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1] / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1] * V[k * n + j];
        for (let k = 0; k <= i; k++) V[k * n + j] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j];
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

function tql2(V: Float64Array, d: Float64Array, e: Float64Array, n: number, withVectors = true): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 200) throw new SpgError("E_KV_LOWRANK", "eigen decomposition did not converge");
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          for (let k = 0; withVectors && k < n; k++) {
            h = V[k * n + i + 1];
            V[k * n + i + 1] = s * V[k * n + i] + c * h;
            V[k * n + i] = c * V[k * n + i] - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/** Eigen-decomposition of the block's Gram matrix AᵀA: squared singular values and right singular vectors. */
export function gramSpectrum(
  block: Float32Array,
  rows: number,
  cols: number,
): { values: Float64Array; vectors: Float64Array } {
  return symmetricEigen(gramMatrix(block, rows, cols), cols);
}

/**
 * An upper bound on the sum of the k largest eigenvalues of a symmetric positive
 * semi-definite n x n matrix G, without its eigen-decomposition: by Cauchy-Schwarz
 * sum_{i<=k} λ_i <= sqrt(k · sum_i λ_i²) = sqrt(k) ‖G‖_F, and the sum never exceeds trace(G).
 * Returns the bound and the trace (the total energy).
 */
export function topEigenvalueSumBound(
  gram: Float64Array,
  n: number,
  k: number,
): { bound: number; trace: number } {
  let trace = 0;
  let frobenius2 = 0;
  for (let i = 0; i < n; i++) trace += gram[i * n + i];
  for (let i = 0; i < n * n; i++) frobenius2 += gram[i] * gram[i];
  return { bound: Math.min(trace, Math.sqrt(k * frobenius2)), trace };
}

/**
 * A lower bound on the sum of the `count` smallest eigenvalues of a symmetric positive
 * semi-definite n x n matrix G, from one Cholesky factorization instead of an
 * eigen-decomposition (about a quarter of its arithmetic): for any shift s > 0, by the
 * harmonic-arithmetic mean inequality over those eigenvalues,
 *   Σ_small (λ + s) >= count² / Σ_small 1/(λ + s) >= count² / tr((G + sI)⁻¹),
 * so Σ_small λ >= count² / tr((G + sI)⁻¹) - count·s, with tr((G + sI)⁻¹) = ‖L⁻¹‖_F² for
 * G + sI = L Lᵀ. Returns -Infinity when the factorization meets a pivot that is not positive.
 * Its rounding error is far below a relative 1e-6 of the result for shifts of at least 1e-8 of
 * the trace (the condition number of G + sI is at most trace/s + 1).
 */
export function smallestEigenvalueSumBound(
  gram: Float64Array,
  n: number,
  count: number,
  shift: number,
): number {
  // the WebAssembly kernel (src/numeric/simd): the same operations in the same order
  const inverse = inverseFrobenius2Of(gram, n, shift);
  if (inverse !== null)
    return inverse < 0 ? Number.NEGATIVE_INFINITY : (count * count) / inverse - count * shift;
  return smallestEigenvalueSumBoundScalar(gram, n, count, shift);
}

/** smallestEigenvalueSumBound in TypeScript alone: the reference the kernel is tested against. */
export function smallestEigenvalueSumBoundScalar(
  gram: Float64Array,
  n: number,
  count: number,
  shift: number,
): number {
  const lower = choleskyWorkspace(n);
  if (!shiftedCholesky(gram, n, shift, lower)) return Number.NEGATIVE_INFINITY;
  return (count * count) / inverseFrobenius2(lower, n) - count * shift;
}

/**
 * L (row-major, lower triangle) with G + shift·I = L Lᵀ, row by row, each inner product along
 * two rows; false at a pivot that is not positive. (The loops are functions of their own, with
 * nothing after them: V8 compiles long loops on the stack, and code after one that had not yet
 * run sent the caller back to the interpreter at nearly every call.)
 */
function shiftedCholesky(gram: Float64Array, n: number, shift: number, lower: Float64Array): boolean {
  for (let i = 0; i < n; i++) {
    const rowI = i * n;
    for (let j = 0; j <= i; j++) {
      const rowJ = j * n;
      let sum = gram[rowI + j];
      if (i === j) sum += shift;
      for (let k = 0; k < j; k++) sum -= lower[rowI + k] * lower[rowJ + k];
      if (i === j) {
        if (!(sum > 0)) return false;
        lower[rowI + i] = Math.sqrt(sum);
      } else {
        lower[rowI + j] = sum / lower[rowJ + j];
      }
    }
  }
  return true;
}

/** ‖L⁻¹‖_F²: column c of L⁻¹ by forward substitution (into lower's last n entries), its squares summed as they come. */
function inverseFrobenius2(lower: Float64Array, n: number): number {
  const column = lower.subarray(n * n);
  let sum = 0;
  for (let c = 0; c < n; c++) {
    column[c] = 1 / lower[c * n + c];
    sum += column[c] * column[c];
    for (let i = c + 1; i < n; i++) {
      const rowI = i * n;
      let acc = 0;
      for (let k = c; k < i; k++) acc += lower[rowI + k] * column[k];
      column[i] = -acc / lower[rowI + i];
      sum += column[i] * column[i];
    }
  }
  return sum;
}

let choleskyScratch: Float64Array | undefined;

/** n x n for L and n more for one column of its inverse, reused from call to call. */
function choleskyWorkspace(n: number): Float64Array {
  if (choleskyScratch?.length !== n * n + n) choleskyScratch = new Float64Array(n * n + n);
  return choleskyScratch;
}

/**
 * The Gram matrix AᵀA [cols, cols] of a row-major block A [rows, cols], in float64. Every
 * entry is the plain row-order sum Σ_r A[r,i]·A[r,j] (float32 products are exact in float64),
 * so the result does not depend on how the loops are tiled.
 */
export function gramMatrix(block: Float32Array, rows: number, cols: number): Float64Array {
  // the WebAssembly kernel (src/numeric/simd) where it applies: the same sums, so the same bits
  return gramOf(block, rows, cols) ?? gramMatrixScalar(block, rows, cols);
}

/** gramMatrix in TypeScript alone: the reference the kernel is tested against. */
export function gramMatrixScalar(block: Float32Array, rows: number, cols: number): Float64Array {
  const gram = new Float64Array(cols * cols);
  const put = (i: number, j: number, value: number) => {
    gram[i * cols + j] = value;
    gram[j * cols + i] = value;
  };
  const end = rows * cols;
  const tiled = cols - (cols % 4);
  // 4x4 tiles of the upper triangle: each row's 8 loads feed 16 running sums, several times
  // fewer loads per multiply than one dot product at a time.
  for (let i = 0; i < tiled; i += 4) {
    for (let j = i; j < tiled; j += 4) {
      let s00 = 0,
        s01 = 0,
        s02 = 0,
        s03 = 0,
        s10 = 0,
        s11 = 0,
        s12 = 0,
        s13 = 0;
      let s20 = 0,
        s21 = 0,
        s22 = 0,
        s23 = 0,
        s30 = 0,
        s31 = 0,
        s32 = 0,
        s33 = 0;
      for (let o = 0; o < end; o += cols) {
        const x0 = block[o + i];
        const x1 = block[o + i + 1];
        const x2 = block[o + i + 2];
        const x3 = block[o + i + 3];
        const y0 = block[o + j];
        const y1 = block[o + j + 1];
        const y2 = block[o + j + 2];
        const y3 = block[o + j + 3];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
        s20 += x2 * y0;
        s21 += x2 * y1;
        s22 += x2 * y2;
        s23 += x2 * y3;
        s30 += x3 * y0;
        s31 += x3 * y1;
        s32 += x3 * y2;
        s33 += x3 * y3;
      }
      // on a diagonal tile, (p, q) and (q, p) are the same sums, so the order of puts is moot
      put(i, j, s00);
      put(i, j + 1, s01);
      put(i, j + 2, s02);
      put(i, j + 3, s03);
      put(i + 1, j, s10);
      put(i + 1, j + 1, s11);
      put(i + 1, j + 2, s12);
      put(i + 1, j + 3, s13);
      put(i + 2, j, s20);
      put(i + 2, j + 1, s21);
      put(i + 2, j + 2, s22);
      put(i + 2, j + 3, s23);
      put(i + 3, j, s30);
      put(i + 3, j + 1, s31);
      put(i + 3, j + 2, s32);
      put(i + 3, j + 3, s33);
    }
  }
  // columns past the last whole tile: one sum per pair
  for (let j = tiled; j < cols; j++) {
    for (let i = 0; i <= j; i++) {
      let sum = 0;
      for (let o = 0; o < end; o += cols) sum += block[o + i] * block[o + j];
      put(i, j, sum);
    }
  }
  return gram;
}

/** Fewest leading components whose energy reaches `energyThreshold` of the total (0 for a zero block). */
export function rankForEnergy(
  values: Float64Array,
  maxRank: number,
  energyThreshold: number,
): { rank: number; energyKept: number } {
  if (!(energyThreshold > 0 && energyThreshold <= 1)) {
    throw new SpgError("E_KV_LOWRANK", `energy threshold ${energyThreshold} must be in (0, 1]`);
  }
  const total = values.reduce((a, b) => a + b, 0);
  if (total === 0) return { rank: 0, energyKept: 1 };
  let rank = 0;
  let kept = 0;
  while (rank < maxRank && kept < energyThreshold * total) kept += values[rank++];
  return { rank, energyKept: kept / total };
}

/** left = A·V_r [rows, rank], right = V_rᵀ [rank, cols]. Each entry is a plain column-order dot product. */
export function factorsFor(
  block: Float32Array,
  rows: number,
  cols: number,
  vectors: Float64Array,
  rank: number,
): { left: Float64Array; right: Float64Array } {
  const left = new Float64Array(rows * rank);
  const right = new Float64Array(rank * cols);
  for (let k = 0; k < rank; k++) for (let c = 0; c < cols; c++) right[k * cols + c] = vectors[c * cols + k];
  let r = 0;
  // four rows at a time share each load of the right factor
  for (; r + 3 < rows; r += 4) {
    const o0 = r * cols;
    const o1 = o0 + cols;
    const o2 = o1 + cols;
    const o3 = o2 + cols;
    for (let k = 0; k < rank; k++) {
      const w = k * cols;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let c = 0; c < cols; c++) {
        const v = right[w + c];
        a0 += block[o0 + c] * v;
        a1 += block[o1 + c] * v;
        a2 += block[o2 + c] * v;
        a3 += block[o3 + c] * v;
      }
      left[r * rank + k] = a0;
      left[(r + 1) * rank + k] = a1;
      left[(r + 2) * rank + k] = a2;
      left[(r + 3) * rank + k] = a3;
    }
  }
  for (; r < rows; r++) {
    const o = r * cols;
    for (let k = 0; k < rank; k++) {
      let acc = 0;
      for (let c = 0; c < cols; c++) acc += block[o + c] * right[k * cols + c];
      left[r * rank + k] = acc;
    }
  }
  return { left, right };
}

/**
 * left [rows, rank] x right [rank, cols] into `out` (float64 unless given a Float32Array). Each
 * element is summed over k in order in float64, as a dot product per element would be, and
 * rounded once on the store; four columns at a time, so each load of the left factor serves
 * four sums. The decoders of spg's low-rank blocks and of low-rank weights both read this.
 */
export function multiplyFactors<Out extends Float32Array | Float64Array = Float64Array>(
  left: ArrayLike<number>,
  right: ArrayLike<number>,
  rows: number,
  rank: number,
  cols: number,
  out: Out = new Float64Array(rows * cols) as Out,
): Out {
  const wide = cols - (cols % 4);
  for (let t = 0; t < rows; t++) {
    const lo = t * rank;
    const bo = t * cols;
    for (let c = 0; c < wide; c += 4) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let k = 0; k < rank; k++) {
        const l = left[lo + k];
        const w = k * cols + c;
        a0 += l * right[w];
        a1 += l * right[w + 1];
        a2 += l * right[w + 2];
        a3 += l * right[w + 3];
      }
      out[bo + c] = a0;
      out[bo + c + 1] = a1;
      out[bo + c + 2] = a2;
      out[bo + c + 3] = a3;
    }
    for (let c = wide; c < cols; c++) {
      let acc = 0;
      for (let k = 0; k < rank; k++) acc += left[lo + k] * right[k * cols + c];
      out[bo + c] = acc;
    }
  }
  return out;
}

/** Bytes of fp16 factors plus the 2-byte rank. */
export function lowRankBytes(rows: number, cols: number, rank: number): number {
  return 2 + 2 * rank * (rows + cols);
}
