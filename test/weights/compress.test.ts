/**
 * Compressing a checkpoint: reported bytes are the serialized lengths (and their closed
 * forms), fingerprints hash those bytes, reconstructions are what the bytes decode to, and
 * the ONNX runtime on the reconstructed checkpoint equals the float64 reference forward on
 * the same weights.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { loadRuntime } from "../../src/model/session.js";
import type { GptNeoRuntime } from "../../src/model/types.js";
import { multiplyFactors } from "../../src/numeric/lowrank.js";
import { compressCheckpoint, decodeTensor, decodeWeights, encodeTensor } from "../../src/weights/compress.js";
import type { WeightPolicy } from "../../src/weights/policy.js";
import { truncatedSvd } from "../../src/weights/svd.js";
import { loadFixtureCheckpoint, maxAbsDiff, prefillInput } from "../helpers/fixture-checkpoint.js";
import { referenceForward } from "../helpers/reference.js";
import { randomMatrix } from "./helpers.js";

const TOLERANCE = 1e-4;

const mixed: WeightPolicy = {
  name: "mixed",
  params: {
    baselineDtype: "fp16",
    rules: [
      {
        modules: ["q_proj", "k_proj"],
        lowRank: { rank: 6 },
        quantize: { bits: 4, scheme: "asymmetric", groupSize: 4 },
      },
      { modules: ["v_proj"], lowRank: { energy: 0.8 } },
      {
        modules: ["out_proj"],
        lowRank: { rank: 5, randomized: { oversample: 4, powerIterations: 2, seed: 7 } },
        quantize: { bits: 8, scheme: "symmetric", groupSize: 8 },
      },
      { modules: ["c_fc", "c_proj"], quantize: { bits: 8, scheme: "symmetric", groupSize: "row" } },
      {
        modules: ["wte"],
        lowRank: { energy: 0.9 },
        quantize: { bits: 8, scheme: "asymmetric", groupSize: 16 },
      },
    ],
    keepDense: [{ layers: [2] }],
  },
};

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

describe("compressCheckpoint", () => {
  const original = loadFixtureCheckpoint("A");
  const compressed = compressCheckpoint(original, mixed);

  test("bytes are the serialized lengths; fingerprints hash them; totals are their sums", () => {
    assert.equal(compressed.tensors.length, original.weights.size);
    let total = 0;
    let baseline = 0;
    for (const t of compressed.tensors) {
      assert.equal(t.fingerprint.bytes, t.serialized.length, t.name);
      assert.equal(t.fingerprint.sha256, sha256(t.serialized), t.name);
      assert.equal(t.fingerprint.baselineBytes, 2 * original.weights.get(t.name)!.data.length);
      total += t.serialized.length;
      baseline += t.fingerprint.baselineBytes;
    }
    assert.equal(compressed.compressedBytes, total);
    assert.equal(compressed.baselineBytes, baseline);
    assert.ok(compressed.compressedBytes < compressed.baselineBytes);
  });

  test("randomized low-rank tensors carry their rank", () => {
    const t = compressed.tensors.find((x) => x.name === "transformer.h.1.attn.attention.out_proj.weight")!;
    assert.equal(t.fingerprint.rank, 5);
    assert.equal(t.plan?.treatment.encoding, "lowrank");
  });

  test("a rank-6 INT4 factor pair occupies its closed-form byte count", () => {
    const t = compressed.tensors.find((x) => x.name === "transformer.h.0.attn.attention.q_proj.weight")!;
    const [rows, cols] = t.shape;
    const r = 6;
    const group = 4;
    const factor = (m: number, n: number) => m * Math.ceil(n / group) * 4 + Math.ceil((m * n * 4) / 8);
    assert.equal(t.fingerprint.rank, r);
    assert.equal(t.fingerprint.bits, 4);
    assert.equal(t.fingerprint.bytes, 4 + factor(rows, r) + factor(r, cols));
    assert.equal(t.fingerprint.parameters, r * (rows + cols));
  });

  test("layer 2 is kept dense at fp16; vectors are dense; decoding the bytes again gives the reconstruction", () => {
    for (const t of compressed.tensors) {
      const isLayer2 = t.name.startsWith("transformer.h.2.");
      if (isLayer2 || t.plan === undefined) assert.equal(t.fingerprint.encoding, "dense", t.name);
      const rows = t.plan?.rows ?? 1;
      const cols = t.plan?.cols ?? t.reconstructed.length;
      const treatment = t.plan?.treatment ?? { encoding: "dense" as const };
      assert.deepEqual(decodeTensor(t.serialized, rows, cols, treatment, "fp16"), t.reconstructed, t.name);
    }
    assert.notEqual(compressed.checkpoint.sha256, original.sha256);
  });

  test("decodeWeights rebuilds every tensor from the bytes, config and policy alone", () => {
    const shapes = new Map(compressed.tensors.map((t) => [t.name, t.shape]));
    const bytes = new Map(compressed.tensors.map((t) => [t.name, t.serialized]));
    const rebuilt = decodeWeights(original.config, mixed, shapes, bytes);
    for (const t of compressed.tensors) assert.deepEqual(rebuilt.get(t.name)!.data, t.reconstructed, t.name);
    // bytes decoded under another policy's treatment are refused, not misread
    const otherPolicy: WeightPolicy = { name: "dense", params: { ...mixed.params, rules: [] } };
    assert.throws(() => decodeWeights(original.config, otherPolicy, shapes, bytes), { code: "E_KV_DECODE" });
    bytes.delete("transformer.wpe.weight");
    assert.throws(() => decodeWeights(original.config, mixed, shapes, bytes), { code: "E_WEIGHTS_DECODE" });
  });

  test("unquantized fp32 factors reconstruct the truncated SVD product", () => {
    const m = randomMatrix(10, 7, 3);
    const treatment = {
      encoding: "lowrank" as const,
      selection: { kind: "rank" as const, rank: 3 },
      quantize: undefined,
    };
    const { serialized } = encodeTensor(m, 10, 7, treatment, "fp32");
    assert.equal(serialized.length, 4 + 4 * 3 * (10 + 7));
    const svd = truncatedSvd(m, 10, 7, { kind: "rank", rank: 3 });
    const product = multiplyFactors(svd.left, svd.right, 10, 3, 7);
    assert.ok(maxAbsDiff(decodeTensor(serialized, 10, 7, treatment, "fp32"), product) < 1e-5);
  });

  test("an all-dense fp32 policy is bit-exact and costs exactly the baseline", () => {
    const dense = compressCheckpoint(original, {
      name: "dense",
      params: { baselineDtype: "fp32", rules: [], keepDense: [] },
    });
    assert.equal(dense.compressedBytes, dense.baselineBytes);
    for (const t of dense.tensors) assert.deepEqual(t.reconstructed, original.weights.get(t.name)!.data);
  });
});

describe("runtime on the reconstructed checkpoint", () => {
  const original = loadFixtureCheckpoint("A");
  const compressed = compressCheckpoint(original, mixed).checkpoint;
  const options = { observationWindow: 2 };
  let runtime: GptNeoRuntime;
  let dense: GptNeoRuntime;

  before(async () => {
    runtime = await loadRuntime(compressed, { device: "cpu", ...options });
    dense = await loadRuntime(original, { device: "cpu", ...options });
  });
  after(async () => {
    await runtime.close();
    await dense.close();
  });

  test("graph logits equal the float64 reference on the reconstructed weights within 1e-4", async () => {
    const ids = [3, 141, 59, 265, 358, 97, 93, 238, 46, 264, 338, 327];
    const ours = await runtime.forward(prefillInput(compressed, ids));
    const reference = referenceForward(compressed, options, prefillInput(compressed, ids));
    assert.ok(maxAbsDiff(ours.logits, reference.logits) <= TOLERANCE);
    // and the compression really changed the model (the runtime did not run the dense weights)
    const baseline = await dense.forward(prefillInput(original, ids));
    assert.ok(maxAbsDiff(ours.logits, baseline.logits) > 100 * TOLERANCE);
  });
});
