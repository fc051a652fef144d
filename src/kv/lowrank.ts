/**
 * Truncated SVD of a small dense block A [rows, cols] for adaptive low-rank storage.
 * Eigen-decomposes the Gram matrix AᵀA [cols, cols] with cyclic Jacobi rotations (float64;
 * cols is a head dimension, so this is small and deterministic), keeps the fewest right
 * singular vectors whose energy (sum of squared singular values) reaches `energyThreshold`
 * of the total, and returns A ≈ left · right with left = A·V_r [rows, r], right = V_rᵀ [r, cols].
 */
import { SpgError } from "../errors.js";

export interface LowRankFactors {
  rank: number;
  /** [rows, rank] */
  left: Float64Array;
  /** [rank, cols] */
  right: Float64Array;
  /** Fraction of the block's energy the kept rank holds (1 for an all-zero block). */
  energyKept: number;
}

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
 * The eigenvalues alone (descending, clamped at 0 like symmetricEigen's), without
 * accumulating eigenvectors: a fraction of the cost, for deciding whether a block's rank is
 * worth factoring before paying for its vectors.
 */
export function symmetricEigenvalues(matrix: Float64Array, n: number): Float64Array {
  const V = Float64Array.from(matrix);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n, false);
  tql2(V, d, e, n, false);
  return Float64Array.from(d, (x) => Math.max(0, x)).sort((a, b) => b - a);
}

function sortDescending(
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

function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number, withVectors = true): void {
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
        let r = Math.hypot(p, 1);
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
          r = Math.hypot(p, e[i]);
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

/**
 * The same decomposition by cyclic Jacobi rotations: slower, independent, kept as the
 * reference the tests compare symmetricEigen against.
 */
export function symmetricEigenJacobi(
  matrix: Float64Array,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i] * a[i];
  const maxSweeps = 64;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    if (off <= scale * 1e-30 || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return sortDescending(
    Float64Array.from({ length: n }, (_, i) => a[i * n + i]),
    v,
    n,
  );
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

/** The Gram matrix AᵀA [cols, cols] of a row-major block A [rows, cols], in float64. */
export function gramMatrix(block: Float32Array, rows: number, cols: number): Float64Array {
  // Column-major float64 copy, then one dot product per (i, j): long unit-stride loops with
  // four partial sums run several times faster in JS than the row-wise outer-product update.
  const columns = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) columns[c * rows + r] = block[r * cols + c];
  const gram = new Float64Array(cols * cols);
  for (let i = 0; i < cols; i++) {
    const a = i * rows;
    for (let j = i; j < cols; j++) {
      const b = j * rows;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let r = 0;
      for (; r + 3 < rows; r += 4) {
        s0 += columns[a + r] * columns[b + r];
        s1 += columns[a + r + 1] * columns[b + r + 1];
        s2 += columns[a + r + 2] * columns[b + r + 2];
        s3 += columns[a + r + 3] * columns[b + r + 3];
      }
      for (; r < rows; r++) s0 += columns[a + r] * columns[b + r];
      gram[i * cols + j] = s0 + s1 + s2 + s3;
      gram[j * cols + i] = gram[i * cols + j];
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

/** left = A·V_r [rows, rank], right = V_rᵀ [rank, cols]. */
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
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < rank; k++) {
      let acc = 0;
      for (let c = 0; c < cols; c++) acc += block[r * cols + c] * right[k * cols + c];
      left[r * rank + k] = acc;
    }
  }
  return { left, right };
}

export function lowRankFactor(
  block: Float32Array,
  rows: number,
  cols: number,
  energyThreshold: number,
): LowRankFactors {
  const { values, vectors } = gramSpectrum(block, rows, cols);
  const { rank, energyKept } = rankForEnergy(values, Math.min(rows, cols), energyThreshold);
  return { rank, energyKept, ...factorsFor(block, rows, cols, vectors, rank) };
}

/** Bytes of fp16 factors plus the 2-byte rank. */
export function lowRankBytes(rows: number, cols: number, rank: number): number {
  return 2 + 2 * rank * (rows + cols);
}
