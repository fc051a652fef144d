/**
 * Runtime plumbing: the external-data graph cache (forced with a tiny threshold), its reuse
 * and hash verification, the CUDA request failing loudly on a CPU-only build, and
 * input validation.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isSpgError } from "../../src/errors.js";
import { emptyCache, pastInputs } from "../../src/kv/layout.js";
import { readCheckpoint } from "../../src/model/checkpoint.js";
import { buildGptNeoGraph, initializerBytes } from "../../src/model/graph.js";
import { graphCacheKey, MODEL_FILE, prepareGraph, WEIGHTS_FILE } from "../../src/model/graph-cache.js";
import { decodeModel } from "../../src/model/onnx-proto.js";
import { writeSafetensors } from "../../src/model/safetensors.js";
import { assertDeviceAvailable, loadRuntime } from "../../src/model/session.js";
import { StoredWeights } from "../../src/model/stored-weights.js";
import type { ForwardInput, GptNeoCheckpoint } from "../../src/model/types.js";
import { fixtureCase, loadFixtureCheckpoint, maxAbsDiff } from "../helpers/fixture-checkpoint.js";
import { fixtureTensors, tempCheckpointWithConfig } from "./reader-helpers.js";

const options = { observationWindow: 2 };

describe("graph cache with ONNX external data", () => {
  let checkpoint: GptNeoCheckpoint;
  let cacheDir: string;

  before(() => {
    checkpoint = loadFixtureCheckpoint("A");
    cacheDir = mkdtempSync(join(tmpdir(), "spg-graph-cache-"));
  });
  after(() => {
    rmSync(cacheDir, { recursive: true, force: true });
  });

  test("small graphs stay in memory; the inline graph holds every weight byte", async () => {
    const prepared = await prepareGraph(checkpoint, options, { cacheDir });
    assert.equal(prepared.kind, "bytes");
    const model = decodeModel(buildGptNeoGraph(checkpoint, options));
    const floatBytes = model.graph.initializer
      .filter((t) => t.name.startsWith("transformer."))
      .reduce((sum, t) => sum + (t.raw_data?.length ?? 0), 0);
    assert.equal(floatBytes, initializerBytes(checkpoint));
  });

  test("above the threshold: external data written, loaded, reused, and rebuilt when tampered", async () => {
    const threshold = 1024;
    const first = await prepareGraph(checkpoint, options, {
      cacheDir,
      externalDataThresholdBytes: threshold,
    });
    assert.equal(first.kind, "file");
    if (first.kind !== "file") return;
    assert.equal(first.reused, false);
    assert.equal(first.entryDir, join(cacheDir, graphCacheKey(checkpoint, options)));
    // model.onnx carries no weights; weights.bin carries all of them (page-aligned, so at least their bytes).
    const model = decodeModel(readFileSync(first.path));
    const external = model.graph.initializer.filter((t) => t.data_location === 1);
    assert.equal(
      external.length,
      model.graph.initializer.filter((t) => t.name.startsWith("transformer.")).length,
    );
    // Fixture A's graph structure is about 27 KB against 276 KB of weights.
    assert.ok(statSync(first.path).size < initializerBytes(checkpoint) / 5);
    assert.ok(statSync(join(first.entryDir, WEIGHTS_FILE)).size >= initializerBytes(checkpoint));

    const second = await prepareGraph(checkpoint, options, {
      cacheDir,
      externalDataThresholdBytes: threshold,
    });
    assert.equal(second.kind === "file" && second.reused, true);

    // Corrupt one byte of the weights: the entry fails verification and is rebuilt.
    const weightsPath = join(first.entryDir, WEIGHTS_FILE);
    const bytes = readFileSync(weightsPath);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(weightsPath, bytes);
    const third = await prepareGraph(checkpoint, options, {
      cacheDir,
      externalDataThresholdBytes: threshold,
    });
    assert.ok(third.kind === "file" && !third.reused);
    assert.match(third.kind === "file" ? (third.rebuiltBecause ?? "") : "", /weights\.bin sha256/);

    // A different observation window is a different graph, so a different entry.
    assert.notEqual(graphCacheKey(checkpoint, options), graphCacheKey(checkpoint, { observationWindow: 3 }));
    assert.ok(existsSync(join(first.entryDir, MODEL_FILE)));
  });

  test("a runtime loaded from external data gives the HF logits", async () => {
    const runtime = await loadRuntime(checkpoint, {
      device: "cpu",
      ...options,
      cacheDir,
      externalDataThresholdBytes: 1024,
    });
    try {
      const reference = fixtureCase("A", "full_len7");
      const ids = reference.input_ids[0];
      const positions = ids.map((_, i) => i);
      const output = await runtime.forward({
        inputIds: ids,
        positionIds: positions,
        ...pastInputs(emptyCache(checkpoint.config), checkpoint.config, positions),
      });
      assert.ok(maxAbsDiff(output.logits, reference.logits!.data) <= 1e-4);
    } finally {
      await runtime.close();
    }
  });
});

describe("weights read in place from the checkpoint's safetensors", () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  for (const dtype of ["F32", "F16", "BF16"] as const) {
    test(`${dtype}: the graph points into model.safetensors and runs bit for bit as the same weights in memory`, async () => {
      const dir = tempCheckpointWithConfig("config-A");
      dirs.push(dir);
      const tensors = fixtureTensors("config-A").map((t) => ({ ...t, dtype }));
      await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
      const stored = await readCheckpoint(dir);
      assert.ok(stored.weights instanceof StoredWeights);
      const inPlace = stored.weights.stored;
      // The same values, widened in JavaScript, as an in-memory checkpoint (a plain Map).
      const inMemory: GptNeoCheckpoint = { ...stored, weights: new Map(stored.weights), sha256: "in-memory" };
      const prepared = await prepareGraph(stored, options);
      assert.ok(prepared.kind === "bytes" && prepared.externalDataDir === stored.dir);
      const model = decodeModel(prepared.kind === "bytes" ? prepared.bytes : new Uint8Array());
      const weights = model.graph.initializer.filter((t) => t.name.startsWith("transformer."));
      assert.equal(weights.length, stored.weights.size);
      for (const tensor of weights) {
        assert.equal(tensor.data_location, 1, tensor.name);
        assert.equal(tensor.raw_data, undefined, tensor.name);
        const location = Object.fromEntries((tensor.external_data ?? []).map((e) => [e.key, e.value]));
        assert.equal(location.location, "model.safetensors");
        const name = tensor.name.replace(/:stored$/, "");
        const entry = inPlace.get(name)!;
        assert.equal(Number(location.offset), entry.offset);
        assert.equal(Number(location.length), entry.bytes);
        // Only float32 is read as it is; the other dtypes are cast in the graph.
        assert.equal(tensor.name === name, dtype === "F32");
      }
      const input = (config: GptNeoCheckpoint["config"]): ForwardInput => {
        const ids = [5, 17, 3, 250, 9, 44];
        const positions = ids.map((_, i) => i);
        return {
          inputIds: ids,
          positionIds: positions,
          ...pastInputs(emptyCache(config), config, positions),
        };
      };
      const fromFile = await loadRuntime(stored, { device: "cpu", ...options });
      const fromMemory = await loadRuntime(inMemory, { device: "cpu", ...options });
      try {
        const a = await fromFile.forward(input(stored.config));
        const b = await fromMemory.forward(input(stored.config));
        assert.deepEqual(a.logits, b.logits);
        assert.deepEqual(a.presentKeys, b.presentKeys);
      } finally {
        await fromFile.close();
        await fromMemory.close();
      }
    });
  }
});

describe("devices and inputs", () => {
  test("device cuda without the CUDA provider fails with E_DEVICE_UNAVAILABLE, never a CPU run", async (t) => {
    const checkpoint = loadFixtureCheckpoint("B");
    const cudaInstalled = await assertDeviceAvailable("cuda").then(
      () => true,
      () => false,
    );
    if (cudaInstalled) {
      t.skip("this onnxruntime-node has a working CUDA provider");
      return;
    }
    await assert.rejects(loadRuntime(checkpoint, { device: "cuda", ...options }), (error: unknown) => {
      assert.ok(isSpgError(error));
      assert.equal(error.code, "E_DEVICE_UNAVAILABLE");
      assert.match(error.fix ?? "", /ONNXRUNTIME_NODE_INSTALL=cuda12/);
      return true;
    });
  });

  test("device webgpu without an adapter fails fast with E_DEVICE_UNAVAILABLE, never a CPU run", async (t) => {
    const adapter = await assertDeviceAvailable("webgpu").then(
      () => true,
      () => false,
    );
    if (adapter) {
      t.skip("this machine offers a WebGPU adapter");
      return;
    }
    const started = performance.now();
    await assert.rejects(
      loadRuntime(loadFixtureCheckpoint("B"), { device: "webgpu", ...options }),
      (error: unknown) => {
        assert.ok(isSpgError(error));
        assert.equal(error.code, "E_DEVICE_UNAVAILABLE");
        assert.match(error.message, /WebGPU/);
        assert.match(error.fix ?? "", /WebGPU adapter/);
        return true;
      },
    );
    // before any graph is built: the probe session is what fails
    assert.ok(performance.now() - started < 30_000);
  });

  test("bad forward inputs and options are SpgErrors with stable codes", async () => {
    const checkpoint = loadFixtureCheckpoint("B");
    await assert.rejects(loadRuntime(checkpoint, { device: "cpu", observationWindow: 0 }), {
      code: "E_RUNTIME_OPTION",
    });
    const runtime = await loadRuntime(checkpoint, { device: "cpu", ...options });
    try {
      const config = checkpoint.config;
      const good: ForwardInput = {
        inputIds: [1, 2],
        positionIds: [0, 1],
        ...pastInputs(emptyCache(config), config, [0, 1]),
      };
      await assert.rejects(runtime.forward({ ...good, inputIds: [1, config.vocabSize] }), {
        code: "E_FORWARD_INPUT",
      });
      await assert.rejects(runtime.forward({ ...good, positionIds: [0, config.maxPositions] }), {
        code: "E_FORWARD_INPUT",
      });
      await assert.rejects(runtime.forward({ ...good, positionIds: [0] }), { code: "E_FORWARD_INPUT" });
      await assert.rejects(
        runtime.forward({ ...good, attentionBias: good.attentionBias.map((b) => b.subarray(1)) }),
        {
          code: "E_FORWARD_INPUT",
        },
      );
      // Scored rows: no more than the logit rows, probabilities for each, targets in the vocabulary.
      const probs = (rows: number) => new Float32Array(rows * config.vocabSize).fill(1 / config.vocabSize);
      for (const scored of [
        { probs: probs(3), targets: [0, 1, 2] },
        { probs: probs(1), targets: [0, 1] },
        { probs: probs(1), targets: [config.vocabSize] },
      ]) {
        await assert.rejects(runtime.forward({ ...good, scored }), { code: "E_FORWARD_INPUT" });
      }
      // What is not asked for does not come back; scores always do.
      const lean = await runtime.forward({
        ...good,
        scored: { probs: probs(1), targets: [5] },
        returns: { logits: false, attention: false, statistics: false, present: false },
      });
      assert.equal(lean.logits.length, 0);
      assert.equal(lean.attentionRows, 0);
      for (const arrays of [
        lean.presentKeys,
        lean.presentValues,
        lean.attentionLastRows,
        lean.attentionColumnSums,
        lean.attentionWindowSums,
        lean.keyNorms,
        lean.valueNorms,
      ])
        assert.ok(arrays.every((a) => a.length === 0));
      // Statistics without the attention rows: what a prefill for the methods asks for.
      const statistics = await runtime.forward({ ...good, returns: { attention: false } });
      assert.ok(statistics.attentionLastRows.every((a) => a.length === 0));
      assert.equal(statistics.attentionRows, 2);
      assert.ok(statistics.attentionWindowSums.every((a) => a.length === 2 * config.numHeads * 2));
      assert.ok(statistics.keyNorms.every((a) => a.length === config.numHeads * 2));
      assert.equal(lean.scoredExpectedLogit.length, 1);
      const output = await runtime.forward(good);
      assert.equal(output.logits.length, 2 * config.vocabSize);
      assert.equal(output.attentionRows, 2);
      // The scores are the uniform average of the first row's logits and its logit for target 5.
      let mean = 0;
      for (let v = 0; v < config.vocabSize; v++) mean += output.logits[v] / config.vocabSize;
      assert.ok(Math.abs(lean.scoredExpectedLogit[0] - mean) < 1e-5);
      assert.equal(lean.scoredTargetLogit[0], output.logits[5]);
      // A later call does not overwrite an earlier call's outputs.
      const kept = Float32Array.from(output.logits);
      await runtime.forward({ ...good, inputIds: [3, 4] });
      assert.deepEqual(output.logits, kept);
    } finally {
      await runtime.close();
    }
  });
});
