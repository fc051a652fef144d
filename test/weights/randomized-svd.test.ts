/**
 * Randomized SVD against closed forms: on an exactly rank-r matrix it recovers A (error = the
 * float32 storage distance δ at most); on a decaying spectrum its rank-k error can never beat
 * the discarded singular values (Eckart–Young, minus δ) and with power iterations comes
 * within 0.1 % of them; the same seed gives identical factors.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { multiplyFactors } from "../../src/numeric/lowrank.js";
import { randomizedSvd } from "../../src/weights/randomized-svd.js";
import { frobeniusDistance, matrixWithSpectrum } from "./helpers.js";

const options = { oversample: 6, powerIterations: 2, seed: 1234 };

describe("randomizedSvd", () => {
  test("an exactly rank-5 matrix is recovered at rank 5", () => {
    const rows = 60;
    const cols = 40;
    const s = [9, 7, 4, 2, 1, ...new Array(35).fill(0)];
    const exact = matrixWithSpectrum(rows, cols, s, 21);
    const stored = Float32Array.from(exact);
    const delta = frobeniusDistance(stored, exact);
    const svd = randomizedSvd(stored, rows, cols, { kind: "rank", rank: 5 }, options);
    assert.equal(svd.rank, 5);
    const error = frobeniusDistance(stored, multiplyFactors(svd.left, svd.right, rows, 5, cols));
    assert.ok(error <= delta + 1e-9, `error ${error}, δ ${delta}`);
  });

  for (const [rows, cols] of [
    [70, 50],
    [36, 80],
  ]) {
    test(`[${rows}x${cols}] decaying spectrum: Eckart–Young lower bound holds, within 0.1 % of it`, () => {
      const n = Math.min(rows, cols);
      const s = Array.from({ length: n }, (_, i) => 4 * 0.7 ** i);
      const exact = matrixWithSpectrum(rows, cols, s, 8);
      const stored = Float32Array.from(exact);
      const delta = frobeniusDistance(stored, exact);
      for (const k of [3, 8]) {
        const svd = randomizedSvd(stored, rows, cols, { kind: "rank", rank: k }, options);
        const error = frobeniusDistance(stored, multiplyFactors(svd.left, svd.right, rows, k, cols));
        const discarded = Math.sqrt(s.slice(k).reduce((a, x) => a + x * x, 0));
        assert.ok(error >= discarded - delta, `rank ${k}: ${error} beats the optimum ${discarded}`);
        assert.ok(error <= discarded * 1.001 + delta, `rank ${k}: ${error} vs optimum ${discarded}`);
      }
    });
  }

  test("seeded: the same seed gives identical factors; energy thresholds need maxRank", () => {
    const stored = Float32Array.from(
      matrixWithSpectrum(
        30,
        20,
        Array.from({ length: 20 }, (_, i) => 0.8 ** i),
        4,
      ),
    );
    const a = randomizedSvd(stored, 30, 20, { kind: "rank", rank: 4 }, options);
    const b = randomizedSvd(stored, 30, 20, { kind: "rank", rank: 4 }, options);
    assert.deepEqual(a.left, b.left);
    assert.deepEqual(a.right, b.right);
    assert.throws(() => randomizedSvd(stored, 30, 20, { kind: "energy", threshold: 0.9 }, options), {
      code: "E_WEIGHTS_RANK",
    });
    // s_i² = 0.64^i: the first k hold (1 − 0.64^k)/(1 − 0.64^20); 0.9 needs k = 6 (0.931), not 5 (0.893).
    const energy = randomizedSvd(stored, 30, 20, { kind: "energy", threshold: 0.9, maxRank: 10 }, options);
    assert.equal(energy.rank, 6);
  });
});
