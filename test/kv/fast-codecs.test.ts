/**
 * The one-pass codecs against independent references: the group codec against its former
 * implementation (codes array + packBits/unpackBits, test/helpers/group-quant-reference.ts),
 * the branch-free fp16 conversion against the numpy port, byte for byte and bit for bit.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ByteReader, ByteWriter, halfBitsOfNormal } from "../../src/numeric/bytes.js";
import { floatBitsToHalfBits, floatToHalfBits } from "../../src/numeric/fp16.js";
import {
  channelGroups,
  decodeGroups,
  encodeGroups,
  encodeTransposedGroups,
  gatherTransposed,
  groupsBytes,
  type QuantGroups,
  tokenGroups,
} from "../../src/numeric/group-quant.js";
import { decodeGroupsReference, encodeGroupsReference } from "../helpers/group-quant-reference.js";
import { rng } from "./helpers.js";

/** Encodes with `encode` after `lead` bytes, so the streams also start at odd offsets. */
function encoded(
  encode: (w: ByteWriter, d: Float32Array, g: QuantGroups) => void,
  data: Float32Array,
  groups: QuantGroups,
  lead: number,
): Uint8Array {
  const writer = new ByteWriter(lead === 0 ? 3 : 256);
  for (let i = 0; i < lead; i++) writer.u8(0xa5);
  encode(writer, data, groups);
  writer.u8(0x5a); // a trailing byte: the codec must neither read nor write it
  return writer.finish();
}

function decoded(
  decode: (r: ByteReader, o: Float32Array, g: QuantGroups) => void,
  bytes: Uint8Array,
  groups: QuantGroups,
  lead: number,
  size: number,
): Float32Array {
  const reader = new ByteReader(bytes);
  for (let i = 0; i < lead; i++) reader.u8();
  const out = new Float32Array(size).fill(-7);
  decode(reader, out, groups);
  assert.equal(reader.u8(), 0x5a);
  reader.end();
  return out;
}

test("group codec: the same bytes and decoded values as the reference, every width 1..16, masks, empty and constant groups", () => {
  const next = rng(404);
  let cases = 0;
  for (let trial = 0; trial < 120; trial++) {
    const tokens = 1 + Math.floor(next() * 40);
    const dim = 1 + Math.floor(next() * 20);
    const groupSize = 1 + Math.floor(next() * 12);
    const size = tokens * dim;
    // spreads from tiny to large, some groups constant, some values exactly zero
    const spread = 10 ** (next() * 6 - 3);
    const data = Float32Array.from({ length: size }, (_, i) =>
      i % 7 === 3 ? 0 : i % 11 === 5 ? 1.5 : (next() - 0.3) * spread,
    );
    const widths = [1 + (trial % 16), 1 + Math.floor(next() * 16)];
    const alive = Uint8Array.from({ length: size }, () => (next() < 0.6 ? 1 : 0));
    const layouts: QuantGroups[] = [
      channelGroups(tokens, dim, groupSize, widths[0]),
      tokenGroups(tokens, dim, groupSize, (t) => widths[t % 2]),
      tokenGroups(tokens, dim, groupSize, (t) => widths[(t >> 1) % 2], alive),
      // every element dead in some groups: empty groups carry no metadata
      tokenGroups(tokens, dim, groupSize, () => widths[1], new Uint8Array(size).fill(1, 0, size >> 1)),
    ];
    for (const groups of layouts) {
      for (const lead of [0, 1]) {
        const reference = encoded(encodeGroupsReference, data, groups, lead);
        const fast = encoded(encodeGroups, data, groups, lead);
        assert.deepEqual(fast, reference, `trial ${trial} widths ${widths} lead ${lead}`);
        assert.equal(fast.length, lead + groupsBytes(groups) + 1);
        const back = decoded(decodeGroups, fast, groups, lead, size);
        const expected = decoded(decodeGroupsReference, reference, groups, lead, size);
        for (let i = 0; i < size; i++)
          assert.ok(Object.is(back[i], expected[i]), `trial ${trial} element ${i}`);
        cases++;
      }
    }
  }
  assert.equal(cases, 960);
});

test("group codec: values exactly on ties between codes round as the reference does (up)", () => {
  // Groups spanning 0..15 at 4 bits have scale 1: every x.5 is a tie, and 2^-30 either side is not.
  const values = Array.from({ length: 64 }, (_, i) => (i % 32) / 2);
  values.push(0.5 + 2 ** -30, 0.5 - 2 ** -30, 0, 15, 7.5 - 2 ** -20, 7.5 + 2 ** -20, 0, 15);
  const data = Float32Array.from(values);
  const groups = tokenGroups(9, 8, 8, () => 4);
  for (const lead of [0, 1]) {
    assert.deepEqual(
      encoded(encodeGroups, data, groups, lead),
      encoded(encodeGroupsReference, data, groups, lead),
    );
  }
});

test("channel groups over [tokens, dim] are token groups over the transpose: same bytes", () => {
  const next = rng(8);
  const tokens = 37;
  const dim = 12;
  const data = Float32Array.from({ length: tokens * dim }, () => next() * 3 - 1);
  const transposed = new Float32Array(tokens * dim);
  for (let t = 0; t < tokens; t++)
    for (let c = 0; c < dim; c++) transposed[c * tokens + t] = data[t * dim + c];
  assert.deepEqual(
    encoded(
      encodeGroups,
      transposed,
      tokenGroups(dim, tokens, 8, () => 4),
      0,
    ),
    encoded(encodeGroupsReference, data, channelGroups(tokens, dim, 8, 4), 0),
  );
});

test("quant's transposed key gather is the element-by-element transpose of the rows given", () => {
  const next = rng(11);
  const dim = 12;
  const slots = 40;
  const matrix = Float32Array.from({ length: slots * dim }, () => next() * 4 - 2);
  // empty, shorter than the eight-row step, a step and a tail, every slot, and a shuffled subset
  const cases = [
    [],
    [3, 4, 5],
    Array.from({ length: 19 }, (_, i) => i + 2),
    Array.from({ length: slots }, (_, i) => i),
    Array.from({ length: 27 }, () => Math.floor(next() * slots)),
  ];
  for (const list of cases) {
    const rows = Int32Array.from(list);
    const expected = new Float32Array(rows.length * dim);
    for (let i = 0; i < rows.length; i++)
      for (let c = 0; c < dim; c++) expected[c * rows.length + i] = matrix[rows[i] * dim + c];
    const got = gatherTransposed(matrix, rows, dim);
    assert.deepEqual(new Uint8Array(got.buffer), new Uint8Array(expected.buffer), `rows ${list.join(",")}`);
  }
});

test("quant's keys through the kernel's transpose: the bytes of the reference codec on the gathered transpose", () => {
  const next = rng(12);
  for (const [slots, dim, groupSize, bits] of [
    [320, 64, 32, 4],
    [45, 12, 8, 2],
    [9, 5, 3, 8],
  ]) {
    const matrix = Float32Array.from({ length: slots * dim }, () => (next() * 6 - 3) ** 3);
    // every slot, a run from the middle, a shuffled subset, none
    for (const list of [
      Array.from({ length: slots }, (_, i) => i),
      Array.from({ length: slots - 7 }, (_, i) => i + 4),
      Array.from({ length: Math.ceil(slots / 2) }, () => Math.floor(next() * slots)),
      [],
    ]) {
      const rows = Int32Array.from(list);
      const groups = tokenGroups(dim, rows.length, groupSize, () => bits);
      const writer = new ByteWriter(3);
      writer.u8(0xa5);
      encodeTransposedGroups(writer, matrix, rows, dim, groups);
      writer.u8(0x5a);
      const expected = encoded(encodeGroupsReference, gatherTransposed(matrix, rows, dim), groups, 1);
      assert.deepEqual(writer.finish(), expected, `${slots}x${dim}, ${rows.length} rows`);
    }
  }
  // a value fp16 cannot hold fails as the reference's codec does
  const matrix = Float32Array.from({ length: 40 * 8 }, (_, i) => Math.sin(i));
  matrix[17 * 8 + 3] = 1e6;
  const rows = Int32Array.from({ length: 30 }, (_, i) => i + 2);
  const groups = tokenGroups(8, rows.length, 8, () => 4);
  assert.throws(() => encodeTransposedGroups(new ByteWriter(), matrix, rows, 8, groups), {
    code: "E_KV_FP16_RANGE",
  });
  assert.throws(() => encodeGroups(new ByteWriter(), gatherTransposed(matrix, rows, 8), groups), {
    code: "E_KV_FP16_RANGE",
  });
});

test("group codec: a truncated stream fails as the reference does (E_KV_DECODE)", () => {
  const groups = tokenGroups(6, 5, 4, (t) => (t % 2 ? 3 : 8));
  const data = Float32Array.from({ length: 30 }, (_, i) => Math.sin(i));
  const writer = new ByteWriter();
  encodeGroups(writer, data, groups);
  const bytes = writer.finish();
  assert.throws(
    () => decodeGroups(new ByteReader(bytes.subarray(0, bytes.length - 1)), new Float32Array(30), groups),
    (error: { code?: string }) => error.code === "E_KV_DECODE",
  );
});

test("halfBitsOfNormal equals the numpy conversion on binary16's whole normal range", () => {
  // Every exponent of the fast path's range, both signs, mantissas at and around the ties,
  // carries into the exponent and pseudo-random ones.
  const next = rng(99);
  const raw = new Uint32Array(1);
  const f32 = new Float32Array(raw.buffer);
  let checked = 0;
  for (let exp = 113; exp <= 142; exp++) {
    for (const sign of [0, 0x80000000]) {
      const mantissas = [0, 0x1000, 0x0fff, 0x1001, 0x3000, 0x2000, 0x2fff, 0x7fffff, 0x7ff000, 0x7fefff];
      for (let k = 0; k < 2000; k++) mantissas.push(Math.floor(next() * 0x800000));
      for (const m of mantissas) {
        const f = (sign | (exp << 23) | m) >>> 0;
        const magnitude = f & 0x7fffffff;
        if (magnitude >= 0x477fe000) continue; // rounds to or past the overflow: the slow path's
        raw[0] = f;
        assert.equal(halfBitsOfNormal(f, magnitude), floatBitsToHalfBits(f), `0x${f.toString(16)}`);
        assert.equal(halfBitsOfNormal(f, magnitude), floatToHalfBits(f32[0]));
        checked++;
      }
    }
  }
  assert.ok(checked > 100000);
});

test("halfRows equals per-value half() on boundary values: subnormals, the normal edge, 65504, overflow fails", () => {
  const values = [
    0,
    -0,
    2 ** -24,
    2 ** -15,
    2 ** -14,
    -(2 ** -14),
    2 ** -14 * (1 - 2 ** -11),
    65504,
    -65504,
    65519.99,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1e-8,
  ];
  const src = Float32Array.from(values);
  const fast = new ByteWriter();
  fast.halfRows(src, [0], values.length);
  const slow = new ByteWriter();
  for (const x of src) slow.half(x);
  assert.deepEqual(fast.finish(), slow.finish());
  const overflow = new ByteWriter();
  assert.throws(
    () => overflow.halfRows(Float32Array.of(1, 65520), [0], 2),
    (error: { code?: string }) => error.code === "E_KV_FP16_RANGE",
  );
});
