/**
 * Element-wise storage of one compressed K or V block: the magnitude cut (survivors indexed
 * by a subset, kept only when smaller than the dense form) and mixed-precision codes or
 * baseline-dtype values; exact byte counts in closed form, checked against what is written.
 */
import { SpgError } from "../../../errors.js";
import { packedLength } from "../../../numeric/bitpack.js";
import type { ByteReader, ByteWriter } from "../../../numeric/bytes.js";
import { type BaselineDtype, dtypeBits, dtypeBytes } from "../../../numeric/dtype.js";
import { decodeGroups, encodeGroups, GROUP_META_BYTES, tokenGroups } from "../../../numeric/group-quant.js";
import { magnitudeCutOf } from "../../../numeric/simd/kernels.js";
import {
  countBits,
  readRows,
  readSubsetUnlessAll,
  subsetEncodingBytes,
  writeRows,
  writeSubset,
} from "../../compressed.js";
import type { Stage2Params } from "./params.js";

/** Whether an element survives a magnitude cut (zeros never do: nothing to store). */
function survives(x: number, cut: number): boolean {
  return Math.abs(x) >= cut && x !== 0;
}

function maxAbs(block: Float32Array): number {
  let max = 0;
  for (let i = 0; i < block.length; i++) {
    const a = Math.abs(block[i]);
    if (a > max) max = a;
  }
  return max;
}

/**
 * The magnitude cut of a block: cut = threshold · max|x|, and how many elements survive it.
 * In TypeScript alone: the reference the kernel (magnitudeCutOf) is tested against.
 */
export function magnitudeCutScalar(block: Float32Array, threshold: number): { cut: number; count: number } {
  const cut = threshold * maxAbs(block);
  let count = 0;
  for (let i = 0; i < block.length; i++) if (survives(block[i], cut)) count++;
  return { cut, count };
}

export interface BlockPlan {
  tokens: number;
  dim: number;
  isHigh: Uint8Array;
}

/** 0, 1, ..., n-1 */
export function range(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/** One way to store a block element-wise: which elements survive (null: all) and the exact size. */
export interface ElementwiseOption {
  alive: Int32Array | null;
  bytes: number;
}

/**
 * Exact bytes of a block stored element-wise, in closed form (writeElementwise builds the
 * groups and checks it wrote this much): the survivor subset when a threshold is set, then
 * either baseline-dtype values or, with mixed precision, per token groups of `groupSize`
 * channels (an fp16 scale and zero point for each group holding a survivor) and one
 * bit-packed code stream per width.
 */
export function elementwiseBytes(
  alive: Int32Array | null,
  plan: BlockPlan,
  stage2: Stage2Params,
  dtype: BaselineDtype,
): number {
  const { mixedPrecision, magnitudeThreshold } = stage2;
  const size = plan.tokens * plan.dim;
  const count = alive === null ? size : alive.length;
  const subset = magnitudeThreshold > 0 ? subsetEncodingBytes(count, size).bytes : 0;
  if (!mixedPrecision.enabled) return subset + count * dtypeBytes(dtype);
  const { highBits, lowBits, groupSize } = mixedPrecision;
  const perToken = Math.ceil(plan.dim / groupSize);
  let groups = 0;
  let highCodes = 0;
  if (alive === null) {
    groups = plan.tokens * perToken;
    highCodes = highCount(plan) * plan.dim;
  } else {
    let last = -1;
    for (let n = 0; n < alive.length; n++) {
      const token = (alive[n] / plan.dim) | 0;
      const group = token * perToken + (((alive[n] - token * plan.dim) / groupSize) | 0);
      if (group !== last) groups++;
      last = group;
      highCodes += plan.isHigh[token];
    }
  }
  const codes =
    highBits === lowBits
      ? packedLength(count, highBits)
      : packedLength(highCodes, highBits) + packedLength(count - highCodes, lowBits);
  return subset + GROUP_META_BYTES * groups + codes;
}

/**
 * A lower bound on the sparse form's bytes from the survivor count alone, so the survivors
 * need listing only when the sparse form might win: its subset, then either the survivors at
 * the baseline dtype (exact) or, with mixed precision, a scale and zero point for at least
 * ceil(count / groupSize) groups and codes with as few survivors at highBits as the dropped
 * elements allow (highBits >= lowBits, checkParams).
 */
export function sparseFloorBytes(
  count: number,
  size: number,
  plan: BlockPlan,
  stage2: Stage2Params,
  dtype: BaselineDtype,
): number {
  const subset = subsetEncodingBytes(count, size).bytes;
  const { mixedPrecision } = stage2;
  if (!mixedPrecision.enabled) return subset + count * dtypeBytes(dtype);
  const { highBits, lowBits, groupSize } = mixedPrecision;
  const highSurvivors = Math.max(0, highCount(plan) * plan.dim - (size - count));
  const codeBits = highSurvivors * highBits + (count - highSurvivors) * lowBits;
  return subset + GROUP_META_BYTES * Math.ceil(count / groupSize) + Math.ceil(codeBits / 8);
}

/**
 * The element-wise storage of one block, worked out only as far as a caller needs it. With a
 * magnitude threshold, the small elements are dropped only when the sparse form (survivor
 * subset + survivors) is smaller than keeping every element (subset "all", 1 byte): at tiny
 * thresholds the survivor mask costs more than the dropped values, and dropping would then
 * lose accuracy for nothing. `upper` (the dense form, closed form) and `lower()` (from the
 * survivor count alone) bound the best form's bytes, so a low-rank block that beats the lower
 * bound never lists its survivors; `best()` is the exact choice.
 */
export class ElementwiseChoice {
  readonly upper: number;
  private cut = 0;
  private count = -1;
  private chosen: ElementwiseOption | null = null;

  constructor(
    private readonly block: Float32Array,
    private readonly plan: BlockPlan,
    private readonly stage2: Stage2Params,
    private readonly dtype: BaselineDtype,
  ) {
    this.upper = elementwiseBytes(null, plan, stage2, dtype);
  }

  /** Survivors of the magnitude cut (every element when the threshold is off). */
  private survivors(): number {
    if (this.count >= 0) return this.count;
    const { block } = this;
    const { magnitudeThreshold } = this.stage2;
    if (magnitudeThreshold === 0) {
      this.count = block.length;
      return this.count;
    }
    const { cut, count } =
      magnitudeCutOf(block, magnitudeThreshold) ?? magnitudeCutScalar(block, magnitudeThreshold);
    this.cut = cut;
    this.count = count;
    return count;
  }

  /** A lower bound on best().bytes. */
  lower(): number {
    const count = this.survivors();
    if (count === this.block.length) return this.upper;
    return Math.min(
      this.upper,
      sparseFloorBytes(count, this.block.length, this.plan, this.stage2, this.dtype),
    );
  }

  best(): ElementwiseOption {
    if (this.chosen !== null) return this.chosen;
    const dense = { alive: null, bytes: this.upper };
    if (this.lower() >= this.upper) {
      this.chosen = dense;
      return dense;
    }
    const { block, cut } = this;
    const alive = new Int32Array(this.survivors());
    for (let i = 0, n = 0; i < block.length; i++) if (survives(block[i], cut)) alive[n++] = i;
    const sparse = { alive, bytes: elementwiseBytes(alive, this.plan, this.stage2, this.dtype) };
    this.chosen = sparse.bytes < dense.bytes ? sparse : dense;
    return this.chosen;
  }

  /** Whether `bytes` is strictly less than the best element-wise form's. */
  isBeatenBy(bytes: number): boolean {
    if (bytes >= this.upper) return false;
    return bytes < this.lower() || bytes < this.best().bytes;
  }
}

export function writeElementwise(
  writer: ByteWriter,
  block: Float32Array,
  option: ElementwiseOption,
  plan: BlockPlan,
  stage2: Stage2Params,
  dtype: BaselineDtype,
  histogram: Record<string, number>,
): void {
  const { mixedPrecision, magnitudeThreshold } = stage2;
  const start = writer.size();
  // every element (the dense form): its subset is the tag alone, and a token's elements are
  // all at its width, so no list of the block's indices is built
  if (magnitudeThreshold > 0) writeSubset(writer, option.alive ?? { length: block.length }, block.length);
  if (mixedPrecision.enabled) {
    let mask: Uint8Array | undefined;
    let high = highCount(plan) * plan.dim;
    let count = block.length;
    if (option.alive !== null) {
      const alive = option.alive;
      mask = new Uint8Array(block.length);
      high = 0;
      for (let n = 0; n < alive.length; n++) {
        mask[alive[n]] = 1;
        high += plan.isHigh[(alive[n] / plan.dim) | 0];
      }
      count = alive.length;
    }
    const bitsOf = (t: number) => (plan.isHigh[t] ? mixedPrecision.highBits : mixedPrecision.lowBits);
    encodeGroups(writer, block, tokenGroups(plan.tokens, plan.dim, mixedPrecision.groupSize, bitsOf, mask));
    countBits(histogram, mixedPrecision.highBits, high);
    countBits(histogram, mixedPrecision.lowBits, count - high);
  } else {
    const alive = option.alive ?? range(block.length);
    writeRows(writer, block, alive, 1, dtype);
    countBits(histogram, dtypeBits(dtype), alive.length);
  }
  if (writer.size() - start !== option.bytes) {
    throw new SpgError(
      "E_KV_ENCODE",
      `spg block wrote ${writer.size() - start} bytes, planned ${option.bytes}`,
    );
  }
}

export function decodeElementwise(
  reader: ByteReader,
  plan: BlockPlan,
  stage2: Stage2Params,
  dtype: BaselineDtype,
): Float32Array {
  const { mixedPrecision, magnitudeThreshold } = stage2;
  const size = plan.tokens * plan.dim;
  const block = new Float32Array(size);
  // null: every element (the dense form)
  const alive = magnitudeThreshold > 0 ? readSubsetUnlessAll(reader, size) : null;
  if (mixedPrecision.enabled) {
    // every element alive: the groups without a mask, the same members
    let mask: Uint8Array | undefined;
    if (alive !== null && alive.length < size) {
      mask = new Uint8Array(size);
      for (let n = 0; n < alive.length; n++) mask[alive[n]] = 1;
    }
    const bitsOf = (t: number) => (plan.isHigh[t] ? mixedPrecision.highBits : mixedPrecision.lowBits);
    decodeGroups(reader, block, tokenGroups(plan.tokens, plan.dim, mixedPrecision.groupSize, bitsOf, mask));
  } else if (alive === null) {
    block.set(readRows(reader, size, 1, dtype));
  } else {
    const values = readRows(reader, alive.length, 1, dtype);
    alive.forEach((i, n) => {
      block[i] = values[n];
    });
  }
  return block;
}

/** Tokens of the block stored at high precision. */
export function highCount(plan: BlockPlan): number {
  let high = 0;
  for (let t = 0; t < plan.tokens; t++) high += plan.isHigh[t];
  return high;
}
