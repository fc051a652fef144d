/**
 * Truncated SVD against closed forms on A = Q1·diag(s)·Q2ᵀ with known s. A is stored as
 * float32, which moves it by δ = ‖A32 − A64‖_F; singular values and the best rank-k error
 * are 1-Lipschitz in the Frobenius norm (Weyl, Mirsky), so each must match its closed form
 * within δ (plus a float64 solver allowance far below δ's size).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { multiplyFactors } from "../../src/numeric/lowrank.js";
import { selectRank, truncatedSvd } from "../../src/weights/svd.js";
import { frobeniusDistance, matrixWithSpectrum } from "./helpers.js";

const SOLVER_ALLOWANCE = 1e-9;

function check(rows: number, cols: number, seed: number) {
  const n = Math.min(rows, cols);
  const s = Array.from({ length: n }, (_, i) => 5 * 0.8 ** i);
  const exact = matrixWithSpectrum(rows, cols, s, seed);
  const stored = Float32Array.from(exact);
  const delta = frobeniusDistance(stored, exact);
  for (const k of [0, 1, Math.floor(n / 3), n - 1, n]) {
    const svd = truncatedSvd(stored, rows, cols, { kind: "rank", rank: k });
    assert.equal(svd.rank, k);
    const approx = multiplyFactors(svd.left, svd.right, rows, k, cols);
    const error = frobeniusDistance(stored, approx);
    const discarded = Math.sqrt(s.slice(k).reduce((a, x) => a + x * x, 0));
    assert.ok(
      Math.abs(error - discarded) <= delta + SOLVER_ALLOWANCE,
      `[${rows}x${cols}] rank ${k}: error ${error}, discarded ${discarded}, δ ${delta}`,
    );
    svd.singularValues.forEach((sigma, i) => {
      assert.ok(Math.abs(sigma - s[i]) <= delta + SOLVER_ALLOWANCE, `σ${i} ${sigma} vs ${s[i]}`);
    });
    // right = V_rᵀ has orthonormal rows; left = U_r·diag(S_r) has column norms S_r.
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) {
        let dot = 0;
        for (let c = 0; c < cols; c++) dot += svd.right[a * cols + c] * svd.right[b * cols + c];
        assert.ok(Math.abs(dot - (a === b ? 1 : 0)) < 1e-6, `V rows ${a},${b}: ${dot}`);
      }
      let norm = 0;
      for (let r = 0; r < rows; r++) norm += svd.left[r * k + a] ** 2;
      assert.ok(Math.abs(Math.sqrt(norm) - svd.singularValues[a]) < 1e-6);
    }
  }
}

describe("truncatedSvd", () => {
  test("tall matrix: ‖A − A_k‖²_F equals the discarded squared singular values", () => check(40, 12, 3));
  test("wide matrix (transposed path): the same closed form", () => check(9, 30, 7));
  test("square matrix", () => check(16, 16, 11));

  test("energy threshold picks the closed-form rank on a geometric spectrum", () => {
    // s_i² = 2^-i for i < n: the first k hold (1 − 2^-k)/(1 − 2^-n) of the energy, so the
    // rank for threshold t is ceil(log2(1 / (1 − t·(1 − 2^-n)))).
    const n = 8;
    const s = Array.from({ length: n }, (_, i) => Math.sqrt(2 ** -i));
    const stored = Float32Array.from(matrixWithSpectrum(20, n, s, 5));
    for (const t of [0.3, 0.6, 0.9, 0.97, 0.995]) {
      const expected = Math.ceil(Math.log2(1 / (1 - t * (1 - 2 ** -n))));
      const svd = truncatedSvd(stored, 20, n, { kind: "energy", threshold: t });
      assert.equal(svd.rank, expected, `threshold ${t}`);
      const share = (1 - 2 ** -expected) / (1 - 2 ** -n);
      assert.ok(Math.abs(svd.energyKept - share) < 1e-6, `energy kept ${svd.energyKept} vs ${share}`);
      const capped = truncatedSvd(stored, 20, n, { kind: "energy", threshold: t, maxRank: 2 });
      assert.equal(capped.rank, Math.min(2, expected));
    }
    assert.equal(truncatedSvd(stored, 20, n, { kind: "energy", threshold: 1 }).rank, n);
  });

  test("rank selection: fixed ranks clip at min(rows, cols); an all-zero matrix has rank 0 by energy", () => {
    assert.equal(selectRank(Float64Array.of(4, 1), { kind: "rank", rank: 128 }), 2);
    // rank 128 of 2048 carried to a 128-wide matrix: ceil(0.0625 · 128) = 8; never 0.
    assert.equal(selectRank(new Float64Array(128).fill(1), { kind: "fraction", fraction: 128 / 2048 }), 8);
    assert.equal(selectRank(new Float64Array(5).fill(1), { kind: "fraction", fraction: 0.01 }), 1);
    assert.throws(() => selectRank(Float64Array.of(1), { kind: "fraction", fraction: 0 }), {
      code: "E_WEIGHTS_RANK",
    });
    const zero = truncatedSvd(new Float32Array(12), 3, 4, { kind: "energy", threshold: 0.9 });
    assert.equal(zero.rank, 0);
    assert.equal(zero.energyKept, 1);
  });

  test("bad shapes and ranks are refused with stable codes", () => {
    assert.throws(() => truncatedSvd(new Float32Array(5), 2, 3, { kind: "rank", rank: 1 }), {
      code: "E_WEIGHTS_SHAPE",
    });
    assert.throws(() => truncatedSvd(new Float32Array(6), 2, 3, { kind: "rank", rank: 1.5 }), {
      code: "E_WEIGHTS_RANK",
    });
  });
});
