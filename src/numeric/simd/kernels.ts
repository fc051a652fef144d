/**
 * The WebAssembly SIMD kernels (kernels.wat, compiled into kernels-wasm.ts) behind the fp16
 * conversions and the group codec: the same bytes and floats as the TypeScript loops they
 * replace (src/numeric/fp16.ts, bytes.ts, group-quant.ts keep those as the reference; the
 * tests compare the two on random and boundary inputs), several times faster. Callers copy
 * into the module's memory, call, and copy out; a call over more than SCRATCH_ELEMENTS
 * values works in pieces (conversions) or stays in TypeScript (the group codec), so the
 * memory never grows past a few MiB.
 */
import { KERNELS_WASM_BASE64 } from "./kernels-wasm.js";

/** The part of the WebAssembly JS API used here (tsconfig's lib has no WebAssembly types). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
};

interface KernelExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  halves(src: number, dst: number, count: number): number;
  floats(src: number, dst: number, count: number): void;
  roundHalves(src: number, dst: number, count: number): number;
  encodeGroups(
    data: number,
    members: number,
    contiguous: number,
    starts: number,
    bits: number,
    groups: number,
    out: number,
    state: number,
  ): number;
  transpose(src: number, rows: number, cols: number, dst: number): void;
  gram(block: number, rows: number, cols: number, out: number): void;
  inverseFrobenius2(gram: number, n: number, shift: number, lower: number): number;
  maxAbs(block: number, n: number): number;
  survivorCount(block: number, n: number, cut: number): number;
  decodeGroups(
    bytes: number,
    members: number,
    starts: number,
    bits: number,
    groups: number,
    out: number,
    state: number,
  ): void;
}

/**
 * Whether the kernels run here: the module's memory is little-endian, and the views the
 * callers copy through are in the machine's order (else the TypeScript loops run).
 */
export const KERNELS_USABLE = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const kernels = new WebAssembly.Instance(
  new WebAssembly.Module(Buffer.from(KERNELS_WASM_BASE64, "base64")),
  {},
).exports as unknown as KernelExports;

/**
 * Values one call handles at once: conversions go in pieces of this many, and a group codec
 * call over more elements stays in TypeScript (a weight matrix), so the module's memory
 * stays within a few MiB of scratch (it never shrinks once grown).
 */
export const SCRATCH_ELEMENTS = 1 << 18;

interface ScratchViews {
  u8: Uint8Array;
  u16: Uint16Array;
  i32: Int32Array;
  f32: Float32Array;
  f64: Float64Array;
}

/** Views of the module's memory, remade only when growth replaced its buffer (the old one is detached). */
let views: ScratchViews | null = null;

/** The module's memory, grown to at least `bytes`, as views of its current buffer. */
function scratch(bytes: number): ScratchViews {
  const have = kernels.memory.buffer.byteLength;
  if (have < bytes) kernels.memory.grow(Math.ceil((bytes - have) / 65536));
  const buffer = kernels.memory.buffer;
  if (views === null || views.u8.buffer !== buffer) {
    views = {
      u8: new Uint8Array(buffer),
      u16: new Uint16Array(buffer),
      i32: new Int32Array(buffer),
      f32: new Float32Array(buffer),
      f64: new Float64Array(buffer),
    };
  }
  return views;
}

/** Rounds up to a multiple of 16 bytes (v128 loads and stores, and every view's alignment). */
function aligned(bytes: number): number {
  return (bytes + 15) & ~15;
}

/**
 * src[start + i] as binary16 bits into out[at + i] for the rows given, as runs of `width`
 * consecutive elements from each `runStarts[r]` for `runLengths[r]` rows; the index into src
 * of the first value binary16 cannot hold (out is then incomplete), or -1.
 */
export function halvesOfRuns(
  src: Float32Array,
  runStarts: ArrayLike<number>,
  runCounts: ArrayLike<number>,
  runs: number,
  out: Uint16Array,
  at: number,
): number {
  let total = 0;
  // the span of src the runs reach: a method keeping 16 of 320 rows copies those, not the head
  let first = src.length;
  let last = 0;
  for (let r = 0; r < runs; r++) {
    total += runCounts[r];
    if (runCounts[r] === 0) continue;
    if (runStarts[r] < first) first = runStarts[r];
    if (runStarts[r] + runCounts[r] > last) last = runStarts[r] + runCounts[r];
  }
  if (last < first) first = last;
  // that span once when it fits (one copy, a call per run), else run by run in pieces
  if (last - first + total <= 2 * SCRATCH_ELEMENTS) {
    const dst = aligned(4 * (last - first));
    const memory = scratch(dst + 2 * total);
    memory.f32.set(src.subarray(first, last), 0);
    let o = 0;
    for (let r = 0; r < runs; r++) {
      const unfit = kernels.halves(4 * (runStarts[r] - first), dst + 2 * o, runCounts[r]);
      if (unfit >= 0) return runStarts[r] + unfit;
      o += runCounts[r];
    }
    out.set(memory.u16.subarray(dst / 2, dst / 2 + total), at);
    return -1;
  }
  let o = at;
  for (let r = 0; r < runs; r++) {
    const unfit = halvesOfRange(src, runStarts[r], runCounts[r], out, o);
    if (unfit >= 0) return unfit;
    o += runCounts[r];
  }
  return -1;
}

/** src[start, start + count) as binary16 bits into out from `at`; as halvesOfRuns. */
export function halvesOfRange(
  src: Float32Array,
  start: number,
  count: number,
  out: Uint16Array,
  at: number,
): number {
  for (let done = 0; done < count; done += SCRATCH_ELEMENTS) {
    const n = Math.min(SCRATCH_ELEMENTS, count - done);
    const dst = aligned(4 * n);
    const memory = scratch(dst + 2 * n);
    memory.f32.set(src.subarray(start + done, start + done + n), 0);
    const unfit = kernels.halves(0, dst, n);
    if (unfit >= 0) return start + done + unfit;
    out.set(memory.u16.subarray(dst / 2, dst / 2 + n), at + done);
  }
  return -1;
}

/** Binary16 bits as float32 into out from `at` (fp16.ts's table values, NaN included). */
export function floatsOfHalves(codes: Uint16Array, out: Float32Array, at: number): void {
  for (let done = 0; done < codes.length; done += SCRATCH_ELEMENTS) {
    const n = Math.min(SCRATCH_ELEMENTS, codes.length - done);
    const dst = aligned(2 * n);
    const memory = scratch(dst + 4 * n);
    memory.u16.set(codes.subarray(done, done + n), 0);
    kernels.floats(0, dst, n);
    out.set(memory.f32.subarray(dst / 4, dst / 4 + n), at + done);
  }
}

/** src rounded to the nearest binary16 value into out, as fp16.ts's roundHalfInto (same return). */
export function roundHalvesInto(src: Float32Array, out: Float32Array): number {
  for (let done = 0; done < src.length; done += SCRATCH_ELEMENTS) {
    const n = Math.min(SCRATCH_ELEMENTS, src.length - done);
    const memory = scratch(4 * n);
    memory.f32.set(src.subarray(done, done + n), 0);
    const unfit = kernels.roundHalves(0, 0, n);
    if (unfit >= 0) return done + unfit;
    out.set(memory.f32.subarray(0, n), done);
  }
  return -1;
}

/** The groups of group-quant.ts (QuantGroups), and whether member m is element m. */
export interface KernelGroups {
  members: Int32Array;
  starts: Int32Array;
  bits: Uint8Array;
  /** members[m] === m for every m. */
  identity?: boolean;
  /** The largest member + 1, when known (else counted). */
  extent?: number;
}

/** Elements of the flat array the groups' members reach (the largest member + 1). */
export function extentOf(groups: KernelGroups): number {
  if (groups.extent !== undefined) return groups.extent;
  if (groups.identity) return groups.members.length;
  let max = -1;
  for (let i = 0; i < groups.members.length; i++) if (groups.members[i] > max) max = groups.members[i];
  return max + 1;
}

/** One i32 per bit width 0..16 in each row of the codec's stream state (kernels.wat's $state). */
const STATE_WIDTHS = 17;
/** The state's rows: encode keeps each width's next byte, pending bits and their count; decode its next byte and values read. */
const STATE_ROWS_ENCODE = 3;
const STATE_ROWS_DECODE = 2;

/**
 * Where encode/decode put things in the module's memory: data, members, starts, bits, state,
 * the bytes, then `stagingBytes` for the caller (rows to transpose into data).
 */
function groupLayout(groups: KernelGroups, extent: number, regionBytes: number, stagingBytes = 0) {
  const data = 0;
  const members = aligned(4 * extent);
  const starts = members + aligned(4 * groups.members.length);
  const bits = starts + aligned(4 * groups.starts.length);
  const state = bits + aligned(groups.bits.length);
  const bytes = state + STATE_ROWS_ENCODE * STATE_WIDTHS * 4;
  const staging = aligned(bytes + regionBytes + 2);
  const memory = scratch(staging + stagingBytes);
  memory.i32.set(groups.members, members / 4);
  memory.i32.set(groups.starts, starts / 4);
  memory.u8.set(groups.bits, bits);
  return { memory, data, members, starts, bits, state, bytes, staging };
}

/** Whether the kernels take these groups (else the caller's TypeScript loop does: a weight matrix). */
export function groupsFitScratch(groups: KernelGroups, regionBytes: number, arrayLength: number): boolean {
  return (
    KERNELS_USABLE &&
    groups.members.length <= SCRATCH_ELEMENTS &&
    regionBytes <= 4 * SCRATCH_ELEMENTS &&
    extentOf(groups) <= Math.min(arrayLength, SCRATCH_ELEMENTS)
  );
}

/**
 * group-quant.ts's encodeGroups into `out` (the region: metadata, then each width's stream
 * from streamStart[width]): -1, or the first group whose values binary16 cannot hold (the
 * caller then reports it as its own loop does).
 */
export function encodeGroupsInto(
  data: Float32Array,
  groups: KernelGroups,
  streamStart: Int32Array,
  out: Uint8Array,
): number {
  const extent = extentOf(groups);
  const at = groupLayout(groups, extent, out.length);
  at.memory.f32.set(data.subarray(0, extent), at.data / 4);
  return encodeLaidOut(at, groups, streamStart, out);
}

/**
 * encodeGroupsInto of gatherTransposed(matrix, rows, dim) (group-quant.ts), the transpose done
 * in the module's memory: the rows are copied in as they lie (a run of consecutive rows is one
 * copy) and the kernel transposes them into the data the codec reads. The caller checks
 * groupsFitScratch with rows.length · dim elements.
 */
export function encodeTransposedGroupsInto(
  matrix: Float32Array,
  rows: Int32Array,
  dim: number,
  groups: KernelGroups,
  streamStart: Int32Array,
  out: Uint8Array,
): number {
  const count = rows.length;
  // the data region holds the whole transpose, whatever the members reach
  const at = groupLayout(groups, Math.max(extentOf(groups), count * dim), out.length, 4 * count * dim);
  for (let i = 0; i < count; ) {
    let end = i + 1;
    while (end < count && rows[end] === rows[end - 1] + 1) end++;
    at.memory.f32.set(matrix.subarray(rows[i] * dim, rows[end - 1] * dim + dim), at.staging / 4 + i * dim);
    i = end;
  }
  kernels.transpose(at.staging, count, dim, at.data);
  return encodeLaidOut(at, groups, streamStart, out);
}

/** The codec's call once the data is in place: its state, the zeroed region, then the bytes out. */
function encodeLaidOut(
  at: ReturnType<typeof groupLayout>,
  groups: KernelGroups,
  streamStart: Int32Array,
  out: Uint8Array,
): number {
  at.memory.i32.set(streamStart, at.state / 4);
  at.memory.i32.fill(0, at.state / 4 + STATE_WIDTHS, at.state / 4 + STATE_ROWS_ENCODE * STATE_WIDTHS);
  at.memory.u8.fill(0, at.bytes, at.bytes + out.length);
  const failed = kernels.encodeGroups(
    at.data,
    at.members,
    groups.identity ? 1 : 0,
    at.starts,
    at.bits,
    groups.bits.length,
    at.bytes,
    at.state,
  );
  if (failed >= 0) return failed;
  out.set(at.memory.u8.subarray(at.bytes, at.bytes + out.length));
  return -1;
}

/** group-quant.ts's decodeGroups from `region` (metadata and streams) into out at the members' indices. */
export function decodeGroupsFrom(
  region: Uint8Array,
  groups: KernelGroups,
  streamStart: Int32Array,
  out: Float32Array,
): void {
  const extent = extentOf(groups);
  const at = groupLayout(groups, extent, region.length);
  // out's elements outside the members are kept: copied in and back unchanged
  at.memory.f32.set(out.subarray(0, extent), at.data / 4);
  at.memory.i32.set(streamStart, at.state / 4);
  at.memory.i32.fill(0, at.state / 4 + STATE_WIDTHS, at.state / 4 + STATE_ROWS_DECODE * STATE_WIDTHS);
  at.memory.u8.set(region, at.bytes);
  at.memory.u8[at.bytes + region.length] = 0;
  at.memory.u8[at.bytes + region.length + 1] = 0;
  kernels.decodeGroups(at.bytes, at.members, at.starts, at.bits, groups.bits.length, at.data, at.state);
  out.set(at.memory.f32.subarray(at.data / 4, at.data / 4 + extent));
}

/**
 * lowrank.ts's gramMatrix (AᵀA in float64, each entry the row-order sum) through the kernel,
 * the same bits; null where the kernel does not apply (columns not a multiple of 4, a block
 * past the scratch), for the caller's loop.
 */
export function gramOf(block: Float32Array, rows: number, cols: number): Float64Array | null {
  if (!KERNELS_USABLE || cols % 4 !== 0 || rows * cols > SCRATCH_ELEMENTS || cols * cols > SCRATCH_ELEMENTS)
    return null;
  const out = aligned(4 * rows * cols);
  const memory = scratch(out + 8 * cols * cols);
  memory.f32.set(block.subarray(0, rows * cols), 0);
  kernels.gram(0, rows, cols, out);
  return memory.f64.slice(out / 8, out / 8 + cols * cols);
}

/**
 * lowrank.ts's ‖L⁻¹‖_F² for G + shift·I = L Lᵀ through the kernel, the same bits: -1 at a pivot
 * that is not positive; null past the scratch (the caller's loop then runs).
 */
export function inverseFrobenius2Of(gram: Float64Array, n: number, shift: number): number | null {
  if (!KERNELS_USABLE || 4 * n * n > SCRATCH_ELEMENTS) return null;
  // G, then the kernel's work: L row-major, L column-major, L⁻¹ (zeroed: its upper triangle is read as 0)
  const work = aligned(8 * n * n);
  const memory = scratch(work + 3 * 8 * n * n);
  memory.f64.set(gram.subarray(0, n * n), 0);
  memory.f64.fill(0, work / 8 + 2 * n * n, work / 8 + 3 * n * n);
  return kernels.inverseFrobenius2(0, n, shift, work);
}

/**
 * spg's magnitude cut (kv/methods/spg/elementwise.ts's magnitudeCutScalar) through the
 * kernels, on one copy of the block: cut = threshold · max|x|, and how many x have
 * |x| >= cut and x != 0; null past the scratch (the caller's loop then runs).
 */
export function magnitudeCutOf(
  block: Float32Array,
  threshold: number,
): { cut: number; count: number } | null {
  if (!KERNELS_USABLE || block.length > SCRATCH_ELEMENTS) return null;
  const memory = scratch(4 * block.length);
  memory.f32.set(block, 0);
  const cut = threshold * kernels.maxAbs(0, block.length);
  return { cut, count: kernels.survivorCount(0, block.length, cut) };
}
