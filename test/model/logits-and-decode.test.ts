/**
 * The graph's vocabulary reductions (log-sum-exp, argmax, trailing logit rows) against a
 * second implementation in JS and the float64 reference, and greedy decoding on the padded
 * cache against the copy-per-step path (extendCache) it replaces.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { KvCache } from "../../src/kv/cache.js";
import { appendTokens, emptyCache, pastInputs } from "../../src/kv/layout.js";
import { PaddedCache } from "../../src/kv/padded-cache.js";
import { argmax, logSoftmax } from "../../src/measure/metrics.js";
import { extendCache, generateGreedy, loadRuntime, prefillTokens } from "../../src/model/session.js";
import type { GptNeoCheckpoint, GptNeoRuntime } from "../../src/model/types.js";
import { loadFixtureCheckpoint, maxAbsDiff } from "../helpers/fixture-checkpoint.js";
import { referenceForward } from "../helpers/reference.js";

const OBSERVATION_WINDOW = 3;

for (const name of ["A", "B"] as const) {
  describe(`graph logits reductions and greedy decoding, config ${name}`, () => {
    let checkpoint: GptNeoCheckpoint;
    let runtime: GptNeoRuntime;
    before(async () => {
      checkpoint = loadFixtureCheckpoint(name);
      runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: OBSERVATION_WINDOW });
    });
    after(async () => runtime.close());

    const ids = (count: number) =>
      Array.from({ length: count }, (_, i) => (i * 131 + 7) % checkpoint.config.vocabSize);

    test("log-sum-exp and argmax per row equal a JS pass over the graph's own logits and the reference", async () => {
      const { config } = checkpoint;
      const tokens = ids(20);
      const positions = tokens.map((_, i) => i);
      const input = {
        inputIds: tokens,
        positionIds: positions,
        ...pastInputs(emptyCache(config), config, positions),
      };
      const output = await runtime.forward(input);
      const reference = referenceForward(checkpoint, { observationWindow: OBSERVATION_WINDOW }, input);
      for (let row = 0; row < tokens.length; row++) {
        // log Z = x_0 - log softmax(x)_0, from the same float32 logits: agrees to float64 rounding.
        const logZ =
          output.logits[row * config.vocabSize] - logSoftmax(output.logits, row, config.vocabSize)[0];
        assert.ok(
          Math.abs(output.logitsLogSumExp[row] - logZ) < 1e-9,
          `row ${row}: ${output.logitsLogSumExp[row]} vs ${logZ}`,
        );
        assert.equal(output.logitsArgmax[row], argmax(output.logits, row, config.vocabSize));
        assert.ok(Math.abs(output.logitsLogSumExp[row] - reference.logitsLogSumExp[row]) < 1e-4);
      }
    });

    test("logitRows returns exactly the trailing rows of the full logits", async () => {
      const { config } = checkpoint;
      const tokens = ids(12);
      const all = await prefillTokens(runtime, tokens);
      const last3 = await prefillTokens(runtime, tokens, { logitRows: 3 });
      assert.equal(last3.output.logits.length, 3 * config.vocabSize);
      assert.ok(maxAbsDiff(last3.output.logits, all.output.logits.subarray(9 * config.vocabSize)) <= 1e-6);
      assert.deepEqual(
        Array.from(last3.output.logitsArgmax),
        Array.from(all.output.logitsArgmax.subarray(9)),
      );
      // The cache does not depend on how many rows reach the vocabulary projection.
      assert.ok(maxAbsDiff(last3.cache.layers[0].heads[0].keys, all.cache.layers[0].heads[0].keys) === 0);
      await assert.rejects(
        runtime.forward({
          inputIds: tokens,
          positionIds: tokens.map((_, i) => i),
          ...pastInputs(
            emptyCache(config),
            config,
            tokens.map((_, i) => i),
          ),
          logitRows: 13,
        }),
        /logitRows/,
      );
    });

    test("greedy decoding on the padded cache equals decoding with a fresh copy of the cache per step", async () => {
      const { config } = checkpoint;
      const context = ids(24);
      const prefill = await prefillTokens(runtime, context);
      // An evicted cache: heads keep different slots, so padding and per-head biases both occur.
      const cache: KvCache = {
        headDim: prefill.cache.headDim,
        layers: prefill.cache.layers.map((layer) => ({
          heads: layer.heads.map((head, h) => {
            const keep = Array.from(head.positions.keys()).filter((s) => (s + h) % (h + 2) !== 0);
            const d = config.headDim;
            return {
              positions: Int32Array.from(keep, (s) => head.positions[s]),
              keys: Float32Array.from(
                keep.flatMap((s) => Array.from(head.keys.subarray(s * d, (s + 1) * d))),
              ),
              values: Float32Array.from(
                keep.flatMap((s) => Array.from(head.values.subarray(s * d, (s + 1) * d))),
              ),
            };
          }),
        })),
      };
      const first = prefill.output.logitsArgmax[context.length - 1];
      const steps = 6;
      const padded = await generateGreedy(runtime, cache, first, context.length, steps);

      const copied: number[] = [];
      let state = cache;
      let token = first;
      for (let step = 0; step < steps; step++) {
        const next = await extendCache(runtime, state, [token], [context.length + step]);
        state = next.cache;
        token = argmax(next.output.logits, 0, config.vocabSize);
        copied.push(token);
      }
      assert.deepEqual(padded, copied);
    });

    test("a padded cache holds what appendTokens would build, and refuses to overflow", async () => {
      const { config } = checkpoint;
      const context = ids(10);
      const prefill = await prefillTokens(runtime, context);
      const padded = PaddedCache.from(prefill.cache, config, 2);
      const positions = [10, 11];
      const output = await runtime.forward({
        inputIds: [3, 4],
        positionIds: positions,
        ...padded.inputs(positions),
      });
      padded.append(output, positions);
      const expected = appendTokens(prefill.cache, output, positions);
      assert.deepEqual(padded.toCache(), expected);
      // Same logits as the unpadded layout.
      const plain = await runtime.forward({
        inputIds: [3, 4],
        positionIds: positions,
        ...pastInputs(prefill.cache, config, positions),
      });
      assert.ok(maxAbsDiff(output.logits, plain.logits) <= 1e-5);
      assert.throws(() => padded.append(output, [12, 13]), /no room/);
    });

    test("a padded cache whose heads keep different slots gives the unpadded layout's logits, before and after appends", async () => {
      const { config } = checkpoint;
      const context = ids(12);
      const prefill = await prefillTokens(runtime, context);
      // Layer 0: each head keeps a different subset; the other layers keep the same slots in
      // every head, so their biases are shared by heads (and by layers of the same kind).
      const d = config.headDim;
      const evicted: KvCache = {
        headDim: d,
        layers: prefill.cache.layers.map((layer, l) => ({
          heads: layer.heads.map((head, h) => {
            const kept = Array.from(head.positions.keys()).filter((s) =>
              l === 0 ? (s + h) % 3 !== 0 : s % 2 === 0,
            );
            return {
              positions: Int32Array.from(kept, (s) => head.positions[s]),
              keys: Float32Array.from(kept.flatMap((s) => [...head.keys.subarray(s * d, (s + 1) * d)])),
              values: Float32Array.from(kept.flatMap((s) => [...head.values.subarray(s * d, (s + 1) * d)])),
            };
          }),
        })),
      };
      const padded = PaddedCache.from(evicted, config, 3);
      let plainCache = evicted;
      for (const positions of [[12, 13], [14]]) {
        const tokens = positions.map((p) => (p * 7) % config.vocabSize);
        const output = await runtime.forward({
          inputIds: tokens,
          positionIds: positions,
          ...padded.inputs(positions),
        });
        const plain = await runtime.forward({
          inputIds: tokens,
          positionIds: positions,
          ...pastInputs(plainCache, config, positions),
        });
        assert.ok(maxAbsDiff(output.logits, plain.logits) <= 1e-5, `positions ${positions}`);
        padded.append(output, positions);
        plainCache = appendTokens(plainCache, plain, positions);
      }
    });
  });
}
