import assert from "node:assert/strict";
import { test } from "node:test";
import { attentionEntropy, logProbabilityAt } from "../../scripts/measure_helpers.js";

test("logProbabilityAt equals log softmax computed by hand", () => {
  // Two rows of a 3-token vocabulary.
  const logits = Float32Array.from([1, 2, 3, 0, 0, 0]);
  const byHand = 2 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  assert.ok(Math.abs(logProbabilityAt(logits, 0, 3, 1) - byHand) < 1e-12);
  assert.ok(Math.abs(logProbabilityAt(logits, 1, 3, 2) - Math.log(1 / 3)) < 1e-12);
  // Large logits do not overflow.
  const large = Float32Array.from([1000, 1000]);
  assert.ok(Math.abs(logProbabilityAt(large, 0, 2, 0) - Math.log(0.5)) < 1e-12);
});

/** Uniform probabilities over each query's visible keys, layout [heads, rows, q]. */
function uniformAttention(heads: number, q: number, kind: "global" | "local", window: number): Float32Array {
  const probabilities = new Float32Array(heads * q * q);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < q; i++) {
      const first = kind === "global" ? 0 : Math.max(0, i - window + 1);
      for (let k = first; k <= i; k++) probabilities[(h * q + i) * q + k] = 1 / (i - first + 1);
    }
  }
  return probabilities;
}

test("uniform attention over the visible keys has exactly the uniform entropy", () => {
  const q = 6;
  const positions = [0, 1, 2, 3, 4, 5];
  for (const [kind, window] of [
    ["global", 99],
    ["local", 3],
  ] as const) {
    const totals = attentionEntropy(uniformAttention(2, q, kind, window), 2, q, positions, kind, window);
    assert.equal(totals.rows, 2 * q);
    assert.ok(Math.abs(totals.entropy - totals.uniform) < 1e-5);
    // Closed form: sum over rows of ln(visible keys), twice (two heads).
    const visible = positions.map((i) => (kind === "global" ? i + 1 : Math.min(i + 1, window)));
    const expected = 2 * visible.reduce((sum, n) => sum + Math.log(n), 0);
    assert.ok(Math.abs(totals.uniform - expected) < 1e-9);
  }
});

test("one-hot attention has zero entropy; only the last rows are read", () => {
  const rows = 2;
  // Each of the last two queries attends only to itself: [1 head, 2 rows, 4 keys].
  const probabilities = Float32Array.from([0, 0, 1, 0, 0, 0, 0, 1]);
  const totals = attentionEntropy(probabilities, 1, rows, [0, 1, 2, 3], "global", 99);
  assert.equal(totals.rows, 2);
  assert.equal(totals.entropy, 0);
  assert.ok(Math.abs(totals.uniform - (Math.log(3) + Math.log(4))) < 1e-12);
});
