/**
 * Asymmetric (scale + zero point) integer quantization of one group of values.
 * Scale and zero are stored as fp16, so they are chosen fp16-exact *before* the codes are
 * computed: zero = fp16 floor of the group minimum, scale = fp16 ceil of the step that
 * reaches the maximum. Then every x in the group lies in [zero, zero + levels*scale] and
 * |x - dequant(quant(x))| <= scale/2 (plus float32 rounding of the result).
 */

import { checkBits, packedLength } from "./bitpack.js";
import type { ByteReader, ByteWriter } from "./bytes.js";
import {
  assertHalfRepresentable,
  floatToHalfBits,
  halfBitsToFloat,
  halfCeilBits,
  halfFloorBits,
} from "./fp16.js";
import {
  decodeGroupsFrom,
  encodeGroupsInto,
  encodeTransposedGroupsInto,
  groupsFitScratch,
  SCRATCH_ELEMENTS,
} from "./simd/kernels.js";

export interface GroupQuant {
  /** fp16-exact step. */
  scale: number;
  /** fp16-exact offset (value of code 0). */
  zero: number;
}

/** Highest code at this bit width. */
export function levelsFor(bits: number): number {
  // bits <= 16 (the schemas' bound), so the shift cannot overflow; ** was a hot spot per group.
  return (1 << bits) - 1;
}

/** Scale and zero for values spanning [min, max] at this bit width. */
export function chooseGroupQuant(min: number, max: number, bits: number): GroupQuant {
  const zero = halfBitsToFloat(groupZeroBits(min, max));
  return { scale: halfBitsToFloat(groupScaleBits(zero, max, levelsFor(bits))), zero };
}

/** The fp16 bits of a group's zero point over [min, max]: fp16 floor of min (both must fit fp16). */
function groupZeroBits(min: number, max: number): number {
  assertHalfRepresentable(min, "quantization group minimum");
  assertHalfRepresentable(max, "quantization group maximum");
  return halfFloorBits(min);
}

/**
 * The fp16 bits of the exact step from `zero` that reaches `max` in `levels` steps (0 for an
 * empty span). Bits, not a value: the encoder stores them, and converting the value back
 * per group cost more than choosing it.
 */
function groupScaleBits(zero: number, max: number, levels: number): number {
  const span = max - zero;
  if (span === 0) return 0;
  let scaleBits = halfCeilBits(span / levels);
  // fp16 ceil of span/levels can still fall short after the multiply in float64; step up.
  while (zero + levels * halfBitsToFloat(scaleBits) < max) scaleBits++;
  return scaleBits;
}

/**
 * Math.round(v) (ties toward +infinity) for finite v with |v| < 2^52, several times faster in
 * V8: floor(v + 0.5), corrected where the addition itself rounded up past the next integer
 * (v = 0.49999999999999994 gives v + 0.5 == 1). c - 0.5 is exact, so the test is exact.
 */
export function roundHalfUp(v: number): number {
  const c = Math.floor(v + 0.5);
  return v < c - 0.5 ? c - 1 : c;
}

export function quantizeValue(x: number, q: GroupQuant, bits: number): number {
  if (q.scale === 0) return 0;
  const code = roundHalfUp((x - q.zero) / q.scale);
  const levels = levelsFor(bits);
  return code < 0 ? 0 : code > levels ? levels : code;
}

export function dequantizeValue(code: number, q: GroupQuant): number {
  return Math.fround(q.zero + code * q.scale);
}

/** fp16 bits of scale and zero, the two numbers stored per group. */
export function groupQuantBits(q: GroupQuant): [number, number] {
  return [floatToHalfBits(q.scale), floatToHalfBits(q.zero)];
}

export function groupQuantFromBits(scaleBits: number, zeroBits: number): GroupQuant {
  return { scale: halfBitsToFloat(scaleBits), zero: halfBitsToFloat(zeroBits) };
}

/** Bytes of the per-group metadata: fp16 scale + fp16 zero point. */
export const GROUP_META_BYTES = 4;

/**
 * A set of quantization groups over one flat array: group g holds the element indices
 * members[starts[g]] .. members[starts[g+1]-1] and codes at bits[g]. Stored as: fp16 scale +
 * zero for every non-empty group (group order), then per distinct width (ascending) one
 * bit-packed stream of the codes of the groups at that width (group order, member order).
 * The decoder knows the groups and widths (from params or from bytes read earlier).
 */
export interface QuantGroups {
  members: Int32Array;
  /** groups + 1 offsets into members. */
  starts: Int32Array;
  bits: Uint8Array;
  /** Set when members[m] === m for every m (the kernels then read the data in place). */
  identity?: boolean;
  /** The flat array's elements the members reach (largest member + 1), when known. */
  extent?: number;
}

/**
 * Where each width's code stream lies in the bytes after the metadata: streamStart[w] is its
 * byte offset (streams in ascending width, widths with codes only), and the total length of
 * metadata and streams.
 */
function streamLayout(groups: QuantGroups): StreamLayout {
  let layout = streamLayouts.get(groups);
  if (layout === undefined) {
    layout = countStreams(groups);
    streamLayouts.set(groups, layout);
  }
  return layout;
}

interface StreamLayout {
  /** Read only: shared by every call on the same groups (the codecs copy it). */
  streamStart: Int32Array;
  total: number;
}

/**
 * Layouts by groups object: a method reuses its groups over every head (quant over a run), and
 * counted again per call they were a tenth of its codec's time. Groups are never changed once
 * built (channelGroups, tokenGroups), so the layout stays theirs.
 */
const streamLayouts = new WeakMap<QuantGroups, StreamLayout>();

function countStreams(groups: QuantGroups): StreamLayout {
  const { bits, starts } = groups;
  // codes per width (bits is a Uint8Array: a width past 16 is counted here and refused below)
  const counts = new Int32Array(256);
  let nonEmpty = 0;
  for (let g = 0; g < bits.length; g++) {
    const len = starts[g + 1] - starts[g];
    if (len > 0) {
      counts[bits[g]] += len;
      nonEmpty++;
    }
  }
  const streamStart = new Int32Array(17);
  let total = GROUP_META_BYTES * nonEmpty;
  for (let width = 0; width < counts.length; width++) {
    if (counts[width] === 0) continue;
    checkBits(width);
    streamStart[width] = total;
    total += packedLength(counts[width], width);
  }
  return { streamStart, total };
}

/** The index-th code of a `width`-bit stream starting at bytes[base] (inverse of putCode). */
function getCode(bytes: Uint8Array, base: number, index: number, width: number, end: number): number {
  const bit = index * width;
  const at = base + (bit >>> 3);
  let word = bytes[at];
  if (at + 1 < end) word |= bytes[at + 1] << 8;
  if (at + 2 < end) word |= bytes[at + 2] << 16;
  return (word >>> (bit & 7)) & ((1 << width) - 1);
}

/**
 * roundHalfUp(offset / scale) for offset >= 0 (x - zero), before clamping: from the product
 * with 1/scale, a few ulps from the quotient, wherever that lies clearly between two ties
 * (a division costs several multiplies), else from the quotient itself. The quotient is below
 * 2^17 (levels + 1 at 16 bits), so its ulp is under 2^-35 and 1e-6 from a tie is clear.
 */
function groupCode(offset: number, scale: number, inverse: number): number {
  const product = offset * inverse;
  const code = (product + 0.5) | 0;
  const above = product + 0.5 - code;
  if (above > 1e-6 && above < 1 - 1e-6) return code;
  // x >= zero, so v >= 0 and truncation is floor; then ties toward +infinity, as roundHalfUp
  const v = offset / scale;
  const exact = (v + 0.5) | 0;
  return v < exact - 0.5 ? exact - 1 : exact;
}

/**
 * Quantizes every group and writes the metadata and the code streams: bytes as documented on
 * QuantGroups. The WebAssembly kernel (src/numeric/simd) where the groups fit its scratch,
 * else, and to report a group binary16 cannot hold, the TypeScript loop (encodeGroupsScalar).
 */
export function encodeGroups(writer: ByteWriter, data: Float32Array, groups: QuantGroups): void {
  const { streamStart, total } = streamLayout(groups);
  const out = writer.claim(total);
  if (groupsFitScratch(groups, total, data.length) && encodeGroupsInto(data, groups, streamStart, out) < 0)
    return;
  encodeGroupsLoop(out, data, groups, streamStart);
}

/**
 * encodeGroups of gatherTransposed(matrix, rows, dim): quant's keys, whose per-channel groups
 * are runs of tokens in the transpose. Through the kernels the rows are copied into the
 * module's memory as they lie and transposed there; else (rows past the scratch, or outside
 * the matrix) gathered here.
 */
export function encodeTransposedGroups(
  writer: ByteWriter,
  matrix: Float32Array,
  rows: Int32Array,
  dim: number,
  groups: QuantGroups,
): void {
  const { streamStart, total } = streamLayout(groups);
  const out = writer.claim(total);
  if (
    rowsWithin(rows, matrix.length / dim) &&
    groupsFitScratch(groups, total, rows.length * dim) &&
    rows.length * dim <= SCRATCH_ELEMENTS &&
    encodeTransposedGroupsInto(matrix, rows, dim, groups, streamStart, out) < 0
  )
    return;
  encodeGroupsLoop(out, gatherTransposed(matrix, rows, dim), groups, streamStart);
}

function rowsWithin(rows: Int32Array, slots: number): boolean {
  for (let i = 0; i < rows.length; i++) if (!(rows[i] >= 0 && rows[i] < slots)) return false;
  return true;
}

/** The given rows of a [slots, dim] matrix, transposed: [dim, rows.length], column by column. */
export function gatherTransposed(matrix: Float32Array, rows: Int32Array, dim: number): Float32Array {
  const count = rows.length;
  const out = new Float32Array(count * dim);
  // eight rows at a time, so each column's writes are eight consecutive values; the rows'
  // offsets held in locals (read from rows per element, the loop cost 2-3x as much)
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const r0 = rows[i] * dim;
    const r1 = rows[i + 1] * dim;
    const r2 = rows[i + 2] * dim;
    const r3 = rows[i + 3] * dim;
    const r4 = rows[i + 4] * dim;
    const r5 = rows[i + 5] * dim;
    const r6 = rows[i + 6] * dim;
    const r7 = rows[i + 7] * dim;
    for (let c = 0, at = i; c < dim; c++, at += count) {
      out[at] = matrix[r0 + c];
      out[at + 1] = matrix[r1 + c];
      out[at + 2] = matrix[r2 + c];
      out[at + 3] = matrix[r3 + c];
      out[at + 4] = matrix[r4 + c];
      out[at + 5] = matrix[r5 + c];
      out[at + 6] = matrix[r6 + c];
      out[at + 7] = matrix[r7 + c];
    }
  }
  for (; i < count; i++) {
    const from = rows[i] * dim;
    for (let c = 0; c < dim; c++) out[c * count + i] = matrix[from + c];
  }
  return out;
}

/** encodeGroups in TypeScript alone: the reference the kernel is tested against. */
export function encodeGroupsScalar(writer: ByteWriter, data: Float32Array, groups: QuantGroups): void {
  const { streamStart, total } = streamLayout(groups);
  encodeGroupsLoop(writer.claim(total), data, groups, streamStart);
}

/**
 * One pass over the data: each code goes straight into its width's packed stream in the
 * writer's buffer (no code array, no second packing pass), least significant bit first as
 * packBits lays them out.
 */
function encodeGroupsLoop(
  out: Uint8Array,
  data: Float32Array,
  groups: QuantGroups,
  streamStart: Int32Array,
): void {
  const { members, starts, bits } = groups;
  // Per width, where its stream is at: the next byte, and the codes not yet a whole byte
  // (packBits' accumulator, carried from group to group; whole bytes are stored, never ORed
  // into memory, so no store waits on the one before it).
  const next = Int32Array.from(streamStart);
  const pending = new Int32Array(17);
  const pendingBits = new Int32Array(17);
  let metaAt = 0;
  for (let g = 0; g < bits.length; g++) {
    const from = starts[g];
    const to = starts[g + 1];
    if (to === from) continue;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let m = from; m < to; m++) {
      const x = data[members[m]];
      if (x < min) min = x;
      if (x > max) max = x;
    }
    const width = bits[g];
    const zeroBits = groupZeroBits(min, max);
    const zero = halfBitsToFloat(zeroBits);
    const levels = levelsFor(width);
    const scaleBits = groupScaleBits(zero, max, levels);
    const scale = halfBitsToFloat(scaleBits);
    out[metaAt++] = scaleBits & 0xff;
    out[metaAt++] = scaleBits >>> 8;
    out[metaAt++] = zeroBits & 0xff;
    out[metaAt++] = zeroBits >>> 8;
    const inverse = 1 / scale;
    let at = next[width];
    let acc = pending[width];
    let accBits = pendingBits[width];
    for (let m = from; m < to; m++) {
      // scale 0: every code is 0
      const code = scale === 0 ? 0 : groupCode(data[members[m]] - zero, scale, inverse);
      acc |= (code > levels ? levels : code) << accBits;
      accBits += width;
      while (accBits >= 8) {
        out[at++] = acc & 0xff;
        acc >>>= 8;
        accBits -= 8;
      }
    }
    // A byte still filling is stored as it stands: the stream's next group rewrites it whole.
    // (No flush loop after this one: a loop run only at the end kept V8 deoptimizing here.)
    if (accBits > 0) out[at] = acc;
    next[width] = at;
    pending[width] = acc;
    pendingBits[width] = accBits;
  }
}

/**
 * Inverse of encodeGroups: writes dequantized values into `out` at the members' indices (the
 * WebAssembly kernel where the groups fit its scratch, else decodeGroupsScalar's loop).
 */
export function decodeGroups(reader: ByteReader, out: Float32Array, groups: QuantGroups): void {
  const { streamStart, total } = streamLayout(groups);
  const bytes = reader.bytes(total);
  if (groupsFitScratch(groups, total, out.length)) decodeGroupsFrom(bytes, groups, streamStart, out);
  else decodeGroupsLoop(bytes, out, groups, streamStart, total);
}

/** decodeGroups in TypeScript alone: the reference the kernel is tested against. */
export function decodeGroupsScalar(reader: ByteReader, out: Float32Array, groups: QuantGroups): void {
  const { streamStart, total } = streamLayout(groups);
  decodeGroupsLoop(reader.bytes(total), out, groups, streamStart, total);
}

function decodeGroupsLoop(
  bytes: Uint8Array,
  out: Float32Array,
  groups: QuantGroups,
  streamStart: Int32Array,
  total: number,
): void {
  const { members, starts, bits } = groups;
  const read = new Int32Array(17);
  let metaAt = 0;
  for (let g = 0; g < bits.length; g++) {
    const from = starts[g];
    const to = starts[g + 1];
    if (to === from) continue;
    const scale = halfBitsToFloat(bytes[metaAt] | (bytes[metaAt + 1] << 8));
    const zero = halfBitsToFloat(bytes[metaAt + 2] | (bytes[metaAt + 3] << 8));
    metaAt += GROUP_META_BYTES;
    const width = bits[g];
    const base = streamStart[width];
    let index = read[width];
    read[width] = index + (to - from);
    // same arithmetic as dequantizeValue (float64, then rounded into the Float32Array)
    if (8 % width === 0) {
      const perByteShift = 31 - Math.clz32(8 / width);
      const slot = 8 / width - 1;
      const mask = (1 << width) - 1;
      for (let m = from; m < to; m++, index++) {
        const code = (bytes[base + (index >>> perByteShift)] >>> ((index & slot) * width)) & mask;
        out[members[m]] = zero + code * scale;
      }
      continue;
    }
    for (let m = from; m < to; m++, index++) {
      out[members[m]] = zero + getCode(bytes, base, index, width, total) * scale;
    }
  }
}

/** Bytes encodeGroups writes for these groups (metadata + packed codes). */
export function groupsBytes(groups: QuantGroups): number {
  return streamLayout(groups).total;
}

/** KIVI keys: per channel, runs of `groupSize` consecutive tokens of a [tokens, dim] matrix. */
export function channelGroups(tokens: number, dim: number, groupSize: number, bits: number): QuantGroups {
  const perChannel = Math.ceil(tokens / groupSize);
  const members = new Int32Array(tokens * dim);
  const starts = new Int32Array(perChannel * dim + 1);
  let m = 0;
  let g = 0;
  for (let c = 0; c < dim; c++) {
    for (let t0 = 0; t0 < tokens; t0 += groupSize) {
      starts[g++] = m;
      for (let t = t0; t < Math.min(t0 + groupSize, tokens); t++) members[m++] = t * dim + c;
    }
  }
  starts[g] = m;
  return { members, starts, bits: new Uint8Array(g).fill(bits), extent: tokens * dim };
}

/**
 * KIVI values (and spg's mixed precision): per token, runs of `groupSize` consecutive
 * channels at the token's width; elements with alive[i] === 0 are left out (not stored).
 */
export function tokenGroups(
  tokens: number,
  dim: number,
  groupSize: number,
  bitsOfToken: (t: number) => number,
  alive?: Uint8Array,
): QuantGroups {
  const perToken = Math.ceil(dim / groupSize);
  const starts = new Int32Array(perToken * tokens + 1);
  const bits = new Uint8Array(perToken * tokens);
  let m = 0;
  let g = 0;
  if (alive === undefined) {
    // every element, in order: the members are 0, 1, ... and a group starts at its first channel
    const members = identityMembers(tokens * dim);
    for (let t = 0; t < tokens; t++) {
      const width = bitsOfToken(t);
      for (let c0 = 0; c0 < dim; c0 += groupSize) {
        bits[g] = width;
        starts[g++] = t * dim + c0;
      }
    }
    starts[g] = members.length;
    return { members, starts, bits, identity: true, extent: tokens * dim };
  }
  const members = new Int32Array(tokens * dim);
  for (let t = 0; t < tokens; t++) {
    const width = bitsOfToken(t);
    for (let c0 = 0; c0 < dim; c0 += groupSize) {
      bits[g] = width;
      starts[g++] = m;
      const end = t * dim + Math.min(c0 + groupSize, dim);
      // every index is written and a live one kept (m only moves past it): no branch per element
      for (let i = t * dim + c0; i < end; i++) {
        members[m] = i;
        m += alive[i] === 1 ? 1 : 0;
      }
    }
  }
  starts[g] = m;
  return { members: members.subarray(0, m), starts, bits, identity: false, extent: tokens * dim };
}

/** 0, 1, 2, ... up to the longest asked for: every group set without a mask reads a prefix of it. */
let identity: Int32Array = new Int32Array(0);

/**
 * The members 0 .. n-1, a view of one shared array (grown when a longer one is asked for):
 * members are only read, and a fresh list per call was a tenth of spg's encoder. Lists past
 * the kernels' scratch (a weight matrix) are made fresh, so the shared one stays that small.
 */
function identityMembers(n: number): Int32Array {
  if (n > SCRATCH_ELEMENTS) return counting(n);
  if (identity.length < n) identity = counting(Math.min(SCRATCH_ELEMENTS, Math.max(n, 2 * identity.length)));
  return identity.subarray(0, n);
}

function counting(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
