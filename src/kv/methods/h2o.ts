/**
 * `h2o` (Heavy-Hitter Oracle): a slot's score is the attention it accumulated over every
 * context query (column sums); the heaviest hitters plus the recent window (and optional
 * sinks) are kept, `keepRatio` of the slots per head in all. Kept slots are stored.
 */
import type { SelectionMode } from "../select.js";
import { defineMethod } from "./define.js";
import { evictByScore, headRows } from "./scorer.js";
import { schemaParts } from "./shared.js";

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

export const h2oMethod = defineMethod<H2oParams>({
  kind: "h2o",
  paramsSchema,
  needs: ["columnSums"],
  compress: (cache, context, p, shape) =>
    evictByScore("h2o", cache, shape, context, { ...p, keepRatio: () => p.keepRatio }, (l, heads, slots) =>
      headRows(context.attention.columnSums[l], heads, slots),
    ),
});
