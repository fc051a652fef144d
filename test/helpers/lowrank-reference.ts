/**
 * Test-only references for src/numeric/lowrank.ts: an independent eigen-solver (cyclic
 * Jacobi rotations) and the one-call low-rank factorization the tests check the pieces with.
 */
import {
  factorsFor,
  gramSpectrum,
  rankForEnergy,
  sortDescending,
  symmetricTopEigen,
} from "../../src/numeric/lowrank.js";

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
 * The same decomposition by cyclic Jacobi rotations: slower, independent, the
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

/**
 * The eigenvalues alone (descending, clamped at 0 like symmetricEigen's), without
 * accumulating eigenvectors: a fraction of the cost, for deciding whether a block's rank is
 * worth factoring before paying for its vectors.
 */
export function symmetricEigenvalues(matrix: Float64Array, n: number): Float64Array {
  return symmetricTopEigen(matrix, n, () => 0).values;
}

/** A block's factors at the fewest components holding `energyThreshold` of its energy. */
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
