/**
 * `snapkv`: the last `observationWindow` context queries vote: each slot's score is the
 * attention those queries give it, summed, then smoothed by 1D pooling (kernel, max/avg)
 * so neighbours of important tokens survive together. Top-k per head plus the observation
 * window itself, `keepRatio` of the slots in all. Kept slots are stored.
 */
import type { KvCache } from "../cache.js";
import type { CompressedCache } from "../compressed.js";
import { keepCount, pool1d, type SelectionMode, selectKept, sinkRecentMask } from "../select.js";
import {
  checkedShape,
  checkStatistics,
  eligibleSlots,
  paramError,
  schemaParts,
  storeEvicted,
  validateParams,
} from "./shared.js";
import type { MethodContext, MethodDefinition, PrefillAttention } from "./types.js";

export interface SnapKvParams {
  keepRatio: number;
  observationWindow: number;
  poolingKernel: number;
  pooling: "max" | "avg";
  selection: SelectionMode;
  localWindowTrim: boolean;
}

export const paramsSchema = {
  type: "object",
  additionalProperties: false,
  required: ["keepRatio", "observationWindow", "poolingKernel", "pooling", "selection", "localWindowTrim"],
  properties: {
    keepRatio: schemaParts.keepRatio,
    observationWindow: {
      type: "integer",
      minimum: 1,
      description: "Last context queries whose attention scores the slots (<= kv.observationWindow).",
    },
    poolingKernel: { type: "integer", minimum: 1, description: "Odd 1D pooling kernel over slots." },
    pooling: { enum: ["max", "avg"] },
    selection: schemaParts.selection,
    localWindowTrim: schemaParts.localWindowTrim,
  },
} as const;

/**
 * Per head, attention of the last `window` rows summed over those rows: [slots] each (views
 * into the prefill's window sums, not copies). Shared with spg's stage 1.
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

export function compress(
  cache: KvCache,
  context: MethodContext,
  params: Record<string, unknown>,
): CompressedCache {
  const p = validateParams<SnapKvParams>("snapkv", paramsSchema, params);
  if (p.poolingKernel % 2 === 0) throw paramError("snapkv", "poolingKernel", "must be odd");
  if (p.observationWindow > context.attention.rows) {
    throw paramError(
      "snapkv",
      "observationWindow",
      `is ${p.observationWindow} but the prefill returned attention for ${context.attention.rows} rows`,
      "raise kv.observationWindow in the run config or lower params.observationWindow",
    );
  }
  const shape = checkedShape("snapkv", cache, context);
  checkStatistics("snapkv", shape, context, "windowSums");
  const eligible = eligibleSlots(shape, context, p.localWindowTrim);
  const kept = shape.layers.map((layer, l) => {
    const slots = layer.positions.length;
    const scores = observationScores(context.attention, l, layer.numHeads, slots, p.observationWindow).map(
      (s) => pool1d(s, p.poolingKernel, p.pooling),
    );
    return selectKept({
      scores,
      keep: keepCount(p.keepRatio, slots),
      protectedMask: sinkRecentMask(layer.positions, 0, p.observationWindow),
      eligible: eligible[l],
      mode: p.selection,
    });
  });
  return storeEvicted("snapkv", cache, shape, context.baselineDtype, kept);
}

export const snapkvMethod: MethodDefinition = { kind: "snapkv", paramsSchema, compress };
