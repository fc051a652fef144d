/**
 * Test-only reference for src/numeric/group-quant.ts's group codec: the implementation it had
 * before the one-pass encoder (codes gathered into an array, then packed per width by
 * packBits; unpacked by unpackBits), kept to check the faster one writes and reads the same
 * bytes.
 */
import { packBits, packedLength, unpackBits } from "../../src/numeric/bitpack.js";
import type { ByteReader, ByteWriter } from "../../src/numeric/bytes.js";
import {
  assertHalfRepresentable,
  floatToHalfBits,
  halfBitsToFloat,
  halfCeil,
  halfFloor,
} from "../../src/numeric/fp16.js";
import { GROUP_META_BYTES, levelsFor, type QuantGroups } from "../../src/numeric/group-quant.js";

/** The former choice of a group's fp16 zero point and step, through values rather than bits. */
function chooseGroupQuant(min: number, max: number, bits: number): { scale: number; zero: number } {
  assertHalfRepresentable(min, "quantization group minimum");
  assertHalfRepresentable(max, "quantization group maximum");
  const zero = halfFloor(min);
  const levels = levelsFor(bits);
  const span = max - zero;
  if (span === 0) return { scale: 0, zero };
  let scaleBits = floatToHalfBits(halfCeil(span / levels));
  while (zero + levels * halfBitsToFloat(scaleBits) < max) scaleBits++;
  return { scale: halfBitsToFloat(scaleBits), zero };
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

export function encodeGroupsReference(writer: ByteWriter, data: Float32Array, groups: QuantGroups): void {
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
    const { zero, scale } = chooseGroupQuant(min, max, width);
    const levels = levelsFor(width);
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
export function decodeGroupsReference(reader: ByteReader, out: Float32Array, groups: QuantGroups): void {
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
