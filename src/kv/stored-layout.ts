/**
 * What a KV method's parameters say a layer stores, in closed form from the shapes alone
 * (heads, head size, context, baseline dtype): how many slots it keeps and, given those, its
 * bytes, bit histogram and full-precision heads. `spg verify` checks every layer fingerprint
 * against this without running the model (src/verify/checks/budget.ts); the encoders
 * (src/kv/methods) are what it describes, and test/kv/stored-layout.test.ts holds the two
 * against each other on every kind.
 *
 * What the shapes alone do not give:
 *  - which layers are local and their window (the checkpoint's attention layout): under
 *    localWindowTrim a local layer keeps only the slots a future query can still read, so
 *    the kept count is a function of that layer's readable slots per head (`eligible`), one
 *    value for every global layer (the whole context) and one for every local layer;
 *  - anything chosen from scores: which slots a scorer keeps (never how many), how per-layer
 *    selection splits a layer's budget over its heads, and everything spg's stage 2 decides
 *    per head (precision, sparsity, rank). Those bytes are replay's to check.
 */
import type { MethodConfig } from "../config/types.js";
import { indexBits, packedLength } from "../numeric/bitpack.js";
import { type BaselineDtype, dtypeBits, dtypeBytes } from "../numeric/dtype.js";
import { GROUP_META_BYTES } from "../numeric/group-quant.js";
import { subsetEncodingBytes } from "./compressed.js";
import type { H2oParams } from "./methods/h2o.js";
import type { QuantParams } from "./methods/quant.js";
import type { SnapKvParams } from "./methods/snapkv.js";
import { type BlockPlan, elementwiseBytes, sparseFloorBytes } from "./methods/spg/elementwise.js";
import { factorBytes } from "./methods/spg/factors.js";
import { reservedHeadCount, type SpgParams, type Stage2Params, stage2Enabled } from "./methods/spg/params.js";
import type { StreamingParams } from "./methods/streaming.js";
import { keepCount } from "./select.js";

/** One layer as the bundle states its shape. */
export interface LayerGeometry {
  heads: number;
  headDim: number;
  contextTokens: number;
  dtype: BaselineDtype;
  layer: number;
}

/**
 * A layer's stored form given its kept slots: bytes exact or within a range (per-layer
 * selection), the bit histogram and the full-precision heads; bytes and histogram absent
 * where the scores choose them (spg's stage 2).
 */
export interface StoredForm {
  bytes?: { min: number; max: number };
  bitsHistogram?: Record<string, number>;
  /**
   * Where the histogram is not exact (spg's stage 2 with a magnitude cut or low rank): the
   * widths it may hold, and the least count of some widths (the reserved heads' elements).
   */
  bitsBounds?: { widths: readonly number[]; atLeast: Record<string, number> };
  headsFullPrecision: number;
}

export interface StoredLayout {
  /** Whether local layers first drop what no future query reads (their kept count then follows the model's window). */
  trims: boolean;
  /**
   * Slots kept per head when `eligible` slots per head are readable (the whole context on a
   * global layer or without trimming). Nondecreasing in eligible. Per-layer selection keeps
   * this many per head on average (the layer's total is heads times it).
   */
  keptPerHead(eligible: number): number;
  /** The layer's stored form when it keeps `total` slots over its heads. */
  stored(total: number): StoredForm;
}

/** Slots in the first `sinks` positions or the last `recent` of a context of C, among its last `eligible` (sinkRecentMask ∩ readableMask). */
export function protectedSlots(
  eligible: number,
  sinks: number,
  recent: number,
  contextTokens: number,
): number {
  const c = contextTokens;
  const r = Math.min(recent, c);
  const s = Math.min(sinks, c);
  return Math.min(eligible, r) + Math.max(0, Math.min(s, c - r) - (c - eligible));
}

/** Slots a scorer keeps per head: protected slots always, then the top scores up to the budget, never beyond the readable ones (select.ts selectKept). */
function scoredKeep(
  eligible: number,
  keep: number,
  sinks: number,
  recent: number,
  contextTokens: number,
): number {
  return Math.min(Math.max(keep, protectedSlots(eligible, sinks, recent, contextTokens)), eligible);
}

/** Every kept slot at the baseline dtype, the kept set derived from params (no indices): full, window-trim, streaming. */
function derivedForm(total: number, g: LayerGeometry): StoredForm {
  const elements = 2 * total * g.headDim;
  const bytes = elements * dtypeBytes(g.dtype);
  return {
    bytes: { min: bytes, max: bytes },
    bitsHistogram: histogram([[dtypeBits(g.dtype), elements]]),
    headsFullPrecision: g.heads,
  };
}

/**
 * Every kept slot at the baseline dtype plus each head's kept set (compressed.ts
 * subsetEncodingBytes): exact when every head keeps total / heads, else (per-layer selection)
 * between every head's cheapest and dearest subset.
 */
function evictedForm(total: number, g: LayerGeometry, equalHeads: boolean): StoredForm {
  const rows = derivedForm(total, g) as Required<StoredForm>;
  const c = g.contextTokens;
  let min: number;
  let max: number;
  if (equalHeads) {
    min = max = g.heads * subsetEncodingBytes(total / g.heads, c).bytes;
  } else {
    // The dearest subset is the bitmask or, when it is cheaper, an index list below the whole context.
    min = g.heads * 1;
    max =
      g.heads *
      Math.max(1, Math.min(1 + Math.ceil(c / 8), 5 + packedLength(Math.max(0, c - 1), indexBits(c))));
  }
  return { ...rows, bytes: { min: rows.bytes.min + min, max: rows.bytes.max + max } };
}

/** Bytes of `rows` × `cols` values quantized in runs of `groupSize` along each row at `bits` (group-quant.ts tokenGroups, every element stored). */
function groupedBytes(rows: number, cols: number, groupSize: number, bits: number): number {
  if (rows === 0 || cols === 0) return 0;
  return GROUP_META_BYTES * rows * Math.ceil(cols / groupSize) + packedLength(rows * cols, bits);
}

/** quant's layer (quant.ts compressQuant): per head, keys per channel and values per token quantized, the last residualTokens slots at the baseline dtype. */
function quantForm(total: number, g: LayerGeometry, p: QuantParams): StoredForm {
  const perHead = total / g.heads;
  const quantized = Math.max(0, perHead - p.residualTokens);
  const recent = perHead - quantized;
  const d = g.headDim;
  const headBytes =
    groupedBytes(d, quantized, p.groupSize, p.keyBits) +
    groupedBytes(quantized, d, p.groupSize, p.valueBits) +
    2 * recent * d * dtypeBytes(g.dtype);
  const bytes = g.heads * headBytes;
  return {
    bytes: { min: bytes, max: bytes },
    bitsHistogram: histogram([
      [p.keyBits, g.heads * quantized * d],
      [p.valueBits, g.heads * quantized * d],
      [dtypeBits(g.dtype), g.heads * 2 * recent * d],
    ]),
    headsFullPrecision: quantized === 0 ? g.heads : 0,
  };
}

/**
 * spg's stage 2 (spg/layers.ts encodeLayer) given its kept slots, from the params alone. Per
 * head: its kept subset and a mode byte; the reserved heads' rows at the baseline dtype
 * (exact); every other head, with mixed precision, its high-precision tokens' subset (exactly
 * round(highFraction × kept) of them), then keys and values as two blocks (a form byte when
 * low rank is on), each at most its dense element-wise form (scales and zero points per group,
 * codes at the two widths: low rank or a magnitude cut is chosen only when smaller) and at
 * least the smallest form the params allow (no survivors, or rank 0). With neither a cut nor
 * low rank the dense form is the only one: bytes and histogram exact. How far below the dense
 * form a block goes (survivors, rank) follows the values: replay's. Per-layer selection
 * splits the kept slots over heads by score: only the widths and reserved heads are fixed.
 */
function stage2Form(total: number, g: LayerGeometry, stage2: Stage2Params, equalHeads: boolean): StoredForm {
  const reserved = reservedHeadCount(stage2, g.heads);
  const compressed = g.heads - reserved;
  const { mixedPrecision: mixed, magnitudeThreshold, lowRank } = stage2;
  const baselineBits = dtypeBits(g.dtype);
  const compressedWidths = mixed.enabled
    ? [mixed.highBits, mixed.lowBits]
    : [baselineBits, ...(lowRank.enabled ? [16] : [])];
  const widths = [
    ...new Set([...(reserved > 0 ? [baselineBits] : []), ...(compressed > 0 ? compressedWidths : [])]),
  ];
  if (!equalHeads) return { headsFullPrecision: reserved, bitsBounds: { widths, atLeast: {} } };
  const kept = total / g.heads;
  const d = g.headDim;
  const high = mixed.enabled ? Math.round(mixed.highFraction * kept) : 0;
  const plan: BlockPlan = { tokens: kept, dim: d, isHigh: new Uint8Array(kept).fill(1, 0, high) };
  const dense = elementwiseBytes(null, plan, stage2, g.dtype);
  const cut = magnitudeThreshold > 0;
  const lowest = Math.min(
    dense,
    cut ? sparseFloorBytes(0, kept * d, plan, stage2, g.dtype) : dense,
    lowRank.enabled ? factorBytes(plan, 0, stage2, high) : dense,
  );
  const formByte = lowRank.enabled ? 1 : 0;
  const highSubset = mixed.enabled ? subsetEncodingBytes(high, kept).bytes : 0;
  // Every head: its kept subset of the context's slots and its mode byte.
  const perHead = subsetEncodingBytes(kept, g.contextTokens).bytes + 1;
  const fixed = g.heads * perHead + reserved * 2 * kept * d * dtypeBytes(g.dtype) + compressed * highSubset;
  const reservedElements = reserved * 2 * kept * d;
  const bytes = {
    min: fixed + compressed * 2 * (formByte + lowest),
    max: fixed + compressed * 2 * (formByte + dense),
  };
  if (!cut && !lowRank.enabled) {
    return {
      bytes,
      bitsHistogram: histogram([
        [baselineBits, reservedElements],
        ...(mixed.enabled
          ? ([
              [mixed.highBits, compressed * 2 * high * d],
              [mixed.lowBits, compressed * 2 * (kept - high) * d],
            ] as [number, number][])
          : ([[baselineBits, compressed * 2 * kept * d]] as [number, number][])),
      ]),
      headsFullPrecision: reserved,
    };
  }
  return {
    bytes,
    bitsBounds: { widths, atLeast: histogram([[baselineBits, reservedElements]]) },
    headsFullPrecision: reserved,
  };
}

/** A bit histogram from (width, count) pairs, widths summed, zero counts left out (compressed.ts countBits). */
function histogram(entries: [number, number][]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [bits, count] of entries) {
    if (count === 0) continue;
    out[String(bits)] = (out[String(bits)] ?? 0) + count;
  }
  return out;
}

/**
 * The layout of one KV method's layer, or a reason its params cannot give one (a spg
 * layerKeepRatios without this layer). Weights methods store no KV cache: undefined.
 */
export function storedLayoutOf(method: MethodConfig, g: LayerGeometry): StoredLayout | string | undefined {
  const c = g.contextTokens;
  switch (method.kind) {
    case "weights":
      return undefined;
    case "full":
      return { trims: false, keptPerHead: () => c, stored: (total) => derivedForm(total, g) };
    case "window-trim":
      return { trims: true, keptPerHead: (eligible) => eligible, stored: (total) => derivedForm(total, g) };
    case "streaming": {
      const p = method.params as unknown as StreamingParams;
      return {
        trims: p.localWindowTrim,
        keptPerHead: (eligible) => protectedSlots(eligible, p.sinkTokens, p.recentTokens, c),
        stored: (total) => derivedForm(total, g),
      };
    }
    case "h2o": {
      const p = method.params as unknown as H2oParams;
      const keep = keepCount(p.keepRatio, c);
      return {
        trims: p.localWindowTrim,
        keptPerHead: (eligible) => scoredKeep(eligible, keep, p.sinkTokens, p.recentTokens, c),
        stored: (total) => evictedForm(total, g, p.selection === "per-head"),
      };
    }
    case "snapkv": {
      const p = method.params as unknown as SnapKvParams;
      const keep = keepCount(p.keepRatio, c);
      return {
        trims: p.localWindowTrim,
        keptPerHead: (eligible) => scoredKeep(eligible, keep, 0, p.observationWindow, c),
        stored: (total) => evictedForm(total, g, p.selection === "per-head"),
      };
    }
    case "quant": {
      const p = method.params as unknown as QuantParams;
      return {
        trims: p.localWindowTrim,
        keptPerHead: (eligible) => (p.localWindowTrim ? eligible : c),
        stored: (total) => quantForm(total, g, p),
      };
    }
    case "spg": {
      const p = method.params as unknown as SpgParams;
      const { stage1, stage2 } = p;
      const ratio = stage1.layerKeepRatios === null ? stage1.keepRatio : stage1.layerKeepRatios[g.layer];
      if (ratio === undefined) {
        return `params.stage1.layerKeepRatios has ${stage1.layerKeepRatios?.length} entries, no keep ratio for layer ${g.layer}`;
      }
      const keep = keepCount(ratio, c);
      const keptPerHead = (eligible: number) =>
        scoredKeep(eligible, keep, stage1.sinkTokens, stage1.recentTokens, c);
      if (!stage2Enabled(stage2)) {
        return {
          trims: stage1.localWindowTrim,
          keptPerHead,
          stored: (total) => evictedForm(total, g, stage1.selection === "per-head"),
        };
      }
      return {
        trims: stage1.localWindowTrim,
        keptPerHead,
        stored: (total) => stage2Form(total, g, stage2, stage1.selection === "per-head"),
      };
    }
  }
}
