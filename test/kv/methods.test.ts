import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import type { KvCache } from "../../src/kv/cache.js";
import { atBaselineDtype, baselineBytes, type CompressedCache } from "../../src/kv/compressed.js";
import { methodFor, methods } from "../../src/kv/methods/index.js";
import { observationScores } from "../../src/kv/methods/scorer.js";
import { roundToHalf } from "../../src/numeric/fp16.js";
import { chooseGroupQuant } from "../../src/numeric/group-quant.js";
import { windowSumsFromRows } from "../helpers/statistics.js";
import {
  designedContext,
  everyMethodContext,
  everyMethodParams,
  randomCache,
  row,
  testConfig,
} from "./helpers.js";

const config = testConfig(["global", "local"], 2, 4, 4);
const SLOTS = 10;
const flat = () =>
  designedContext(
    config,
    SLOTS,
    4,
    "fp16",
    () => 0,
    () => 0,
  );

function positionsOf(c: CompressedCache, layer: number, head: number): number[] {
  return [...c.materialize().layers[layer].heads[head].positions];
}

function assertAccounting(c: CompressedCache): void {
  let sum = 0;
  for (const layer of c.layers) {
    assert.equal(layer.bytes, layer.serialized.length);
    sum += layer.bytes;
  }
  assert.equal(c.bytes, sum);
}

test("observation scores (window sums) equal a float32 accumulator summed from the last row up, for any window", () => {
  const heads = 3;
  const rows = 11;
  const slots = 17;
  let seed = 5;
  const next = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const data = Float32Array.from({ length: heads * rows * slots }, () => next() * next());
  for (const window of [1, 3, 4, 7, 11]) {
    const windowSums = [windowSumsFromRows(data, heads, rows, slots)];
    const scores = observationScores({ windowSums, columnSums: [], rows }, 0, heads, slots, window);
    for (let h = 0; h < heads; h++) {
      const expected = new Float32Array(slots);
      for (let r = rows - 1; r >= rows - window; r--)
        for (let s = 0; s < slots; s++) expected[s] += data[(h * rows + r) * slots + s];
      assert.deepEqual(scores[h], expected, `window ${window} head ${h}`);
    }
  }
});

test("the cache at the baseline dtype equals what full stores and decodes, for fp16 and fp32", () => {
  const cache = randomCache(config, SLOTS, 3);
  for (const dtype of ["fp16", "fp32"] as const) {
    const context = designedContext(
      config,
      SLOTS,
      4,
      dtype,
      () => 0,
      () => 0,
    );
    const decoded = methods.full.compress(cache, context, {}).materialize();
    assert.deepEqual(atBaselineDtype(cache, dtype), decoded, dtype);
  }
  const overflowing = randomCache(config, SLOTS, 3);
  overflowing.layers[1].heads[0].values[5] = 1e6;
  assert.throws(
    () => atBaselineDtype(overflowing, "fp16"),
    (e: Error & { code?: string }) => e.code === "E_KV_FP16_RANGE",
  );
});

test("baseline bytes: every slot of every head, keys and values, at the dtype width", () => {
  const cache = randomCache(config, SLOTS, 1);
  // 2 layers x 2 heads x 10 slots x 4 dims x (K + V)
  assert.equal(baselineBytes(cache, "fp16"), 2 * 2 * 10 * 4 * 2 * 2);
  assert.equal(baselineBytes(cache, "fp32"), 2 * 2 * 10 * 4 * 2 * 4);
});

test("full: ratio 1, fp16 values round to nearest, fp32 round-trips exactly", () => {
  const cache = randomCache(config, SLOTS, 2);
  const c16 = methods.full.compress(cache, flat(), {});
  assertAccounting(c16);
  assert.equal(c16.bytes, baselineBytes(cache, "fp16"));
  assert.deepEqual(c16.layers[0].bitsHistogram, { "16": 2 * 10 * 4 * 2 });
  assert.equal(c16.layers[1].tokensKept, 20);
  assert.equal(c16.layers[1].tokensTotal, 20);
  assert.equal(c16.layers[1].headsFullPrecision, 2);
  const m16 = c16.materialize();
  const head = cache.layers[1].heads[1];
  assert.deepEqual([...m16.layers[1].heads[1].keys], [...head.keys].map(roundToHalf));
  const c32 = methods.full.compress(cache, { ...flat(), baselineDtype: "fp32" }, {});
  assert.equal(c32.bytes, baselineBytes(cache, "fp32"));
  const m32 = c32.materialize();
  cache.layers.forEach((layer, l) => {
    layer.heads.forEach((h, i) => {
      assert.deepEqual(m32.layers[l].heads[i].keys, h.keys);
      assert.deepEqual(m32.layers[l].heads[i].values, h.values);
      assert.deepEqual(m32.layers[l].heads[i].positions, h.positions);
    });
  });
});

test("window-trim: local layers keep exactly what the next query (position 10) can read", () => {
  const cache = randomCache(config, SLOTS, 3);
  const c = methods["window-trim"].compress(cache, { ...flat(), baselineDtype: "fp32" }, {});
  assertAccounting(c);
  // global layer whole; local layer: 10 - p < 4 -> p in {7, 8, 9}, no indices stored
  assert.equal(c.layers[0].bytes, 2 * 10 * 4 * 2 * 4);
  assert.equal(c.layers[1].bytes, 2 * 3 * 4 * 2 * 4);
  assert.equal(c.layers[1].tokensKept, 6);
  assert.deepEqual(positionsOf(c, 0, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(positionsOf(c, 1, 1), [7, 8, 9]);
  const m = c.materialize();
  for (let h = 0; h < 2; h++) {
    [7, 8, 9].forEach((slot, i) => {
      assert.deepEqual(row(m.layers[1].heads[h].keys, i, 4), row(cache.layers[1].heads[h].keys, slot, 4));
      assert.deepEqual(row(m.layers[1].heads[h].values, i, 4), row(cache.layers[1].heads[h].values, slot, 4));
    });
  }
});

test("streaming: sinks + recent exactly, trimmed to the readable window on local layers", () => {
  const cache = randomCache(config, SLOTS, 4);
  const params = { sinkTokens: 2, recentTokens: 3, localWindowTrim: false };
  const c = methods.streaming.compress(cache, flat(), params);
  assertAccounting(c);
  assert.deepEqual(positionsOf(c, 0, 0), [0, 1, 7, 8, 9]);
  assert.deepEqual(positionsOf(c, 1, 1), [0, 1, 7, 8, 9]);
  assert.equal(c.layers[0].bytes, 2 * 5 * 4 * 2 * 2);
  const trimmed = methods.streaming.compress(cache, flat(), { ...params, localWindowTrim: true });
  assert.deepEqual(positionsOf(trimmed, 0, 0), [0, 1, 7, 8, 9]);
  assert.deepEqual(positionsOf(trimmed, 1, 0), [7, 8, 9]);
  assert.equal(trimmed.layers[1].bytes, 2 * 3 * 4 * 2 * 2);
});

test("h2o: keeps the designed heavy hitters per head plus recent and sinks", () => {
  const cache = randomCache(config, SLOTS, 5);
  // head h: slots 2+h and 5 are heavy; others weak, increasing with slot
  const ctx = designedContext(
    config,
    SLOTS,
    4,
    "fp16",
    () => 0,
    (_l, h, s) => (s === 2 + h || s === 5 ? 10 : s * 0.01),
  );
  const params = {
    keepRatio: 0.5,
    recentTokens: 2,
    sinkTokens: 1,
    selection: "per-head",
    localWindowTrim: false,
  };
  const c = methods.h2o.compress(cache, ctx, params);
  assertAccounting(c);
  assert.deepEqual(positionsOf(c, 0, 0), [0, 2, 5, 8, 9]);
  assert.deepEqual(positionsOf(c, 0, 1), [0, 3, 5, 8, 9]);
  // per head: kept set as a bitmask (1 + 2 bytes < 1 + 4 + ceil(5*4/8)) + 5 slots x 4 x (K+V) x fp16
  assert.equal(c.layers[0].bytes, 2 * (3 + 5 * 4 * 2 * 2));
  // per-layer mode: head 0 has three heavy slots, head 1 none -> head 0 takes 3 of the 4 free places
  const skewed = designedContext(
    config,
    SLOTS,
    4,
    "fp16",
    () => 0,
    (_l, h, s) => (h === 0 && (s === 2 || s === 3 || s === 5) ? 10 : h === 1 && s === 4 ? 5 : 0.001 * s),
  );
  const layerMode = methods.h2o.compress(cache, skewed, { ...params, selection: "per-layer" });
  assert.deepEqual(positionsOf(layerMode, 0, 0), [0, 2, 3, 5, 8, 9]);
  assert.deepEqual(positionsOf(layerMode, 0, 1), [0, 4, 8, 9]);
});

test("snapkv: only the last observation rows vote, pooling spreads the peak, window kept", () => {
  const cache = randomCache(config, SLOTS, 6);
  // rows 0,1 are outside a 2-row observation window: their huge vote on slot 0 must not count
  const ctx = designedContext(
    config,
    SLOTS,
    4,
    "fp16",
    (_l, h, r, s) => (r < 2 ? (s === 0 ? 100 : 0) : s === 3 + h ? 1 : s === 6 ? 0.5 : s === 1 ? 0.25 : 0.01),
    () => 0,
  );
  const params = {
    keepRatio: 0.5,
    observationWindow: 2,
    poolingKernel: 1,
    pooling: "max",
    selection: "per-head",
    localWindowTrim: false,
  };
  const plain = methods.snapkv.compress(cache, ctx, params);
  assertAccounting(plain);
  assert.deepEqual(positionsOf(plain, 0, 0), [1, 3, 6, 8, 9]);
  assert.deepEqual(positionsOf(plain, 1, 1), [1, 4, 6, 8, 9]);
  // max pooling with kernel 3 gives slots 2,3,4 the peak of head 0: ties go to earlier slots
  const pooled = methods.snapkv.compress(cache, ctx, { ...params, poolingKernel: 3 });
  assert.deepEqual(positionsOf(pooled, 0, 0), [2, 3, 4, 8, 9]);
  assert.throws(
    () => methods.snapkv.compress(cache, ctx, { ...params, observationWindow: 5 }),
    /observationWindow/,
  );
  assert.throws(() => methods.snapkv.compress(cache, ctx, { ...params, poolingKernel: 2 }), /must be odd/);
});

test("quant: closed-form bytes, per-group error <= half a step, residual at fp16", () => {
  const cache = randomCache(config, SLOTS, 7);
  const params = { keyBits: 4, valueBits: 2, groupSize: 4, residualTokens: 2, localWindowTrim: false };
  const c = methods.quant.compress(cache, flat(), params);
  assertAccounting(c);
  // per head: 8 quantized tokens. keys: 4 channels x 2 token groups x 4 B meta + 32 codes x 4 bits;
  // values: 8 tokens x 1 channel group x 4 B + 32 x 2 bits; residual 2 x 4 x (K+V) x 2 B
  const perHead = 8 * 4 + 16 + 8 * 4 + 8 + 2 * 4 * 2 * 2;
  assert.equal(c.layers[0].bytes, 2 * perHead);
  assert.deepEqual(c.layers[0].bitsHistogram, { "4": 64, "2": 64, "16": 32 });
  assert.equal(c.layers[0].headsFullPrecision, 0);
  const m = c.materialize();
  const head = cache.layers[1].heads[0];
  const out = m.layers[1].heads[0];
  for (let ch = 0; ch < 4; ch++) {
    for (const group of [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]) {
      const xs = group.map((t) => head.keys[t * 4 + ch]);
      const q = chooseGroupQuant(Math.min(...xs), Math.max(...xs), 4);
      for (const t of group)
        assert.ok(Math.abs(out.keys[t * 4 + ch] - head.keys[t * 4 + ch]) <= q.scale / 2 + 1e-6);
    }
  }
  for (let t = 0; t < 8; t++) {
    const xs = row(head.values, t, 4);
    const q = chooseGroupQuant(Math.min(...xs), Math.max(...xs), 2);
    xs.forEach((x, ch) => {
      assert.ok(Math.abs(out.values[t * 4 + ch] - x) <= q.scale / 2 + 1e-6);
    });
  }
  for (const t of [8, 9]) assert.deepEqual(row(out.keys, t, 4), row(head.keys, t, 4).map(roundToHalf));
  const trimmed = methods.quant.compress(cache, flat(), { ...params, localWindowTrim: true });
  // local layer keeps 3 slots: 1 quantized token + 2 residual
  assert.equal(trimmed.layers[1].tokensKept, 6);
  assert.equal(trimmed.layers[1].bytes, 2 * (4 * 4 + 2 + 1 * 4 + 1 + 2 * 4 * 2 * 2));
});

test("every method: serialized length == bytes, deterministic fingerprints", () => {
  const cache = randomCache(config, SLOTS, 8);
  const ctx = everyMethodContext(config, SLOTS, cache);
  for (const [kind, params] of Object.entries(everyMethodParams)) {
    const a = methodFor(kind).compress(cache, ctx, params);
    const b = methodFor(kind).compress(cache, ctx, params);
    assertAccounting(a);
    const hash = (c: CompressedCache) =>
      c.layers.map((l) => createHash("sha256").update(l.serialized).digest("hex"));
    assert.deepEqual(hash(a), hash(b), kind);
    const m = a.materialize();
    m.layers.forEach((layer, l) => {
      assert.equal(
        layer.heads.reduce((n, h) => n + h.positions.length, 0),
        a.layers[l].tokensKept,
      );
    });
  }
});

test("params are validated: missing, unknown and mistyped fields name the method and field", () => {
  const cache: KvCache = randomCache(config, SLOTS, 9);
  assert.throws(
    () => methods.streaming.compress(cache, flat(), { sinkTokens: 1, localWindowTrim: true }),
    (e: Error & { code?: string; field?: string }) =>
      e.code === "E_METHOD_PARAM" && e.field === "params.recentTokens" && /method streaming/.test(e.message),
  );
  assert.throws(
    () => methods.full.compress(cache, flat(), { budget: 1 }),
    /params.budget is not a known parameter/,
  );
  assert.throws(
    () =>
      methods.quant.compress(cache, flat(), {
        keyBits: 3,
        valueBits: 2,
        groupSize: 4,
        residualTokens: 0,
        localWindowTrim: false,
      }),
    /params.keyBits/,
  );
  assert.throws(() => methodFor("magic"), /unknown compression method kind/);
  const wrongModel = { ...flat(), config: testConfig(["global"], 2, 4, 4) };
  assert.throws(() => methods.full.compress(cache, wrongModel, {}), /E_METHOD_INPUT|cache has 2 layers/);
});

test("decoders consume exactly the stored bytes: a truncated or padded layer fails to materialize", () => {
  const cache = randomCache(config, SLOTS, 10);
  const ctx = designedContext(
    config,
    SLOTS,
    4,
    "fp16",
    (_l, h, r, s) => (h + r + s) % 5,
    () => 0,
  );
  const c = methods.snapkv.compress(cache, ctx, {
    keepRatio: 0.5,
    observationWindow: 2,
    poolingKernel: 1,
    pooling: "max",
    selection: "per-head",
    localWindowTrim: false,
  });
  const original = c.layers[0].serialized;
  const padded = new Uint8Array(original.length + 1);
  padded.set(original);
  c.layers[0].serialized = padded;
  assert.throws(() => c.materialize(), /unread bytes/);
  c.layers[0].serialized = original.subarray(0, original.length - 1);
  assert.throws(() => c.materialize(), /truncated/);
  c.layers[0].serialized = original;
  c.materialize();
});
