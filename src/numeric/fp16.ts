/**
 * IEEE 754 binary16 conversion (round to nearest, ties to even), ported from numpy's
 * npy_floatbits_to_halfbits / npy_halfbits_to_floatbits. Node 20 has no Float16Array, and
 * the stored bytes of every fp16 field must be bit-exact across machines.
 */
import { SpgError } from "../errors.js";
import { KERNELS_USABLE, roundHalvesInto } from "./simd/kernels.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Largest finite binary16 value. */
export const FP16_MAX = 65504;

/** binary16 bits of x (x first rounded to float32, as every cache value already is). */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  return floatBitsToHalfBits(u32[0]);
}

/** binary16 bits from float32 bits f (read straight from a Float32Array's buffer). */
export function floatBitsToHalfBits(f: number): number {
  const sign = (f & 0x80000000) >>> 16;
  const fExp = f & 0x7f800000;
  if (fExp >= 0x47800000) {
    if (fExp === 0x7f800000) {
      const fSig = f & 0x007fffff;
      if (fSig !== 0) {
        let ret = 0x7c00 + (fSig >>> 13);
        if (ret === 0x7c00) ret++;
        return sign + ret;
      }
      return sign + 0x7c00;
    }
    return sign + 0x7c00;
  }
  if (fExp <= 0x38000000) {
    if (fExp < 0x33000000) return sign;
    const exp = fExp >>> 23;
    let fSig = 0x00800000 + (f & 0x007fffff);
    fSig >>>= 113 - exp;
    if ((fSig & 0x00003fff) !== 0x00001000 || (f & 0x000007ff) !== 0) fSig += 0x00001000;
    return sign + (fSig >>> 13);
  }
  const hExp = (fExp - 0x38000000) >>> 13;
  let fSig = f & 0x007fffff;
  if ((fSig & 0x00003fff) !== 0x00001000) fSig += 0x00001000;
  return sign + ((fSig >>> 13) + hExp);
}

/** The float value of binary16 bits h (table lookup; see halfBitsToFloatSlow). */
export function halfBitsToFloat(h: number): number {
  return HALF_TO_FLOAT[h & 0xffff];
}

/** Direct evaluation of binary16 bits, used to build the lookup table. */
export function halfBitsToFloatSlow(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** x rounded to the nearest binary16 value. */
export function roundToHalf(x: number): number {
  return halfBitsToFloat(floatToHalfBits(x));
}

/**
 * Writes src rounded to the nearest binary16 value (ties to even) into out, as float32: the
 * values halfBitsToFloat(floatBitsToHalfBits(x)) gives. Returns the index of the first value
 * binary16 cannot hold (out is then incomplete), or -1. Values in binary16's normal range are
 * rounded on their float32 bits (mantissa cut to 10 bits; a carry moves into the exponent),
 * the rest go through the bit conversion; the two agree on every normal-range float32 pattern
 * (checked exhaustively when written). The WebAssembly kernel (src/numeric/simd) gives the
 * same bits (roundHalfIntoScalar is the reference it is tested against).
 */
export function roundHalfInto(src: Float32Array, out: Float32Array): number {
  return KERNELS_USABLE ? roundHalvesInto(src, out) : roundHalfIntoScalar(src, out);
}

/** roundHalfInto in TypeScript alone. */
export function roundHalfIntoScalar(src: Float32Array, out: Float32Array): number {
  const raw = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const outRaw = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) {
    const f = raw[i];
    const fExp = f & 0x7f800000;
    if (fExp > 0x38000000 && fExp < 0x47800000) {
      // + 0xfff, + 1 more when the kept lowest bit is odd: ties go to even
      const rounded = (f + 0x0fff + ((f >>> 13) & 1)) & 0xffffe000;
      if ((rounded & 0x7f800000) === 0x47800000) return i; // rounded past 65504
      outRaw[i] = rounded;
      continue;
    }
    const bits = floatBitsToHalfBits(f);
    if ((bits & 0x7c00) === 0x7c00) return i;
    out[i] = halfBitsToFloat(bits);
  }
  return -1;
}

/** Smallest binary16 value >= x (x finite, |x| <= FP16_MAX). */
export function halfCeil(x: number): number {
  return halfBitsToFloat(halfCeilBits(x));
}

/** The bits of halfCeil(x). */
export function halfCeilBits(x: number): number {
  const h = floatToHalfBits(x);
  return halfBitsToFloat(h) < x ? nextHalfUp(h) : h;
}

/** Largest binary16 value <= x (x finite, |x| <= FP16_MAX). */
export function halfFloor(x: number): number {
  return halfBitsToFloat(halfFloorBits(x));
}

/** The bits of halfFloor(x). */
export function halfFloorBits(x: number): number {
  const h = floatToHalfBits(x);
  return halfBitsToFloat(h) > x ? nextHalfDown(h) : h;
}

function nextHalfUp(h: number): number {
  if (h === 0x8000) return 0x0001;
  return h & 0x8000 ? h - 1 : h + 1;
}

function nextHalfDown(h: number): number {
  if (h === 0x0000) return 0x8001;
  return h & 0x8000 ? h + 1 : h - 1;
}

/**
 * Fails when a value cannot be stored at fp16 (overflow or NaN): storing it would silently
 * become Infinity, so the method must refuse rather than report bytes for a broken cache.
 */
export function assertHalfRepresentable(x: number, what: string): void {
  if (!Number.isFinite(x) || Math.abs(x) > FP16_MAX) {
    throw new SpgError("E_KV_FP16_RANGE", `${what}: value ${x} cannot be stored as fp16`, {
      fix: "count the cache in fp32 (kv.baselineDtype: fp32) or check the model for overflowing activations",
    });
  }
}

/** Every binary16 pattern decoded once: decoding a cache is a table lookup per element. */
const HALF_TO_FLOAT = Float32Array.from({ length: 0x10000 }, (_, h) => halfBitsToFloatSlow(h));
