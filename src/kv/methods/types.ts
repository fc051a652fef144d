import type { GptNeoConfig } from "../../model/types.js";
import type { KvCache } from "../cache.js";
import type { BaselineDtype, CompressedCache } from "../compressed.js";

/** Per-slot key and value norms of every head, per layer [heads, slots]. */
export interface CacheNorms {
  keys: Float64Array[];
  values: Float64Array[];
}

/** Attention statistics of the prefill over the context tokens only (never the continuation). */
export interface PrefillAttention {
  /**
   * Per layer [heads, rows, slots]: row i holds the probabilities of the last (rows - i) context
   * queries, summed, so an observation window of w queries reads row rows - w.
   */
  windowSums: Float32Array[];
  /** Per layer, probabilities summed over every context query: [heads, slots]. */
  columnSums: Float32Array[];
  /** Query rows behind windowSums (the largest observation window). */
  rows: number;
}

export interface MethodContext {
  config: GptNeoConfig;
  attention: PrefillAttention;
  /** The prefill cache's key and value norms per slot (empty arrays when not computed). */
  norms: CacheNorms;
  baselineDtype: BaselineDtype;
}

export type MethodKind = "full" | "window-trim" | "streaming" | "h2o" | "snapkv" | "quant" | "spg";

export interface MethodDefinition {
  kind: MethodKind;
  /** JSON Schema (2020-12 compatible) of the method's params; every field is required. */
  paramsSchema: Record<string, unknown>;
  /** Validates params (SpgError E_METHOD_PARAM) and compresses the prefill cache. */
  compress(cache: KvCache, context: MethodContext, params: Record<string, unknown>): CompressedCache;
}
