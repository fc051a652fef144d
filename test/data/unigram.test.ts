import assert from "node:assert/strict";
import { test } from "node:test";
import { fitUnigram, unigramLogProbability, unigramPerplexity } from "../../src/data/unigram.js";

test("add-one unigram probabilities match the closed form", () => {
  // vocabulary 4, counts [3, 1, 0, 0], total 4: p = (c + 1) / (4 + 4)
  const model = fitUnigram([0, 0, 1, 0], 4);
  assert.deepEqual(Array.from(model.counts), [3, 1, 0, 0]);
  assert.equal(model.total, 4);
  const expected = [4 / 8, 2 / 8, 1 / 8, 1 / 8];
  expected.forEach((p, id) => {
    assert.ok(Math.abs(unigramLogProbability(model, id) - Math.log(p)) < 1e-12);
  });
  const probabilities = expected.map((_, id) => Math.exp(unigramLogProbability(model, id)));
  assert.ok(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-12);
});

test("unigram perplexity is exp of the mean NLL, computed by hand", () => {
  const model = fitUnigram([0, 0, 1, 0], 4);
  const score = unigramPerplexity(model, [0, 2, 1]);
  const byHand = Math.exp(-(Math.log(4 / 8) + Math.log(1 / 8) + Math.log(2 / 8)) / 3);
  assert.equal(score.tokens, 3);
  assert.ok(Math.abs(score.perplexity - byHand) < 1e-9);
  // A uniform model (no counts) has perplexity equal to the vocabulary size.
  assert.ok(Math.abs(unigramPerplexity(fitUnigram([], 7), [1, 2, 3]).perplexity - 7) < 1e-9);
});

test("unigram rejects ids outside the vocabulary and empty inputs", () => {
  assert.throws(() => fitUnigram([0, 5], 4), { code: "E_TOKEN_RANGE" });
  assert.throws(() => unigramPerplexity(fitUnigram([0], 4), []), { code: "E_EMPTY_TOKENS" });
});
