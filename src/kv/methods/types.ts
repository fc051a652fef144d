import type { GptNeoConfig } from "../../model/types.js";
import type { BaselineDtype } from "../../numeric/dtype.js";
import type { KvCache } from "../cache.js";
import type { CompressedCache } from "../compressed.js";

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

/** A prefill statistic a scoring method reads (see PrefillAttention and CacheNorms). */
export type PrefillStatistic = "windowSums" | "columnSums" | "keyNorms" | "valueNorms";

/** What a run fixes before any prefill, that a method's params are checked against. */
export interface MethodRun {
  /** Query rows of attention statistics the prefill returns (kv.observationWindow). */
  observationRows: number;
  /** Context tokens per sample (slots of the prefill cache). */
  contextTokens: number;
}

/**
 * One rule a method's params break: `field` is the dotted path under params
 * (`stage1.observationWindow`), so config validation and compress name the same field.
 */
/** What a method's model rules read of the checkpoint: its shape (a bundle states it too, so verify applies them). */
export type ModelShape = Pick<GptNeoConfig, "numHeads" | "numLayers">;

export interface ParamProblem {
  field: string;
  message: string;
  fix: string;
}

/**
 * A compression method: its params schema and the rules it owns (checked by config
 * validation before a run and again by compress), what it reads from the prefill, what it
 * asks of the decode graph, and compress itself. Built with defineMethod (shared.ts).
 */
export interface MethodDefinition {
  kind: MethodKind;
  /** JSON Schema (2020-12 compatible) of the method's params; every field is required. */
  paramsSchema: Record<string, unknown>;
  /** Prefill statistics compress reads; compress checks they are there and shaped right. */
  needs: readonly PrefillStatistic[];
  /** What schema-valid params break for this run (cross-field rules included). */
  runProblems(params: Record<string, unknown>, run: MethodRun): ParamProblem[];
  /** What schema-valid params break for this model. */
  modelProblems(params: Record<string, unknown>, model: ModelShape): ParamProblem[];
  /** The hybrid-sparse top-k the decode graph needs for this method's caches (0: dense attention). */
  decodeTopK(params: Record<string, unknown>): number;
  /** Validates params (SpgError E_METHOD_PARAM) and compresses the prefill cache. */
  compress(cache: KvCache, context: MethodContext, params: Record<string, unknown>): CompressedCache;
}
