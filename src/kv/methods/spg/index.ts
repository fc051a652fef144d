/**
 * `spg`: two-stage KV compression. Every component is switched by params, so ablations are
 * config overlays, not code branches.
 *
 * Stage 1, permanent eviction (SnapKV++): per head, the attention the last
 * `observationWindow` context queries give each slot, pooled with a kernel chosen by
 * context length (`poolingKernels` table), each normalized by its head maximum and mixed
 * with the key/value L2 magnitude (||k|| + ||v||) by `magnitudeWeight`; sinks and the
 * recent window are protected; `keepRatio` (or `layerKeepRatios[l]`) of the slots kept.
 *
 * Stage 2, per kept head (skipped, bytes identical to plain eviction, when every stage-2
 * component is off):
 *  - heads ranked by importance = Σ over kept slots of observation attention × ||v||
 *    (how much the head's output draws on its values); the top `reservedHeads` per layer
 *    stay at the baseline dtype;
 *  - magnitude threshold: in each remaining head's K and V blocks, elements with
 *    |x| < magnitudeThreshold · max|x| are dropped; survivors are indexed by a bitmask or
 *    an index list, whichever is smaller; a block keeps all its elements instead when that
 *    is smaller than the sparse form (the mask alone costs a bit per element);
 *  - mixed precision: the top `highFraction` of kept tokens by stage-1 score (protected
 *    first) at `highBits`, the rest at the `lowBits` floor; per token, groups of
 *    `groupSize` channels share an fp16 scale and zero point;
 *  - adaptive low-rank: each K/V block's truncated SVD at `energyThreshold` is stored as
 *    factors when that is smaller than the element-wise encoding (the rank comes from the
 *    Gram matrix's eigenvalues; only the kept singular vectors are computed); with mixed precision on,
 *    the factors are held to the same tiers (each left-factor row at its token's bits, the
 *    right factor at `highBits`, groups of `groupSize`), otherwise fp16.
 * Hybrid sparse attention (`sparseTopK`) is a decode-time setting: it changes the graph's
 * attention, not the stored bytes.
 *
 * Layer bytes, stage 2 on, per head: kept-slot subset; u8 head mode (0 = baseline dtype,
 * 1 = compressed). Mode 0: K rows, V rows. Mode 1: [high-precision token subset if mixed
 * precision]; for K then V: [u8 block kind if low-rank on: 0 element-wise, 1 low-rank];
 * low-rank: u16 rank, left [kept, rank] then right [rank, headDim] (quantization groups as
 * element-wise blocks with mixed precision on, else fp16); element-wise:
 * [surviving-element subset if threshold > 0], then codes (mixed precision) or values at
 * the baseline dtype.
 */

import { SpgError } from "../../../errors.js";
import { packedLength } from "../../../numeric/bitpack.js";
import { ByteReader, ByteWriter } from "../../../numeric/bytes.js";
import { halfBitsToFloat } from "../../../numeric/fp16.js";
import {
  decodeGroups,
  encodeGroups,
  GROUP_META_BYTES,
  type QuantGroups,
  tokenGroups,
} from "../../../numeric/group-quant.js";
import {
  factorsFor,
  gramMatrix,
  lowRankBytes,
  multiplyFactors,
  rankForEnergy,
  symmetricTopEigen,
  topEigenvalueSumBound,
} from "../../../numeric/lowrank.js";
import type { HeadCache, KvCache, LayerCache } from "../../cache.js";
import {
  assembleCompressed,
  type BaselineDtype,
  type CacheShape,
  type CompressedCache,
  countBits,
  dtypeBits,
  dtypeBytes,
  type EncodedLayer,
  headFromRows,
  readRows,
  readSubset,
  subsetEncodingBytes,
  writeRows,
  writeSubset,
} from "../../compressed.js";
import {
  keepCount,
  pool1d,
  type SelectionMode,
  selectKept,
  sinkRecentMask,
  topMembers,
} from "../../select.js";
import {
  checkedShape,
  checkStatistics,
  decodeKeptLayer,
  eligibleSlots,
  encodeKeptLayer,
  gatherRows,
  paramError,
  schemaParts,
  validateParams,
} from "../shared.js";
import { observationScores } from "../snapkv.js";
import type { MethodContext, MethodDefinition } from "../types.js";

export interface SpgParams {
  stage1: {
    keepRatio: number;
    layerKeepRatios: number[] | null;
    sinkTokens: number;
    recentTokens: number;
    observationWindow: number;
    poolingKernels: { maxContextTokens: number; kernel: number }[];
    pooling: "max" | "avg";
    magnitudeWeight: number;
    selection: SelectionMode;
    localWindowTrim: boolean;
  };
  stage2: {
    reservedHeads: number;
    magnitudeThreshold: number;
    mixedPrecision: {
      enabled: boolean;
      highBits: number;
      lowBits: number;
      highFraction: number;
      groupSize: number;
    };
    lowRank: { enabled: boolean; energyThreshold: number };
  };
  decode: { sparseTopK: number };
}

const bitsSchema = { type: "integer", minimum: 1, maximum: 16 } as const;

export const paramsSchema = {
  type: "object",
  additionalProperties: false,
  required: ["stage1", "stage2", "decode"],
  properties: {
    stage1: {
      type: "object",
      additionalProperties: false,
      required: [
        "keepRatio",
        "layerKeepRatios",
        "sinkTokens",
        "recentTokens",
        "observationWindow",
        "poolingKernels",
        "pooling",
        "magnitudeWeight",
        "selection",
        "localWindowTrim",
      ],
      properties: {
        keepRatio: schemaParts.keepRatio,
        layerKeepRatios: {
          description: "Per-layer keep ratios overriding keepRatio (one per layer), or null.",
          oneOf: [{ type: "null" }, { type: "array", minItems: 1, items: schemaParts.keepRatio }],
        },
        sinkTokens: { ...schemaParts.tokens, description: "First positions always kept." },
        recentTokens: { ...schemaParts.tokens, description: "Most recent slots always kept." },
        observationWindow: { type: "integer", minimum: 1 },
        poolingKernels: {
          type: "array",
          minItems: 1,
          description:
            "Pooling kernel by context length: the first entry with maxContextTokens >= context wins.",
          items: {
            type: "object",
            additionalProperties: false,
            required: ["maxContextTokens", "kernel"],
            properties: {
              maxContextTokens: { type: "integer", minimum: 1 },
              kernel: { type: "integer", minimum: 1 },
            },
          },
        },
        pooling: { enum: ["max", "avg"] },
        magnitudeWeight: { type: "number", minimum: 0, maximum: 1 },
        selection: schemaParts.selection,
        localWindowTrim: schemaParts.localWindowTrim,
      },
    },
    stage2: {
      type: "object",
      additionalProperties: false,
      required: ["reservedHeads", "magnitudeThreshold", "mixedPrecision", "lowRank"],
      properties: {
        reservedHeads: { ...schemaParts.tokens, description: "Heads per layer kept at the baseline dtype." },
        magnitudeThreshold: { type: "number", minimum: 0, exclusiveMaximum: 1, description: "0 = off." },
        mixedPrecision: {
          type: "object",
          additionalProperties: false,
          required: ["enabled", "highBits", "lowBits", "highFraction", "groupSize"],
          properties: {
            enabled: { type: "boolean" },
            highBits: bitsSchema,
            lowBits: bitsSchema,
            highFraction: { type: "number", minimum: 0, maximum: 1 },
            groupSize: { type: "integer", minimum: 1 },
          },
        },
        lowRank: {
          type: "object",
          additionalProperties: false,
          required: ["enabled", "energyThreshold"],
          properties: {
            enabled: { type: "boolean" },
            energyThreshold: { type: "number", exclusiveMinimum: 0, maximum: 1 },
          },
        },
      },
    },
    decode: {
      type: "object",
      additionalProperties: false,
      required: ["sparseTopK"],
      properties: {
        sparseTopK: { ...schemaParts.tokens, description: "Keys each decode query attends to; 0 = dense." },
      },
    },
  },
} as const;

const MODE_BASELINE = 0;
const MODE_COMPRESSED = 1;
const BLOCK_ELEMENTWISE = 0;
const BLOCK_LOWRANK = 1;

function checkParams(p: SpgParams, context: MethodContext): void {
  const { stage1, stage2 } = p;
  if (stage1.layerKeepRatios !== null && stage1.layerKeepRatios.length !== context.config.numLayers) {
    throw paramError(
      "spg",
      "stage1.layerKeepRatios",
      `has ${stage1.layerKeepRatios.length} entries for ${context.config.numLayers} layers`,
    );
  }
  stage1.poolingKernels.forEach((entry, i) => {
    if (entry.kernel % 2 === 0) throw paramError("spg", `stage1.poolingKernels.${i}.kernel`, "must be odd");
    if (i > 0 && entry.maxContextTokens <= stage1.poolingKernels[i - 1].maxContextTokens) {
      throw paramError("spg", `stage1.poolingKernels.${i}.maxContextTokens`, "must be ascending");
    }
  });
  if (stage1.observationWindow > context.attention.rows) {
    throw paramError(
      "spg",
      "stage1.observationWindow",
      `is ${stage1.observationWindow} but the prefill returned attention for ${context.attention.rows} rows`,
      "raise kv.observationWindow in the run config or lower params.stage1.observationWindow",
    );
  }
  if (stage2.mixedPrecision.enabled && stage2.mixedPrecision.lowBits > stage2.mixedPrecision.highBits) {
    throw paramError("spg", "stage2.mixedPrecision.lowBits", "must not exceed highBits");
  }
}

/** The pooling kernel for this context length (first table entry that covers it). */
export function kernelFor(p: SpgParams, contextTokens: number): number {
  const entry = p.stage1.poolingKernels.find((e) => contextTokens <= e.maxContextTokens);
  if (entry === undefined) {
    throw paramError(
      "spg",
      "stage1.poolingKernels",
      `has no entry for a ${contextTokens}-token context`,
      "add an entry whose maxContextTokens covers the configured context length",
    );
  }
  return entry.kernel;
}

function maxOf(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > m) m = values[i];
  return m;
}

/** Stage-1 scores of one head: pooled observation attention mixed with K/V magnitude. */
function stage1Scores(
  attention: Float32Array,
  keyNorms: Float64Array,
  valueNorms: Float64Array,
  kernel: number,
  p: SpgParams,
): Float32Array {
  const pooled = pool1d(attention, kernel, p.stage1.pooling);
  const slots = pooled.length;
  const magnitude = new Float64Array(slots);
  for (let s = 0; s < slots; s++) magnitude[s] = keyNorms[s] + valueNorms[s];
  const maxA = maxOf(pooled);
  const maxM = maxOf(magnitude);
  const w = p.stage1.magnitudeWeight;
  const out = new Float32Array(slots);
  for (let s = 0; s < slots; s++) {
    out[s] = (1 - w) * (maxA > 0 ? pooled[s] / maxA : 0) + w * (maxM > 0 ? magnitude[s] / maxM : 0);
  }
  return out;
}

function stage2Enabled(p: SpgParams): boolean {
  const s = p.stage2;
  return s.mixedPrecision.enabled || s.magnitudeThreshold > 0 || s.lowRank.enabled;
}

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

export interface BlockPlan {
  tokens: number;
  dim: number;
  isHigh: Uint8Array;
}

/** 0, 1, ..., n-1 */
function range(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/** One way to store a block element-wise: which elements survive (null: all) and the exact size. */
interface ElementwiseOption {
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
  p: SpgParams,
  dtype: BaselineDtype,
): number {
  const { mixedPrecision, magnitudeThreshold } = p.stage2;
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
  p: SpgParams,
  dtype: BaselineDtype,
): number {
  const subset = subsetEncodingBytes(count, size).bytes;
  const { mixedPrecision } = p.stage2;
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
    private readonly p: SpgParams,
    private readonly dtype: BaselineDtype,
  ) {
    this.upper = elementwiseBytes(null, plan, p, dtype);
  }

  /** Survivors of the magnitude cut (every element when the threshold is off). */
  private survivors(): number {
    if (this.count >= 0) return this.count;
    const { block } = this;
    const { magnitudeThreshold } = this.p.stage2;
    if (magnitudeThreshold === 0) {
      this.count = block.length;
      return this.count;
    }
    const cut = magnitudeThreshold * maxAbs(block);
    let count = 0;
    for (let i = 0; i < block.length; i++) if (survives(block[i], cut)) count++;
    this.cut = cut;
    this.count = count;
    return count;
  }

  /** A lower bound on best().bytes. */
  lower(): number {
    const count = this.survivors();
    if (count === this.block.length) return this.upper;
    return Math.min(this.upper, sparseFloorBytes(count, this.block.length, this.plan, this.p, this.dtype));
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
    const sparse = { alive, bytes: elementwiseBytes(alive, this.plan, this.p, this.dtype) };
    this.chosen = sparse.bytes < dense.bytes ? sparse : dense;
    return this.chosen;
  }

  /** Whether `bytes` is strictly less than the best element-wise form's. */
  isBeatenBy(bytes: number): boolean {
    if (bytes >= this.upper) return false;
    return bytes < this.lower() || bytes < this.best().bytes;
  }
}

function writeElementwise(
  writer: ByteWriter,
  block: Float32Array,
  option: ElementwiseOption,
  plan: BlockPlan,
  p: SpgParams,
  dtype: BaselineDtype,
  histogram: Record<string, number>,
): void {
  const { mixedPrecision, magnitudeThreshold } = p.stage2;
  const start = writer.size();
  const alive = option.alive ?? range(block.length);
  if (magnitudeThreshold > 0) writeSubset(writer, alive, block.length);
  if (mixedPrecision.enabled) {
    let mask: Uint8Array | undefined;
    if (option.alive !== null) {
      mask = new Uint8Array(block.length);
      for (let n = 0; n < alive.length; n++) mask[alive[n]] = 1;
    }
    const bitsOf = (t: number) => (plan.isHigh[t] ? mixedPrecision.highBits : mixedPrecision.lowBits);
    encodeGroups(writer, block, tokenGroups(plan.tokens, plan.dim, mixedPrecision.groupSize, bitsOf, mask));
    let high = 0;
    for (let n = 0; n < alive.length; n++) high += plan.isHigh[(alive[n] / plan.dim) | 0];
    countBits(histogram, mixedPrecision.highBits, high);
    countBits(histogram, mixedPrecision.lowBits, alive.length - high);
  } else {
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

function decodeElementwise(
  reader: ByteReader,
  plan: BlockPlan,
  p: SpgParams,
  dtype: BaselineDtype,
): Float32Array {
  const { mixedPrecision, magnitudeThreshold } = p.stage2;
  const size = plan.tokens * plan.dim;
  const block = new Float32Array(size);
  const alive = magnitudeThreshold > 0 ? readSubset(reader, size) : range(size);
  if (mixedPrecision.enabled) {
    const mask = new Uint8Array(size);
    for (const i of alive) mask[i] = 1;
    const bitsOf = (t: number) => (plan.isHigh[t] ? mixedPrecision.highBits : mixedPrecision.lowBits);
    decodeGroups(reader, block, tokenGroups(plan.tokens, plan.dim, mixedPrecision.groupSize, bitsOf, mask));
  } else {
    const values = readRows(reader, alive.length, 1, dtype);
    alive.forEach((i, n) => {
      block[i] = values[n];
    });
  }
  return block;
}

/**
 * How a compressed head's low-rank factors are stored. With mixed precision on, they are held
 * to the same tiers as element-wise blocks (a compressed head is never stored above them): each
 * left-factor row (one per token) at its token's tier, the right factor at highBits, in groups
 * of groupSize. With it off, fp16. null = fp16.
 */
function factorGroups(
  plan: BlockPlan,
  rank: number,
  p: SpgParams,
): { left: QuantGroups; right: QuantGroups } | null {
  const mixed = p.stage2.mixedPrecision;
  if (!mixed.enabled) return null;
  const bitsOf = (t: number) => (plan.isHigh[t] ? mixed.highBits : mixed.lowBits);
  return {
    left: tokenGroups(plan.tokens, rank, mixed.groupSize, bitsOf),
    right: tokenGroups(rank, plan.dim, mixed.groupSize, () => mixed.highBits),
  };
}

/**
 * Exact bytes of a low-rank block's body at this rank: u16 rank + factors. Closed form of what
 * writeFactors writes (it checks the two agree): per group an fp16 scale and zero point, then
 * one bit-packed stream per distinct width of each factor.
 */
function factorBytes(plan: BlockPlan, rank: number, p: SpgParams, highTokens: number): number {
  const mixed = p.stage2.mixedPrecision;
  if (!mixed.enabled) return lowRankBytes(plan.tokens, plan.dim, rank);
  if (rank === 0) return 2;
  const { highBits, lowBits, groupSize } = mixed;
  const lowTokens = plan.tokens - highTokens;
  const leftCodes =
    highBits === lowBits
      ? packedLength(plan.tokens * rank, highBits)
      : packedLength(highTokens * rank, highBits) + packedLength(lowTokens * rank, lowBits);
  const left = GROUP_META_BYTES * plan.tokens * Math.ceil(rank / groupSize) + leftCodes;
  const right =
    GROUP_META_BYTES * rank * Math.ceil(plan.dim / groupSize) + packedLength(rank * plan.dim, highBits);
  return 2 + left + right;
}

function writeFactors(
  writer: ByteWriter,
  factors: { left: Float64Array; right: Float64Array },
  rank: number,
  plan: BlockPlan,
  p: SpgParams,
  histogram: Record<string, number>,
): void {
  const start = writer.size();
  writer.u16(rank);
  const groups = factorGroups(plan, rank, p);
  if (groups === null) {
    for (const x of factors.left) writer.half(checkedHalf(x));
    for (const x of factors.right) writer.half(checkedHalf(x));
    countBits(histogram, 16, factors.left.length + factors.right.length);
  } else {
    const { highBits, lowBits } = p.stage2.mixedPrecision;
    encodeGroups(writer, Float32Array.from(factors.left), groups.left);
    encodeGroups(writer, Float32Array.from(factors.right), groups.right);
    let high = 0;
    for (let t = 0; t < plan.tokens; t++) high += plan.isHigh[t];
    countBits(histogram, highBits, high * rank + factors.right.length);
    countBits(histogram, lowBits, (plan.tokens - high) * rank);
  }
  const planned = factorBytes(plan, rank, p, highCount(plan));
  if (writer.size() - start !== planned) {
    throw new SpgError(
      "E_KV_ENCODE",
      `spg low-rank block wrote ${writer.size() - start} bytes, planned ${planned}`,
    );
  }
}

function highCount(plan: BlockPlan): number {
  let high = 0;
  for (let t = 0; t < plan.tokens; t++) high += plan.isHigh[t];
  return high;
}

/**
 * The low-rank form of a block when it is smaller than the element-wise form, else null. The
 * rank is the fewest components that reach the energy threshold. Ranks from `ceiling` up
 * cannot beat even the dense element-wise bytes, so when even the best `ceiling - 1`
 * components cannot hold the threshold's energy (an upper bound from the Gram matrix alone),
 * the eigen-decomposition is skipped: the choice is the same as with it. Otherwise the
 * eigenvalues decide, and only the vectors the factors use are computed.
 */
function lowRankChoice(
  block: Float32Array,
  plan: BlockPlan,
  p: SpgParams,
  elementwise: ElementwiseChoice,
): { rank: number; factors: { left: Float64Array; right: Float64Array } } | null {
  const high = highCount(plan);
  const maxRank = Math.min(plan.tokens, plan.dim);
  let ceiling = 0;
  while (ceiling <= maxRank && factorBytes(plan, ceiling, p, high) < elementwise.upper) ceiling++;
  if (ceiling === 0) return null;
  const gram = gramMatrix(block, plan.tokens, plan.dim);
  const threshold = p.stage2.lowRank.energyThreshold;
  const { bound, trace } = topEigenvalueSumBound(gram, plan.dim, ceiling - 1);
  // The margin is far above float64 rounding of eigenvalue sums: only clear cases skip.
  if (trace > 0 && bound < threshold * trace * (1 - 1e-9)) return null;
  let rank = 0;
  let won = false;
  const { vectors } = symmetricTopEigen(gram, plan.dim, (values) => {
    rank = rankForEnergy(values, maxRank, threshold).rank;
    won = elementwise.isBeatenBy(factorBytes(plan, rank, p, high));
    return won ? rank : 0;
  });
  if (!won) return null;
  return { rank, factors: factorsFor(block, plan.tokens, plan.dim, vectors ?? new Float64Array(0), rank) };
}

function encodeBlock(
  writer: ByteWriter,
  block: Float32Array,
  plan: BlockPlan,
  p: SpgParams,
  dtype: BaselineDtype,
  histogram: Record<string, number>,
): void {
  const elementwise = new ElementwiseChoice(block, plan, p, dtype);
  if (p.stage2.lowRank.enabled) {
    const lowRank = lowRankChoice(block, plan, p, elementwise);
    writer.u8(lowRank === null ? BLOCK_ELEMENTWISE : BLOCK_LOWRANK);
    if (lowRank !== null) {
      writeFactors(writer, lowRank.factors, lowRank.rank, plan, p, histogram);
      return;
    }
  }
  writeElementwise(writer, block, elementwise.best(), plan, p, dtype, histogram);
}

function checkedHalf(x: number): number {
  if (!Number.isFinite(x) || Math.abs(x) > 65504) {
    throw paramError(
      "spg",
      "stage2.lowRank",
      `produced a factor ${x} outside fp16 range`,
      "disable lowRank for this model",
    );
  }
  return x;
}

function decodeBlock(reader: ByteReader, plan: BlockPlan, p: SpgParams, dtype: BaselineDtype): Float32Array {
  const kind = p.stage2.lowRank.enabled ? reader.u8() : BLOCK_ELEMENTWISE;
  if (kind === BLOCK_ELEMENTWISE) return decodeElementwise(reader, plan, p, dtype);
  const rank = reader.u16();
  const groups = factorGroups(plan, rank, p);
  let left: Float32Array | Float64Array;
  let right: Float32Array | Float64Array;
  if (groups === null) {
    left = Float64Array.from({ length: plan.tokens * rank }, () => halfBitsToFloat(reader.u16()));
    right = Float64Array.from({ length: rank * plan.dim }, () => halfBitsToFloat(reader.u16()));
  } else {
    left = new Float32Array(plan.tokens * rank);
    right = new Float32Array(rank * plan.dim);
    decodeGroups(reader, left, groups.left);
    decodeGroups(reader, right, groups.right);
  }
  return multiplyFactors(left, right, plan.tokens, rank, plan.dim, new Float32Array(plan.tokens * plan.dim));
}

/**
 * Indices (into the kept list, ascending) of the tokens stored at high precision: the top
 * `fraction` by (protected first, stage-1 score, earlier token).
 */
function highTokens(keptScores: Float32Array, protectedKept: Uint8Array, fraction: number): Int32Array {
  const take = Math.round(fraction * keptScores.length);
  const isProtected: number[] = [];
  const others: number[] = [];
  for (let t = 0; t < keptScores.length; t++) (protectedKept[t] ? isProtected : others).push(t);
  if (take <= isProtected.length) return topMembers(keptScores, Int32Array.from(isProtected), take);
  const rest = topMembers(keptScores, Int32Array.from(others), take - isProtected.length);
  return Int32Array.from([...isProtected, ...rest]).sort();
}

interface LayerPlan {
  kept: Int32Array[];
  scores: Float32Array[];
  importance: Float64Array;
  protectedMask: Uint8Array;
}

function planLayer(
  cache: KvCache,
  shape: CacheShape,
  l: number,
  context: MethodContext,
  p: SpgParams,
  eligible: Uint8Array,
): LayerPlan {
  const layer = shape.layers[l];
  const slots = layer.positions.length;
  const kernel = kernelFor(p, slots);
  const observed = observationScores(context.attention, l, layer.numHeads, slots, p.stage1.observationWindow);
  const heads = cache.layers[l].heads;
  const normsOf = (all: Float64Array) => heads.map((_, h) => all.subarray(h * slots, (h + 1) * slots));
  const keyNorms = normsOf(context.norms.keys[l]);
  const valueNorms = normsOf(context.norms.values[l]);
  const scores = heads.map((_, h) => stage1Scores(observed[h], keyNorms[h], valueNorms[h], kernel, p));
  const protectedMask = sinkRecentMask(layer.positions, p.stage1.sinkTokens, p.stage1.recentTokens);
  const ratio = p.stage1.layerKeepRatios === null ? p.stage1.keepRatio : p.stage1.layerKeepRatios[l];
  const kept = selectKept({
    scores,
    keep: keepCount(ratio, slots),
    protectedMask,
    eligible,
    mode: p.stage1.selection,
  });
  const importance = new Float64Array(heads.length);
  kept.forEach((slotsKept, h) => {
    for (let i = 0; i < slotsKept.length; i++)
      importance[h] += observed[h][slotsKept[i]] * valueNorms[h][slotsKept[i]];
  });
  return { kept, scores, importance, protectedMask };
}

function encodeLayer(
  layer: LayerCache,
  plan: LayerPlan,
  dim: number,
  p: SpgParams,
  dtype: BaselineDtype,
): EncodedLayer {
  const writer = new ByteWriter();
  const histogram: Record<string, number> = {};
  const heads = layer.heads.length;
  const ranked = Array.from({ length: heads }, (_, h) => h).sort(
    (a, b) => plan.importance[b] - plan.importance[a] || a - b,
  );
  const reserved = new Set(ranked.slice(0, Math.min(p.stage2.reservedHeads, heads)));
  let tokensKept = 0;
  layer.heads.forEach((head, h) => {
    const kept = plan.kept[h];
    const slots = head.positions.length;
    tokensKept += kept.length;
    writeSubset(writer, kept, slots);
    if (reserved.has(h)) {
      writer.u8(MODE_BASELINE);
      writeRows(writer, head.keys, kept, dim, dtype);
      writeRows(writer, head.values, kept, dim, dtype);
      countBits(histogram, dtypeBits(dtype), 2 * kept.length * dim);
      return;
    }
    writer.u8(MODE_COMPRESSED);
    const isHigh = new Uint8Array(kept.length);
    if (p.stage2.mixedPrecision.enabled) {
      const keptScores = Float32Array.from(kept, (s) => plan.scores[h][s]);
      const protectedKept = Uint8Array.from(kept, (s) => plan.protectedMask[s]);
      const high = highTokens(keptScores, protectedKept, p.stage2.mixedPrecision.highFraction);
      writeSubset(writer, high, kept.length);
      for (const t of high) isHigh[t] = 1;
    }
    const blockPlan = { tokens: kept.length, dim, isHigh };
    encodeBlock(writer, gatherRows(head.keys, kept, dim), blockPlan, p, dtype, histogram);
    encodeBlock(writer, gatherRows(head.values, kept, dim), blockPlan, p, dtype, histogram);
  });
  return {
    serialized: writer.finish(),
    tokensKept,
    headsFullPrecision: reserved.size,
    bitsHistogram: histogram,
  };
}

function decodeLayer(
  bytes: Uint8Array,
  positions: Int32Array,
  heads: number,
  dim: number,
  p: SpgParams,
  dtype: BaselineDtype,
): LayerCache {
  const reader = new ByteReader(bytes);
  const out: HeadCache[] = [];
  for (let h = 0; h < heads; h++) {
    const kept = readSubset(reader, positions.length);
    const mode = reader.u8();
    if (mode === MODE_BASELINE) {
      const keys = readRows(reader, kept.length, dim, dtype);
      const values = readRows(reader, kept.length, dim, dtype);
      out.push(headFromRows(positions, kept, keys, values));
      continue;
    }
    const isHigh = new Uint8Array(kept.length);
    if (p.stage2.mixedPrecision.enabled) for (const t of readSubset(reader, kept.length)) isHigh[t] = 1;
    const blockPlan = { tokens: kept.length, dim, isHigh };
    const keys = decodeBlock(reader, blockPlan, p, dtype);
    const values = decodeBlock(reader, blockPlan, p, dtype);
    out.push(headFromRows(positions, kept, keys, values));
  }
  reader.end();
  return { heads: out };
}

/**
 * The hybrid-sparse top-k a spg method's cache is decoded with (0: dense attention), read from
 * its params before any run: the memory check counts one model session per distinct value.
 */
export function decodeTopK(params: Record<string, unknown>): number {
  const sparseTopK = (params as { decode?: { sparseTopK?: unknown } }).decode?.sparseTopK;
  return typeof sparseTopK === "number" ? sparseTopK : 0;
}

export function compress(
  cache: KvCache,
  context: MethodContext,
  params: Record<string, unknown>,
): CompressedCache {
  const p = validateParams<SpgParams>("spg", paramsSchema, params);
  checkParams(p, context);
  const shape = checkedShape("spg", cache, context);
  checkStatistics("spg", shape, context, "windowSums");
  checkStatistics("spg", shape, context, "keyNorms");
  checkStatistics("spg", shape, context, "valueNorms");
  const dtype = context.baselineDtype;
  const eligible = eligibleSlots(shape, context, p.stage1.localWindowTrim);
  const plans = shape.layers.map((_, l) => planLayer(cache, shape, l, context, p, eligible[l]));
  const decode = p.decode.sparseTopK > 0 ? { sparseTopK: p.decode.sparseTopK } : {};
  if (!stage2Enabled(p)) {
    const encoded = cache.layers.map((layer, l) =>
      encodeKeptLayer(layer, plans[l].kept, shape.headDim, dtype, true),
    );
    return assembleCompressed(
      "spg",
      shape,
      encoded,
      (bytes, l, s) =>
        decodeKeptLayer(bytes, s.layers[l].positions, s.layers[l].numHeads, s.headDim, dtype, null),
      decode,
    );
  }
  const encoded = cache.layers.map((layer, l) => encodeLayer(layer, plans[l], shape.headDim, p, dtype));
  return assembleCompressed(
    "spg",
    shape,
    encoded,
    (bytes, l, s) => decodeLayer(bytes, s.layers[l].positions, s.layers[l].numHeads, s.headDim, p, dtype),
    decode,
  );
}

export const spgMethod: MethodDefinition = { kind: "spg", paramsSchema, compress };
