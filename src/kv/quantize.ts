/**
 * Asymmetric (scale + zero point) integer quantization of one group of values.
 * Scale and zero are stored as fp16, so they are chosen fp16-exact *before* the codes are
 * computed: zero = fp16 floor of the group minimum, scale = fp16 ceil of the step that
 * reaches the maximum. Then every x in the group lies in [zero, zero + levels*scale] and
 * |x - dequant(quant(x))| <= scale/2 (plus float32 rounding of the result).
 */
import { packBits, packedLength, unpackBits } from "./bitpack.js";
import type { ByteReader, ByteWriter } from "./compressed.js";
import { assertHalfRepresentable, floatToHalfBits, halfBitsToFloat, halfCeil, halfFloor } from "./fp16.js";

export interface GroupQuant {
  /** fp16-exact step. */
  scale: number;
  /** fp16-exact offset (value of code 0). */
  zero: number;
}

/** Highest code at this bit width. */
export function levelsFor(bits: number): number {
  return 2 ** bits - 1;
}

/** Scale and zero for values spanning [min, max] at this bit width. */
export function chooseGroupQuant(min: number, max: number, bits: number): GroupQuant {
  assertHalfRepresentable(min, "quantization group minimum");
  assertHalfRepresentable(max, "quantization group maximum");
  const levels = levelsFor(bits);
  const zero = halfFloor(min);
  const span = max - zero;
  if (span === 0) return { scale: 0, zero };
  let scaleBits = floatToHalfBits(halfCeil(span / levels));
  // fp16 ceil of span/levels can still fall short after the multiply in float64; step up.
  while (zero + levels * halfBitsToFloat(scaleBits) < max) scaleBits++;
  return { scale: halfBitsToFloat(scaleBits), zero };
}

export function quantizeValue(x: number, q: GroupQuant, bits: number): number {
  if (q.scale === 0) return 0;
  const code = Math.round((x - q.zero) / q.scale);
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
 * A set of quantization groups over one flat array: `members[g]` lists the element indices
 * of group g, `bits[g]` its code width. Stored as: fp16 scale + zero for every non-empty
 * group (group order), then per distinct width (ascending) one bit-packed stream of the
 * codes of the groups at that width (group order, member order). The decoder knows the
 * groups and widths (from params or from bytes read earlier), so it can read this back.
 */
export interface QuantGroups {
  members: Int32Array[];
  bits: Uint8Array;
}

export function encodeGroups(writer: ByteWriter, data: Float32Array, groups: QuantGroups): void {
  const streams = new Map<number, number[]>();
  groups.members.forEach((members, g) => {
    if (members.length === 0) return;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const i of members) {
      if (data[i] < min) min = data[i];
      if (data[i] > max) max = data[i];
    }
    const bits = groups.bits[g];
    const q = chooseGroupQuant(min, max, bits);
    const [scaleBits, zeroBits] = groupQuantBits(q);
    writer.u16(scaleBits);
    writer.u16(zeroBits);
    let stream = streams.get(bits);
    if (stream === undefined) {
      stream = [];
      streams.set(bits, stream);
    }
    for (const i of members) stream.push(quantizeValue(data[i], q, bits));
  });
  for (const bits of [...streams.keys()].sort((a, b) => a - b))
    writer.bytes(packBits(streams.get(bits)!, bits));
}

/** Inverse of encodeGroups: writes dequantized values into `out` at the members' indices. */
export function decodeGroups(reader: ByteReader, out: Float32Array, groups: QuantGroups): void {
  const quants: GroupQuant[] = [];
  const counts = new Map<number, number>();
  groups.members.forEach((members, g) => {
    if (members.length === 0) {
      quants.push({ scale: 0, zero: 0 });
      return;
    }
    const scaleBits = reader.u16();
    const zeroBits = reader.u16();
    quants.push(groupQuantFromBits(scaleBits, zeroBits));
    counts.set(groups.bits[g], (counts.get(groups.bits[g]) ?? 0) + members.length);
  });
  const codes = new Map<number, { values: Uint32Array; next: number }>();
  for (const bits of [...counts.keys()].sort((a, b) => a - b)) {
    const count = counts.get(bits)!;
    codes.set(bits, { values: unpackBits(reader.bytes(packedLength(count, bits)), count, bits), next: 0 });
  }
  groups.members.forEach((members, g) => {
    if (members.length === 0) return;
    const stream = codes.get(groups.bits[g])!;
    for (const i of members) out[i] = dequantizeValue(stream.values[stream.next++], quants[g]);
  });
}

/** Bytes encodeGroups writes for these groups (metadata + packed codes). */
export function groupsBytes(groups: QuantGroups): number {
  let meta = 0;
  const counts = new Map<number, number>();
  groups.members.forEach((members, g) => {
    if (members.length === 0) return;
    meta += GROUP_META_BYTES;
    counts.set(groups.bits[g], (counts.get(groups.bits[g]) ?? 0) + members.length);
  });
  let codes = 0;
  for (const [bits, count] of counts) codes += packedLength(count, bits);
  return meta + codes;
}

/** KIVI keys: per channel, runs of `groupSize` consecutive tokens of a [tokens, dim] matrix. */
export function channelGroups(tokens: number, dim: number, groupSize: number, bits: number): QuantGroups {
  const members: Int32Array[] = [];
  for (let c = 0; c < dim; c++) {
    for (let t0 = 0; t0 < tokens; t0 += groupSize) {
      const len = Math.min(groupSize, tokens - t0);
      const group = new Int32Array(len);
      for (let i = 0; i < len; i++) group[i] = (t0 + i) * dim + c;
      members.push(group);
    }
  }
  return { members, bits: new Uint8Array(members.length).fill(bits) };
}

/** KIVI values: per token, runs of `groupSize` consecutive channels. */
export function tokenGroups(
  tokens: number,
  dim: number,
  groupSize: number,
  bitsOfToken: (t: number) => number,
): QuantGroups {
  const members: Int32Array[] = [];
  const bits: number[] = [];
  for (let t = 0; t < tokens; t++) {
    for (let c0 = 0; c0 < dim; c0 += groupSize) {
      const len = Math.min(groupSize, dim - c0);
      const group = new Int32Array(len);
      for (let i = 0; i < len; i++) group[i] = t * dim + c0 + i;
      members.push(group);
      bits.push(bitsOfToken(t));
    }
  }
  return { members, bits: Uint8Array.from(bits) };
}
