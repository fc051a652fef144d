/**
 * Asymmetric (scale + zero point) integer quantization of one group of values.
 * Scale and zero are stored as fp16, so they are chosen fp16-exact *before* the codes are
 * computed: zero = fp16 floor of the group minimum, scale = fp16 ceil of the step that
 * reaches the maximum. Then every x in the group lies in [zero, zero + levels*scale] and
 * |x - dequant(quant(x))| <= scale/2 (plus float32 rounding of the result).
 */

import { packBits, packedLength, unpackBits } from "./bitpack.js";
import type { ByteReader, ByteWriter } from "./bytes.js";
import { assertHalfRepresentable, floatToHalfBits, halfBitsToFloat, halfCeil, halfFloor } from "./fp16.js";

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
  const zero = groupZero(min, max);
  return { scale: groupScale(zero, max, levelsFor(bits)), zero };
}

/** The fp16 zero point of a group spanning [min, max]: fp16 floor of min (both must fit fp16). */
function groupZero(min: number, max: number): number {
  assertHalfRepresentable(min, "quantization group minimum");
  assertHalfRepresentable(max, "quantization group maximum");
  return halfFloor(min);
}

/**
 * The fp16-exact step from `zero` that reaches `max` in `levels` steps (0 for an empty span).
 * A number, not a field of an object: encodeGroups calls it per group, and an object whose
 * scale is sometimes the small integer 0 made V8 box every scale it read afterwards.
 */
function groupScale(zero: number, max: number, levels: number): number {
  const span = max - zero;
  if (span === 0) return 0;
  let scaleBits = floatToHalfBits(halfCeil(span / levels));
  // fp16 ceil of span/levels can still fall short after the multiply in float64; step up.
  while (zero + levels * halfBitsToFloat(scaleBits) < max) scaleBits++;
  return halfBitsToFloat(scaleBits);
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
}

function codeCounts(groups: QuantGroups): Map<number, number> {
  const counts = new Map<number, number>();
  for (let g = 0; g < groups.bits.length; g++) {
    const len = groups.starts[g + 1] - groups.starts[g];
    if (len > 0) counts.set(groups.bits[g], (counts.get(groups.bits[g]) ?? 0) + len);
  }
  return counts;
}

function widths(counts: Map<number, number>): number[] {
  return [...counts.keys()].sort((a, b) => a - b);
}

export function encodeGroups(writer: ByteWriter, data: Float32Array, groups: QuantGroups): void {
  const { members, starts, bits } = groups;
  let nonEmpty = 0;
  for (let g = 0; g < bits.length; g++) if (starts[g + 1] > starts[g]) nonEmpty++;
  // every group's fp16 scale and zero point, little-endian, in group order
  const meta = new Uint8Array(GROUP_META_BYTES * nonEmpty);
  // codes in member order (one typed array the loop below always stores into), split by
  // width afterwards only when the groups have more than one
  const codes = new Uint32Array(members.length);
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
    const zero = groupZero(min, max);
    const levels = levelsFor(width);
    const scale = groupScale(zero, max, levels);
    const scaleBits = floatToHalfBits(scale);
    const zeroBits = floatToHalfBits(zero);
    meta[metaAt++] = scaleBits & 0xff;
    meta[metaAt++] = scaleBits >>> 8;
    meta[metaAt++] = zeroBits & 0xff;
    meta[metaAt++] = zeroBits >>> 8;
    if (scale === 0) continue; // codes stay 0
    for (let m = from; m < to; m++) {
      // x >= zero, so v >= 0 and truncation is floor; then ties toward +infinity, as roundHalfUp
      const v = (data[members[m]] - zero) / scale;
      let code = (v + 0.5) | 0;
      if (v < code - 0.5) code--;
      codes[m] = code > levels ? levels : code;
    }
  }
  writer.bytes(meta);
  const counts = codeCounts(groups);
  const used = widths(counts);
  if (used.length === 1) {
    writer.bytes(packBits(codes, used[0]));
    return;
  }
  for (const width of used) {
    const stream = new Uint32Array(counts.get(width) ?? 0);
    let next = 0;
    // element copies: a subarray view per group cost more than the group's codes
    for (let g = 0; g < bits.length; g++) {
      if (bits[g] !== width) continue;
      for (let m = starts[g]; m < starts[g + 1]; m++) stream[next++] = codes[m];
    }
    writer.bytes(packBits(stream, width));
  }
}

/** Inverse of encodeGroups: writes dequantized values into `out` at the members' indices. */
export function decodeGroups(reader: ByteReader, out: Float32Array, groups: QuantGroups): void {
  const { members, starts, bits } = groups;
  const groupCount = bits.length;
  let nonEmpty = 0;
  for (let g = 0; g < groupCount; g++) if (starts[g + 1] > starts[g]) nonEmpty++;
  const meta = reader.bytes(GROUP_META_BYTES * nonEmpty);
  // codes back in member order, as encodeGroups held them
  const counts = codeCounts(groups);
  const used = widths(counts);
  let codes: Uint32Array;
  if (used.length === 1) {
    codes = unpackBits(reader.bytes(packedLength(members.length, used[0])), members.length, used[0]);
  } else {
    codes = new Uint32Array(members.length);
    for (const width of used) {
      const count = counts.get(width) ?? 0;
      const stream = unpackBits(reader.bytes(packedLength(count, width)), count, width);
      let next = 0;
      for (let g = 0; g < groupCount; g++) {
        if (bits[g] !== width) continue;
        for (let m = starts[g]; m < starts[g + 1]; m++) codes[m] = stream[next++];
      }
    }
  }
  let metaAt = 0;
  for (let g = 0; g < groupCount; g++) {
    const from = starts[g];
    const to = starts[g + 1];
    if (to === from) continue;
    const scale = halfBitsToFloat(meta[metaAt] | (meta[metaAt + 1] << 8));
    const zero = halfBitsToFloat(meta[metaAt + 2] | (meta[metaAt + 3] << 8));
    metaAt += GROUP_META_BYTES;
    // same arithmetic as dequantizeValue (float64, then rounded into the Float32Array)
    for (let m = from; m < to; m++) out[members[m]] = zero + codes[m] * scale;
  }
}

/** Bytes encodeGroups writes for these groups (metadata + packed codes). */
export function groupsBytes(groups: QuantGroups): number {
  let meta = 0;
  for (let g = 0; g < groups.bits.length; g++)
    if (groups.starts[g + 1] > groups.starts[g]) meta += GROUP_META_BYTES;
  let codes = 0;
  for (const [bits, count] of codeCounts(groups)) codes += packedLength(count, bits);
  return meta + codes;
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
  return { members, starts, bits: new Uint8Array(g).fill(bits) };
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
  const members = new Int32Array(tokens * dim);
  const starts = new Int32Array(perToken * tokens + 1);
  const bits = new Uint8Array(perToken * tokens);
  let m = 0;
  let g = 0;
  for (let t = 0; t < tokens; t++) {
    const width = bitsOfToken(t);
    for (let c0 = 0; c0 < dim; c0 += groupSize) {
      bits[g] = width;
      starts[g++] = m;
      for (let i = t * dim + c0; i < t * dim + Math.min(c0 + groupSize, dim); i++) {
        if (alive === undefined || alive[i] === 1) members[m++] = i;
      }
    }
  }
  starts[g] = m;
  return { members: members.subarray(0, m), starts, bits };
}
