/**
 * smallestEigenvalueSumBound against the eigenvalues themselves (cyclic Jacobi reference): a
 * lower bound on the sum of the smallest eigenvalues for every count and shift, tight enough
 * on isotropic blocks to decide spg's low-rank skip.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { gramMatrix, smallestEigenvalueSumBound } from "../../src/numeric/lowrank.js";
import { symmetricEigenJacobi } from "../helpers/lowrank-reference.js";
import { rng } from "./helpers.js";

/** rows x cols: `rank` random directions with weights falling off, a mean row, and noise. */
function block(next: () => number, rows: number, cols: number, rank: number, noise: number, mean: number) {
  const basis = Array.from({ length: rank }, () => Float32Array.from({ length: cols }, () => next() - 0.5));
  const offset = Float32Array.from({ length: cols }, () => mean * (next() - 0.5));
  return Float32Array.from({ length: rows * cols }, (_, i) => {
    const c = i % cols;
    let v = offset[c] + noise * (next() - 0.5);
    basis.forEach((b, k) => {
      v += (b[c] * (next() - 0.5)) / (k + 1);
    });
    return v;
  });
}

test("smallestEigenvalueSumBound never exceeds the smallest eigenvalues' sum", () => {
  const next = rng(2026);
  let checked = 0;
  for (const [rows, cols, rank, noise, mean] of [
    [80, 16, 16, 1, 0],
    [80, 16, 3, 0.01, 2],
    [40, 24, 24, 0.5, 5],
    // fewer rows than columns: zero eigenvalues
    [6, 12, 6, 0, 0],
    [64, 8, 1, 0, 0],
  ]) {
    const gram = gramMatrix(block(next, rows, cols, rank, noise, mean), rows, cols);
    const values = symmetricEigenJacobi(gram, cols).values; // descending
    let trace = 0;
    for (const v of values) trace += v;
    for (let count = 1; count <= cols; count++) {
      let smallest = 0;
      for (let i = cols - count; i < cols; i++) smallest += Math.max(0, values[i]);
      for (const shift of [1e-8 * trace, 1e-4 * trace, smallest / count + 1e-12 * trace, trace]) {
        const bound = smallestEigenvalueSumBound(gram, cols, count, shift);
        assert.ok(
          bound <= smallest + 1e-9 * trace,
          `${rows}x${cols} rank ${rank}: count ${count} shift ${shift}: bound ${bound} > ${smallest}`,
        );
        checked++;
      }
    }
  }
  assert.equal(checked, 4 * (16 + 16 + 24 + 12 + 8));
});

test("smallestEigenvalueSumBound decides spg's question on an isotropic block: the smallest half holds over 0.5% of the energy", () => {
  const next = rng(7);
  const rows = 96;
  const cols = 32;
  const gram = gramMatrix(
    Float32Array.from({ length: rows * cols }, () => next() - 0.5),
    rows,
    cols,
  );
  const values = symmetricEigenJacobi(gram, cols).values;
  let trace = 0;
  for (const v of values) trace += v;
  const count = cols / 2;
  let smallest = 0;
  for (let i = cols - count; i < cols; i++) smallest += values[i];
  // as spg asks it: an energy threshold of 0.995 leaves out 0.5%, the shift spreads that over count
  const leftOut = 0.005 * trace;
  const bound = smallestEigenvalueSumBound(gram, cols, count, leftOut / count);
  assert.ok(bound > leftOut && bound <= smallest, `bound ${bound}, left out ${leftOut}, sum ${smallest}`);
  // (the sum itself is about a quarter of the trace; the bound, from a harmonic mean, about a quarter of that)
  assert.ok(bound > 0.2 * smallest, `bound ${bound}, sum ${smallest}`);
});

test("smallestEigenvalueSumBound reports a matrix that is not positive definite after the shift", () => {
  // eigenvalues 3 and -1: G + 0.5 I is indefinite
  const gram = Float64Array.of(1, 2, 2, 1);
  assert.equal(smallestEigenvalueSumBound(gram, 2, 1, 0.5), Number.NEGATIVE_INFINITY);
});
