/**
 * Greedy continuations of one prompt, for people to read: the model's own (float32 cache), or
 * the baseline's and a compression method's side by side, through the same backend the
 * evaluation protocol uses (evaluate.ts): one prefill, the first token from its last row, then
 * greedy decoding from each cache.
 */
import type { MethodConfig } from "../config/types.js";
import type { KvCache } from "../kv/cache.js";
import type { GptNeoRuntime } from "../model/types.js";
import type { EvaluationBackend, PrefillState } from "./evaluate.js";
import { compareGenerations } from "./metrics.js";

/** Greedy continuation of `tokens` tokens from a cache: the prefill's next token, then tokens - 1 decoded steps. */
async function continueGreedily(
  backend: EvaluationBackend,
  runtime: GptNeoRuntime,
  cache: KvCache,
  prefill: PrefillState,
  tokens: number,
): Promise<number[]> {
  if (tokens === 0) return [];
  const first = prefill.output.logitsArgmax[prefill.output.logitsArgmax.length - 1];
  const steps = tokens - 1;
  const generated = await backend.generate(
    runtime,
    backend.layout(cache, steps),
    first,
    prefill.positions.length,
    steps,
  );
  return [first, ...generated];
}

/** The greedy continuation of a prompt on the uncompressed float32 cache: what the model itself says. */
export async function generateText(
  backend: EvaluationBackend,
  prompt: readonly number[],
  tokens: number,
): Promise<number[]> {
  const runtime = await backend.runtime(undefined);
  const prefill = await backend.prefill(runtime, [...prompt]);
  return continueGreedily(backend, runtime, prefill.cache, prefill, tokens);
}

export interface MethodContinuation {
  /** Continuation on the baseline cache (every slot at the baseline dtype), as evaluation compares against. */
  baseline: number[];
  compressed: number[];
  /** Index of the first token where the two differ, or null when they agree throughout. */
  firstDivergence: number | null;
  kvBytesBaseline: number;
  kvBytesCompressed: number;
}

/** The baseline's and one KV-cache method's greedy continuations of a prompt, from one prefill. */
export async function generateWithMethod(
  backend: EvaluationBackend,
  prompt: readonly number[],
  tokens: number,
  method: MethodConfig,
): Promise<MethodContinuation> {
  const dense = await backend.runtime(undefined);
  const prefill = await backend.prefill(dense, [...prompt]);
  const baseline = await continueGreedily(backend, dense, backend.baselineCache(prefill), prefill, tokens);
  const compressed = backend.compress(method, prefill);
  const runtime = await backend.runtime(compressed.sparseTopK);
  const continuation = await continueGreedily(backend, runtime, compressed.cache, prefill, tokens);
  return {
    baseline,
    compressed: continuation,
    firstDivergence: compareGenerations(baseline, continuation).firstDivergence,
    kvBytesBaseline: backend.baselineBytes(prefill.cache),
    kvBytesCompressed: compressed.bytes,
  };
}
