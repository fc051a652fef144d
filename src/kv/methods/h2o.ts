/**
 * `h2o` (Heavy-Hitter Oracle): a slot's score is the attention it accumulated over every
 * context query (column sums); the heaviest hitters plus the recent window (and optional
 * sinks) are kept, `keepRatio` of the slots per head in all. Kept slots are stored.
 */
import type { KvCache } from "../cache.js";
import type { CompressedCache } from "../compressed.js";
import { keepCount, type SelectionMode, selectKept, sinkRecentMask } from "../select.js";
import {
  checkedShape,
  checkStatistics,
  eligibleSlots,
  schemaParts,
  storeEvicted,
  validateParams,
} from "./shared.js";
import type { MethodContext, MethodDefinition } from "./types.js";

export interface H2oParams {
  keepRatio: number;
  recentTokens: number;
  sinkTokens: number;
  selection: SelectionMode;
  localWindowTrim: boolean;
}

export const paramsSchema = {
  type: "object",
  additionalProperties: false,
  required: ["keepRatio", "recentTokens", "sinkTokens", "selection", "localWindowTrim"],
  properties: {
    keepRatio: schemaParts.keepRatio,
    recentTokens: { ...schemaParts.tokens, description: "Most recent slots always kept." },
    sinkTokens: { ...schemaParts.tokens, description: "First positions always kept (0 = none, as in H2O)." },
    selection: schemaParts.selection,
    localWindowTrim: schemaParts.localWindowTrim,
  },
} as const;

export function compress(
  cache: KvCache,
  context: MethodContext,
  params: Record<string, unknown>,
): CompressedCache {
  const p = validateParams<H2oParams>("h2o", paramsSchema, params);
  const shape = checkedShape("h2o", cache, context);
  checkStatistics("h2o", shape, context, "columnSums");
  const eligible = eligibleSlots(shape, context, p.localWindowTrim);
  const kept = shape.layers.map((layer, l) => {
    const slots = layer.positions.length;
    const sums = context.attention.columnSums[l];
    const scores = Array.from({ length: layer.numHeads }, (_, h) =>
      sums.subarray(h * slots, (h + 1) * slots),
    );
    return selectKept({
      scores,
      keep: keepCount(p.keepRatio, slots),
      protectedMask: sinkRecentMask(layer.positions, p.sinkTokens, p.recentTokens),
      eligible: eligible[l],
      mode: p.selection,
    });
  });
  return storeEvicted("h2o", cache, shape, context.baselineDtype, kept);
}

export const h2oMethod: MethodDefinition = { kind: "h2o", paramsSchema, compress };
