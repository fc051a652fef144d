/**
 * The runtime really runs the compressed model: low-rank matrices are two factor initializers
 * and two MatMuls in the graph (no dense W), and its logits equal a dense forward with the
 * reconstructed weights W = L·R (ONNX and the float64 reference) within 1e-4.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { emptyCache, pastInputs } from "../../src/kv/layout.js";
import { readCheckpoint } from "../../src/model/checkpoint.js";
import { factorNames, gptNeoModelProto, inlinePlacement } from "../../src/model/graph.js";
import { loadRuntime } from "../../src/model/session.js";
import type { ForwardInput, GptNeoRuntime } from "../../src/model/types.js";
import { compressCheckpoint } from "../../src/weights/compress.js";
import type { WeightPolicy } from "../../src/weights/policy.js";
import { factorisedCheckpoint } from "../../src/weights/runtime.js";
import { loadFixtureCheckpoint, maxAbsDiff, prefillInput } from "../helpers/fixture-checkpoint.js";
import { tinyModelWorkspace } from "../helpers/random-gpt-neo.js";
import { referenceForward } from "../helpers/reference.js";

const TOLERANCE = 1e-4;

// Every kind factorised, embeddings (wte is also the tied head) included; quantized and not.
const lowRankEverywhere: WeightPolicy = {
  name: "lowrank-everywhere",
  params: {
    baselineDtype: "fp16",
    rules: [
      {
        modules: ["q_proj", "k_proj", "v_proj", "out_proj"],
        lowRank: { rank: 5 },
        quantize: { bits: 8, scheme: "asymmetric", groupSize: 4 },
      },
      { modules: ["c_fc", "c_proj"], lowRank: { energy: 0.9 } },
      {
        modules: ["wte", "wpe"],
        lowRank: { rank: 6 },
        quantize: { bits: 4, scheme: "symmetric", groupSize: "row" },
      },
    ],
    keepDense: [{ layers: [1] }],
  },
};

describe("factorised graph", () => {
  const original = loadFixtureCheckpoint("A");
  const compressed = compressCheckpoint(original, lowRankEverywhere);
  const factorised = factorisedCheckpoint(compressed);
  const reconstructed = compressed.checkpoint;
  const options = { observationWindow: 2 };
  let factorRuntime: GptNeoRuntime;
  let denseRuntime: GptNeoRuntime;

  before(async () => {
    factorRuntime = await loadRuntime(factorised, { device: "cpu", ...options });
    denseRuntime = await loadRuntime(reconstructed, { device: "cpu", ...options });
  });
  after(async () => {
    await factorRuntime.close();
    await denseRuntime.close();
  });

  test("low-rank matrices are factor initializers, never a dense W", () => {
    const lowRank = compressed.tensors.filter((t) => t.fingerprint.encoding === "lowrank");
    // layer 1 kept dense: 4 attention + 2 MLP per other layer, plus wte and wpe
    assert.equal(lowRank.length, 6 * (original.config.numLayers - 1) + 2);
    assert.equal(factorised.factors?.size, lowRank.length);
    const names = new Set(
      gptNeoModelProto(factorised, options, inlinePlacement).graph.initializer.map((t) => t.name),
    );
    for (const tensor of lowRank) {
      const pair = factorNames(tensor.name);
      assert.ok(!names.has(tensor.name), tensor.name);
      assert.ok(names.has(pair.left) && names.has(pair.right), tensor.name);
      const factors = factorised.factors?.get(tensor.name);
      assert.deepEqual(factors?.left.shape, [tensor.plan?.rows, tensor.fingerprint.rank]);
      assert.deepEqual(factors?.right.shape, [tensor.fingerprint.rank, tensor.plan?.cols]);
    }
    assert.ok(names.has("transformer.h.1.mlp.c_fc.weight"));
  });

  test("logits and new keys/values equal the dense forward on the reconstructed weights within 1e-4", async () => {
    const ids = [3, 141, 59, 265, 358, 97, 93, 238, 46, 264, 338, 327];
    const ours = await factorRuntime.forward(prefillInput(factorised, ids));
    const dense = await denseRuntime.forward(prefillInput(reconstructed, ids));
    const reference = referenceForward(reconstructed, options, prefillInput(reconstructed, ids));
    assert.ok(maxAbsDiff(ours.logits, dense.logits) <= TOLERANCE, `${maxAbsDiff(ours.logits, dense.logits)}`);
    assert.ok(maxAbsDiff(ours.logits, reference.logits) <= TOLERANCE);
    for (let layer = 0; layer < original.config.numLayers; layer++) {
      assert.ok(maxAbsDiff(ours.presentKeys[layer], dense.presentKeys[layer]) <= TOLERANCE);
      assert.ok(maxAbsDiff(ours.presentValues[layer], dense.presentValues[layer]) <= TOLERANCE);
    }
  });
});

test("on a random GPT-2-vocabulary checkpoint (50257-row tied head factorised) the logits match within 1e-4", async () => {
  const { modelDir } = await tinyModelWorkspace(31, "spg-factorised-");
  const original = await readCheckpoint(modelDir);
  const compressed = compressCheckpoint(original, lowRankEverywhere);
  const factorised = factorisedCheckpoint(compressed);
  assert.ok(factorised.factors?.has("transformer.wte.weight"));
  const options = { observationWindow: 2 };
  const ids = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13];
  const positions = ids.map((_, i) => i);
  const input: ForwardInput = {
    inputIds: ids,
    positionIds: positions,
    ...pastInputs(emptyCache(original.config), original.config, positions),
  };
  const factorRuntime = await loadRuntime(factorised, { device: "cpu", ...options });
  const denseRuntime = await loadRuntime(compressed.checkpoint, { device: "cpu", ...options });
  try {
    const ours = await factorRuntime.forward(input);
    const dense = await denseRuntime.forward(input);
    assert.equal(ours.logits.length, ids.length * original.config.vocabSize);
    assert.ok(maxAbsDiff(ours.logits, dense.logits) <= TOLERANCE, `${maxAbsDiff(ours.logits, dense.logits)}`);
  } finally {
    await factorRuntime.close();
    await denseRuntime.close();
  }
});
