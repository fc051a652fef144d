import assert from "node:assert/strict";
import { test } from "node:test";
import { readSubset, subsetEncodingBytes, writeSubset } from "../../src/kv/compressed.js";
import { indexBits, packBits, packedLength, unpackBits } from "../../src/numeric/bitpack.js";
import { ByteReader, ByteWriter } from "../../src/numeric/bytes.js";
import {
  floatToHalfBits,
  halfBitsToFloat,
  halfCeil,
  halfFloor,
  roundHalfInto,
  roundToHalf,
} from "../../src/numeric/fp16.js";
import {
  channelGroups,
  chooseGroupQuant,
  decodeGroups,
  dequantizeValue,
  encodeGroups,
  groupsBytes,
  type QuantGroups,
  quantizeValue,
  roundHalfUp,
  tokenGroups,
} from "../../src/numeric/group-quant.js";
import { rng } from "./helpers.js";

test("bit packing: known layout, LSB first", () => {
  // 1 | 2<<2 | 3<<4 = 0b00111001
  assert.deepEqual([...packBits([1, 2, 3], 2)], [0x39]);
  // 12-bit: 0xabc, 0x123 -> bytes bc, 3a, 12
  assert.deepEqual([...packBits([0xabc, 0x123], 12)], [0xbc, 0x3a, 0x12]);
  assert.equal(packedLength(10, 3), 4);
  assert.throws(() => packBits([4], 2), /does not fit/);
  assert.throws(() => packBits([0], 17), /1\.\.16/);
  assert.equal(indexBits(80), 7);
  assert.equal(indexBits(1), 1);
});

test("bit packing round-trips every width 1..16", () => {
  const next = rng(7);
  for (let bits = 1; bits <= 16; bits++) {
    const values = Array.from({ length: 37 }, () => Math.floor(next() * 2 ** bits));
    const packed = packBits(values, bits);
    assert.equal(packed.length, Math.ceil((37 * bits) / 8));
    assert.deepEqual([...unpackBits(packed, 37, bits)], values);
    // the Uint32Array path (whole codes per byte for 1, 2, 4, 8 bits) packs the same bytes
    assert.deepEqual([...packBits(Uint32Array.from(values), bits)], [...packed], `${bits} bits`);
  }
  assert.throws(() => packBits(Uint32Array.of(16), 4), /does not fit/);
});

test("fp16 encodes known bit patterns (round to nearest even)", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65520, 0x7c00], // halfway to the next binade rounds to even = overflow to inf
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even is 0
    [1.5 * 2 ** -25, 0x0001],
    [2 ** -14, 0x0400],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [1 + 2 ** -11, 0x3c00], // tie, 0x3c00 is even
    [1 + 3 * 2 ** -11, 0x3c02], // tie, rounds up to even
    [-0, 0x8000],
  ];
  for (const [x, bits] of cases) assert.equal(floatToHalfBits(x), bits, `fp16(${x})`);
  assert.equal(halfBitsToFloat(0x3555), 0.333251953125);
  assert.equal(halfBitsToFloat(0x7c00), Number.POSITIVE_INFINITY);
});

test("fp16 rows written and read at aligned and odd byte offsets equal per-value half() writes", () => {
  const next = rng(21);
  const src = Float32Array.from({ length: 40 }, () => (next() - 0.5) * 100);
  const rows = [3, 0, 4];
  for (const lead of [0, 1]) {
    const fast = new ByteWriter();
    const slow = new ByteWriter();
    for (let i = 0; i < lead; i++) {
      fast.u8(7);
      slow.u8(7);
    }
    fast.halfRows(src, rows, 8);
    for (const r of rows) for (let c = 0; c < 8; c++) slow.half(src[r * 8 + c]);
    const bytes = fast.finish();
    assert.deepEqual([...bytes], [...slow.finish()], `lead ${lead}`);
    const reader = new ByteReader(bytes);
    for (let i = 0; i < lead; i++) reader.u8();
    const back = new Float32Array(24);
    reader.halves(24, back, 0);
    rows.forEach((r, i) => {
      for (let c = 0; c < 8; c++) assert.equal(back[i * 8 + c], roundToHalf(src[r * 8 + c]));
    });
  }
});

test("fp16 decode then encode is the identity on all finite patterns", () => {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    assert.equal(floatToHalfBits(halfBitsToFloat(h)), h);
  }
});

test("roundHalfInto equals the bit conversion and back on every exponent, ties, subnormals and overflow", () => {
  // Every float32 exponent with mantissas that hit ties (low 13 bits 0x1000, kept bit odd or
  // even), just below and above them, carries into the exponent, and pseudo-random ones.
  const patterns: number[] = [];
  const next = rng(17);
  for (let exp = 0; exp < 255; exp++) {
    for (const sign of [0, 0x80000000]) {
      const mantissas = [0, 0x1000, 0x0fff, 0x1001, 0x3000, 0x2000, 0x7fffff, 0x7ff000, 0x7fefff];
      for (let k = 0; k < 24; k++) mantissas.push(Math.floor(next() * 0x800000));
      for (const m of mantissas) patterns.push((sign | (exp << 23) | m) >>> 0);
    }
  }
  const src = new Float32Array(Uint32Array.from(patterns).buffer);
  for (let i = 0; i < src.length; i++) {
    const one = src.subarray(i, i + 1);
    const out = new Float32Array(1);
    const expected = floatToHalfBits(one[0]);
    if ((expected & 0x7c00) === 0x7c00) {
      assert.equal(roundHalfInto(one, out), 0, `0x${patterns[i].toString(16)} cannot be held`);
      continue;
    }
    assert.equal(roundHalfInto(one, out), -1);
    assert.ok(Object.is(out[0], halfBitsToFloat(expected)), `0x${patterns[i].toString(16)}`);
  }
  // Whole arrays: the index of the first value fp16 cannot hold.
  assert.equal(roundHalfInto(Float32Array.of(1, 65504, 65519.99, 65520, 2), new Float32Array(5)), 3);
});

test("fp16 floor/ceil bracket x by adjacent representable values", () => {
  const next = rng(3);
  for (let i = 0; i < 500; i++) {
    const x = (next() * 2 - 1) * 100;
    const lo = halfFloor(x);
    const hi = halfCeil(x);
    assert.ok(lo <= x && x <= hi);
    assert.equal(roundToHalf(lo), lo);
    assert.equal(roundToHalf(hi), hi);
    if (lo !== hi) assert.equal(floatToHalfBits(hi) - floatToHalfBits(lo), x > 0 ? 1 : -1);
  }
});

test("asymmetric quantization: fp16-exact scale/zero, error <= scale/2 for every bit width", () => {
  const next = rng(11);
  for (const bits of [2, 3, 4, 8]) {
    for (let g = 0; g < 50; g++) {
      const values = Array.from({ length: 16 }, () => Math.fround((next() * 2 - 1) * 10 ** (next() * 3 - 1)));
      const q = chooseGroupQuant(Math.min(...values), Math.max(...values), bits);
      assert.equal(roundToHalf(q.scale), q.scale);
      assert.equal(roundToHalf(q.zero), q.zero);
      for (const x of values) {
        const code = quantizeValue(x, q, bits);
        assert.ok(code >= 0 && code < 2 ** bits);
        const err = Math.abs(dequantizeValue(code, q) - x);
        assert.ok(
          err <= q.scale / 2 + 1e-6 * Math.abs(x) + 1e-12,
          `bits ${bits}: err ${err} scale ${q.scale}`,
        );
      }
    }
  }
  const constant = chooseGroupQuant(0.25, 0.25, 4);
  assert.equal(dequantizeValue(quantizeValue(0.25, constant, 4), constant), 0.25);
});

test("group encoding round-trips within half a step and its byte count is the closed form", () => {
  const next = rng(5);
  const tokens = 10;
  const dim = 4;
  const data = Float32Array.from({ length: tokens * dim }, () => next() * 4 - 2);
  // keys: per channel, groups of 4 tokens -> 4 channels x 3 groups (4, 4, 2 tokens) at 4 bits
  const keys = channelGroups(tokens, dim, 4, 4);
  assert.equal(keys.bits.length, 12);
  // channel 1, second group: tokens 4..7
  assert.deepEqual([...keys.members.subarray(keys.starts[4], keys.starts[5])], [17, 21, 25, 29]);
  assert.equal(groupsBytes(keys), 12 * 4 + Math.ceil((40 * 4) / 8));
  const membersOf = (groups: QuantGroups, g: number) => [
    ...groups.members.subarray(groups.starts[g], groups.starts[g + 1]),
  ];
  const quantOf = (groups: QuantGroups, g: number) => {
    const vals = membersOf(groups, g).map((i) => data[i]);
    return chooseGroupQuant(Math.min(...vals), Math.max(...vals), groups.bits[g]);
  };
  // Encodes, checks the closed-form length, decodes (consuming every byte) and checks every
  // value is back within half its group's step.
  const roundTrip = (groups: QuantGroups): Uint8Array => {
    const writer = new ByteWriter();
    encodeGroups(writer, data, groups);
    const bytes = writer.finish();
    assert.equal(bytes.length, groupsBytes(groups));
    const out = new Float32Array(data.length);
    const reader = new ByteReader(bytes);
    decodeGroups(reader, out, groups);
    reader.end();
    for (let g = 0; g < groups.bits.length; g++) {
      const q = quantOf(groups, g);
      for (const i of membersOf(groups, g)) assert.ok(Math.abs(out[i] - data[i]) <= q.scale / 2 + 1e-6);
    }
    return bytes;
  };
  roundTrip(keys);
  // values: per token, groups of 3 channels (3 + 1), mixed 8/2 bits by token parity
  const values = tokenGroups(tokens, dim, 3, (t) => (t % 2 === 0 ? 8 : 2));
  assert.equal(values.bits.length, 20);
  assert.deepEqual([...values.members.subarray(values.starts[1], values.starts[2])], [3]);
  assert.equal(groupsBytes(values), 20 * 4 + (5 * 4 * 8) / 8 + Math.ceil((5 * 4 * 2) / 8));
  // Mixed widths: metadata, then one stream per width ascending (2 bits, then 8), each in group order
  // (codes from quantizeValue, packed by packBits); decoding puts every value back in its place.
  const mixed = roundTrip(values);
  const streams: Record<number, number[]> = { 2: [], 8: [] };
  for (let g = 0; g < values.bits.length; g++) {
    const q = quantOf(values, g);
    for (const i of membersOf(values, g))
      streams[values.bits[g]].push(quantizeValue(data[i], q, values.bits[g]));
  }
  const expectedStreams = [...packBits(streams[2], 2), ...packBits(streams[8], 8)];
  assert.deepEqual([...mixed.subarray(20 * 4)], expectedStreams);
});

test("subset storage picks the smaller of bitmask and index list, and round-trips", () => {
  // 80 slots: bitmask 1 + 10 bytes; 3 indices at 7 bits: 1 + 4 + 3 bytes
  assert.deepEqual(subsetEncodingBytes(3, 80), { tag: 2, bytes: 8 });
  assert.deepEqual(subsetEncodingBytes(40, 80), { tag: 1, bytes: 11 });
  assert.deepEqual(subsetEncodingBytes(80, 80), { tag: 0, bytes: 1 });
  // crossover: k indices cost 5 + ceil(7k/8) vs 11: k = 6 -> 11 (tie -> bitmask), k = 5 -> 10
  assert.equal(subsetEncodingBytes(5, 80).tag, 2);
  assert.equal(subsetEncodingBytes(6, 80).tag, 1);
  for (const members of [
    [0, 5, 79],
    Array.from({ length: 40 }, (_, i) => 2 * i),
    Array.from({ length: 80 }, (_, i) => i),
    [],
  ]) {
    const writer = new ByteWriter();
    writeSubset(writer, members, 80);
    const bytes = writer.finish();
    assert.equal(bytes.length, subsetEncodingBytes(members.length, 80).bytes);
    const reader = new ByteReader(bytes);
    assert.deepEqual([...readSubset(reader, 80)], members);
    reader.end();
  }
});

test("roundHalfUp equals Math.round: ties, the values just below a half, negatives, random", () => {
  const f64 = new Float64Array(1);
  const bits = new BigInt64Array(f64.buffer);
  const cases = [
    0,
    -0,
    0.5,
    1.5,
    2.5,
    -0.5,
    -1.5,
    -2.5,
    0.49999999999999994,
    -0.49999999999999994,
    2 ** 52 - 1,
  ];
  // Every double within 3 ulps of k + 0.5 and of -(k + 0.5).
  for (let k = 0; k < 2000; k++) {
    for (const sign of [1, -1]) {
      f64[0] = sign * (k + 0.5);
      const center = bits[0];
      for (let step = -3n; step <= 3n; step++) {
        bits[0] = center + step;
        cases.push(f64[0]);
      }
    }
  }
  let seed = 5;
  for (let i = 0; i < 100_000; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    cases.push((seed / 2147483648 - 0.5) * 2 ** ((i % 40) - 10));
  }
  for (const v of cases) assert.equal(roundHalfUp(v), Math.round(v) + 0, `${v}`);
});
