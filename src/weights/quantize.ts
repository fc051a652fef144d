/**
 * Integer quantization of a row-major weight matrix [rows, cols] in groups of `groupSize`
 * consecutive elements of one row (a group never spans two rows; "row" = one group per row).
 *
 * - asymmetric: fp16 scale + fp16 zero point per group, codes 0..2^bits-1; the encoder and
 *   layout are the KV cache's (src/numeric/group-quant.ts encodeGroups with per-row channel groups).
 * - symmetric: fp16 scale per group, codes -(2^(bits-1)-1)..2^(bits-1)-1 stored offset by
 *   2^(bits-1)-1; no zero point, so a zero weight stays exactly zero.
 * In both, the fp16 scale is chosen before the codes, so |x - dequant(x)| <= scale/2.
 * Layout: every group's metadata (group order), then the bit-packed codes (row-major order).
 * Shape, bits, scheme and group size come from the policy, so nothing else is stored.
 */

import { SpgError } from "../errors.js";
import { packBits, packedLength, unpackBits } from "../numeric/bitpack.js";
import { ByteReader, ByteWriter } from "../numeric/bytes.js";
import { assertHalfRepresentable, floatToHalfBits, halfBitsToFloat, halfCeil } from "../numeric/fp16.js";
import {
  decodeGroups,
  encodeGroups,
  GROUP_META_BYTES,
  groupsBytes,
  roundHalfUp,
  tokenGroups,
} from "../numeric/group-quant.js";

export type QuantScheme = "symmetric" | "asymmetric";

export interface QuantSpec {
  bits: number;
  scheme: QuantScheme;
  /** Elements per group within a row, or "row" for one group per row. */
  groupSize: number | "row";
}

/** Bytes of one symmetric group's metadata: the fp16 scale. */
export const SYMMETRIC_META_BYTES = 2;

function resolvedGroupSize(spec: QuantSpec, cols: number): number {
  const size = spec.groupSize === "row" ? cols : spec.groupSize;
  if (!Number.isInteger(size) || size < 1) {
    throw new SpgError(
      "E_WEIGHTS_QUANT",
      `group size ${String(spec.groupSize)} is not a positive integer or "row"`,
      {
        field: "quantize.groupSize",
        fix: 'use a whole number of elements per group, or "row"',
      },
    );
  }
  return Math.min(size, cols);
}

function checkSpec(spec: QuantSpec): void {
  const lowest = spec.scheme === "symmetric" ? 2 : 1;
  if (!Number.isInteger(spec.bits) || spec.bits < lowest || spec.bits > 16) {
    throw new SpgError("E_WEIGHTS_QUANT", `${spec.scheme} quantization cannot use ${spec.bits} bits`, {
      field: "quantize.bits",
      fix: `use a whole number of bits in ${lowest}..16`,
    });
  }
}

/** Largest symmetric code magnitude at this width. */
export function symmetricLevels(bits: number): number {
  return 2 ** (bits - 1) - 1;
}

/** fp16-exact scale with levels·scale >= maxAbs (0 for an all-zero group). */
export function symmetricScale(maxAbs: number, bits: number): number {
  assertHalfRepresentable(maxAbs, "quantization group maximum magnitude");
  if (maxAbs === 0) return 0;
  const levels = symmetricLevels(bits);
  let scaleBits = floatToHalfBits(halfCeil(maxAbs / levels));
  while (levels * halfBitsToFloat(scaleBits) < maxAbs) scaleBits++;
  return halfBitsToFloat(scaleBits);
}

function encodeSymmetric(
  writer: ByteWriter,
  matrix: Float32Array,
  rows: number,
  cols: number,
  bits: number,
  group: number,
): void {
  const levels = symmetricLevels(bits);
  const codes = new Uint32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += group) {
      const from = r * cols + c0;
      const to = r * cols + Math.min(c0 + group, cols);
      let maxAbs = 0;
      for (let i = from; i < to; i++) maxAbs = Math.max(maxAbs, Math.abs(matrix[i]));
      const scale = symmetricScale(maxAbs, bits);
      writer.u16(floatToHalfBits(scale));
      for (let i = from; i < to; i++) {
        const q = scale === 0 ? 0 : roundHalfUp(matrix[i] / scale);
        codes[i] = (q < -levels ? -levels : q > levels ? levels : q) + levels;
      }
    }
  }
  writer.bytes(packBits(codes, bits));
}

function decodeSymmetric(
  reader: ByteReader,
  rows: number,
  cols: number,
  bits: number,
  group: number,
): Float32Array {
  const levels = symmetricLevels(bits);
  const perRow = Math.ceil(cols / group);
  const scales = new Float64Array(rows * perRow);
  for (let g = 0; g < scales.length; g++) scales[g] = halfBitsToFloat(reader.u16());
  const codes = unpackBits(reader.bytes(packedLength(rows * cols, bits)), rows * cols, bits);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      out[i] = (codes[i] - levels) * scales[r * perRow + Math.floor(c / group)];
    }
  }
  return out;
}

/** Appends the quantized matrix to writer. */
export function encodeQuantized(
  writer: ByteWriter,
  matrix: Float32Array,
  rows: number,
  cols: number,
  spec: QuantSpec,
): void {
  checkSpec(spec);
  const group = resolvedGroupSize(spec, cols);
  if (spec.scheme === "symmetric") encodeSymmetric(writer, matrix, rows, cols, spec.bits, group);
  else
    encodeGroups(
      writer,
      matrix,
      tokenGroups(rows, cols, group, () => spec.bits),
    );
}

/** Reads a matrix encodeQuantized wrote. */
export function decodeQuantized(
  reader: ByteReader,
  rows: number,
  cols: number,
  spec: QuantSpec,
): Float32Array {
  checkSpec(spec);
  const group = resolvedGroupSize(spec, cols);
  if (spec.scheme === "symmetric") return decodeSymmetric(reader, rows, cols, spec.bits, group);
  const out = new Float32Array(rows * cols);
  decodeGroups(
    reader,
    out,
    tokenGroups(rows, cols, group, () => spec.bits),
  );
  return out;
}

/** The exact serialized bytes of the quantized matrix. */
export function quantizeMatrix(
  matrix: Float32Array,
  rows: number,
  cols: number,
  spec: QuantSpec,
): Uint8Array {
  const writer = new ByteWriter();
  encodeQuantized(writer, matrix, rows, cols, spec);
  return writer.finish();
}

/** Dequantizes bytes quantizeMatrix wrote; every byte must be consumed. */
export function dequantizeMatrix(
  bytes: Uint8Array,
  rows: number,
  cols: number,
  spec: QuantSpec,
): Float32Array {
  const reader = new ByteReader(bytes);
  const out = decodeQuantized(reader, rows, cols, spec);
  reader.end();
  return out;
}

/** Closed form of the serialized length: metadata per group plus packed codes. */
export function quantizedByteLength(rows: number, cols: number, spec: QuantSpec): number {
  checkSpec(spec);
  const group = resolvedGroupSize(spec, cols);
  if (spec.scheme === "asymmetric") {
    // groupsBytes is the KV encoder's own count; it equals the same closed form.
    return groupsBytes(tokenGroups(rows, cols, group, () => spec.bits));
  }
  return rows * Math.ceil(cols / group) * SYMMETRIC_META_BYTES + packedLength(rows * cols, spec.bits);
}

/** Metadata bytes per group for a scheme. */
export function groupMetaBytes(scheme: QuantScheme): number {
  return scheme === "symmetric" ? SYMMETRIC_META_BYTES : GROUP_META_BYTES;
}
