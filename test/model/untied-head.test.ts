/**
 * tie_word_embeddings false (test/fixtures/gpt-neo-variants/lm-head-untied, whose logits
 * config-variants.test.ts checks against the PyTorch re-implementation): lm_head.weight is a
 * weight of its own, read by the graph's head, counted by the hardware check and the executed
 * bytes, compressed by weight policies as a tensor (module kind lm_head), and required.
 */
import assert from "node:assert/strict";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parameterCount } from "../../src/hardware/requirement.js";
import {
  LM_HEAD,
  readCheckpoint,
  readCheckpointReport,
  scanCheckpoint,
  WTE,
} from "../../src/model/checkpoint.js";
import { executedWeightBytes, executedWeightBytesOfShapes } from "../../src/model/executed.js";
import { factorNames, gptNeoModelProto, initializerBytes, inlinePlacement } from "../../src/model/graph.js";
import { readSafetensorsHeader, readTensorFloat32, writeSafetensors } from "../../src/model/safetensors.js";
import { loadRuntime } from "../../src/model/session.js";
import { compressCheckpoint } from "../../src/weights/compress.js";
import { type WeightPolicy, weightMatrices } from "../../src/weights/policy.js";
import { factorisedCheckpoint } from "../../src/weights/runtime.js";
import { maxAbsDiff, prefillInput } from "../helpers/fixture-checkpoint.js";
import { spgErrorAsync } from "../helpers/spg-error.js";
import { makeTempDir, removeDir } from "./reader-helpers.js";

const untiedDir = fileURLToPath(
  new URL("../../../test/fixtures/gpt-neo-variants/lm-head-untied/", import.meta.url),
);
const work = makeTempDir();
after(() => removeDir(work));

const reference = JSON.parse(readFileSync(join(untiedDir, "reference.json"), "utf8")) as {
  input_ids: number[];
  logits: { data: number[] };
};

async function logitsOf(dir: string): Promise<Float32Array> {
  const checkpoint = await readCheckpoint(dir);
  const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
  try {
    return (await runtime.forward(prefillInput(checkpoint, reference.input_ids))).logits;
  } finally {
    await runtime.close();
  }
}

test("the stored lm_head is a weight of its own: counted in parameters, initializers and the policy's matrices", async () => {
  const scan = await scanCheckpoint(untiedDir);
  const head = scan.tensors.find((t) => t.name === LM_HEAD);
  assert.equal(head?.kind, "weight");
  // Parameters: every stored weight's elements, from the file's own header.
  const stored = scan.tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(parameterCount(scan.config), stored);
  const checkpoint = await readCheckpoint(untiedDir);
  assert.equal(initializerBytes(checkpoint), 4 * stored);
  assert.deepEqual(
    weightMatrices(scan.config)
      .filter((m) => m.layer === undefined)
      .map((m) => m.kind),
    ["wte", "wpe", "lm_head"],
  );
  // Executed: the head reads lm_head in place, so the session holds it and wte: one
  // [vocab, hidden] matrix more than a tied head. The verifier's derivation from shapes agrees
  // with the graph built from the checkpoint.
  const options = { observationWindow: 1 };
  const executed = executedWeightBytes(checkpoint, options);
  assert.equal(executedWeightBytesOfShapes(scan.config, options), executed);
  const { tieWordEmbeddings: _, ...tiedConfig } = scan.config;
  const headBytes = 4 * scan.config.vocabSize * scan.config.hiddenSize;
  assert.equal(executedWeightBytesOfShapes(tiedConfig, options) + headBytes, executed);
  // Format version 3's transposed head held lm_head^T in lm_head's place, as a tied head's wte^T.
  const transposed = { ...options, headLayout: "transposed" as const };
  assert.equal(
    executedWeightBytesOfShapes(tiedConfig, transposed),
    executedWeightBytesOfShapes(scan.config, transposed),
  );
});

test("the head reads lm_head: read as tied (lm_head dropped), the same file misses the reference by far", async () => {
  const tied = join(work, "read-as-tied");
  cpSync(untiedDir, tied, { recursive: true });
  const config = JSON.parse(readFileSync(join(tied, "config.json"), "utf8"));
  config.tie_word_embeddings = true;
  writeFileSync(join(tied, "config.json"), JSON.stringify(config));
  const report = await readCheckpointReport(tied);
  assert.ok(report.notes.some((note) => note.includes(`${LM_HEAD} is stored but differs from ${WTE}`)));
  const untiedDiff = maxAbsDiff(await logitsOf(untiedDir), reference.logits.data);
  const tiedDiff = maxAbsDiff(await logitsOf(tied), reference.logits.data);
  assert.ok(untiedDiff <= 1e-4, `untied: ${untiedDiff}`);
  assert.ok(tiedDiff > 100 * 1e-4, `read as tied: ${tiedDiff}`);
});

test("tie_word_embeddings false without lm_head.weight is E_TENSOR_MISSING naming it", async () => {
  const dir = join(work, "no-head");
  cpSync(untiedDir, dir, { recursive: true });
  const header = readSafetensorsHeader(join(untiedDir, "model.safetensors"));
  const tensors = [...header.tensors.keys()]
    .filter((name) => name !== LM_HEAD)
    .map((name) => ({
      name,
      dtype: "F32" as const,
      shape: header.tensors.get(name)!.shape,
      data: readTensorFloat32(header, name),
    }));
  rmSync(join(dir, "model.safetensors"));
  await writeSafetensors(join(dir, "model.safetensors"), tensors);
  const error = await spgErrorAsync(() => readCheckpoint(dir));
  assert.equal(error.code, "E_TENSOR_MISSING");
  assert.equal(error.field, LM_HEAD);
  assert.match(error.fix ?? "", /tie_word_embeddings/);
});

test("a weights policy compresses lm_head as a tensor: factorised in the graph, matching the dense reconstruction", async () => {
  const original = await readCheckpoint(untiedDir);
  const policy: WeightPolicy = {
    name: "head-lowrank",
    params: { baselineDtype: "fp16", rules: [{ modules: ["lm_head"], lowRank: { rank: 3 } }], keepDense: [] },
  };
  const compressed = compressCheckpoint(original, policy);
  assert.deepEqual(
    compressed.tensors.filter((t) => t.fingerprint.encoding === "lowrank").map((t) => [t.name, t.plan?.kind]),
    [[LM_HEAD, "lm_head"]],
  );
  const factorised = factorisedCheckpoint(compressed);
  const names = new Set(
    gptNeoModelProto(factorised, { observationWindow: 1 }, inlinePlacement).graph.initializer.map(
      (t) => t.name,
    ),
  );
  const pair = factorNames(LM_HEAD);
  assert.ok(names.has(pair.left) && names.has(pair.right) && !names.has(LM_HEAD));
  const forward = async (checkpoint: typeof original) => {
    const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
    try {
      return (await runtime.forward(prefillInput(checkpoint, reference.input_ids))).logits;
    } finally {
      await runtime.close();
    }
  };
  const ours = await forward(factorised);
  assert.ok(maxAbsDiff(ours, await forward(compressed.checkpoint)) <= 1e-4);
  // Rank 3 of an 8-wide head changes the logits: the compressed head is the one that runs.
  assert.ok(maxAbsDiff(ours, reference.logits.data) > 100 * 1e-4);
});
