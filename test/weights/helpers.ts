/** Constructed matrices with known singular values, for closed-form SVD checks. */
import { mulberry32 } from "../../src/measure/prng.js";

/** n orthonormal columns of length m ([m, n] row-major), by Gram-Schmidt on seeded Gaussian-ish vectors. */
export function orthonormalColumns(m: number, n: number, seed: number): Float64Array {
  const next = mulberry32(seed);
  const q = new Float64Array(m * n);
  for (let j = 0; j < n; j++) {
    const v = Float64Array.from({ length: m }, () => next() + next() + next() - 1.5);
    // two passes of modified Gram-Schmidt keep the columns orthogonal to float64 precision
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[i * n + k] * v[i];
        for (let i = 0; i < m; i++) v[i] -= dot * q[i * n + k];
      }
    }
    const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    for (let i = 0; i < m; i++) q[i * n + j] = v[i] / norm;
  }
  return q;
}

/** A = Q1·diag(s)·Q2ᵀ in float64, [rows, cols], with s.length = min(rows, cols). */
export function matrixWithSpectrum(
  rows: number,
  cols: number,
  s: readonly number[],
  seed: number,
): Float64Array {
  const n = s.length;
  const q1 = orthonormalColumns(rows, n, seed);
  const q2 = orthonormalColumns(cols, n, seed + 1);
  const a = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += q1[r * n + k] * s[k] * q2[c * n + k];
      a[r * cols + c] = sum;
    }
  return a;
}

export function frobeniusDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return Math.sqrt(sum);
}

export function randomMatrix(rows: number, cols: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: rows * cols }, () => (next() * 2 - 1) * scale);
}
