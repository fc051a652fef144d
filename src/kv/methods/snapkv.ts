/**
 * `snapkv`: the last `observationWindow` context queries vote: each slot's score is the
 * attention those queries give it, summed, then smoothed by 1D pooling (kernel, max/avg)
 * so neighbours of important tokens survive together. Top-k per head plus the observation
 * window itself, `keepRatio` of the slots in all. Kept slots are stored.
 */
import { pool1d, type SelectionMode } from "../select.js";
import { defineMethod, observationWindowProblems } from "./define.js";
import { evictByScore, observationScores } from "./scorer.js";
import { paramFix, schemaParts } from "./shared.js";

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

export const snapkvMethod = defineMethod<SnapKvParams>({
  kind: "snapkv",
  paramsSchema,
  needs: ["windowSums"],
  runProblems: (p, run) => [
    ...(p.poolingKernel % 2 === 0
      ? [{ field: "poolingKernel", message: "must be odd", fix: paramFix("snapkv", "poolingKernel") }]
      : []),
    ...observationWindowProblems("observationWindow", p.observationWindow, run),
  ],
  compress(cache, context, p, shape) {
    const rules = {
      keepRatio: () => p.keepRatio,
      sinkTokens: 0,
      recentTokens: p.observationWindow,
      selection: p.selection,
      localWindowTrim: p.localWindowTrim,
    };
    return evictByScore("snapkv", cache, shape, context, rules, (l, heads, slots) =>
      observationScores(context.attention, l, heads, slots, p.observationWindow).map((s) =>
        pool1d(s, p.poolingKernel, p.pooling),
      ),
    );
  },
});
