/**
 * defineMethod: the opening every method shares, written once. A method supplies its params
 * schema, its rules (against the run and the model), the prefill statistics it reads, its
 * decode-time needs and its compress; the definition validates params, checks the cache
 * against the model, applies the rules and checks the statistics before compress runs.
 * Config validation and the hardware check ask the same definition (through the registry).
 */
import type { KvCache } from "../cache.js";
import type { CacheShape, CompressedCache } from "../compressed.js";
import { checkedShape, checkStatistics, paramError, validateParams } from "./shared.js";
import type {
  MethodContext,
  MethodDefinition,
  MethodKind,
  MethodRun,
  ModelShape,
  ParamProblem,
  PrefillStatistic,
} from "./types.js";

export interface MethodSpec<P> {
  kind: MethodKind;
  paramsSchema: Record<string, unknown>;
  needs?: readonly PrefillStatistic[];
  /** Rules across params and the run (the schema has passed). */
  runProblems?(p: P, run: MethodRun): ParamProblem[];
  /** Rules across params and the model (the schema has passed). */
  modelProblems?(p: P, model: ModelShape): ParamProblem[];
  /** Hybrid-sparse top-k for the decode graph; absent: dense (0). */
  decodeTopK?(params: Record<string, unknown>): number;
  /** Runs once params are valid, the cache fits the model and the statistics are there. */
  compress(cache: KvCache, context: MethodContext, p: P, shape: CacheShape): CompressedCache;
}

export function defineMethod<P>(spec: MethodSpec<P>): MethodDefinition {
  const { kind, paramsSchema } = spec;
  const needs = spec.needs ?? [];
  return {
    kind,
    paramsSchema,
    needs,
    // config validation calls these on params its schema (the same paramsSchema) accepted
    runProblems: (params, run) => spec.runProblems?.(params as P, run) ?? [],
    modelProblems: (params, model) => spec.modelProblems?.(params as P, model) ?? [],
    decodeTopK: (params) => spec.decodeTopK?.(params) ?? 0,
    compress(cache, context, params) {
      const p = validateParams<P>(kind, paramsSchema, params);
      const shape = checkedShape(kind, cache, context);
      const run = {
        observationRows: context.attention.rows,
        contextTokens: Math.max(0, ...shape.layers.map((layer) => layer.positions.length)),
      };
      const problems = [
        ...(spec.modelProblems?.(p, context.config) ?? []),
        ...(spec.runProblems?.(p, run) ?? []),
      ];
      if (problems.length > 0) {
        const [first] = problems;
        throw paramError(kind, first.field, first.message, first.fix);
      }
      for (const need of needs) checkStatistics(kind, shape, context, need);
      return spec.compress(cache, context, p, shape);
    },
  };
}

/** The rule every observation-window scorer shares: it reads only the rows the prefill returns. */
export function observationWindowProblems(field: string, window: number, run: MethodRun): ParamProblem[] {
  if (window <= run.observationRows) return [];
  return [
    {
      field,
      message: `is ${window} but the graph returns attention for kv.observationWindow = ${run.observationRows} rows`,
      fix: `lower it to at most ${run.observationRows}, or raise kv.observationWindow`,
    },
  ];
}
