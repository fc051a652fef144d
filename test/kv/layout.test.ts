/**
 * Cache layout helpers: the attention bias against GPT-Neo's rules written out by hand
 * (causal by true positions, local window 0 <= dq - dk < window, padding), and the
 * split/append of keys and values.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { KvCache } from "../../src/kv/cache.js";
import {
  appendTokens,
  cacheFromPrefill,
  emptyCache,
  keyVisible,
  MASKED_ATTENTION_BIAS,
  pastInputs,
  perHeadBias,
} from "../../src/kv/layout.js";
import type { ForwardOutput, GptNeoConfig } from "../../src/model/types.js";

const config: GptNeoConfig = {
  vocabSize: 10,
  hiddenSize: 4,
  numLayers: 2,
  numHeads: 2,
  headDim: 2,
  attentionLayers: ["global", "local"],
  windowSize: 3,
  maxPositions: 32,
  intermediateSize: 16,
  layerNormEpsilon: 1e-5,
  activation: "gelu_new",
  bosTokenId: undefined,
  eosTokenId: undefined,
};

/** A fake forward output whose key at (layer, head, token, d) encodes its indices. */
function fakeOutput(tokens: number, offset = 0): ForwardOutput {
  const tensor = (kind: number) =>
    Array.from({ length: config.numLayers }, (_, l) =>
      Float32Array.from({ length: config.numHeads * tokens * config.headDim }, (_, i) => {
        const d = i % config.headDim;
        const t = Math.floor(i / config.headDim) % tokens;
        const h = Math.floor(i / (config.headDim * tokens));
        return kind * 10000 + l * 1000 + h * 100 + (t + offset) * 10 + d;
      }),
    );
  return {
    logits: new Float32Array(tokens * config.vocabSize),
    logitsLogSumExp: new Float64Array(tokens),
    logitsArgmax: new Int32Array(tokens),
    scoredExpectedLogit: new Float64Array(0),
    scoredTargetLogit: new Float32Array(0),
    presentKeys: tensor(1),
    presentValues: tensor(2),
    attentionLastRows: [],
    attentionRows: 0,
    attentionColumnSums: [],
    attentionWindowSums: [],
    keyNorms: [],
    valueNorms: [],
  };
}

function allowed(bias: Float32Array, total: number, q: number, head: number, row: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < total; t++) if (bias[(head * q + row) * total + t] === 0) out.push(t);
  return out;
}

describe("attention bias", () => {
  test("local window: distance window-1 is visible, distance window is not; global sees all the past", () => {
    const w = config.windowSize;
    assert.equal(keyVisible("local", w, 10, 10 - (w - 1)), true);
    assert.equal(keyVisible("local", w, 10, 10 - w), false);
    assert.equal(keyVisible("local", w, 10, 10), true);
    assert.equal(keyVisible("local", w, 10, 11), false);
    assert.equal(keyVisible("global", w, 10, 0), true);
    assert.equal(keyVisible("global", w, 10, 11), false);
  });

  test("a full prefill: causal on global layers, a band of window keys on local layers", () => {
    const q = 6;
    const positions = Array.from({ length: q }, (_, i) => i);
    const { past, attentionBias: shared } = pastInputs(emptyCache(config), config, positions);
    assert.equal(past[0].slots, 0);
    assert.equal(past[0].keys.length, 0);
    // Every head reads the same (no) slots: one head's bias, broadcast by the graph.
    for (const bias of shared) assert.equal(bias.length, q * q);
    const attentionBias = shared.map((bias) => perHeadBias(bias, config.numHeads, q, q));
    for (let h = 0; h < config.numHeads; h++) {
      for (let i = 0; i < q; i++) {
        assert.deepEqual(allowed(attentionBias[0], q, q, h, i), positions.slice(0, i + 1));
        const first = Math.max(0, i - config.windowSize + 1);
        assert.deepEqual(allowed(attentionBias[1], q, q, h, i), positions.slice(first, i + 1));
      }
    }
    // Closed form: the local layer allows sum_i min(i+1, window) entries per head.
    let expected = 0;
    for (let i = 0; i < q; i++) expected += Math.min(i + 1, config.windowSize);
    assert.equal(attentionBias[1].filter((b) => b === 0).length, expected * config.numHeads);
    assert.ok(attentionBias[1].every((b) => b === 0 || b === MASKED_ATTENTION_BIAS));
  });

  test("evicted slots with true positions, per-head slot counts padded and masked", () => {
    const head = (positions: number[]) => ({
      positions: Int32Array.from(positions),
      keys: Float32Array.from(positions.flatMap((p) => [p, -p])),
      values: Float32Array.from(positions.flatMap((p) => [2 * p, -2 * p])),
    });
    const cache: KvCache = {
      headDim: 2,
      layers: [{ heads: [head([0, 3, 7]), head([5])] }, { heads: [head([1, 6, 8, 9]), head([])] }],
    };
    const query = [10, 11];
    const { past, attentionBias } = pastInputs(cache, config, query);
    // Layer 0 (global): padded to 3 slots; head 1's two padding slots are masked and zero.
    assert.equal(past[0].slots, 3);
    assert.deepEqual(Array.from(past[0].keys), [0, -0, 3, -3, 7, -7, 5, -5, 0, 0, 0, 0]);
    const total0 = 3 + 2;
    assert.deepEqual(allowed(attentionBias[0], total0, 2, 0, 0), [0, 1, 2, 3]);
    assert.deepEqual(allowed(attentionBias[0], total0, 2, 0, 1), [0, 1, 2, 3, 4]);
    assert.deepEqual(allowed(attentionBias[0], total0, 2, 1, 0), [0, 3]);
    assert.deepEqual(allowed(attentionBias[0], total0, 2, 1, 1), [0, 3, 4]);
    // Layer 1 (local, window 3): query 10 sees positions 8, 9, 10; query 11 sees 9, 10, 11.
    assert.equal(past[1].slots, 4);
    const total1 = 4 + 2;
    assert.deepEqual(allowed(attentionBias[1], total1, 2, 0, 0), [2, 3, 4]);
    assert.deepEqual(allowed(attentionBias[1], total1, 2, 0, 1), [3, 4, 5]);
    // Head with no slots at all: only the new tokens.
    assert.deepEqual(allowed(attentionBias[1], total1, 2, 1, 0), [4]);
    assert.deepEqual(allowed(attentionBias[1], total1, 2, 1, 1), [4, 5]);
  });

  test("query positions must increase", () => {
    assert.throws(() => pastInputs(emptyCache(config), config, [3, 3]), { code: "E_KV_LAYOUT" });
  });
});

describe("cache from forward outputs", () => {
  test("prefill splits [heads, q, d] into per-head slots; append adds new tokens to every head", () => {
    const cache = cacheFromPrefill(config, fakeOutput(3), [0, 1, 2]);
    assert.equal(cache.layers.length, config.numLayers);
    const head = cache.layers[1].heads[1];
    assert.deepEqual(Array.from(head.positions), [0, 1, 2]);
    assert.deepEqual(Array.from(head.keys), [11100, 11101, 11110, 11111, 11120, 11121]);
    assert.deepEqual(Array.from(head.values), [21100, 21101, 21110, 21111, 21120, 21121]);

    const grown = appendTokens(cache, fakeOutput(1, 3), [3]);
    const grownHead = grown.layers[0].heads[1];
    assert.deepEqual(Array.from(grownHead.positions), [0, 1, 2, 3]);
    assert.deepEqual(Array.from(grownHead.keys.subarray(6)), [10130, 10131]);
    // Pure: the original cache is untouched.
    assert.equal(cache.layers[0].heads[1].positions.length, 3);

    // pastInputs lays the grown cache back out as [heads, slots, d].
    const { past } = pastInputs(grown, config, [4]);
    assert.equal(past[0].slots, 4);
    assert.deepEqual(Array.from(past[0].keys.subarray(8, 10)), [10100, 10101]);
  });

  test("outputs of the wrong size are rejected", () => {
    assert.throws(() => cacheFromPrefill(config, fakeOutput(3), [0, 1]), { code: "E_KV_LAYOUT" });
  });
});
