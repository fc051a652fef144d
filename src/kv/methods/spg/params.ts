/** spg's params: their type and schema, the rules the schema cannot say, and what they ask of a run. */

import type { SelectionMode } from "../../select.js";
import { observationWindowProblems } from "../define.js";
import { paramError, paramFix, schemaParts } from "../shared.js";
import type { MethodRun, ModelShape, ParamProblem } from "../types.js";

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
    /** A count, or "all": every head of the checkpoint (its config.json's num_heads), resolved at run time. */
    reservedHeads: number | "all";
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

/** Stage 2 alone: all the byte-count and block helpers read. */
export type Stage2Params = SpgParams["stage2"];

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
        reservedHeads: {
          description:
            'Heads per layer kept at the baseline dtype: a count, or "all" (every head the checkpoint has, read from its config.json).',
          oneOf: [schemaParts.tokens, { type: "string", enum: ["all"] }],
        },
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

/** Rules within params and against the run (kernel table, observation window, bit widths). */
export function runProblems(p: SpgParams, run: MethodRun): ParamProblem[] {
  const { stage1, stage2 } = p;
  const problems: ParamProblem[] = [];
  const fix = (field: string) => paramFix("spg", field);
  stage1.poolingKernels.forEach((entry, i) => {
    const at = `stage1.poolingKernels.${i}`;
    if (entry.kernel % 2 === 0)
      problems.push({ field: `${at}.kernel`, message: "must be odd", fix: fix(`${at}.kernel`) });
    if (i > 0 && entry.maxContextTokens <= stage1.poolingKernels[i - 1].maxContextTokens) {
      problems.push({
        field: `${at}.maxContextTokens`,
        message: "must be ascending",
        fix: fix(`${at}.maxContextTokens`),
      });
    }
  });
  problems.push(...observationWindowProblems("stage1.observationWindow", stage1.observationWindow, run));
  const longest = Math.max(...stage1.poolingKernels.map((k) => k.maxContextTokens));
  if (longest < run.contextTokens) {
    problems.push({
      field: "stage1.poolingKernels",
      message: `covers contexts up to ${longest} tokens, the run uses ${run.contextTokens}`,
      fix: `add an entry with maxContextTokens >= ${run.contextTokens}`,
    });
  }
  if (stage2.mixedPrecision.enabled && stage2.mixedPrecision.lowBits > stage2.mixedPrecision.highBits) {
    problems.push({
      field: "stage2.mixedPrecision.lowBits",
      message: "must not exceed highBits",
      fix: fix("stage2.mixedPrecision.lowBits"),
    });
  }
  return problems;
}

/** Rules against the model: no more reserved heads than it has, one keep ratio per layer. */
export function modelProblems(p: SpgParams, model: ModelShape): ParamProblem[] {
  const { stage1, stage2 } = p;
  const problems: ParamProblem[] = [];
  if (stage2.reservedHeads !== "all" && stage2.reservedHeads > model.numHeads) {
    problems.push({
      field: "stage2.reservedHeads",
      message: `is ${stage2.reservedHeads} but the model has ${model.numHeads} heads per layer`,
      fix: `set it to at most ${model.numHeads}, or to "all"`,
    });
  }
  if (stage1.layerKeepRatios !== null && stage1.layerKeepRatios.length !== model.numLayers) {
    problems.push({
      field: "stage1.layerKeepRatios",
      message: `has ${stage1.layerKeepRatios.length} entries but the model has ${model.numLayers} layers`,
      fix: `give ${model.numLayers} keep ratios, or null for one keepRatio everywhere`,
    });
  }
  return problems;
}

/** The pooling kernel for this context length (first table entry that covers it). */
export function kernelFor(stage1: SpgParams["stage1"], contextTokens: number): number {
  const entry = stage1.poolingKernels.find((e) => contextTokens <= e.maxContextTokens);
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

/** How many heads of a layer with `heads` heads stay at the baseline dtype. */
export function reservedHeadCount(stage2: Stage2Params, heads: number): number {
  return stage2.reservedHeads === "all" ? heads : Math.min(stage2.reservedHeads, heads);
}

export function stage2Enabled(s: Stage2Params): boolean {
  return s.mixedPrecision.enabled || s.magnitudeThreshold > 0 || s.lowRank.enabled;
}

/**
 * The hybrid-sparse top-k a spg method's cache is decoded with (0: dense attention), read from
 * its params before any run. The one model session takes it as an input (sparse_top_k), so
 * it adds no session to the memory check.
 */
export function decodeTopK(params: Record<string, unknown>): number {
  const sparseTopK = (params as { decode?: { sparseTopK?: unknown } }).decode?.sparseTopK;
  return typeof sparseTopK === "number" ? sparseTopK : 0;
}
