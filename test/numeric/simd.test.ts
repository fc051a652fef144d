/**
 * The WebAssembly kernels (src/numeric/simd) against the TypeScript loops they stand in for,
 * bit for bit and byte for byte: fp16 both ways (every binary16 pattern, float32 patterns of
 * every exponent, the edges), rounding to fp16, and the group codec on random, tie and
 * boundary data at the sizes the methods use and past the kernels' scratch. And the committed
 * module is what the text compiles to.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { kernelsSource, kernelsTextPath } from "../../scripts/wasm-source.js";
import { magnitudeCutScalar } from "../../src/kv/methods/spg/elementwise.js";
import { ByteReader, ByteWriter, floatsOfHalvesScalar, halfRowsScalar } from "../../src/numeric/bytes.js";
import { roundHalfInto, roundHalfIntoScalar } from "../../src/numeric/fp16.js";
import {
  channelGroups,
  decodeGroups,
  decodeGroupsScalar,
  encodeGroups,
  encodeGroupsScalar,
  groupsBytes,
  type QuantGroups,
  tokenGroups,
} from "../../src/numeric/group-quant.js";
import {
  gramMatrix,
  gramMatrixScalar,
  smallestEigenvalueSumBound,
  smallestEigenvalueSumBoundScalar,
} from "../../src/numeric/lowrank.js";
import {
  floatsOfHalves,
  halvesOfRange,
  KERNELS_USABLE,
  magnitudeCutOf,
  SCRATCH_ELEMENTS,
} from "../../src/numeric/simd/kernels.js";
import { KERNELS_WASM_BASE64 } from "../../src/numeric/simd/kernels-wasm.js";
import { rng } from "../kv/helpers.js";

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** float32 bit patterns: every exponent with edge and random mantissas, both signs, and the special values. */
function floatPatterns(seed: number, perExponent: number): Float32Array {
  const next = rng(seed);
  const raw: number[] = [];
  for (let exp = 0; exp <= 255; exp++) {
    for (const sign of [0, 0x80000000]) {
      const mantissas = [
        0, 1, 0x1000, 0x0fff, 0x1001, 0x2000, 0x3000, 0x7fffff, 0x7ff000, 0x7fefff, 0x400000,
      ];
      for (let k = 0; k < perExponent; k++) mantissas.push(Math.floor(next() * 0x800000));
      for (const m of mantissas) raw.push((sign | (exp << 23) | m) >>> 0);
    }
  }
  // around binary16's edges: the smallest subnormal's half, the normal minimum, 65504, overflow
  for (const edge of [0x33000000, 0x38800000, 0x477fe000, 0x477fdfff, 0x477fefff, 0x38000000])
    for (let d = -3; d <= 3; d++) raw.push(edge + d, (edge + d) | 0x80000000);
  return new Float32Array(Uint32Array.from(raw, (x) => x >>> 0).buffer);
}

test("the committed WebAssembly is what kernels.wat compiles to (run scripts/compile-wasm after editing it)", async () => {
  const compiled = await kernelsSource(readFileSync(kernelsTextPath(), "utf8"));
  assert.deepEqual(Buffer.from(compiled), Buffer.from(KERNELS_WASM_BASE64, "base64"));
});

test("the kernels run on this machine (little-endian): the tests below compare them, not the fallback", () => {
  assert.equal(KERNELS_USABLE, true);
});

test("fp16 to float32: every binary16 pattern gives the table's float32 bits (NaN, infinities, subnormals, -0)", () => {
  const codes = Uint16Array.from({ length: 0x10000 }, (_, h) => h);
  const kernel = new Float32Array(0x10000).fill(7);
  const scalar = new Float32Array(0x10000).fill(7);
  floatsOfHalves(codes, kernel, 0);
  floatsOfHalvesScalar(codes, scalar, 0);
  assert.deepEqual(bitsOf(kernel), bitsOf(scalar));
  // through the reader, at an odd offset and a length that leaves a tail
  const bytes = new Uint8Array(1 + 2 * 1003);
  bytes.set(new Uint8Array(codes.buffer, 2 * 4000, 2 * 1003), 1);
  const reader = new ByteReader(bytes);
  reader.u8();
  const out = new Float32Array(1005);
  reader.halves(1003, out, 2);
  assert.deepEqual(bitsOf(out.subarray(2)), bitsOf(scalar.subarray(4000, 5003)));
});

test("float32 to fp16: the kernel's bits and first unfit index are the numpy port's, on every exponent", () => {
  const values = floatPatterns(5, 300);
  // fit values only, then each unfit value placed at several offsets (vector steps and the tail)
  const fit = values.filter(
    (x) => Math.abs(x) <= 65504 || (Number.isNaN(x) === false && Math.abs(x) < 65520),
  );
  const kernel = new Uint16Array(fit.length);
  const scalar = new Uint16Array(fit.length);
  assert.equal(halvesOfRange(fit, 0, fit.length, kernel, 0), -1);
  assert.equal(halfRowsScalar(bitsOf(fit), [0], fit.length, scalar), -1);
  assert.deepEqual(kernel, scalar);
  for (const bad of [65520, Number.POSITIVE_INFINITY, Number.NaN, -1e9]) {
    for (const at of [0, 5, 8, 13, 31]) {
      const src = fit.slice(0, 37);
      src[at] = bad;
      assert.equal(halvesOfRange(src, 0, 37, new Uint16Array(37), 0), at, `${bad} at ${at}`);
      assert.equal(halfRowsScalar(bitsOf(src), [0], 37, new Uint16Array(37)), at);
    }
  }
  // rows gathered in runs, through the writer, against the scalar rows
  const rows = [0, 1, 2, 7, 9, 10, 3];
  const width = 24;
  const writer = new ByteWriter(1);
  writer.u8(1); // an odd start: the staged copy
  writer.halfRows(fit, rows, width);
  const expected = new Uint16Array(rows.length * width);
  halfRowsScalar(bitsOf(fit), rows, width, expected);
  assert.deepEqual(writer.finish().subarray(1), new Uint8Array(expected.buffer));
  // rows far from the source's start (the kernel copies only the span the runs reach), out of
  // order, and a value binary16 cannot hold inside that span: the scalar's index
  const later = [40, 41, 42, 57, 44, 60];
  const spanWriter = new ByteWriter(2);
  spanWriter.halfRows(fit, later, width);
  const spanExpected = new Uint16Array(later.length * width);
  halfRowsScalar(bitsOf(fit), later, width, spanExpected);
  assert.deepEqual(spanWriter.finish(), new Uint8Array(spanExpected.buffer));
  const unfitSrc = fit.slice(0, 61 * width);
  unfitSrc[57 * width + 5] = 1e9;
  assert.throws(() => new ByteWriter().halfRows(unfitSrc, later, width), /1000000000/);
  assert.equal(
    halfRowsScalar(bitsOf(unfitSrc), later, width, new Uint16Array(later.length * width)),
    57 * width + 5,
  );
});

test("rounding to fp16: the kernel's float32 bits and unfit index are roundHalfIntoScalar's, past the scratch too", () => {
  const values = floatPatterns(6, 200);
  const fit = values.filter((x) => Math.abs(x) < 65520);
  for (const src of [
    fit,
    Float32Array.from({ length: SCRATCH_ELEMENTS + 77 }, (_, i) => fit[i % fit.length]),
  ]) {
    const kernel = new Float32Array(src.length);
    const scalar = new Float32Array(src.length);
    assert.equal(roundHalfInto(src, kernel), -1);
    assert.equal(roundHalfIntoScalar(src, scalar), -1);
    assert.deepEqual(bitsOf(kernel), bitsOf(scalar));
  }
  const big = Float32Array.from({ length: SCRATCH_ELEMENTS + 40 }, (_, i) => i % 100);
  big[SCRATCH_ELEMENTS + 9] = Number.NaN;
  assert.equal(roundHalfInto(big, new Float32Array(big.length)), SCRATCH_ELEMENTS + 9);
  assert.equal(roundHalfIntoScalar(big, new Float32Array(big.length)), SCRATCH_ELEMENTS + 9);
});

function encodeWith(
  encode: (w: ByteWriter, d: Float32Array, g: QuantGroups) => void,
  data: Float32Array,
  groups: QuantGroups,
): Uint8Array {
  const writer = new ByteWriter(1);
  writer.u8(0xa5); // the region starts at an odd offset
  encode(writer, data, groups);
  return writer.finish();
}

function decodeWith(
  decode: (r: ByteReader, o: Float32Array, g: QuantGroups) => void,
  bytes: Uint8Array,
  groups: QuantGroups,
  size: number,
): Float32Array {
  const reader = new ByteReader(bytes);
  reader.u8();
  const out = new Float32Array(size).fill(-3); // elements outside the members stay as they are
  decode(reader, out, groups);
  reader.end();
  return out;
}

function assertSameCodec(data: Float32Array, groups: QuantGroups, what: string): void {
  const kernel = encodeWith(encodeGroups, data, groups);
  const scalar = encodeWith(encodeGroupsScalar, data, groups);
  assert.deepEqual(kernel, scalar, what);
  assert.equal(kernel.length, 1 + groupsBytes(groups));
  const back = decodeWith(decodeGroups, kernel, groups, data.length);
  const expected = decodeWith(decodeGroupsScalar, scalar, groups, data.length);
  assert.deepEqual(bitsOf(back), bitsOf(expected), what);
}

test("group codec: the kernel writes the scalar loop's bytes and decodes its floats, at the methods' shapes", () => {
  const next = rng(77);
  for (let trial = 0; trial < 40; trial++) {
    const tokens = 1 + Math.floor(next() * 400);
    const dim = [64, 32, 7, 128][trial % 4];
    const size = tokens * dim;
    const spread = 10 ** (next() * 8 - 4);
    const data = Float32Array.from({ length: size }, (_, i) =>
      i % 97 === 3 ? 0 : i % 89 === 5 ? -0 : (next() - 0.4) * spread,
    );
    const widths = [2, 4, 8, 3, 16][trial % 5];
    const alive = Uint8Array.from({ length: size }, () => (next() < 0.7 ? 1 : 0));
    const layouts: [string, QuantGroups][] = [
      ["token", tokenGroups(tokens, dim, 32, () => widths)],
      ["token mixed", tokenGroups(tokens, dim, 32, (t) => (t % 3 === 0 ? 8 : widths))],
      ["channel", channelGroups(tokens, dim, 32, widths)],
      ["masked", tokenGroups(tokens, dim, 32, (t) => (t % 2 ? 4 : widths), alive)],
      ["odd groups", tokenGroups(tokens, dim, 5 + (trial % 11), () => widths)],
    ];
    for (const [name, groups] of layouts)
      assertSameCodec(data, groups, `trial ${trial} ${name} width ${widths}`);
  }
});

test("group codec: ties, constant groups, signed zeros and the fp16 edges, kernel against scalar", () => {
  // scale 1 over 0..15 at 4 bits: every x.5 a tie, and values a hair either side
  const ties = Float32Array.from({ length: 256 }, (_, i) =>
    i % 32 === 0
      ? 0
      : i % 32 === 31
        ? 15
        : ((i % 32) % 15) + 0.5 + [0, 2 ** -30, -(2 ** -30), 2 ** -20][i % 4],
  );
  assertSameCodec(
    ties,
    tokenGroups(8, 32, 32, () => 4),
    "ties",
  );
  const constant = new Float32Array(128).fill(1.25);
  assertSameCodec(
    constant,
    tokenGroups(4, 32, 32, () => 4),
    "constant",
  );
  const zeros = Float32Array.from({ length: 64 }, (_, i) => (i % 2 ? -0 : 0));
  zeros[40] = 3;
  assertSameCodec(
    zeros,
    tokenGroups(2, 32, 32, () => 8),
    "signed zeros",
  );
  const edges = Float32Array.from(
    { length: 64 },
    (_, i) => (i % 2 ? 65504 : -65504) * (i % 3 ? 1 : 2 ** -30),
  );
  assertSameCodec(
    edges,
    tokenGroups(2, 32, 32, () => 2),
    "edges",
  );
  const nan = Float32Array.from({ length: 64 }, (_, i) => (i === 9 ? Number.NaN : i));
  assertSameCodec(
    nan,
    tokenGroups(2, 32, 32, () => 8),
    "a NaN among values",
  );
});

test("group codec: a value fp16 cannot hold fails the same way through the kernel; past the scratch the loop runs", () => {
  const data = Float32Array.from({ length: 128 }, (_, i) => i);
  data[70] = 70000;
  const groups = tokenGroups(4, 32, 32, () => 4);
  const failure = (encode: typeof encodeGroups) => {
    try {
      encode(new ByteWriter(), data, groups);
    } catch (error) {
      return `${(error as { code?: string }).code}: ${(error as Error).message}`;
    }
    return "no error";
  };
  assert.match(failure(encodeGroups), /^E_KV_FP16_RANGE: /);
  assert.equal(failure(encodeGroups), failure(encodeGroupsScalar));
  const large = Float32Array.from({ length: SCRATCH_ELEMENTS + 64 }, (_, i) => Math.sin(i));
  assertSameCodec(
    large,
    tokenGroups(large.length / 64, 64, 32, () => 4),
    "past the scratch",
  );
});

test("Gram matrices and the Cholesky bound: the kernels' float64 bits are the scalar loops'", () => {
  const next = rng(31);
  for (let trial = 0; trial < 24; trial++) {
    const rows = 1 + Math.floor(next() * 300);
    const cols = [64, 32, 8, 4][trial % 4];
    const scale = 10 ** (next() * 4 - 2);
    const block = Float32Array.from({ length: rows * cols }, (_, i) =>
      i % 13 === 0 ? 0 : (next() - 0.5) * scale,
    );
    const gram = gramMatrix(block, rows, cols);
    assert.deepEqual(
      new BigUint64Array(gram.buffer),
      new BigUint64Array(gramMatrixScalar(block, rows, cols).buffer),
      `trial ${trial}`,
    );
    let trace = 0;
    for (let i = 0; i < cols; i++) trace += gram[i * cols + i];
    for (const shift of [1e-8 * trace, 1e-3 * trace, trace]) {
      const count = 1 + (trial % cols);
      const kernel = smallestEigenvalueSumBound(gram, cols, count, shift);
      assert.ok(
        Object.is(kernel, smallestEigenvalueSumBoundScalar(gram, cols, count, shift)),
        `trial ${trial}`,
      );
    }
  }
  // a pivot that is not positive (an indefinite matrix): -Infinity from both
  const indefinite = Float64Array.from([1, 2, 2, 1]);
  assert.equal(smallestEigenvalueSumBound(indefinite, 2, 1, 1e-9), Number.NEGATIVE_INFINITY);
  assert.equal(smallestEigenvalueSumBoundScalar(indefinite, 2, 1, 1e-9), Number.NEGATIVE_INFINITY);
});

test("spg's magnitude cut: the kernel's cut and survivor count are the scalar loop's (zeros, NaN, values at the cut, odd lengths)", () => {
  const next = rng(53);
  for (let trial = 0; trial < 60; trial++) {
    const length = trial === 0 ? 0 : 1 + Math.floor(next() * 700);
    const spread = 10 ** (next() * 8 - 4);
    const block = Float32Array.from({ length }, (_, i) =>
      i % 17 === 2 ? 0 : i % 19 === 4 ? -0 : (next() - 0.5) * spread,
    );
    if (trial % 5 === 1 && length > 3) block[length - 2] = Number.NaN;
    if (trial % 7 === 2 && length > 8) block[3] = -Math.fround(1e-3 * spread);
    for (const threshold of [0.001, 0.25, 1, 1e-9, 0.5]) {
      const scalar = magnitudeCutScalar(block, threshold);
      const kernel = magnitudeCutOf(block, threshold);
      assert.ok(kernel !== null, "the kernel runs at this size");
      assert.ok(Object.is(kernel.cut, scalar.cut), `trial ${trial} threshold ${threshold} cut`);
      assert.equal(kernel.count, scalar.count, `trial ${trial} threshold ${threshold} count`);
    }
  }
  // a cut that a float32 value meets exactly, and the float32 values either side of it
  const at = Float32Array.from([4, 1, -1, Math.fround(1 + 2 ** -23), Math.fround(1 - 2 ** -24), 0, -0, 2]);
  const exact = magnitudeCutOf(at, 0.25);
  assert.deepEqual(exact, magnitudeCutScalar(at, 0.25));
  assert.equal(exact?.count, 5, "4, 1, -1, 1 + ulp and 2 survive; 1 - ulp/2 and the zeros do not");
  // an all-zero block: cut 0, and zeros never survive
  assert.deepEqual(magnitudeCutOf(new Float32Array(9), 0.001), { cut: 0, count: 0 });
  // past the scratch the caller's loop runs
  assert.equal(magnitudeCutOf(new Float32Array(SCRATCH_ELEMENTS + 1), 0.001), null);
});

test("token groups without a mask are the groups of an all-ones mask (the members' fast path)", () => {
  for (const [tokens, dim, groupSize] of [
    [80, 64, 32],
    [7, 5, 3],
    [1, 130, 32],
    [0, 8, 4],
  ]) {
    const widths = (t: number) => (t % 3 === 0 ? 8 : 4);
    const fast = tokenGroups(tokens, dim, groupSize, widths);
    const masked = tokenGroups(tokens, dim, groupSize, widths, new Uint8Array(tokens * dim).fill(1));
    assert.deepEqual(fast.members, masked.members);
    assert.deepEqual(fast.starts, masked.starts);
    assert.deepEqual(fast.bits, masked.bits);
    assert.equal(fast.identity, true);
  }
});

test("token groups with a mask: each token's runs of groupSize channels, the live elements in order", () => {
  const next = rng(23);
  for (const [tokens, dim, groupSize, live] of [
    [80, 64, 32, 0.3],
    [7, 5, 3, 0.5],
    [9, 130, 32, 0.9],
    [4, 8, 4, 0],
  ]) {
    const mask = Uint8Array.from({ length: tokens * dim }, () => (next() < live ? 1 : 0));
    const widths = (t: number) => (t % 2 === 0 ? 2 : 8);
    const members: number[] = [];
    const starts: number[] = [];
    const bits: number[] = [];
    for (let t = 0; t < tokens; t++)
      for (let c0 = 0; c0 < dim; c0 += groupSize) {
        starts.push(members.length);
        bits.push(widths(t));
        for (let c = c0; c < Math.min(c0 + groupSize, dim); c++)
          if (mask[t * dim + c]) members.push(t * dim + c);
      }
    starts.push(members.length);
    const groups = tokenGroups(tokens, dim, groupSize, widths, mask);
    assert.deepEqual(groups.members, Int32Array.from(members));
    assert.deepEqual(groups.starts, Int32Array.from(starts));
    assert.deepEqual(groups.bits, Uint8Array.from(bits));
    assert.equal(groups.identity, false);
  }
});
