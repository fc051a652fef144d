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

/** Eigenvalues (descending) and eigenvectors (columns of `vectors`, [n, n] row-major) of a symmetric matrix. */
export function symmetricEigen(
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
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i] || i - j);
  const values = Float64Array.from(order, (i) => Math.max(0, a[i * n + i]));
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src];
  });
  return { values, vectors };
}

export function lowRankFactor(
  block: Float32Array,
  rows: number,
  cols: number,
  energyThreshold: number,
): LowRankFactors {
  if (!(energyThreshold > 0 && energyThreshold <= 1)) {
    throw new SpgError("E_KV_LOWRANK", `energy threshold ${energyThreshold} must be in (0, 1]`);
  }
  const gram = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let i = 0; i < cols; i++) {
      const x = block[base + i];
      if (x === 0) continue;
      for (let j = i; j < cols; j++) gram[i * cols + j] += x * block[base + j];
    }
  }
  for (let i = 0; i < cols; i++) for (let j = 0; j < i; j++) gram[i * cols + j] = gram[j * cols + i];
  const { values, vectors } = symmetricEigen(gram, cols);
  const total = values.reduce((a, b) => a + b, 0);
  let rank = 0;
  let kept = 0;
  if (total > 0) {
    while (rank < Math.min(rows, cols) && kept < energyThreshold * total) kept += values[rank++];
  }
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
  return { rank, left, right, energyKept: total > 0 ? kept / total : 1 };
}

/** Bytes of fp16 factors plus the 2-byte rank. */
export function lowRankBytes(rows: number, cols: number, rank: number): number {
  return 2 + 2 * rank * (rows + cols);
}
