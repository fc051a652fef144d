/**
 * The ONNX graph against the float64 TypeScript reference (test/helpers/reference.ts) on
 * inputs the HF fixtures cannot cover: caches with evicted slots (non-contiguous true
 * positions), heads of one layer keeping different numbers of slots, and sparse top-k.
 * The reference itself is first checked against the HF fixtures.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { KvCache } from "../../src/kv/cache.js";
import {
  appendTokens,
  cacheFromPrefill,
  MASKED_ATTENTION_BIAS,
  pastInputs,
  perHeadBias,
} from "../../src/kv/layout.js";
import { extendCache, loadRuntime, prefillTokens } from "../../src/model/session.js";
import type { GptNeoCheckpoint, GptNeoRuntime } from "../../src/model/types.js";
import {
  fixtureCase,
  loadFixtureCheckpoint,
  maxAbsDiff,
  prefillInput,
} from "../helpers/fixture-checkpoint.js";
import { referenceForward } from "../helpers/reference.js";

const TOLERANCE = 1e-4;
const OBSERVATION_WINDOW = 3;

/** mulberry32: a small seeded PRNG so the property cases are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomIds(random: () => number, count: number, vocab: number): number[] {
  return Array.from({ length: count }, () => Math.floor(random() * vocab));
}

/** Keeps a random subset of each head's slots (a different count per head, possibly none). */
function evictRandomly(cache: KvCache, random: () => number): { cache: KvCache; kept: boolean[][][] } {
  const kept: boolean[][][] = [];
  const layers = cache.layers.map((layer) => {
    const layerKept: boolean[][] = [];
    const heads = layer.heads.map((head) => {
      const keepProbability = random();
      const mask = Array.from(head.positions, () => random() < keepProbability);
      layerKept.push(mask);
      const indices = mask.flatMap((keep, s) => (keep ? [s] : []));
      const d = cache.headDim;
      const keys = new Float32Array(indices.length * d);
      const values = new Float32Array(indices.length * d);
      indices.forEach((s, r) => {
        keys.set(head.keys.subarray(s * d, (s + 1) * d), r * d);
        values.set(head.values.subarray(s * d, (s + 1) * d), r * d);
      });
      return { positions: Int32Array.from(indices, (s) => head.positions[s]), keys, values };
    });
    kept.push(layerKept);
    return { heads };
  });
  return { cache: { headDim: cache.headDim, layers }, kept };
}

function assertOutputsClose(
  ours: ReturnType<typeof referenceForward>,
  theirs: ReturnType<typeof referenceForward>,
  what: string,
) {
  assert.ok(maxAbsDiff(ours.logits, theirs.logits) <= TOLERANCE, `${what}: logits`);
  assert.equal(ours.attentionRows, theirs.attentionRows);
  ours.presentKeys.forEach((_, l) => {
    assert.ok(
      maxAbsDiff(ours.presentKeys[l], theirs.presentKeys[l]) <= TOLERANCE,
      `${what}: layer ${l} keys`,
    );
    assert.ok(
      maxAbsDiff(ours.presentValues[l], theirs.presentValues[l]) <= TOLERANCE,
      `${what}: layer ${l} values`,
    );
    assert.ok(
      maxAbsDiff(ours.attentionLastRows[l], theirs.attentionLastRows[l]) <= TOLERANCE,
      `${what}: layer ${l} rows`,
    );
    assert.ok(
      maxAbsDiff(ours.attentionColumnSums[l], theirs.attentionColumnSums[l]) <= TOLERANCE,
      `${what}: layer ${l} column sums`,
    );
  });
}

for (const name of ["A", "B"] as const) {
  describe(`GPT-Neo graph vs float64 reference, config ${name}`, () => {
    let checkpoint: GptNeoCheckpoint;
    let runtime: GptNeoRuntime;
    const options = { observationWindow: OBSERVATION_WINDOW };

    before(async () => {
      checkpoint = loadFixtureCheckpoint(name);
      runtime = await loadRuntime(checkpoint, { device: "cpu", ...options });
    });
    after(async () => {
      await runtime.close();
    });

    test("the reference itself matches Hugging Face on the longest full forward", () => {
      const caseName = name === "A" ? "full_len24" : "full_len17";
      const reference = fixtureCase(name, caseName);
      const output = referenceForward(checkpoint, options, prefillInput(checkpoint, reference.input_ids[0]));
      assert.ok(maxAbsDiff(output.logits, reference.logits!.data) <= TOLERANCE);
    });

    test("evicted caches with per-head slot counts: graph equals reference, and eviction equals masking", async () => {
      const config = checkpoint.config;
      const random = prng(name === "A" ? 11 : 23);
      for (let trial = 0; trial < 3; trial++) {
        const prefillLength = 6 + Math.floor(random() * 10);
        const ids = randomIds(random, prefillLength + 3, config.vocabSize);
        const positions = ids.slice(0, prefillLength).map((_, i) => i);
        const prefill = await runtime.forward(prefillInput(checkpoint, ids.slice(0, prefillLength)));
        let full = cacheFromPrefill(config, prefill, positions);
        const evicted = evictRandomly(full, random);
        let compact = evicted.cache;
        for (let step = 0; step < 3; step++) {
          const position = prefillLength + step;
          const tokenIds = [ids[position]];
          // 1. The graph and the reference on the same compact, per-head padded input.
          const compactInput = {
            inputIds: tokenIds,
            positionIds: [position],
            ...pastInputs(compact, config, [position]),
          };
          const graphOutput = await runtime.forward(compactInput);
          assertOutputsClose(
            graphOutput,
            referenceForward(checkpoint, options, compactInput),
            `trial ${trial} step ${step}`,
          );
          // 2. Dropping slots equals keeping them and masking them in the bias.
          const fullInputs = pastInputs(full, config, [position]);
          fullInputs.attentionBias = fullInputs.attentionBias.map((bias, l) =>
            perHeadBias(bias, config.numHeads, 1, fullInputs.past[l].slots + 1),
          );
          fullInputs.attentionBias.forEach((bias, l) => {
            evicted.kept[l].forEach((mask, h) => {
              const total = fullInputs.past[l].slots + 1;
              mask.forEach((keep, s) => {
                if (!keep) bias[h * total + s] = MASKED_ATTENTION_BIAS;
              });
            });
          });
          const masked = referenceForward(checkpoint, options, {
            inputIds: tokenIds,
            positionIds: [position],
            ...fullInputs,
          });
          assert.ok(
            maxAbsDiff(graphOutput.logits, masked.logits) <= TOLERANCE,
            `trial ${trial} step ${step}: masked`,
          );
          compact = appendTokens(compact, graphOutput, [position]);
          full = appendTokens(full, graphOutput, [position]);
          evicted.kept.forEach((layer) => {
            for (const mask of layer) mask.push(true);
          });
        }
      }
    });

    test("several new tokens in one pass over an evicted cache equal the same tokens one at a time", async () => {
      const config = checkpoint.config;
      const random = prng(name === "A" ? 31 : 37);
      const prefillLength = 10;
      const extra = 5;
      const ids = randomIds(random, prefillLength + extra, config.vocabSize);
      const { cache: full } = await prefillTokens(runtime, ids.slice(0, prefillLength));
      const { cache: evicted } = evictRandomly(full, random);
      const positions = ids.slice(prefillLength).map((_, i) => prefillLength + i);
      const together = await extendCache(runtime, evicted, ids.slice(prefillLength), positions);
      const input = {
        inputIds: ids.slice(prefillLength),
        positionIds: positions,
        ...pastInputs(evicted, config, positions),
      };
      assertOutputsClose(together.output, referenceForward(checkpoint, options, input), "multi-token");
      let cache = evicted;
      const vocab = config.vocabSize;
      for (let i = 0; i < extra; i++) {
        const step = await extendCache(runtime, cache, [ids[prefillLength + i]], [positions[i]]);
        const row = together.output.logits.subarray(i * vocab, (i + 1) * vocab);
        assert.ok(maxAbsDiff(step.output.logits, row) <= TOLERANCE, `token ${i}`);
        cache = step.cache;
      }
      // The appended caches agree slot for slot.
      const a = pastInputs(cache, config, [prefillLength + extra]).past;
      const b = pastInputs(together.cache, config, [prefillLength + extra]).past;
      for (const [l, layer] of a.entries()) assert.ok(maxAbsDiff(layer.keys, b[l].keys) <= TOLERANCE);
      // Zero new tokens: nothing runs, the cache is returned as is.
      const none = await extendCache(runtime, evicted, [], []);
      assert.equal(none.cache, evicted);
      assert.equal(none.output.logits.length, 0);
    });

    test("prefill then single steps equals one full forward (reference)", async () => {
      const config = checkpoint.config;
      const random = prng(name === "A" ? 5 : 7);
      const total = Math.min(config.maxPositions, 14);
      const prefillLength = 9;
      const ids = randomIds(random, total, config.vocabSize);
      const whole = referenceForward(checkpoint, options, prefillInput(checkpoint, ids));
      const prefill = await runtime.forward(prefillInput(checkpoint, ids.slice(0, prefillLength)));
      const vocab = config.vocabSize;
      assert.ok(maxAbsDiff(prefill.logits, whole.logits.subarray(0, prefillLength * vocab)) <= TOLERANCE);
      let cache = cacheFromPrefill(
        config,
        prefill,
        ids.slice(0, prefillLength).map((_, i) => i),
      );
      for (let position = prefillLength; position < total; position++) {
        const output = await runtime.forward({
          inputIds: [ids[position]],
          positionIds: [position],
          ...pastInputs(cache, config, [position]),
        });
        assert.ok(
          maxAbsDiff(output.logits, whole.logits.subarray(position * vocab, (position + 1) * vocab)) <=
            TOLERANCE,
        );
        cache = appendTokens(cache, output, [position]);
      }
    });

    test("activation gelu (exact erf) instead of gelu_new: graph equals reference, and differs from gelu_new", async () => {
      const exact = { ...checkpoint, config: { ...checkpoint.config, activation: "gelu" } };
      const ids = randomIds(prng(name === "A" ? 3 : 4), 8, checkpoint.config.vocabSize);
      const input = prefillInput(checkpoint, ids);
      const erfRuntime = await loadRuntime(exact, { device: "cpu", ...options });
      try {
        const output = await erfRuntime.forward(input);
        assertOutputsClose(output, referenceForward(exact, options, input), "gelu");
        assert.ok(maxAbsDiff(output.logits, (await runtime.forward(input)).logits) > TOLERANCE);
      } finally {
        await erfRuntime.close();
      }
      const unknown = { ...checkpoint, config: { ...checkpoint.config, activation: "gelu_fancy" } };
      await assert.rejects(loadRuntime(unknown, { device: "cpu", ...options }), {
        code: "E_MODEL_ACTIVATION",
      });
    });

    test("sparse top-k: k >= slots+q equals dense; small k equals the reference's top-k", async () => {
      const config = checkpoint.config;
      const random = prng(name === "A" ? 101 : 103);
      const ids = randomIds(random, 12, config.vocabSize);
      const input = prefillInput(checkpoint, ids);
      const dense = await runtime.forward(input);
      // One session serves every k: the top-k is an input of the graph.
      assertOutputsClose(await runtime.forward({ ...input, sparseTopK: ids.length }), dense, "k = slots + q");
      const sparseTopK = 3;
      {
        const sparse = await runtime.forward({ ...input, sparseTopK });
        assertOutputsClose(sparse, referenceForward(checkpoint, options, { ...input, sparseTopK }), "k = 3");
        // Each of the last rows has at most k non-zero probabilities.
        for (const rows of sparse.attentionLastRows) {
          for (let r = 0; r < rows.length / ids.length; r++) {
            const nonZero = rows.subarray(r * ids.length, (r + 1) * ids.length).filter((p) => p > 0).length;
            assert.ok(nonZero <= sparseTopK && nonZero >= 1, `row ${r} keeps ${nonZero} keys`);
          }
        }
        assert.ok(maxAbsDiff(sparse.logits, dense.logits) > TOLERANCE, "k = 3 must change the output");
      }
      // Dense again after a sparse call on the same session: bit for bit the first dense output.
      assert.deepEqual((await runtime.forward(input)).logits, dense.logits);
      await assert.rejects(runtime.forward({ ...input, sparseTopK: -1 }), { code: "E_FORWARD_INPUT" });
    });
  });
}
