/**
 * Little-endian byte writer and bounds-checked reader: the one byte layout every stored form
 * (KV cache layers, compressed weight tensors) is written in. fp16 goes through the shared
 * codec (numeric/fp16.ts); a value fp16 cannot hold fails instead of becoming Infinity.
 */
import { SpgError } from "../errors.js";
import { floatBitsToHalfBits, floatToHalfBits, halfBitsToFloat } from "./fp16.js";
import { floatsOfHalves as floatsOfHalvesKernel, halvesOfRuns, KERNELS_USABLE } from "./simd/kernels.js";

/** Whether typed arrays are little-endian here, so fp16 can be written and read as Uint16Array. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** The error for a value fp16 cannot hold (overflow or NaN). */
export function fp16RangeError(x: number): SpgError {
  return new SpgError("E_KV_FP16_RANGE", `cache value ${x} cannot be stored as fp16`, {
    fix: "count the cache in fp32 (kv.baselineDtype: fp32) or check the model for overflowing activations",
  });
}

/** float32 bits of the smallest normal binary16 value, 2^-14. */
const HALF_NORMAL_MIN_F32 = 0x38800000;
/** float32 magnitudes below this round to at most 65504 (the largest finite binary16). */
const HALF_ROUNDS_BELOW_MAX_F32 = 0x477fe000;

/**
 * floatBitsToHalfBits for a float32 whose magnitude lies in binary16's normal range and rounds
 * below its overflow (HALF_NORMAL_MIN_F32 <= magnitude < HALF_ROUNDS_BELOW_MAX_F32): the
 * mantissa cut to 10 bits, ties to even (+ 0xfff, + 1 more when the kept lowest bit is odd;
 * a carry moves into the exponent), the exponent rebased from 127 to 15. The branch-free form
 * of the conversion's normal case, tested against it.
 */
export function halfBitsOfNormal(f: number, magnitude: number): number {
  return (
    (((magnitude + 0x0fff + ((magnitude >>> 13) & 1)) >>> 13) - ((127 - 15) << 10)) | ((f >>> 16) & 0x8000)
  );
}

/**
 * raw[start, start+count) (float32 bits) as binary16 bits into out from `at`. Returns the index
 * (into raw) of the first value binary16 cannot hold, or -1. A function of its own, over plain
 * ranges, so V8 compiles one tight loop for it.
 */
function halvesOfRange(raw: Uint32Array, start: number, count: number, out: Uint16Array, at: number): number {
  for (let i = start, o = at; i < start + count; i++, o++) {
    const f = raw[i];
    const magnitude = f & 0x7fffffff;
    if (magnitude >= HALF_NORMAL_MIN_F32 && magnitude < HALF_ROUNDS_BELOW_MAX_F32) {
      out[o] = halfBitsOfNormal(f, magnitude);
      continue;
    }
    const bits = floatBitsToHalfBits(f);
    if ((bits & 0x7c00) === 0x7c00) return i;
    out[o] = bits;
  }
  return -1;
}

/** Writes src[start, start+count) as little-endian fp16 at buf[o]; returns the new offset. */
function writeHalfRange(
  buf: Uint8Array,
  o: number,
  raw: Uint32Array,
  src: Float32Array,
  start: number,
  count: number,
): number {
  for (let i = start; i < start + count; i++) {
    const bits = floatBitsToHalfBits(raw[i]);
    if ((bits & 0x7c00) === 0x7c00) throw fp16RangeError(src[i]);
    buf[o++] = bits & 0xff;
    buf[o++] = bits >>> 8;
  }
  return o;
}

/**
 * codes (binary16 bits) as float32 into out from `at`. The loop alone in a function: V8
 * compiles long loops on the stack (OSR), and code after such a loop that had not yet run sent
 * ByteReader.halves back to the interpreter at nearly every call.
 */
export function floatsOfHalvesScalar(codes: Uint16Array, out: Float32Array, at: number): void {
  for (let i = 0; i < codes.length; i++) out[at + i] = halfBitsToFloat(codes[i]);
}

/**
 * The given rows (of `width` elements) of src as binary16 bits into out, in order; runs of
 * consecutive rows (every row of an uncompressed head) convert as one range. The index into
 * src of the first value binary16 cannot hold, or -1.
 */
export function halfRowsScalar(
  raw: Uint32Array,
  rows: ArrayLike<number>,
  width: number,
  out: Uint16Array,
): number {
  let o = 0;
  for (let r = 0; r < rows.length; ) {
    let end = r + 1;
    while (end < rows.length && rows[end] === rows[end - 1] + 1) end++;
    const count = (end - r) * width;
    const unfit = halvesOfRange(raw, rows[r] * width, count, out, o);
    if (unfit >= 0) return unfit;
    o += count;
    r = end;
  }
  return -1;
}

/** halfRowsScalar through the WebAssembly kernel (src/numeric/simd): the same bits. */
function halfRowsKernel(src: Float32Array, rows: ArrayLike<number>, width: number, out: Uint16Array): number {
  const runStarts: number[] = [];
  const runCounts: number[] = [];
  for (let r = 0; r < rows.length; ) {
    let end = r + 1;
    while (end < rows.length && rows[end] === rows[end - 1] + 1) end++;
    runStarts.push(rows[r] * width);
    runCounts.push((end - r) * width);
    r = end;
  }
  return halvesOfRuns(src, runStarts, runCounts, runStarts.length, out, 0);
}

/** Little-endian byte writer that grows as needed. */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;

  /** `capacity`: the bytes expected (exact when known: finish() then returns the buffer itself, no copy). */
  constructor(capacity = 256) {
    this.buffer = new Uint8Array(Math.max(1, capacity));
    this.view = new DataView(this.buffer.buffer);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  u8(value: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
  }

  u16(value: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, value, true);
    this.length += 2;
  }

  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value, true);
    this.length += 4;
  }

  f32(value: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, value, true);
    this.length += 4;
  }

  half(value: number): void {
    this.u16(floatToHalfBits(value));
  }

  /** count elements of src from start as fp16, failing on values fp16 cannot hold. */
  halves(src: Float32Array, start: number, count: number): void {
    this.reserve(2 * count);
    const raw = new Uint32Array(src.buffer, src.byteOffset, src.length);
    this.length = writeHalfRange(this.buffer, this.length, raw, src, start, count);
  }

  /**
   * Rows (of `width` elements) of src as fp16, in the order given. One pass with one view of
   * src's bits: a view per row made fp16 caches allocation-bound.
   */
  halfRows(src: Float32Array, rows: ArrayLike<number>, width: number): void {
    this.reserve(2 * width * rows.length);
    const raw = new Uint32Array(src.buffer, src.byteOffset, src.length);
    if (LITTLE_ENDIAN) {
      // one 16-bit store per value instead of two byte stores: in place when aligned, else
      // staged and copied (a memcpy)
      const aligned = this.length % 2 === 0;
      const out = aligned
        ? new Uint16Array(this.buffer.buffer, this.length, width * rows.length)
        : new Uint16Array(width * rows.length);
      const unfit = KERNELS_USABLE
        ? halfRowsKernel(src, rows, width, out)
        : halfRowsScalar(raw, rows, width, out);
      if (unfit >= 0) throw fp16RangeError(src[unfit]);
      if (!aligned) this.buffer.set(new Uint8Array(out.buffer), this.length);
      this.length += 2 * width * rows.length;
      return;
    }
    let o = this.length;
    for (let r = 0; r < rows.length; r++)
      o = writeHalfRange(this.buffer, o, raw, src, rows[r] * width, width);
    this.length = o;
  }

  /** count elements of src from start as little-endian float32. */
  floats(src: Float32Array, start: number, count: number): void {
    this.reserve(4 * count);
    for (let i = start; i < start + count; i++) {
      this.view.setFloat32(this.length, src[i], true);
      this.length += 4;
    }
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  /**
   * The next `count` bytes, zeroed, for the caller to fill at once (a packed stream built in
   * place): the view is valid until the next write, which may move the buffer.
   */
  claim(count: number): Uint8Array {
    this.reserve(count);
    const region = this.buffer.subarray(this.length, this.length + count);
    region.fill(0);
    this.length += count;
    return region;
  }

  /** Bytes written so far. */
  size(): number {
    return this.length;
  }

  finish(): Uint8Array {
    if (this.length === this.buffer.length) return this.buffer;
    return this.buffer.slice(0, this.length);
  }
}

/** Reader over one layer's bytes; every read is bounds-checked, and `end()` demands all consumed. */
export class ByteReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly data: Uint8Array) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private need(count: number): void {
    if (this.offset + count > this.data.length) {
      throw new SpgError("E_KV_DECODE", `compressed layer truncated at byte ${this.offset} (+${count})`);
    }
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  f32(): number {
    this.need(4);
    const v = this.view.getFloat32(this.offset, true);
    this.offset += 4;
    return v;
  }

  half(): number {
    return halfBitsToFloat(this.u16());
  }

  /** count fp16 values into out from outStart. */
  halves(count: number, out: Float32Array, outStart: number): void {
    this.need(2 * count);
    const data = this.data;
    if (LITTLE_ENDIAN) {
      const start = data.byteOffset + this.offset;
      const codes =
        start % 2 === 0
          ? new Uint16Array(data.buffer, start, count)
          : new Uint16Array(data.slice(this.offset, this.offset + 2 * count).buffer);
      this.offset += 2 * count;
      // the kernel's values are the table's, bit for bit (test/numeric/simd.test.ts)
      floatsOfHalvesKernel(codes, out, outStart);
      return;
    }
    let o = this.offset;
    for (let i = 0; i < count; i++) {
      out[outStart + i] = halfBitsToFloat(data[o] | (data[o + 1] << 8));
      o += 2;
    }
    this.offset = o;
  }

  /** count little-endian float32 values into out from outStart. */
  floats(count: number, out: Float32Array, outStart: number): void {
    this.need(4 * count);
    for (let i = 0; i < count; i++) {
      out[outStart + i] = this.view.getFloat32(this.offset, true);
      this.offset += 4;
    }
  }

  bytes(count: number): Uint8Array {
    this.need(count);
    const out = this.data.subarray(this.offset, this.offset + count);
    this.offset += count;
    return out;
  }

  end(): void {
    if (this.offset !== this.data.length) {
      throw new SpgError(
        "E_KV_DECODE",
        `compressed layer has ${this.data.length - this.offset} unread bytes: encoder and decoder disagree`,
      );
    }
  }
}
