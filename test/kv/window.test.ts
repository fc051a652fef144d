import assert from "node:assert/strict";
import { test } from "node:test";
import type { HeadCache } from "../../src/kv/cache.js";
import { methods } from "../../src/kv/methods/index.js";
import { designedContext, randomCache, rng, testConfig } from "./helpers.js";

/**
 * GPT-Neo attention of one head for queries at true positions, over a past cache plus
 * the new tokens' own keys/values (appended uncompressed), local window by true positions,
 * no 1/sqrt(d) scaling: an independent reference, written from the model's definition.
 */
function attend(
  past: HeadCache,
  newKeys: number[][],
  newValues: number[][],
  queries: number[][],
  firstPosition: number,
  window: number | null,
  d: number,
): number[][] {
  const keys: { pos: number; k: number[]; v: number[] }[] = [];
  for (let s = 0; s < past.positions.length; s++) {
    keys.push({
      pos: past.positions[s],
      k: Array.from(past.keys.subarray(s * d, (s + 1) * d)),
      v: Array.from(past.values.subarray(s * d, (s + 1) * d)),
    });
  }
  newKeys.forEach((k, i) => {
    keys.push({ pos: firstPosition + i, k, v: newValues[i] });
  });
  return queries.map((q, i) => {
    const pq = firstPosition + i;
    const allowed = keys.filter(({ pos }) => pq - pos >= 0 && (window === null || pq - pos < window));
    const logits = allowed.map(({ k }) => k.reduce((acc, x, c) => acc + x * q[c], 0));
    const max = Math.max(...logits);
    const weights = logits.map((x) => Math.exp(x - max));
    const total = weights.reduce((a, b) => a + b, 0);
    return Array.from({ length: d }, (_, c) =>
      allowed.reduce((acc, { v }, j) => acc + (weights[j] / total) * v[c], 0),
    );
  });
}

test("window-trim is lossless: every future query on a local layer reads the same attention output", () => {
  const window = 6;
  const config = testConfig(["global", "local"], 2, 4, window);
  const slots = 20;
  const cache = randomCache(config, slots, 61);
  const ctx = designedContext(
    config,
    slots,
    1,
    "fp16",
    () => 0,
    () => 0,
  );
  const full = methods.full.compress(cache, ctx, {}).materialize();
  const trim = methods["window-trim"].compress(cache, ctx, {}).materialize();
  const next = rng(62);
  const vec = () => Array.from({ length: 4 }, () => next() * 4 - 2);
  // 8 future tokens: more than the window, so later queries stop reading the old cache entirely
  const newKeys = Array.from({ length: 8 }, vec);
  const newValues = Array.from({ length: 8 }, vec);
  const queries = Array.from({ length: 8 }, vec);
  for (let h = 0; h < 2; h++) {
    const a = attend(full.layers[1].heads[h], newKeys, newValues, queries, slots, window, 4);
    const b = attend(trim.layers[1].heads[h], newKeys, newValues, queries, slots, window, 4);
    assert.deepEqual(a, b);
    assert.equal(trim.layers[1].heads[h].positions.length, window - 1);
    // dropping one more (the oldest kept) changes the first future query: the trim is tight
    const tighter: HeadCache = {
      positions: trim.layers[1].heads[h].positions.subarray(1),
      keys: trim.layers[1].heads[h].keys.subarray(4),
      values: trim.layers[1].heads[h].values.subarray(4),
    };
    const c = attend(tighter, newKeys, newValues, queries, slots, window, 4);
    assert.notDeepEqual(c[0], a[0]);
  }
  const globalA = attend(full.layers[0].heads[0], newKeys, newValues, queries, slots, null, 4);
  const globalB = attend(trim.layers[0].heads[0], newKeys, newValues, queries, slots, null, 4);
  assert.deepEqual(globalA, globalB);
});
