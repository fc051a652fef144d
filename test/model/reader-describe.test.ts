import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { readCheckpoint, scanCheckpoint } from "../../src/model/checkpoint.js";
import { describeCheckpoint, describeCheckpointDir, formatDescription } from "../../src/model/describe.js";
import { readSafetensorsHeader, writeSafetensors } from "../../src/model/safetensors.js";
import { bundledModelDir, packageRoot } from "../../src/paths.js";
import {
  fixtureDir,
  fixtureTensors,
  removeDir,
  spgCode,
  tempCheckpointWithConfig,
} from "./reader-helpers.js";

const tempDirs: string[] = [];
after(() => tempDirs.forEach(removeDir));
const run = promisify(execFile);

test("describes fixture A with figures that follow from its config (README table) and file layout", async () => {
  const dir = fixtureDir("config-A");
  const d = await describeCheckpointDir(dir);
  assert.equal(d.architecture, "GPTNeoForCausalLM");
  assert.equal(d.globalLayers, 2);
  assert.equal(d.localLayers, 2);
  // V*H + P*H + L*(ln_1 + q,k,v,out + out bias + ln_2 + c_fc + c_fc bias + c_proj + c_proj bias) + ln_f,
  // with V=512, P=64, H=32, inner=128, L=4 (README table).
  const h = 32;
  const inner = 128;
  const perLayer = 2 * h + 4 * h * h + h + 2 * h + inner * h + inner + h * inner + h;
  assert.equal(d.parameters, 512 * h + 64 * h + 4 * perLayer + 2 * h);
  let loaded = 0;
  for (const tensor of (await readCheckpoint(dir)).weights.values()) loaded += tensor.data.length;
  assert.equal(d.parameters, loaded);
  assert.equal(d.weightBytesFp32, d.parameters * 4);
  // All weights are F32 and fill the data area: file size - 8 - header length.
  const header = readSafetensorsHeader(join(dir, "model.safetensors"));
  assert.deepEqual(d.weightsByDtype, {
    F32: {
      tensors: 56,
      elements: d.parameters,
      bytes: statSync(join(dir, "model.safetensors")).size - 8 - header.headerBytes,
    },
  });
  assert.deepEqual(d.droppedByDtype, {});
  assert.equal(
    d.bytesOnDisk,
    statSync(join(dir, "config.json")).size + statSync(join(dir, "model.safetensors")).size,
  );
  // KV per token: keys + values x 4 layers x 32 channels.
  assert.equal(d.kvBytesPerTokenFp16, 2 * 4 * 32 * 2);
  assert.equal(d.kvBytesPerTokenFp32, 2 * 4 * 32 * 4);
  // Default context = max positions (64); windowed: 2 global layers x 64 + 2 local layers x window 8 slots.
  assert.equal(d.context.tokens, 64);
  assert.equal(d.context.kvFullBytesFp32, 1024 * 64);
  assert.equal(d.context.kvWindowedBytesFp16, (2 * 64 + 2 * 8) * 2 * 32 * 2);
  assert.equal(d.context.weightsPlusKvFp32, d.parameters * 4 + 1024 * 64);
  assert.equal(d.context.prefillAttentionScoresBytesFp32, 4 * 64 * 64 * 4);
  const short = await describeCheckpointDir(dir, 5);
  assert.equal(short.context.kvWindowedBytesFp32, short.context.kvFullBytesFp32); // window 8 > 5 tokens
  await assert.rejects(describeCheckpointDir(dir, 65), spgCode("E_CONTEXT_LENGTH"));
  const text = formatDescription(d);
  assert.match(text, /layers: +4 \(2 global, 2 local; pattern GLGL\)/);
  assert.match(text, /heads: +4 x head dim 8/);
  assert.ok(text.includes(d.files[1].sha256));
});

test("dropped buffers and lm_head are counted separately by dtype", async () => {
  const dir = tempCheckpointWithConfig("config-B");
  tempDirs.push(dir);
  const tensors = fixtureTensors("config-B");
  const wte = tensors.find((t) => t.name === "transformer.wte.weight")!;
  await writeSafetensors(join(dir, "model.safetensors"), [
    ...tensors.map((t) => ({ ...t, dtype: "BF16" as const })),
    { ...wte, name: "lm_head.weight", dtype: "F16" },
    {
      name: "transformer.h.0.attn.attention.bias",
      dtype: "U8",
      shape: [1, 1, 40, 40],
      data: new Uint8Array(1600),
    },
    { name: "transformer.h.1.attn.attention.masked_bias", dtype: "F32", shape: [], data: [-1e9] },
  ]);
  const d = describeCheckpoint(await scanCheckpoint(dir), 40);
  assert.deepEqual(Object.keys(d.weightsByDtype), ["BF16"]);
  assert.equal(d.weightsByDtype.BF16!.bytes, d.parameters * 2);
  assert.deepEqual(d.droppedByDtype, {
    F16: { tensors: 1, elements: 300 * 48, bytes: 300 * 48 * 2 },
    U8: { tensors: 1, elements: 1600, bytes: 1600 },
    F32: { tensors: 1, elements: 1, bytes: 4 },
  });
  assert.ok(d.notes.length >= 2);
});

test("no DIR: the bundled model is described, or a clear E_CHECKPOINT_MISSING while it is not built", async () => {
  if (existsSync(bundledModelDir())) {
    const d = await describeCheckpointDir(undefined);
    assert.equal(d.dir, bundledModelDir());
    assert.ok(d.parameters > 0);
  } else {
    await assert.rejects(describeCheckpointDir(undefined), spgCode("E_CHECKPOINT_MISSING"));
  }
});

test("spg model inspect --json prints the description; errors go to stderr with a non-zero exit", async () => {
  const bin = join(packageRoot(), "bin", "run.js");
  const dir = fixtureDir("config-B");
  const { stdout } = await run(process.execPath, [bin, "model", "inspect", dir, "--json"]);
  assert.deepEqual(JSON.parse(stdout), JSON.parse(JSON.stringify(await describeCheckpointDir(dir))));

  const binOnly = tempCheckpointWithConfig("config-B");
  tempDirs.push(binOnly);
  writeFileSync(join(binOnly, "pytorch_model.bin"), "pickle");
  await assert.rejects(run(process.execPath, [bin, "model", "inspect", binOnly]), (error: unknown) => {
    const failed = error as { code: number; stderr: string };
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, /^E_PYTORCH_BIN_ONLY: /);
    assert.match(failed.stderr, /safe_serialization=True/);
    return true;
  });
});
