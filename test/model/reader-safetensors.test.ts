import assert from "node:assert/strict";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  bfloat16BitsToFloat,
  encodeSafetensors,
  floatToBfloat16Bits,
  readSafetensorsHeader,
  readTensorFloat32,
  readTensorValues,
  writeSafetensors,
} from "../../src/model/safetensors.js";
import { floatToHalfBits, halfBitsToFloat } from "../../src/numeric/fp16.js";
import { fixtureDir, makeTempDir, removeDir, spgCode, writeRawSafetensors } from "./reader-helpers.js";

const tempDir = makeTempDir();
after(() => removeDir(tempDir));

/** IEEE 754 binary16 value by its closed form, written independently of the reader's table. */
function halfClosedForm(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (mantissa / 1024);
  if (exponent === 31) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
}

/** bfloat16 value by its closed form (8-bit exponent, 7-bit mantissa). */
function bfloat16ClosedForm(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 7) & 0xff;
  const mantissa = bits & 0x7f;
  if (exponent === 0) return sign * 2 ** -126 * (mantissa / 128);
  if (exponent === 255) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (exponent - 127) * (1 + mantissa / 128);
}

test("F16 decoding matches the IEEE closed form for all 65536 bit patterns", () => {
  for (let bits = 0; bits < 65536; bits++) {
    assert.ok(Object.is(halfBitsToFloat(bits), halfClosedForm(bits)), `bits 0x${bits.toString(16)}`);
  }
  // A few well-known patterns by hand.
  assert.equal(halfBitsToFloat(0x3c00), 1);
  assert.equal(halfBitsToFloat(0xc000), -2);
  assert.equal(halfBitsToFloat(0x7bff), 65504);
  assert.equal(halfBitsToFloat(0x0001), 2 ** -24);
  assert.ok(Object.is(halfBitsToFloat(0x8000), -0));
});

test("BF16 decoding matches the closed form for all 65536 bit patterns", () => {
  for (let bits = 0; bits < 65536; bits++) {
    assert.ok(Object.is(bfloat16BitsToFloat(bits), bfloat16ClosedForm(bits)), `bits 0x${bits.toString(16)}`);
  }
  assert.equal(bfloat16BitsToFloat(0x3f80), 1);
  assert.equal(bfloat16BitsToFloat(0x4049), 3.140625);
});

test("F16/BF16 encoding round-trips every value and rounds to nearest even", () => {
  for (let bits = 0; bits < 65536; bits++) {
    const half = halfClosedForm(bits);
    if (!Number.isNaN(half)) assert.equal(floatToHalfBits(half), bits, `half 0x${bits.toString(16)}`);
    else assert.ok(Number.isNaN(halfClosedForm(floatToHalfBits(half))));
    const bf = bfloat16ClosedForm(bits);
    if (!Number.isNaN(bf)) assert.equal(floatToBfloat16Bits(bf), bits, `bf16 0x${bits.toString(16)}`);
  }
  assert.equal(floatToHalfBits(1 + 2 ** -11), 0x3c00); // tie -> even (down)
  assert.equal(floatToHalfBits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(floatToHalfBits(65520), 0x7c00); // tie between 65504 and 65536 rounds to infinity
  assert.equal(floatToHalfBits(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal
  assert.equal(floatToHalfBits(3 * 2 ** -25), 0x0002); // tie between subnormals 1 and 2 -> 2
  assert.equal(floatToHalfBits(1e-30), 0x0000);
  assert.equal(floatToBfloat16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(floatToBfloat16Bits(1 + 3 * 2 ** -8), 0x3f82);
});

test("writeSafetensors output is read back exactly for every dtype, with metadata and 8-byte padding", async () => {
  const path = join(tempDir, "all-dtypes.safetensors");
  await writeSafetensors(
    path,
    [
      { name: "f32", dtype: "F32", shape: [2, 2], data: new Float32Array([1.5, -2, 3.25, 1e-8]) },
      { name: "f16", dtype: "F16", shape: [3], data: new Float32Array([1, -0.5, 65504]) },
      { name: "bf16", dtype: "BF16", shape: [3], data: new Float32Array([1, 3.140625, -(2 ** 100)]) },
      { name: "f64", dtype: "F64", shape: [2], data: new Float64Array([Math.PI, -1e300]) },
      { name: "bool", dtype: "BOOL", shape: [2, 2], data: [1, 0, 0, 1] },
      { name: "u8", dtype: "U8", shape: [3], data: new Uint8Array([0, 7, 255]) },
      { name: "i8", dtype: "I8", shape: [2], data: new Int8Array([-128, 127]) },
      { name: "i16", dtype: "I16", shape: [2], data: new Int16Array([-32768, 1234]) },
      { name: "i32", dtype: "I32", shape: [2], data: new Int32Array([-2147483648, 42]) },
      { name: "i64", dtype: "I64", shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 40n]) },
      { name: "scalar", dtype: "F32", shape: [], data: [-1e9] },
      { name: "empty", dtype: "F32", shape: [0, 4], data: [] },
    ],
    { format: "pt" },
  );
  const header = readSafetensorsHeader(path);
  assert.equal(header.headerBytes % 8, 0);
  assert.deepEqual(header.metadata, { format: "pt" });
  assert.equal(header.tensors.size, 12);
  assert.deepEqual([...readTensorFloat32(header, "f32")], [1.5, -2, 3.25, Math.fround(1e-8)]);
  assert.deepEqual([...readTensorFloat32(header, "f16")], [1, -0.5, 65504]);
  assert.deepEqual([...readTensorFloat32(header, "bf16")], [1, 3.140625, -(2 ** 100)]);
  assert.deepEqual([...(readTensorValues(header, "f64") as Float64Array)], [Math.PI, -1e300]);
  assert.deepEqual([...readTensorFloat32(header, "f64")], [Math.fround(Math.PI), Math.fround(-1e300)]);
  assert.deepEqual([...(readTensorValues(header, "bool") as Uint8Array)], [1, 0, 0, 1]);
  assert.deepEqual([...(readTensorValues(header, "u8") as Uint8Array)], [0, 7, 255]);
  assert.deepEqual([...(readTensorValues(header, "i8") as Int8Array)], [-128, 127]);
  assert.deepEqual([...(readTensorValues(header, "i16") as Int16Array)], [-32768, 1234]);
  assert.deepEqual([...(readTensorValues(header, "i32") as Int32Array)], [-2147483648, 42]);
  assert.deepEqual([...(readTensorValues(header, "i64") as BigInt64Array)], [-(2n ** 63n), 2n ** 40n]);
  assert.deepEqual([...readTensorFloat32(header, "scalar")], [-1e9]);
  assert.equal(readTensorFloat32(header, "empty").length, 0);
  // Bytes on disk, checked by hand: F16 1.0 is 0x3c00 little-endian, BF16 3.140625 is 0x4049.
  const raw = readFileSync(path);
  const f16 = header.tensors.get("f16")!;
  assert.deepEqual(
    [...raw.subarray(header.dataStart + f16.begin, header.dataStart + f16.begin + 2)],
    [0x00, 0x3c],
  );
  const bf16 = header.tensors.get("bf16")!;
  assert.deepEqual(
    [...raw.subarray(header.dataStart + bf16.begin + 2, header.dataStart + bf16.begin + 4)],
    [0x49, 0x40],
  );
  assert.throws(() => readTensorFloat32(header, "u8"), spgCode("E_TENSOR_DTYPE"));
  assert.throws(() => readTensorFloat32(header, "nope"), spgCode("E_TENSOR_MISSING"));
});

test("the Hugging Face fixture's header parses; wte's first values match Python's struct decode", () => {
  const header = readSafetensorsHeader(join(fixtureDir("config-A"), "model.safetensors"));
  assert.equal(header.headerBytes, 5480);
  assert.deepEqual(header.metadata, { format: "pt" });
  assert.equal(header.tensors.size, 2 + 4 * 13 + 2);
  const wte = header.tensors.get("transformer.wte.weight")!;
  assert.deepEqual(wte.shape, [512, 32]);
  assert.deepEqual([wte.begin, wte.end], [210176, 275712]);
  // Values decoded independently with Python's array('f').frombytes on the same bytes.
  const expected = [-0.0223437137901783, -0.0993180200457573, 0.03261474147439003, -0.17633755505084991];
  assert.deepEqual([...readTensorFloat32(header, "transformer.wte.weight").subarray(0, 4)], expected);
});

test("encodeSafetensors matches the fixture writer byte for byte", () => {
  // The fixture was written by a stand-in for the safetensors library (sorted names, __metadata__ first,
  // space padding); re-encoding its tensors must reproduce the file exactly.
  const path = join(fixtureDir("config-B"), "model.safetensors");
  const header = readSafetensorsHeader(path);
  const tensors = [...header.tensors.values()].map((e) => ({
    name: e.name,
    dtype: e.dtype,
    shape: e.shape,
    data: readTensorFloat32(header, e.name),
  }));
  assert.ok(Buffer.from(encodeSafetensors(tensors, header.metadata)).equals(readFileSync(path)));
});

const goodHeader = (extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, ...extra });

test("E_SAFETENSORS_TRUNCATED: a file cut short, a header length past the end, a file under 8 bytes", async () => {
  const path = join(tempDir, "truncated.safetensors");
  await writeSafetensors(path, [{ name: "w", dtype: "F32", shape: [4, 4], data: new Float32Array(16) }]);
  const size = readFileSync(path).length;
  truncateSync(path, size - 1);
  assert.throws(() => readSafetensorsHeader(path), spgCode("E_SAFETENSORS_TRUNCATED"));
  truncateSync(path, 100);
  assert.throws(() => readSafetensorsHeader(path), spgCode("E_SAFETENSORS_TRUNCATED"));
  writeFileSync(path, Buffer.from([1, 2, 3]));
  assert.throws(() => readSafetensorsHeader(path), spgCode("E_SAFETENSORS_TRUNCATED"));
});

test("E_SAFETENSORS_OFFSETS: overlapping, holed, mis-sized and trailing data", () => {
  const path = join(tempDir, "lying.safetensors");
  const cases: [string, number][] = [
    // overlap: b starts inside a
    [
      JSON.stringify({
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      }),
      12,
    ],
    // hole between a and b
    [
      JSON.stringify({
        a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
      }),
      12,
    ],
    // byte span disagrees with shape x dtype
    [JSON.stringify({ a: { dtype: "F16", shape: [2], data_offsets: [0, 8] } }), 8],
    // end before begin
    [JSON.stringify({ a: { dtype: "F32", shape: [0], data_offsets: [8, 0] } }), 8],
    // unindexed trailing bytes
    [goodHeader(), 16],
  ];
  for (const [header, dataBytes] of cases) {
    writeRawSafetensors(path, header, new Uint8Array(dataBytes));
    assert.throws(() => readSafetensorsHeader(path), spgCode("E_SAFETENSORS_OFFSETS"), header);
  }
  // Offsets past the end of the data area mean the file is truncated.
  writeRawSafetensors(path, goodHeader(), new Uint8Array(4));
  assert.throws(() => readSafetensorsHeader(path), spgCode("E_SAFETENSORS_TRUNCATED"));
});

test("E_SAFETENSORS_HEADER: bad JSON, non-object, bad fields, absurd header length; E_TENSOR_DTYPE: unknown dtype", () => {
  const path = join(tempDir, "bad-header.safetensors");
  for (const header of [
    "{not json",
    "[1, 2]",
    JSON.stringify({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 8] } }),
    JSON.stringify({ a: { dtype: "F32", shape: [2], data_offsets: [0] } }),
    JSON.stringify({ __metadata__: { n: 3 }, a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }),
  ]) {
    writeRawSafetensors(path, header, new Uint8Array(8));
    assert.throws(() => readSafetensorsHeader(path), spgCode("E_SAFETENSORS_HEADER"), header);
  }
  const huge = Buffer.alloc(16);
  huge.writeBigUInt64LE(2n ** 40n, 0);
  writeFileSync(path, huge);
  assert.throws(() => readSafetensorsHeader(path), spgCode("E_SAFETENSORS_HEADER"));
  writeFileSync(path, "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 526000000\n");
  assert.throws(
    () => readSafetensorsHeader(path),
    (error: unknown) => {
      spgCode("E_SAFETENSORS_HEADER")(error);
      assert.match((error as Error).message, /Git LFS pointer/);
      return true;
    },
  );
  writeRawSafetensors(
    path,
    JSON.stringify({ a: { dtype: "F8_E4M3", shape: [8], data_offsets: [0, 8] } }),
    new Uint8Array(8),
  );
  assert.throws(() => readSafetensorsHeader(path), spgCode("E_TENSOR_DTYPE"));
});
