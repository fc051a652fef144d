/**
 * Seeded randomized truncated SVD (Halko, Martinsson & Tropp 2011, algorithms 4.4 + 5.1) for
 * matrices whose Gram matrix is too large to eigen-decompose (GPT-Neo 1.3B: 2048..8192 wide).
 * The test matrix is Rademacher (±1 from mulberry32), so the same seed gives the same factors
 * bit for bit on any engine; power iterations with re-orthonormalization sharpen a slowly
 * decaying spectrum. Only the leading `rank + oversample` triplets are estimated, so an energy
 * threshold needs a `maxRank`; the total energy ‖A‖²_F is computed exactly.
 */
import { SpgError } from "../errors.js";
import { mulberry32 } from "../measure/prng.js";
import { symmetricEigen } from "../numeric/lowrank.js";
import { type RankSelection, selectRank, type TruncatedSvd, truncatedSvd } from "./svd.js";

export interface RandomizedSvdOptions {
  /** Extra columns sampled beyond the target rank. */
  oversample: number;
  /** Power (subspace) iterations. */
  powerIterations: number;
  seed: number;
}

/** Largest rank the selection may ask for, before seeing the spectrum. */
function targetRank(selection: RankSelection, full: number): number {
  if (selection.kind === "energy") {
    if (selection.maxRank === undefined) {
      throw new SpgError("E_WEIGHTS_RANK", "a randomized SVD with an energy threshold needs maxRank", {
        field: "lowRank.maxRank",
        fix: "set maxRank (the most triplets the threshold may keep), or use the exact SVD",
      });
    }
    return Math.min(selection.maxRank, full);
  }
  return selectRank(new Float64Array(full).fill(1), selection);
}

/** Orthonormalizes the columns of Y [m, l] in place (two passes of modified Gram-Schmidt). */
function orthonormalize(y: Float64Array, m: number, l: number): void {
  for (let j = 0; j < l; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += y[i * l + k] * y[i * l + j];
        for (let i = 0; i < m; i++) y[i * l + j] -= dot * y[i * l + k];
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += y[i * l + j] ** 2;
    norm = Math.sqrt(norm);
    // A column in the span of the previous ones (rank-deficient A) is left zero.
    for (let i = 0; i < m; i++) y[i * l + j] = norm > 0 ? y[i * l + j] / norm : 0;
  }
}

/** A [rows, cols] times X [cols, l]. */
function times(a: Float32Array, rows: number, cols: number, x: Float64Array, l: number): Float64Array {
  const out = new Float64Array(rows * l);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = a[r * cols + c];
      if (v === 0) continue;
      for (let j = 0; j < l; j++) out[r * l + j] += v * x[c * l + j];
    }
  }
  return out;
}

/** Aᵀ [cols, rows] times Y [rows, l]. */
function transposeTimes(
  a: Float32Array,
  rows: number,
  cols: number,
  y: Float64Array,
  l: number,
): Float64Array {
  const out = new Float64Array(cols * l);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = a[r * cols + c];
      if (v === 0) continue;
      for (let j = 0; j < l; j++) out[c * l + j] += v * y[r * l + j];
    }
  }
  return out;
}

export function randomizedSvd(
  matrix: Float32Array,
  rows: number,
  cols: number,
  selection: RankSelection,
  options: RandomizedSvdOptions,
): TruncatedSvd {
  const full = Math.min(rows, cols);
  if (matrix.length !== rows * cols) return truncatedSvd(matrix, rows, cols, selection); // raises the shape error
  const target = targetRank(selection, full);
  const l = Math.min(full, target + options.oversample);
  // Sampling the whole spectrum is the exact problem: solve it exactly.
  if (l >= full) return truncatedSvd(matrix, rows, cols, selection);
  const next = mulberry32(options.seed);
  const omega = Float64Array.from({ length: cols * l }, () => (next() < 0.5 ? -1 : 1));
  const q = times(matrix, rows, cols, omega, l);
  orthonormalize(q, rows, l);
  for (let it = 0; it < options.powerIterations; it++) {
    const z = transposeTimes(matrix, rows, cols, q, l);
    orthonormalize(z, cols, l);
    q.set(times(matrix, rows, cols, z, l));
    orthonormalize(q, rows, l);
  }
  // B = Qᵀ A [l, cols] (as Bᵀ = Aᵀ Q [cols, l]); B Bᵀ [l, l] gives B's left vectors and s².
  const bt = transposeTimes(matrix, rows, cols, q, l);
  const gram = new Float64Array(l * l);
  for (let i = 0; i < l; i++)
    for (let j = i; j < l; j++) {
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += bt[c * l + i] * bt[c * l + j];
      gram[i * l + j] = sum;
      gram[j * l + i] = sum;
    }
  const { values, vectors } = symmetricEigen(gram, l);
  let total = 0;
  for (let i = 0; i < matrix.length; i++) total += matrix[i] * matrix[i];
  // Energy shares are of ‖A‖²_F, not of the sampled part: pad the spectrum with the remainder.
  const captured = values.reduce((a, b) => a + b, 0);
  const padded = new Float64Array(full);
  padded.set(values);
  padded[l] = Math.max(0, total - captured);
  const rank = Math.min(selectRank(padded, selection), l, target);
  const singularValues = values.map(Math.sqrt);
  const left = new Float64Array(rows * rank);
  const right = new Float64Array(rank * cols);
  for (let k = 0; k < rank; k++) {
    const s = singularValues[k];
    // left column k = Q·u_k·s_k; right row k = (Bᵀ u_k / s_k)ᵀ
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let j = 0; j < l; j++) sum += q[r * l + j] * vectors[j * l + k];
      left[r * rank + k] = sum * s;
    }
    if (s > 0)
      for (let c = 0; c < cols; c++) {
        let sum = 0;
        for (let j = 0; j < l; j++) sum += bt[c * l + j] * vectors[j * l + k];
        right[k * cols + c] = sum / s;
      }
  }
  let kept = 0;
  for (let k = 0; k < rank; k++) kept += values[k];
  return { rows, cols, rank, singularValues, left, right, energyKept: total === 0 ? 1 : kept / total };
}
