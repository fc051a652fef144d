/** Hostile checkpoint inputs that must fail with a stable code before any large allocation or loop. */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { scanCheckpoint } from "../../src/model/checkpoint.js";
import { expandAttentionTypes } from "../../src/model/config.js";
import { firstDuplicateTopLevelKey, readSafetensorsHeader } from "../../src/model/safetensors.js";
import { fixtureDir, makeTempDir, removeDir, spgCode } from "./reader-helpers.js";

const tempDir = makeTempDir();
after(() => removeDir(tempDir));

/** A safetensors file whose header is exactly `headerText`, followed by `dataBytes` zero bytes. */
function writeSafetensors(path: string, headerText: string, dataBytes: number): void {
  const header = Buffer.from(headerText, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(path, Buffer.concat([length, header, Buffer.alloc(dataBytes)]));
}

test("a header naming one tensor twice is refused (JSON.parse would keep the last silently)", () => {
  const entry = '{"dtype":"F32","shape":[2],"data_offsets":[0,8]}';
  const path = join(tempDir, "dup.safetensors");
  writeSafetensors(path, `{"a":${entry},"a":${entry}}`, 8);
  assert.throws(() => readSafetensorsHeader(path), spgCode("E_TENSOR_DUPLICATE"));
  // Keys nested in values, and quoted braces and escapes, do not count as top-level keys.
  assert.equal(firstDuplicateTopLevelKey('{"a":{"a":1,"b":"}{\\"a\\""},"b":[{"a":2}]}'), undefined);
  assert.equal(firstDuplicateTopLevelKey('{"x\\"y":1,"b":{"c":"]"},"x\\"y":2}'), 'x"y');
});

test("a shard or weights path that is a directory is refused with a code, not EISDIR", () => {
  const dir = join(tempDir, "shard-dir");
  mkdirSync(join(dir, "sub"), { recursive: true });
  copyFileSync(join(fixtureDir("config-A"), "config.json"), join(dir, "config.json"));
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { a: "sub" } }));
  return assert.rejects(scanCheckpoint(dir), spgCode("E_CHECKPOINT_MISSING"));
});

test("attention_types is counted before it is expanded: a huge repeat fails at once", () => {
  // The old code looped 1e15 times (a hang, then out of memory) before comparing with num_layers.
  assert.throws(() => expandAttentionTypes([[["global"], 1e15]], "x", 4), spgCode("E_CONFIG_INVALID"));
});

test("config sizes implying more weight bytes than the files hold fail before anything is sized", async () => {
  for (const changes of [
    { num_layers: 1e9, attention_types: [[["global", "local"], 5e8]] },
    { hidden_size: 1e9, num_heads: 1e9 },
  ]) {
    const dir = join(tempDir, `huge-${Object.keys(changes)[0]}`);
    mkdirSync(dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(fixtureDir("config-A"), "config.json"), "utf8"));
    delete config.attention_layers;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ...changes }));
    copyFileSync(join(fixtureDir("config-A"), "model.safetensors"), join(dir, "model.safetensors"));
    await assert.rejects(scanCheckpoint(dir), spgCode("E_CONFIG_INVALID"));
  }
});

test("__metadata__ oddities: not an object of strings, or named twice, each a stable code; a valid one reads", () => {
  const entry = '{"dtype":"F32","shape":[2],"data_offsets":[0,8]}';
  const path = join(tempDir, "metadata.safetensors");
  for (const metadata of ["null", "[]", '{"n":1}', '{"n":{"x":"1"}}', '"pt"']) {
    writeSafetensors(path, `{"__metadata__":${metadata},"a":${entry}}`, 8);
    assert.throws(() => readSafetensorsHeader(path), spgCode("E_SAFETENSORS_HEADER"), metadata);
  }
  writeSafetensors(path, `{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"},"a":${entry}}`, 8);
  assert.throws(() => readSafetensorsHeader(path), spgCode("E_TENSOR_DUPLICATE"));
  writeSafetensors(path, `{"__metadata__":{"format":"pt"},"a":${entry}}`, 8);
  assert.deepEqual([...readSafetensorsHeader(path).tensors.keys()], ["a"]);
});

test("a shard named under two spellings is one file, read once; __metadata__ listed as a tensor is E_TENSOR_MISSING", async () => {
  const dir = join(tempDir, "spellings");
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(fixtureDir("config-A"), "config.json"), join(dir, "config.json"));
  const shard = "model-00001-of-00001.safetensors";
  copyFileSync(join(fixtureDir("config-A"), "model.safetensors"), join(dir, shard));
  const names = [...readSafetensorsHeader(join(dir, shard)).tensors.keys()];
  const weightMap = Object.fromEntries(names.map((name, i) => [name, i % 2 === 0 ? shard : `./${shard}`]));
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
  const scan = await scanCheckpoint(dir);
  assert.deepEqual([...scan.headers.keys()], [shard]);
  weightMap.__metadata__ = shard;
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
  await assert.rejects(scanCheckpoint(dir), spgCode("E_TENSOR_MISSING"));
});
