import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readSafetensorsHeader, writeSafetensors } from "../../src/model/safetensors.js";
import {
  firstNonFinite,
  SCAN_CHUNK_BYTES,
  type StoredTensor,
  scanBuffer,
} from "../../src/model/stored-weights.js";

const dir = mkdtempSync(join(tmpdir(), "spg-nonfinite-scan-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One F32 tensor of `elements` finite values, with NaN at `badIndex` (if any), as the checkpoint reader records it. */
async function storedTensor(name: string, elements: number, badIndex?: number): Promise<StoredTensor> {
  const data = Float32Array.from({ length: elements }, (_, i) => (i % 7) - 3);
  if (badIndex !== undefined) data[badIndex] = Number.NaN;
  const path = join(dir, `${name}.safetensors`);
  await writeSafetensors(path, [{ name, dtype: "F32", shape: [elements], data }]);
  const header = readSafetensorsHeader(path);
  const entry = header.tensors.get(name)!;
  return {
    name,
    file: `${name}.safetensors`,
    header,
    dtype: "F32",
    shape: [elements],
    elements,
    offset: header.dataStart + entry.begin,
    bytes: entry.end - entry.begin,
  };
}

test("firstNonFinite: one small scratch buffer finds the value in a later chunk at its flat index", async () => {
  const tensor = await storedTensor("late", 1000, 613);
  // 40 bytes: ten float32 values per read, so index 613 is in the 62nd chunk.
  const found = firstNonFinite(tensor, new ArrayBuffer(40));
  assert.equal(found?.index, 613);
  assert.ok(Number.isNaN(found?.value));
  assert.equal(firstNonFinite(await storedTensor("clean", 1000), new ArrayBuffer(40)), undefined);
});

test("firstNonFinite: the same scratch buffer serves tensors scanned one after another", async () => {
  const scratch = scanBuffer([await storedTensor("a", 300, 299), await storedTensor("b", 50, 0)]);
  // sized for the largest tensor, never above one chunk
  assert.equal(scratch.byteLength, Math.min(SCAN_CHUNK_BYTES, 300 * 4));
  assert.equal(firstNonFinite(await storedTensor("a", 300, 299), scratch)?.index, 299);
  assert.equal(firstNonFinite(await storedTensor("b", 50, 0), scratch)?.index, 0);
  assert.equal(firstNonFinite(await storedTensor("c", 300), scratch), undefined);
});
