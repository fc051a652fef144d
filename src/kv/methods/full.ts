/** `full`: the uncompressed cache at the baseline dtype (ratio 1 by construction). */
import { defineMethod } from "./define.js";
import { noParamsSchema, storeDerived } from "./shared.js";

export const paramsSchema = noParamsSchema;

export const fullMethod = defineMethod<Record<string, never>>({
  kind: "full",
  paramsSchema,
  compress: (cache, context, _p, shape) =>
    storeDerived("full", cache, shape, context.baselineDtype, (l, s) =>
      Int32Array.from(s.layers[l].positions.keys()),
    ),
});
