/**
 * n-bit unsigned integer packing, 1..16 bits, least significant bit first: value i occupies
 * bits [i*n, (i+1)*n) of the little-endian bit stream. Packed length is ceil(count*n/8).
 */
import { SpgError } from "../errors.js";

export function packedLength(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/** Fails (E_KV_BITS) unless bits is an integer in 1..16. */
export function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 16) {
    throw new SpgError("E_KV_BITS", `bit width ${bits} is not an integer in 1..16`);
  }
}

/** Packs values (each < 2^bits) into a new byte array. */
export function packBits(values: ArrayLike<number>, bits: number): Uint8Array {
  checkBits(bits);
  const out = new Uint8Array(packedLength(values.length, bits));
  const limit = 2 ** bits;
  if (values instanceof Uint32Array && 8 % bits === 0) {
    // Whole codes per byte, and a Uint32Array holds only integers >= 0: the range is the
    // one check left (the hot path of every quantized block).
    // shifts and masks, not / and %: an integer division per code was most of the loop
    const shift = 31 - Math.clz32(8 / bits);
    const slot = 8 / bits - 1;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v >= limit) throw new SpgError("E_KV_BITS", `value ${v} at ${i} does not fit in ${bits} bits`);
      out[i >> shift] |= v << ((i & slot) * bits);
    }
    return out;
  }
  let acc = 0;
  let accBits = 0;
  let pos = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0 || v >= limit) {
      throw new SpgError("E_KV_BITS", `value ${v} at ${i} does not fit in ${bits} bits`);
    }
    acc |= v << accBits;
    accBits += bits;
    while (accBits >= 8) {
      out[pos++] = acc & 0xff;
      acc >>>= 8;
      accBits -= 8;
    }
  }
  if (accBits > 0) out[pos] = acc & 0xff;
  return out;
}

/** Unpacks count values of the given width from bytes starting at offset. */
export function unpackBits(bytes: Uint8Array, count: number, bits: number, offset = 0): Uint32Array {
  checkBits(bits);
  const need = packedLength(count, bits);
  if (offset + need > bytes.length) {
    throw new SpgError("E_KV_DECODE", `packed data truncated: need ${need} bytes at ${offset}`);
  }
  const out = new Uint32Array(count);
  const mask = (1 << bits) - 1;
  if (8 % bits === 0) {
    // widths dividing a byte: each byte holds 8/bits whole codes
    const shift = 31 - Math.clz32(8 / bits);
    const slot = 8 / bits - 1;
    for (let i = 0; i < count; i++) out[i] = (bytes[offset + (i >> shift)] >>> ((i & slot) * bits)) & mask;
    return out;
  }
  let acc = 0;
  let accBits = 0;
  let pos = offset;
  for (let i = 0; i < count; i++) {
    while (accBits < bits) {
      acc |= bytes[pos++] << accBits;
      accBits += 8;
    }
    out[i] = acc & mask;
    acc >>>= bits;
    accBits -= bits;
  }
  return out;
}

/** Bits needed to store any index in [0, count), at least 1. */
export function indexBits(count: number): number {
  return Math.max(1, Math.ceil(Math.log2(Math.max(count, 2))));
}
