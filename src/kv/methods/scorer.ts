/**
 * Score-based eviction, the kvpress ScorerPress pattern: a scoring method supplies per-head
 * scores of a layer's slots and its budget; what is shared happens here: sinks and the recent
 * window are protected, slots no future query reads are left out (localWindowTrim), the top
 * scores are selected (select.ts) and the evicted cache is stored.
 */
import type { KvCache } from "../cache.js";
import type { CacheShape, CompressedCache } from "../compressed.js";
import { keepCount, type SelectionMode, selectKept, sinkRecentMask } from "../select.js";
import { eligibleSlots, storeEvicted } from "./shared.js";
import type { MethodContext, PrefillAttention } from "./types.js";

/** What a scoring method decides besides its scores. */
export interface EvictionRules {
  /** Fraction of a layer's slots kept (protected slots included). */
  keepRatio: (layer: number) => number;
  sinkTokens: number;
  recentTokens: number;
  selection: SelectionMode;
  localWindowTrim: boolean;
}

/** Per head, one score per slot (higher = keep). */
export type LayerScorer = (layer: number, numHeads: number, slots: number) => Float32Array[];

export interface LayerSelection {
  /** Kept slots per head, ascending. */
  kept: Int32Array[];
  scores: Float32Array[];
  protectedMask: Uint8Array;
}

/** Every layer's kept slots under the rules, from the method's scores. */
export function selectByScore(
  shape: CacheShape,
  context: MethodContext,
  rules: EvictionRules,
  score: LayerScorer,
): LayerSelection[] {
  const eligible = eligibleSlots(shape, context, rules.localWindowTrim);
  return shape.layers.map((layer, l) => {
    const slots = layer.positions.length;
    const scores = score(l, layer.numHeads, slots);
    const protectedMask = sinkRecentMask(layer.positions, rules.sinkTokens, rules.recentTokens);
    const kept = selectKept({
      scores,
      keep: keepCount(rules.keepRatio(l), slots),
      protectedMask,
      eligible: eligible[l],
      mode: rules.selection,
    });
    return { kept, scores, protectedMask };
  });
}

/** selectByScore, then the kept slots stored at the baseline dtype. */
export function evictByScore(
  kind: string,
  cache: KvCache,
  shape: CacheShape,
  context: MethodContext,
  rules: EvictionRules,
  score: LayerScorer,
): CompressedCache {
  const kept = selectByScore(shape, context, rules, score).map((layer) => layer.kept);
  return storeEvicted(kind, cache, shape, context.baselineDtype, kept);
}

/** Per head, views of one [heads, slots] statistic of a layer: [slots] each, not copies. */
export function headRows<T extends Float32Array | Float64Array>(
  stat: T,
  numHeads: number,
  slots: number,
): T[] {
  return Array.from({ length: numHeads }, (_, h) => stat.subarray(h * slots, (h + 1) * slots) as T);
}

/**
 * Per head, attention of the last `window` rows summed over those rows: [slots] each (views
 * into the prefill's window sums, not copies).
 */
export function observationScores(
  attention: PrefillAttention,
  layer: number,
  numHeads: number,
  slots: number,
  window: number,
): Float32Array[] {
  const rows = attention.rows;
  const sums = attention.windowSums[layer];
  return Array.from({ length: numHeads }, (_, h) => {
    const start = (h * rows + rows - window) * slots;
    return sums.subarray(start, start + slots);
  });
}
