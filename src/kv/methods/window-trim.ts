/**
 * `window-trim`: the lossless part of KV compression on GPT-Neo. A local layer's query at
 * position p reads keys with p - pos < windowSize; the next query is at (last context
 * position + 1) and later ones read even less, so every older key is dead weight. Global
 * layers keep everything. Kept slots are derived from the config, so no indices are stored.
 */
import type { KvCache } from "../cache.js";
import type { CompressedCache } from "../compressed.js";
import { readableMask } from "../select.js";
import { checkedShape, maskIndices, storeDerived, validateParams } from "./shared.js";
import type { MethodContext, MethodDefinition } from "./types.js";

export const paramsSchema = {
  type: "object",
  additionalProperties: false,
  properties: {},
} as const;

export function compress(
  cache: KvCache,
  context: MethodContext,
  params: Record<string, unknown>,
): CompressedCache {
  validateParams("window-trim", paramsSchema, params);
  const shape = checkedShape("window-trim", cache, context);
  const { attentionLayers, windowSize } = context.config;
  return storeDerived("window-trim", cache, shape, context.baselineDtype, (l, s) =>
    maskIndices(readableMask(s.layers[l].positions, attentionLayers[l] === "local", windowSize)),
  );
}

export const windowTrimMethod: MethodDefinition = { kind: "window-trim", paramsSchema, compress };
