/**
 * `window-trim`: the lossless part of KV compression on GPT-Neo. A local layer's query at
 * position p reads keys with p - pos < windowSize; the next query is at (last context
 * position + 1) and later ones read even less, so every older key is dead weight. Global
 * layers keep everything. Kept slots are derived from the config, so no indices are stored.
 */
import { readableMask } from "../select.js";
import { defineMethod } from "./define.js";
import { maskIndices, noParamsSchema, storeDerived } from "./shared.js";

export const paramsSchema = noParamsSchema;

export const windowTrimMethod = defineMethod<Record<string, never>>({
  kind: "window-trim",
  paramsSchema,
  compress(cache, context, _p, shape) {
    const { attentionLayers, windowSize } = context.config;
    return storeDerived("window-trim", cache, shape, context.baselineDtype, (l, s) =>
      maskIndices(readableMask(s.layers[l].positions, attentionLayers[l] === "local", windowSize)),
    );
  },
});
