import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFileSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { readCheckpoint, readCheckpointReport, scanCheckpoint } from "../../src/model/checkpoint.js";
import { type TensorToWrite, writeSafetensors } from "../../src/model/safetensors.js";
import type { GptNeoCheckpoint } from "../../src/model/types.js";
import {
  fixtureDir,
  fixtureTensors,
  removeDir,
  spgCode,
  tempCheckpointWithConfig,
} from "./reader-helpers.js";

const tempDirs: string[] = [];
after(() => tempDirs.forEach(removeDir));

/** A temp checkpoint: fixture A's config.json plus model.safetensors holding `tensors`. */
async function checkpointWith(
  tensors: TensorToWrite[],
  fixture: "config-A" | "config-B" = "config-A",
): Promise<string> {
  const dir = tempCheckpointWithConfig(fixture);
  tempDirs.push(dir);
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  return dir;
}

const tensorsA = fixtureTensors("config-A");
const wteA = tensorsA.find((t) => t.name === "transformer.wte.weight")!;

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Closed-form GPT-Neo parameter count (tied head counted once). */
function closedFormParameters(v: number, p: number, h: number, inner: number, layers: number): number {
  const perLayer = 2 * h + 4 * h * h + h + 2 * h + inner * h + inner + h * inner + h;
  return v * h + p * h + layers * perLayer + 2 * h;
}

function parameterCount(checkpoint: GptNeoCheckpoint): number {
  let total = 0;
  for (const tensor of checkpoint.weights.values()) total += tensor.data.length;
  return total;
}

test("reads both Hugging Face fixtures: every weight, shapes, file hashes", async () => {
  for (const [fixture, v, p, h, inner, layers] of [
    ["config-A", 512, 64, 32, 128, 4],
    ["config-B", 300, 40, 48, 80, 2],
  ] as const) {
    const dir = fixtureDir(fixture);
    const checkpoint = await readCheckpoint(dir);
    assert.equal(checkpoint.weights.size, 2 + 13 * layers + 2);
    assert.equal(checkpoint.weights.has("lm_head.weight"), false);
    assert.deepEqual(checkpoint.weights.get("transformer.wte.weight")!.shape, [v, h]);
    assert.deepEqual(checkpoint.weights.get("transformer.h.0.mlp.c_fc.weight")!.shape, [inner, h]);
    assert.deepEqual(checkpoint.weights.get("transformer.h.0.mlp.c_proj.weight")!.shape, [h, inner]);
    for (const [name, tensor] of checkpoint.weights) {
      assert.equal(
        tensor.data.length,
        tensor.shape.reduce((a, b) => a * b, 1),
        name,
      );
    }
    assert.equal(parameterCount(checkpoint), closedFormParameters(v, p, h, inner, layers));
    assert.deepEqual(
      checkpoint.files.map((f) => [f.name, f.bytes, f.sha256]),
      ["config.json", "model.safetensors"].map((name) => [
        name,
        statSync(join(dir, name)).size,
        sha256(join(dir, name)),
      ]),
    );
    const sortedDigests = checkpoint.files.map((f) => f.sha256).sort();
    assert.equal(checkpoint.sha256, createHash("sha256").update(sortedDigests.join("\n")).digest("hex"));
  }
});

test("embedding weights match transformers' own embedding sum (hidden_states[0] = wte[id] + wpe[pos])", async () => {
  for (const fixture of ["config-A", "config-B"] as const) {
    const checkpoint = await readCheckpoint(fixtureDir(fixture));
    const reference = JSON.parse(readFileSync(join(fixtureDir(fixture), "reference.json"), "utf8"));
    const attentionCase = reference.cases.find((c: { kind: string }) => c.kind === "output_attentions");
    const ids: number[] = attentionCase.input_ids[0];
    const embeddings = attentionCase.hidden_states[0];
    const hidden = checkpoint.config.hiddenSize;
    assert.deepEqual(embeddings.shape, [1, ids.length, hidden]);
    const wte = checkpoint.weights.get("transformer.wte.weight")!.data;
    const wpe = checkpoint.weights.get("transformer.wpe.weight")!.data;
    for (let pos = 0; pos < ids.length; pos++) {
      for (let c = 0; c < hidden; c++) {
        // torch adds two float32 tensors: the result is the float32 rounding of the exact sum.
        const ours = Math.fround(wte[ids[pos] * hidden + c] + wpe[pos * hidden + c]);
        assert.equal(
          ours,
          Math.fround(embeddings.data[pos * hidden + c]),
          `${fixture} pos ${pos} channel ${c}`,
        );
      }
    }
  }
});

test("F16 and BF16 checkpoints are widened to float32 within the format's rounding", async () => {
  const reference = await readCheckpoint(fixtureDir("config-A"));
  for (const [dtype, relative] of [
    ["F16", 2 ** -11],
    ["BF16", 2 ** -8],
  ] as const) {
    const dir = await checkpointWith(tensorsA.map((t) => ({ ...t, dtype })));
    const report = await readCheckpointReport(dir);
    assert.ok(report.tensors.every((t) => t.dtype === dtype));
    let changed = 0;
    for (const [name, tensor] of report.checkpoint.weights) {
      const exact = reference.weights.get(name)!.data;
      for (let i = 0; i < exact.length; i++) {
        // Round to nearest: relative error at most half an ulp (F16 normal range; the values here are < 4).
        const bound = Math.abs(exact[i]) * relative + (dtype === "F16" ? 2 ** -25 : 0);
        assert.ok(Math.abs(tensor.data[i] - exact[i]) <= bound, `${dtype} ${name}[${i}]`);
        if (tensor.data[i] !== exact[i]) changed++;
      }
    }
    assert.ok(changed > 0, "rounding must have happened");
  }
});

test("sharded checkpoint (model.safetensors.index.json) reads the same weights", async () => {
  const dir = tempCheckpointWithConfig("config-A");
  tempDirs.push(dir);
  const first = tensorsA.filter(
    (t) => t.name.startsWith("transformer.h.0") || t.name.startsWith("transformer.h.1"),
  );
  const second = tensorsA.filter((t) => !first.includes(t));
  await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), first, { format: "pt" });
  await writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), second, { format: "pt" });
  const weightMap: Record<string, string> = {};
  for (const t of first) weightMap[t.name] = "model-00001-of-00002.safetensors";
  for (const t of second) weightMap[t.name] = "model-00002-of-00002.safetensors";
  const indexPath = join(dir, "model.safetensors.index.json");
  writeFileSync(indexPath, JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  const report = await readCheckpointReport(dir);
  assert.equal(report.layout, "sharded");
  assert.deepEqual(
    report.checkpoint.files.map((f) => f.name),
    [
      "config.json",
      "model.safetensors.index.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
    ],
  );
  const single = await readCheckpoint(fixtureDir("config-A"));
  assert.deepEqual([...report.checkpoint.weights.keys()], [...single.weights.keys()]);
  for (const [name, tensor] of single.weights)
    assert.deepEqual(report.checkpoint.weights.get(name), tensor, name);

  // A tensor listed under the wrong shard.
  writeFileSync(
    indexPath,
    JSON.stringify({
      weight_map: { ...weightMap, "transformer.wte.weight": "model-00001-of-00002.safetensors" },
    }),
  );
  await assert.rejects(readCheckpoint(dir), spgCode("E_CHECKPOINT_INDEX"));
  // A tensor stored but not in the index.
  const partial = { ...weightMap };
  delete partial["transformer.ln_f.bias"];
  writeFileSync(indexPath, JSON.stringify({ weight_map: partial }));
  await assert.rejects(readCheckpoint(dir), spgCode("E_CHECKPOINT_INDEX"));
  // A shard path escaping the directory.
  writeFileSync(
    indexPath,
    JSON.stringify({ weight_map: { ...weightMap, "transformer.ln_f.bias": "../x.safetensors" } }),
  );
  await assert.rejects(readCheckpoint(dir), spgCode("E_CHECKPOINT_INDEX"));
  // A tensor listed in the index that no shard holds.
  writeFileSync(
    indexPath,
    JSON.stringify({
      weight_map: { ...weightMap, "transformer.h.9.ln_1.bias": "model-00001-of-00002.safetensors" },
    }),
  );
  await assert.rejects(readCheckpoint(dir), spgCode("E_TENSOR_MISSING"));
  // A tensor stored twice.
  await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), [...first, wteA], { format: "pt" });
  writeFileSync(indexPath, JSON.stringify({ weight_map: weightMap }));
  await assert.rejects(readCheckpoint(dir), spgCode("E_TENSOR_DUPLICATE"));
  // A missing shard.
  writeFileSync(
    indexPath,
    JSON.stringify({
      weight_map: { ...weightMap, "transformer.ln_f.bias": "model-00003-of-00003.safetensors" },
    }),
  );
  await assert.rejects(readCheckpoint(dir), spgCode("E_CHECKPOINT_MISSING"));
});

/** Old transformers' persistent buffers for fixture A (4 layers, max positions 64). */
function oldBuffers(maskDtype: "BOOL" | "U8"): TensorToWrite[] {
  const buffers: TensorToWrite[] = [];
  for (let layer = 0; layer < 4; layer++) {
    const mask = new Uint8Array(64 * 64);
    for (let i = 0; i < 64; i++) for (let j = 0; j <= i; j++) mask[i * 64 + j] = 1;
    buffers.push({
      name: `transformer.h.${layer}.attn.attention.bias`,
      dtype: maskDtype,
      shape: [1, 1, 64, 64],
      data: mask,
    });
    buffers.push({
      name: `transformer.h.${layer}.attn.attention.masked_bias`,
      dtype: "F32",
      shape: [],
      data: [-1e9],
    });
  }
  return buffers;
}

test("old persistent buffers (BOOL or U8 mask, masked_bias) and a tied lm_head are checked and dropped", async () => {
  const reference = await readCheckpoint(fixtureDir("config-A"));
  for (const maskDtype of ["BOOL", "U8"] as const) {
    const dir = await checkpointWith([
      ...tensorsA,
      ...oldBuffers(maskDtype),
      { ...wteA, name: "lm_head.weight" },
    ]);
    const report = await readCheckpointReport(dir);
    assert.deepEqual([...report.checkpoint.weights.keys()], [...reference.weights.keys()]);
    assert.equal(report.tensors.filter((t) => t.kind === "buffer").length, 8);
    assert.equal(report.tensors.filter((t) => t.kind === "tied-lm-head").length, 1);
    assert.ok(report.notes.some((n) => n.includes("persistent attention buffer")));
    assert.ok(report.notes.some((n) => n.includes("equals transformer.wte.weight")));
  }
  // An lm_head that differs from wte is accepted (tied models use wte, as transformers does) but noted.
  const changed = new Float32Array(wteA.data as Float32Array);
  changed[5] += 1;
  const dir = await checkpointWith([...tensorsA, { ...wteA, name: "lm_head.weight", data: changed }]);
  const report = await readCheckpointReport(dir);
  assert.ok(report.notes.some((n) => n.includes("differs from transformer.wte.weight in 1 of")));
});

test("E_TENSOR_DTYPE: a buffer or weight with the wrong dtype", async () => {
  const buffers = oldBuffers("BOOL").map((t) =>
    t.name.endsWith(".bias") ? { ...t, dtype: "F32" as const } : t,
  );
  await assert.rejects(
    readCheckpoint(await checkpointWith([...tensorsA, ...buffers])),
    spgCode("E_TENSOR_DTYPE"),
  );
  const intWeights = tensorsA.map((t) =>
    t.name === "transformer.ln_f.bias"
      ? { ...t, dtype: "I32" as const, data: new Int32Array(t.data.length) }
      : t,
  );
  await assert.rejects(readCheckpoint(await checkpointWith(intWeights)), spgCode("E_TENSOR_DTYPE"));
});

test("E_TENSOR_UNEXPECTED: a tensor GPT-Neo does not have (or a layer beyond num_layers)", async () => {
  const extra = { name: "score.weight", dtype: "F32" as const, shape: [2, 32], data: new Float32Array(64) };
  await assert.rejects(
    readCheckpoint(await checkpointWith([...tensorsA, extra])),
    spgCode("E_TENSOR_UNEXPECTED"),
  );
  const layer4 = {
    name: "transformer.h.4.ln_1.bias",
    dtype: "F32" as const,
    shape: [32],
    data: new Float32Array(32),
  };
  await assert.rejects(
    readCheckpoint(await checkpointWith([...tensorsA, layer4])),
    spgCode("E_TENSOR_UNEXPECTED"),
  );
});

test("E_TENSOR_MISSING: a weight the config implies is absent", async () => {
  const missing = tensorsA.filter((t) => t.name !== "transformer.h.3.mlp.c_proj.bias");
  await assert.rejects(readCheckpoint(await checkpointWith(missing)), (error: unknown) => {
    spgCode("E_TENSOR_MISSING")(error);
    assert.equal((error as { field: string }).field, "transformer.h.3.mlp.c_proj.bias");
    return true;
  });
});

test("E_TENSOR_SHAPE: weights or buffers with the wrong shape", async () => {
  const transposed = tensorsA.map((t) =>
    t.name === "transformer.h.0.mlp.c_fc.weight" ? { ...t, shape: [32, 128] } : t,
  );
  await assert.rejects(readCheckpoint(await checkpointWith(transposed)), spgCode("E_TENSOR_SHAPE"));
  // An old mask buffer sized for another max_position_embeddings.
  const smallMask = oldBuffers("BOOL").map((t) =>
    t.name.endsWith(".bias") ? { ...t, shape: [1, 1, 32, 32], data: new Uint8Array(32 * 32) } : t,
  );
  await assert.rejects(
    readCheckpoint(await checkpointWith([...tensorsA, ...smallMask])),
    spgCode("E_TENSOR_SHAPE"),
  );
  const badHead = { ...wteA, name: "lm_head.weight", shape: [32, 512] };
  await assert.rejects(
    readCheckpoint(await checkpointWith([...tensorsA, badHead])),
    spgCode("E_TENSOR_SHAPE"),
  );
});

test("E_SAFETENSORS_TRUNCATED through readCheckpoint: a model.safetensors cut short", async () => {
  const dir = tempCheckpointWithConfig("config-A");
  tempDirs.push(dir);
  const model = join(dir, "model.safetensors");
  copyFileSync(join(fixtureDir("config-A"), "model.safetensors"), model);
  truncateSync(model, statSync(model).size - 4);
  await assert.rejects(readCheckpoint(dir), spgCode("E_SAFETENSORS_TRUNCATED"));
});

test("E_CHECKPOINT_ARCH through readCheckpoint: a GPT-2 config next to the weights", async () => {
  const dir = await checkpointWith(tensorsA);
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ ...config, model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }),
  );
  await assert.rejects(readCheckpoint(dir), spgCode("E_CHECKPOINT_ARCH"));
});

test("E_PYTORCH_BIN_ONLY: a directory holding only pytorch_model.bin says how to convert", async () => {
  const dir = tempCheckpointWithConfig("config-A");
  tempDirs.push(dir);
  writeFileSync(join(dir, "pytorch_model.bin"), "not really a pickle");
  await assert.rejects(readCheckpoint(dir), (error: unknown) => {
    spgCode("E_PYTORCH_BIN_ONLY")(error);
    assert.match((error as { fix: string }).fix, /save_pretrained\(DIR, safe_serialization=True\)/);
    return true;
  });
});

test("E_CHECKPOINT_MISSING: no directory, no weights, no config", async () => {
  const dir = tempCheckpointWithConfig("config-A");
  tempDirs.push(dir);
  await assert.rejects(readCheckpoint(join(dir, "nope")), spgCode("E_CHECKPOINT_MISSING"));
  await assert.rejects(readCheckpoint(dir), spgCode("E_CHECKPOINT_MISSING"));
  const noConfig = await checkpointWith(tensorsA);
  writeFileSync(join(noConfig, "config.json"), "{}");
  await assert.rejects(readCheckpoint(noConfig), spgCode("E_CHECKPOINT_ARCH"));
  rmSync(join(noConfig, "config.json"));
  await assert.rejects(readCheckpoint(noConfig), spgCode("E_CHECKPOINT_MISSING"));
});

test("E_TENSOR_NONFINITE: a weight that overflowed to infinity in F16 is refused when loaded", async () => {
  const overflowing = tensorsA.map((t) => {
    if (t.name !== "transformer.h.2.ln_2.weight") return { ...t, dtype: "F16" as const };
    const data = new Float32Array(t.data as Float32Array);
    data[3] = 1e6; // above F16's 65504: encodes as +Inf
    return { ...t, dtype: "F16" as const, data };
  });
  const dir = await checkpointWith(overflowing);
  await assert.rejects(readCheckpoint(dir), (error: unknown) => {
    spgCode("E_TENSOR_NONFINITE")(error);
    assert.equal((error as { field: string }).field, "transformer.h.2.ln_2.weight");
    return true;
  });
  // scanCheckpoint validates names, shapes and dtypes without loading values.
  const scan = await scanCheckpoint(dir);
  assert.equal(scan.tensors.length, 56);
});
