/**
 * The baseline-distribution graph against the JS implementation in src/measure/metrics.ts
 * (prepareBaseline over logitRows): the same float32 probabilities, masses and sum p~ log p.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { logitRows, prepareBaseline, preparedFromDistributions } from "../../src/measure/metrics.js";
import { loadDistributionSession } from "../../src/model/distribution.js";

test("graph distributions equal the JS ones: p~ to one float32 step, mass and sum p~ log p to 1e-12", async () => {
  let seed = 3;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const vocab = 1000;
  const rows = 6;
  const logits = Float32Array.from({ length: rows * vocab }, () => 30 * random() - 15);
  const targets = [1, 2, 3, 4, 5, 999];
  const byJs = prepareBaseline(logitRows(logits, vocab), targets, vocab);
  const session = await loadDistributionSession(vocab, "cpu");
  try {
    const rowsIn = logitRows(logits, vocab);
    const byGraph = preparedFromDistributions(
      rowsIn,
      await session.distributions(rowsIn.logits, rowsIn.logSumExp),
      targets,
      vocab,
    );
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < vocab; i++) {
        const a = byGraph.probs[r][i];
        const b = byJs.probs[r][i];
        assert.ok(Math.abs(a - b) <= 2 ** -23 * Math.abs(b), `row ${r} entry ${i}: ${a} vs ${b}`);
      }
      assert.ok(Math.abs(byGraph.mass[r] - byJs.mass[r]) < 1e-12);
      assert.ok(Math.abs(byGraph.negEntropy[r] - byJs.negEntropy[r]) < 1e-12 * Math.abs(byJs.negEntropy[r]));
      assert.ok(Math.abs(byGraph.mass[r] - 1) < 1e-5);
    }
    assert.equal(byGraph.nll, byJs.nll);
    assert.deepEqual(byGraph.argmax, byJs.argmax);
    const none = await session.distributions(new Float32Array(0), new Float64Array(0));
    assert.equal(none.probs.length, 0);
    await assert.rejects(session.distributions(new Float32Array(5), new Float64Array(1)), /are not 1 rows/);
  } finally {
    await session.close();
  }
});
