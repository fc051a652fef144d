/** `full`: the uncompressed cache at the baseline dtype (ratio 1 by construction). */
import type { KvCache } from "../cache.js";
import type { CompressedCache } from "../compressed.js";
import { checkedShape, storeDerived, validateParams } from "./shared.js";
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
  validateParams("full", paramsSchema, params);
  const shape = checkedShape("full", cache, context);
  return storeDerived("full", cache, shape, context.baselineDtype, (l, s) =>
    Int32Array.from(s.layers[l].positions.keys()),
  );
}

export const fullMethod: MethodDefinition = { kind: "full", paramsSchema, compress };
