/**
 * Joins the model runtime, the cache layout and the compression methods into the backend the
 * evaluation protocol runs on. One model session; a hybrid-sparse top-k is fed per call.
 */
import type { MethodConfig } from "../config/types.js";
import { atBaselineDtype, baselineBytes } from "../kv/compressed.js";
import { widestHead } from "../kv/layout.js";
import { methodFor } from "../kv/methods/index.js";
import { PaddedCache } from "../kv/padded-cache.js";
import { loadDistributionSession } from "../model/distribution.js";
import type { PrefillChunkSplit } from "../model/prefill-chunks.js";
import { forwardOnCache, generateGreedy, loadRuntime, prefillTokens } from "../model/session.js";
import type { GptNeoCheckpoint, GptNeoRuntime, HeadLayout, RuntimeOptions } from "../model/types.js";
import type { BaselineDtype } from "../numeric/dtype.js";
import { sha256Hex } from "../numeric/sha256.js";
import type { CompressionResult, EvaluationBackend, PrefillState } from "./evaluate.js";
import { type PreparedBaseline, preparedFromDistributions, type ScoredRows } from "./metrics.js";

export interface BackendOptions {
  device: RuntimeOptions["device"];
  observationWindow: number;
  baselineDtype: BaselineDtype;
  /** Query rows per prefill pass (kv.prefillChunkTokens); absent: one pass. */
  prefillChunkTokens?: number;
  /** How the chunked prefill splits the context (kv.prefillChunkSplit); default remainder-first. */
  prefillChunkSplit?: PrefillChunkSplit;
  cacheDir?: string;
  /** onnxruntime intra-op threads (0 or absent: onnxruntime's default). */
  intraOpThreads?: number;
  /** Default in-place (src/model/types.ts). */
  headLayout?: HeadLayout;
}

export interface ClosableBackend extends EvaluationBackend {
  close(): Promise<void>;
}

export async function createBackend(
  checkpoint: GptNeoCheckpoint,
  options: BackendOptions,
): Promise<ClosableBackend> {
  const config = checkpoint.config;
  // One session (one copy of the weights): a hybrid-sparse top-k is an input of its graph,
  // fed by a view of the runtime per top-k.
  const dense = await loadRuntime(checkpoint, {
    device: options.device,
    observationWindow: options.observationWindow,
    cacheDir: options.cacheDir,
    intraOpThreads: options.intraOpThreads,
    headLayout: options.headLayout,
  });
  const views = new Map<number, GptNeoRuntime>([[0, dense]]);
  const runtime = async (sparseTopK: number | undefined): Promise<GptNeoRuntime> => {
    const key = sparseTopK ?? 0;
    let view = views.get(key);
    if (view === undefined) {
      view = { ...dense, forward: (input) => dense.forward({ ...input, sparseTopK: key }) };
      views.set(key, view);
    }
    return view;
  };
  const distributions = await loadDistributionSession(
    config.vocabSize,
    options.device,
    options.intraOpThreads,
  );

  const extend = async (model: GptNeoRuntime, cache: PaddedCache, tokens: number[], positions: number[]) => {
    const output = await forwardOnCache(model, cache, tokens, positions, {
      returns: { attention: false, statistics: false, present: false },
    });
    return { logits: output.logits, logSumExp: output.logitsLogSumExp, argmax: output.logitsArgmax };
  };

  const score = async (
    model: GptNeoRuntime,
    cache: PaddedCache,
    tokens: number[],
    positions: number[],
    baseline: PreparedBaseline,
    targets: readonly number[],
  ): Promise<ScoredRows> => {
    const output = await forwardOnCache(model, cache, tokens, positions, {
      scored: { probs: baseline.probRows.subarray(0, targets.length * config.vocabSize), targets },
      // scored in the graph: nothing bulky comes back (the cache is not extended)
      returns: { logits: false, attention: false, statistics: false, present: false },
    });
    return {
      expectedLogit: output.scoredExpectedLogit,
      targetLogit: output.scoredTargetLogit,
      logSumExp: output.logitsLogSumExp,
      argmax: output.logitsArgmax,
    };
  };

  const compress = (method: MethodConfig, state: PrefillState, layoutRoom?: number): CompressionResult => {
    const started = performance.now();
    const compressed = methodFor(method.kind).compress(
      state.cache,
      {
        config,
        baselineDtype: options.baselineDtype,
        attention: {
          windowSums: state.output.attentionWindowSums,
          columnSums: state.output.attentionColumnSums,
          rows: state.output.attentionRows,
        },
        norms: { keys: state.output.keyNorms, values: state.output.valueNorms },
      },
      method.params,
    );
    const encoded = performance.now();
    // The model reads what the stored bytes decode to, never the floats the method started from.
    const cache = compressed.materialize(layoutRoom);
    const decodeMs = performance.now() - encoded;
    return {
      bytes: compressed.bytes,
      layers: compressed.layers
        .map((layer) => ({
          bytes: layer.bytes,
          tokensKept: layer.tokensKept,
          tokensTotal: layer.tokensTotal,
          headsFullPrecision: layer.headsFullPrecision,
          bitsHistogram: layer.bitsHistogram,
          sha256: sha256Hex(layer.serialized),
        }))
        .map((layer, index) => ({ ...layer, slotsRead: widestHead(cache.layers[index]) })),
      cache,
      timingsMs: { compress: encoded - started, decompress: decodeMs },
      sparseTopK: compressed.decode.sparseTopK,
    };
  };

  return {
    config,
    baselineCache: (state, layoutRoom) => atBaselineDtype(state.cache, options.baselineDtype, layoutRoom),
    executionProvider: options.device,
    intraOpThreads: options.intraOpThreads ?? 0,
    runtime,
    // Only the last context row's logits are read (the first generated token); the methods
    // score from the statistics, not from rows of attention probabilities.
    async prefill(model, tokens) {
      const state = await prefillTokens(model, tokens, {
        logitRows: 1,
        returns: { attention: false },
        ...(options.prefillChunkTokens === undefined
          ? {}
          : {
              chunks: {
                tokens: options.prefillChunkTokens,
                lastRows: options.observationWindow,
                split: options.prefillChunkSplit,
              },
            }),
      });
      // The cache holds its own copy of the keys and values; the sample keeps the state alive
      // through every method, so the output's copy is let go here.
      return { ...state, output: { ...state.output, presentKeys: [], presentValues: [] } };
    },
    async prepareBaseline(rows, targets) {
      const scored = rows.logSumExp.subarray(0, targets.length);
      const computed = await distributions.distributions(
        rows.logits.subarray(0, scored.length * config.vocabSize),
        scored,
      );
      return preparedFromDistributions(rows, computed, targets, config.vocabSize);
    },
    layout: (cache, room) => PaddedCache.from(cache, config, room),
    extend,
    score,
    generate: generateGreedy,
    baselineBytes: (cache) => baselineBytes(cache, options.baselineDtype),
    compress,
    async close() {
      await dense.close();
      await distributions.close();
    },
  };
}
