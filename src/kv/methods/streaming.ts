/**
 * `streaming` (StreamingLLM): the first `sinkTokens` positions (attention sinks) and the
 * last `recentTokens` slots. The kept set follows from params and positions, so it is not
 * stored. With localWindowTrim, local layers first drop what no future query can read.
 */
import { andMask, sinkRecentMask } from "../select.js";
import { defineMethod } from "./define.js";
import { eligibleSlots, maskIndices, schemaParts, storeDerived } from "./shared.js";

export interface StreamingParams {
  sinkTokens: number;
  recentTokens: number;
  localWindowTrim: boolean;
}

export const paramsSchema = {
  type: "object",
  additionalProperties: false,
  required: ["sinkTokens", "recentTokens", "localWindowTrim"],
  properties: {
    sinkTokens: { ...schemaParts.tokens, description: "First positions always kept (attention sinks)." },
    recentTokens: { ...schemaParts.tokens, description: "Most recent slots kept." },
    localWindowTrim: schemaParts.localWindowTrim,
  },
} as const;

export const streamingMethod = defineMethod<StreamingParams>({
  kind: "streaming",
  paramsSchema,
  compress(cache, context, p, shape) {
    const eligible = eligibleSlots(shape, context, p.localWindowTrim);
    return storeDerived("streaming", cache, shape, context.baselineDtype, (l, s) =>
      maskIndices(andMask(eligible[l], sinkRecentMask(s.layers[l].positions, p.sinkTokens, p.recentTokens))),
    );
  },
});
