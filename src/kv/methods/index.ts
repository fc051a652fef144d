/** Registry: method kind -> its compress function and params schema. */
import { SpgError } from "../../errors.js";
import { fullMethod } from "./full.js";
import { h2oMethod } from "./h2o.js";
import { quantMethod } from "./quant.js";
import { snapkvMethod } from "./snapkv.js";
import { spgMethod } from "./spg/index.js";
import { streamingMethod } from "./streaming.js";
import type { MethodDefinition, MethodKind } from "./types.js";
import { windowTrimMethod } from "./window-trim.js";

export type {
  MethodContext,
  MethodDefinition,
  MethodKind,
  MethodRun,
  ParamProblem,
  PrefillAttention,
} from "./types.js";

export const methods: Record<MethodKind, MethodDefinition> = {
  full: fullMethod,
  "window-trim": windowTrimMethod,
  streaming: streamingMethod,
  h2o: h2oMethod,
  snapkv: snapkvMethod,
  quant: quantMethod,
  spg: spgMethod,
};

/** Whether a config's method kind is one of the KV methods here (the other kind is "weights"). */
export function isMethodKind(kind: string): kind is MethodKind {
  return Object.hasOwn(methods, kind);
}

export function methodFor(kind: string): MethodDefinition {
  if (!isMethodKind(kind)) {
    throw new SpgError("E_METHOD_KIND", `unknown compression method kind "${kind}"`, {
      field: "kind",
      fix: `use one of: ${Object.keys(methods).join(", ")}`,
    });
  }
  return methods[kind];
}
