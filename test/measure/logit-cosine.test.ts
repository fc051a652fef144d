import assert from "node:assert/strict";
import { test } from "node:test";
import { logitCosineSum } from "../../src/measure/logit-cosine.js";

test("logit cosine sums per-row cosines: closed forms on constructed rows", () => {
  const vocab = 3;
  // row 0: identical direction (scaled) -> 1; row 1: orthogonal -> 0; row 2: opposite -> -1;
  // row 3: (1,1,0)·(1,0,0) = 1 / sqrt(2)
  const a = Float32Array.from([1, 2, 3, 1, 0, 0, 1, -2, 0.5, 1, 1, 0]);
  const b = Float32Array.from([2, 4, 6, 0, 5, 0, -1, 2, -0.5, 1, 0, 0]);
  const sum = logitCosineSum(a, b, 4, vocab);
  assert.ok(Math.abs(sum - (1 + 0 - 1 + Math.SQRT1_2)) < 1e-12, `${sum}`);
  // only the first `rows` rows are read
  assert.ok(Math.abs(logitCosineSum(a, b, 1, vocab) - 1) < 1e-12);
  // a zero row has no direction: counted as 0, not NaN
  assert.equal(logitCosineSum(new Float32Array(3), Float32Array.from([1, 2, 3]), 1, vocab), 0);
});
