import assert from "node:assert/strict";
import { test } from "node:test";
import {
  argmax,
  compareGenerations,
  compareTeacherForced,
  klDivergence,
  logSoftmax,
} from "../../src/measure/metrics.js";

test("logSoftmax matches the closed form log(e^x_i / sum e^x)", () => {
  const logits = new Float32Array([1, 2, 3, 0, 0, 1000]);
  const row0 = logSoftmax(logits, 0, 3);
  const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
  assert.ok(Math.abs(row0[0] - Math.log(Math.exp(1) / z)) < 1e-12);
  assert.ok(Math.abs(row0[2] - Math.log(Math.exp(3) / z)) < 1e-12);
  // Large logits must not overflow.
  const row1 = logSoftmax(logits, 1, 3);
  assert.ok(Math.abs(row1[2]) < 1e-12);
  assert.ok(Number.isFinite(row1[0]));
});

test("KL of two two-point distributions equals the closed form", () => {
  const p = [0.25, 0.75];
  const q = [0.5, 0.5];
  const expected = 0.25 * Math.log(0.25 / 0.5) + 0.75 * Math.log(0.75 / 0.5);
  const kl = klDivergence(Float64Array.from(p.map(Math.log)), Float64Array.from(q.map(Math.log)));
  assert.ok(Math.abs(kl - expected) < 1e-12);
  assert.equal(klDivergence(Float64Array.from(p.map(Math.log)), Float64Array.from(p.map(Math.log))), 0);
});

test("teacher-forced comparison sums NLL, KL and top-1 agreement per row", () => {
  // Two rows over a vocabulary of 2; baseline and compressed disagree on row 1's argmax.
  const baseline = new Float32Array([Math.log(0.25), Math.log(0.75), Math.log(0.5), Math.log(0.5) - 0.1]);
  const compressed = new Float32Array([Math.log(0.5), Math.log(0.5), Math.log(0.4), Math.log(0.6)]);
  const result = compareTeacherForced(baseline, compressed, [1, 0], 2);
  assert.equal(result.scoredTokens, 2);
  const pRow1 = [0.5, Math.exp(-0.1) * 0.5];
  const zRow1 = pRow1[0] + pRow1[1];
  const expectedNllBaseline = -Math.log(0.75) - Math.log(pRow1[0] / zRow1);
  assert.ok(Math.abs(result.nllBaseline - expectedNllBaseline) < 1e-6);
  assert.ok(Math.abs(result.nllCompressed - (-Math.log(0.5) - Math.log(0.4))) < 1e-6);
  assert.equal(result.top1Matches, 0);
  assert.equal(argmax(baseline, 0, 2), 1);
});

test("teacher-forced sums equal per-row log-softmax and KL computed the direct way", () => {
  // A second implementation: full log-softmax rows and KL by definition, on seeded random logits.
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const vocab = 97;
  const rows = 5;
  const baseline = Float32Array.from({ length: rows * vocab }, () => 8 * random() - 4);
  const compressed = baseline.map((x) => x + 0.3 * (random() - 0.5));
  const targets = [3, 50, 96, 0, 11];
  const result = compareTeacherForced(baseline, compressed, targets, vocab);
  let nllBaseline = 0;
  let nllCompressed = 0;
  let kl = 0;
  // The float32 rounding of the baseline probabilities moves KL by at most
  // 2^-24 * sum_i p_i |log p_i - log q_i| per row (metrics.ts, PreparedBaseline.probs).
  let bound = 1e-12;
  let top1 = 0;
  targets.forEach((target, row) => {
    const p = logSoftmax(baseline, row, vocab);
    const q = logSoftmax(compressed, row, vocab);
    nllBaseline -= p[target];
    nllCompressed -= q[target];
    kl += klDivergence(p, q);
    p.forEach((logP, i) => {
      bound += 2 ** -24 * Math.exp(logP) * Math.abs(logP - q[i]);
    });
    if (argmax(baseline, row, vocab) === argmax(compressed, row, vocab)) top1++;
  });
  assert.ok(Math.abs(result.nllBaseline - nllBaseline) < 1e-9);
  assert.ok(Math.abs(result.nllCompressed - nllCompressed) < 1e-9);
  assert.ok(kl > 1e-4);
  assert.ok(Math.abs(result.klSum - kl) <= bound, `${result.klSum} vs ${kl} (bound ${bound})`);
  // Identical logits: KL 0 exactly as the definition gives, whatever the rounding of p.
  assert.ok(compareTeacherForced(baseline, baseline, targets, vocab).klSum < 1e-13);
  assert.equal(result.top1Matches, top1);
});

test("generation comparison finds the first divergence", () => {
  assert.deepEqual(compareGenerations([1, 2, 3, 4], [1, 2, 9, 4]), {
    compared: 4,
    matches: 3,
    firstDivergence: 2,
  });
  assert.deepEqual(compareGenerations([5], [5]), { compared: 1, matches: 1, firstDivergence: null });
});
