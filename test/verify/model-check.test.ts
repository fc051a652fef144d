/**
 * The model check against a dishonest producer holding a trusted key, on the committed default
 * bundle (measured on the bundled model): a consistent lie about the model's shapes or its
 * attention layout, made again into summary.json and report.md and re-signed, passes every
 * arithmetic check; the verifier's own checkpoint refuses it before replay, and under
 * --no-replay too. Without that checkpoint the output says so (W_MODEL_NOT_CHECKED).
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type RunParts, zipOf } from "../../scripts/adversarial-bundles.js";
import type { LayerFingerprint } from "../../src/bundle/types.js";
import { checkpointSha256 } from "../../src/model/checkpoint.js";
import { executedKvBytes, executedWeightBytesOfShapes } from "../../src/model/executed.js";
import { bundledModelDir, packageRoot } from "../../src/paths.js";
import { shapesConfig } from "../../src/verify/checks/executed-cost.js";
import { defaultPolicyPath } from "../../src/verify/policy.js";
import { EXIT_INVALID, EXIT_PASS } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { bundleFixture } from "../helpers/bundle-fixture.js";
import { remadeDefaultBundles } from "../helpers/remade-default.js";

const lies = remadeDefaultBundles("spg-model-check-", 23);
const scratch = mkdtempSync(join(tmpdir(), "spg-model-dirs-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

async function verifyLie(name: string, change: (parts: RunParts) => void, modelDir?: string) {
  const result = await lies.verifyNoReplay(name, change, modelDir);
  // Replay waits for the model check; under --no-replay it is skipped when that failed.
  const failing = result.findings.filter(
    (f) => !f.ok && !(f.check === "replay" && f.code === "E_CHECK_SKIPPED"),
  );
  const model = result.findings.find((f) => f.check === "model");
  return { result, model, codes: [...new Set(failing.map((f) => `${f.check}:${f.code}`))] };
}

/**
 * Layer 0 of the bundled model is global: every trimming method keeps its whole-context
 * budget there. The lie: every method on layer 0 keeps, stores and states what it does on
 * layer 1 (local), in every sample, the records' bytes made to agree: one layout for every
 * method and sample, the local layers' one window.
 */
function globalLayerAsLocal(parts: RunParts): void {
  const layers = parts.fingerprints.filter((f): f is LayerFingerprint => !("kind" in f));
  const at = new Map(layers.map((f) => [`${f.sampleId}/${f.method}/${f.layer}`, f]));
  const cut = new Map<string, number>();
  const readCut = new Map<string, number>();
  const shapes = shapesConfig(parts.environment.model);
  if (shapes === undefined) throw new Error("a version 3 bundle states its architecture");
  for (const line of layers) {
    if (line.layer !== 0 || line.method === "full") continue;
    const local = at.get(`${line.sampleId}/${line.method}/1`);
    if (local === undefined) throw new Error(`no layer 1 for ${line.sampleId}/${line.method}`);
    const key = `${line.sampleId}/${line.method}`;
    cut.set(key, (cut.get(key) ?? 0) + line.bytes - local.bytes);
    line.tokensKept = local.tokensKept;
    line.bytes = local.bytes;
    line.bitsHistogram = { ...local.bitsHistogram };
    line.headsFullPrecision = local.headsFullPrecision;
    // The slots the graph reads, and so the executed KV bytes, as on layer 1 too.
    readCut.set(key, (readCut.get(key) ?? 0) + (line.slotsRead ?? 0) - (local.slotsRead ?? 0));
    line.slotsRead = local.slotsRead;
  }
  for (const record of parts.records) {
    const key = `${record.sampleId}/${record.method}`;
    record.kvBytesCompressed -= cut.get(key) ?? 0;
    if (record.runCost !== undefined)
      record.runCost.executedBytes.kv -= executedKvBytes(shapes, [readCut.get(key) ?? 0]);
  }
}

test("the default bundle re-signed unchanged: its shapes and layout are the bundled checkpoint's", async () => {
  const { result, model, codes } = await verifyLie("honest", () => {});
  assert.deepEqual(codes, []);
  assert.equal(result.exitCode, EXIT_PASS);
  assert.equal(model?.code, "OK");
  // window-trim trims every layer of the bundled checkpoint (its own config.json's count).
  const { num_layers: layers } = JSON.parse(readFileSync(join(bundledModelDir(), "config.json"), "utf8")) as {
    num_layers: number;
  };
  assert.ok(
    (model?.message ?? "").includes(`${layers} trimmed layers keep what their readable window gives`),
  );
});

test("a global layer stated as local by every method in every sample: refused without replay (E_MODEL_LAYOUT)", async () => {
  const { result, codes, model } = await verifyLie("global-as-local", globalLayerAsLocal);
  // The lie is consistent: the budget check (one window for every local layer) holds.
  assert.ok(!codes.includes("budget:E_BUDGET_KEPT"), codes.join());
  assert.deepEqual(codes, ["model:E_MODEL_LAYOUT"]);
  assert.match(model?.message ?? "", /layer 0 \(global\) reads 1024 slots per head/);
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("another activation stated in environment.json: refused without replay (E_MODEL_SHAPES)", async () => {
  const { codes, model } = await verifyLie("activation", ({ environment, records, config }) => {
    const before = shapesConfig(environment.model);
    if (environment.model.architecture === undefined || before === undefined)
      throw new Error("a version 3 bundle states its architecture");
    environment.model.architecture.activation = "relu";
    // The executed weight bytes made to follow the stated activation (its graph's constants).
    const options = { observationWindow: config.kv.observationWindow };
    const after = shapesConfig(environment.model);
    if (after === undefined) throw new Error("unreachable");
    const delta = executedWeightBytesOfShapes(after, options) - executedWeightBytesOfShapes(before, options);
    for (const { runCost } of records) {
      if (runCost === undefined) continue;
      runCost.baselineExecutedBytes.weights += delta;
      runCost.executedBytes.weights += delta;
    }
  });
  assert.deepEqual(codes, ["model:E_MODEL_SHAPES"]);
  assert.match(model?.message ?? "", /architecture\.activation "relu", the checkpoint's "gelu_new"/);
});

test("another checkpoint's weights under the same config.json: the shapes are still held to that config.json", async () => {
  // A retrained checkpoint: same config.json, other weights (hash made consistent, so protocol holds).
  const otherWeights = ({ environment }: RunParts) => {
    const weights = environment.model.files.find((f) => f.name !== "config.json");
    if (weights === undefined) throw new Error("the bundle lists no weights file");
    weights.sha256 = "0".repeat(64);
    environment.model.sha256 = checkpointSha256(environment.model.files);
  };
  const honest = await verifyLie("other-weights", otherWeights);
  assert.equal(honest.model?.code, "OK");
  assert.match(honest.model?.message ?? "", /the weights are another checkpoint's/);
  const lie = await verifyLie("other-weights-wider", (parts) => {
    otherWeights(parts);
    if (parts.environment.model.architecture === undefined) throw new Error("no architecture");
    parts.environment.model.architecture.maxPositions *= 2;
  });
  // Twice the positions also changes the hardware check's requirement, which protocol now
  // recomputes from the stated shapes: protocol refuses first and the model check waits for it.
  assert.ok(
    lie.codes.includes("model:E_MODEL_SHAPES") || lie.codes.includes("protocol:E_PROTOCOL_HARDWARE_INPUTS"),
    lie.codes.join(),
  );
});

test("--model DIR under --no-replay: the stated shapes are held to that checkpoint; one of another config is not the bundle's", async () => {
  const same = join(scratch, "same");
  cpSync(bundledModelDir(), same, { recursive: true });
  const { model } = await verifyLie("model-dir-same", () => {}, same);
  assert.equal(model?.code, "OK");
  const other = join(scratch, "other");
  cpSync(bundledModelDir(), other, { recursive: true });
  const config = JSON.parse(readFileSync(join(other, "config.json"), "utf8")) as Record<string, unknown>;
  config.window_size = 128;
  writeFileSync(join(other, "config.json"), JSON.stringify(config));
  const { model: notHers, codes } = await verifyLie("model-dir-other", () => {}, other);
  assert.deepEqual(codes, []);
  assert.equal(notHers?.code, "W_MODEL_NOT_CHECKED");
  assert.match(notHers?.message ?? "", /is not the checkpoint here/);
});

test("--model DIR whose config.json does not fit its own weights: the verifier's bad input (exit 2, the checkpoint's code), not a crashed check", async () => {
  // Found by `npm run fuzz` (input level, seed 33 #29): the model check crashed (E_CHECK_CRASHED).
  const unfit = join(scratch, "unfit");
  cpSync(bundledModelDir(), unfit, { recursive: true });
  const config = JSON.parse(readFileSync(join(unfit, "config.json"), "utf8")) as Record<string, unknown>;
  config.intermediate_size = config.hidden_size;
  writeFileSync(join(unfit, "config.json"), JSON.stringify(config));
  const bundle = join(packageRoot(), "bundles", "default.zip");
  for (const replay of [false, { samples: 1, modelDir: unfit }] as const)
    await assert.rejects(
      verifyBundleFile(bundle, { requireTrusted: false, replay, modelDir: unfit }),
      (error: Error & { code?: string; exitCode?: number }) => {
        assert.equal(error.code, "E_TENSOR_SHAPE", error.message);
        assert.equal(error.exitCode, 2);
        return true;
      },
    );
});

test("a bundle whose model is not here: the output says the shapes are the signer's word (W_MODEL_NOT_CHECKED)", async () => {
  const path = join(scratch, "fixture.zip");
  writeFileSync(path, zipOf(bundleFixture().contents.entries));
  const result = await verifyBundleFile(path, { requireTrusted: false, replay: false });
  const model = result.findings.find((f) => f.check === "model");
  assert.equal(model?.code, "W_MODEL_NOT_CHECKED");
  assert.equal(model?.warning, true);
  assert.match(model?.message ?? "", /signer's word/);
});

test("--require-model: a bundle whose model is not here fails (E_MODEL_NOT_CHECKED), a gate is not passed on the signer's word", async () => {
  const path = join(scratch, "fixture-required.zip");
  writeFileSync(path, zipOf(bundleFixture().contents.entries));
  const result = await verifyBundleFile(path, { requireTrusted: false, replay: false, requireModel: true });
  const model = result.findings.find((f) => f.check === "model");
  assert.equal(model?.code, "E_MODEL_NOT_CHECKED");
  assert.equal(model?.ok, false);
  assert.match(model?.message ?? "", /--require-model/);
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("the policy's model.required: a bundle whose checkpoint and config.json are not here fails instead of warning", async () => {
  // The verifier holds a checkpoint of another config.json only: the stated shapes cannot be
  // held to anything, whatever they are (an honest bundle here; a lie would read the same).
  const other = join(scratch, "other-required");
  cpSync(bundledModelDir(), other, { recursive: true });
  const config = JSON.parse(readFileSync(join(other, "config.json"), "utf8")) as Record<string, unknown>;
  config.window_size = 128;
  writeFileSync(join(other, "config.json"), JSON.stringify(config));
  const honest = () => {};
  const warned = await verifyLie("not-required", honest, other);
  assert.equal(warned.model?.code, "W_MODEL_NOT_CHECKED");
  assert.equal(warned.result.exitCode, EXIT_PASS);
  const policyFile = join(scratch, "policy-model-required.yaml");
  const policy = readFileSync(defaultPolicyPath(), "utf8");
  assert.match(policy, /^model:\n(?:\s*#.*\n)*\s+required: false$/m);
  writeFileSync(policyFile, policy.replace(/^(model:\n(?:\s*#.*\n)*\s+required:) false$/m, "$1 true"));
  const path = await lies.write("required-by-policy", honest);
  const failed = await verifyBundleFile(path, {
    trustedKeysFile: lies.keysFile,
    requireTrusted: true,
    replay: false,
    modelDir: other,
    policyFile,
  });
  assert.deepEqual(lies.failingCodes(failed), ["model:E_MODEL_NOT_CHECKED", "replay:E_CHECK_SKIPPED"]);
  assert.equal(failed.exitCode, EXIT_INVALID);
});
