/**
 * The bundled model (models/gpt-neo-brown): size, config, and spg's ONNX runtime against the
 * torch trainer's logits on the same weights (test/fixtures/gpt-neo-brown-torch-logits.json,
 * written by `scripts/train_gpt_neo.py --dump-compact`).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { emptyCache, pastInputs } from "../../src/kv/layout.js";
import { readCheckpoint } from "../../src/model/checkpoint.js";
import { loadRuntime } from "../../src/model/session.js";
import { bundledModelDir } from "../../src/paths.js";

const fixturePath = fileURLToPath(
  new URL("../../../test/fixtures/gpt-neo-brown-torch-logits.json", import.meta.url),
);

interface TorchLogits {
  model_sha256: string;
  input_ids: number[];
  vocab: number;
  rows_detail: { row: number; logsumexp: number; argmax: number; columns: number[]; values: number[] }[];
}

/** The package's limit for the bundled weights (issue 3: at most 20 MB on disk). */
const maxBundledBytes = 20 * 1000 * 1000;

test("bundled model: GPT-Neo config, F16 weights within the size limit", async () => {
  const dir = bundledModelDir();
  const weights = join(dir, "model.safetensors");
  assert.ok(statSync(weights).size <= maxBundledBytes);
  const checkpoint = await readCheckpoint(dir);
  const config = checkpoint.config;
  assert.equal(config.vocabSize, 50257);
  assert.ok(config.attentionLayers.includes("local") && config.attentionLayers.includes("global"));
  assert.ok(config.maxPositions >= 1024 && config.windowSize < config.maxPositions);
  // Stored as F16, lm_head tied (absent), as the card says.
  const bytes = readFileSync(weights);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<
    string,
    { dtype?: string }
  >;
  const names = Object.keys(header).filter((name) => name !== "__metadata__");
  assert.ok(names.every((name) => header[name].dtype === "F16"));
  assert.ok(!names.includes("lm_head.weight"));
});

test("bundled model: ONNX runtime logits equal the torch trainer's within 1e-4", async () => {
  const dir = bundledModelDir();
  const reference = JSON.parse(readFileSync(fixturePath, "utf8")) as TorchLogits;
  const fileHash = createHash("sha256")
    .update(readFileSync(join(dir, "model.safetensors")))
    .digest("hex");
  assert.equal(fileHash, reference.model_sha256, "fixture was dumped from these exact weights");
  const checkpoint = await readCheckpoint(dir);
  const config = checkpoint.config;
  const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
  try {
    const ids = reference.input_ids;
    const positions = ids.map((_, index) => index);
    const output = await runtime.forward({
      inputIds: ids,
      positionIds: positions,
      ...pastInputs(emptyCache(config), config, positions),
    });
    const vocab = config.vocabSize;
    assert.equal(vocab, reference.vocab);
    for (const detail of reference.rows_detail) {
      const row = output.logits.subarray(detail.row * vocab, (detail.row + 1) * vocab);
      detail.columns.forEach((column, index) => {
        assert.ok(Math.abs(row[column] - detail.values[index]) <= 1e-4, `row ${detail.row} column ${column}`);
      });
      let max = Number.NEGATIVE_INFINITY;
      let argmax = 0;
      row.forEach((value, index) => {
        if (value > max) {
          max = value;
          argmax = index;
        }
      });
      let sum = 0;
      for (const value of row) sum += Math.exp(value - max);
      assert.ok(Math.abs(max + Math.log(sum) - detail.logsumexp) <= 1e-4, `row ${detail.row} logsumexp`);
      assert.equal(argmax, detail.argmax);
    }
  } finally {
    await runtime.close();
  }
});
