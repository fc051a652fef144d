/**
 * `npm run bench -- prove`: the evaluation loop of `spg prove` on the default preset (or
 * --preset), printing tokens/s and the share of wall time spent outside onnxruntime
 * (target: under 10%).
 * `npm run bench -- methods`: per method at matched budgets, the achieved ratio, perplexity
 * change, KL, top-1 agreement and compression time as a share of prefill time (SPG target:
 * under 5%), as recorded inside the loop and warm (the same encoding repeated at once).
 * Both run on the bundled model unless --model DIR is given. `prove` also prints the process's
 * peak resident memory next to what the hardware check asks for on the same configs.
 */

import type { SampleRecord } from "../src/bundle/types.js";
import { resolveConfig } from "../src/config/load.js";
import type { RunConfig } from "../src/config/types.js";
import { formatBytes, memoryRequirement } from "../src/hardware/requirement.js";
import { createBackend } from "../src/measure/backend.js";
import { evaluateSample, peakRssBytes } from "../src/measure/evaluate.js";
import { drawRunSamples } from "../src/measure/open-run.js";
import { resolveModelDir } from "../src/measure/prove.js";
import { summarize } from "../src/measure/summary.js";
import { readCheckpoint } from "../src/model/checkpoint.js";
import { readGptNeoConfig } from "../src/model/config.js";
import type { GptNeoRuntime } from "../src/model/types.js";
import { syntheticCheckpointDir } from "./synthetic-checkpoint.js";

export interface ProveBenchOptions {
  preset: string;
  model?: string;
  /** A synthetic checkpoint of this shape (scripts/synthetic-checkpoint.ts) instead of --model. */
  shape?: string;
  samples?: number;
  context?: number;
  continuation?: number;
  /** Query rows per prefill pass (kv.prefillChunkTokens); 0: one pass. */
  prefillChunk?: number;
  /**
   * Also time each method's encoding a second time, straight after the first, on the same
   * prefill (not recorded): the cost with the cache warm, against the recorded cost inside
   * the loop, where earlier methods' passes have evicted the prefill's cache and attention.
   */
  warm?: boolean;
}

async function runEvaluation(options: ProveBenchOptions) {
  const config: RunConfig = resolveConfig({
    preset: options.preset,
    overrides: {
      ...(options.model ? { model: options.model } : {}),
      ...(options.samples ? { samples: options.samples } : {}),
      ...(options.context ? { context: options.context } : {}),
      ...(options.continuation ? { continuation: options.continuation } : {}),
      ...(options.prefillChunk ? { prefillChunk: options.prefillChunk } : {}),
    },
  });
  // --prefill-chunk 0: one pass over the whole context (what bundles without the field ran).
  if (options.prefillChunk === 0) delete config.kv.prefillChunkTokens;
  const modelDir =
    options.shape === undefined ? resolveModelDir(config) : syntheticCheckpointDir(options.shape);
  // What the hardware check asks for, computed where `spg prove` computes it: before any weight loads.
  const requirement = memoryRequirement(readGptNeoConfig(modelDir), config, process.memoryUsage().rss);
  const loadStarted = performance.now();
  const checkpoint = await readCheckpoint(modelDir);
  const { evaluation } = await drawRunSamples(config);
  const backend = await createBackend(checkpoint, {
    device: config.model.device,
    observationWindow: config.kv.observationWindow,
    baselineDtype: config.kv.baselineDtype,
    prefillChunkTokens: config.kv.prefillChunkTokens,
    prefillChunkSplit: config.kv.prefillChunkSplit,
  });
  const loadMs = performance.now() - loadStarted;
  const loadedRssBytes = process.memoryUsage().rss;
  const loadPeakBytes = peakRssBytes();
  // Time every forward pass: what onnxruntime itself spends (feeds and outputs included).
  let forwardMs = 0;
  let forwardTokens = 0;
  const timed = new Map<GptNeoRuntime, GptNeoRuntime>();
  const runtime = backend.runtime;
  backend.runtime = async (topK) => {
    const inner = await runtime(topK);
    let wrapper = timed.get(inner);
    if (wrapper === undefined) {
      wrapper = {
        ...inner,
        async forward(input) {
          const started = performance.now();
          const output = await inner.forward(input);
          forwardMs += performance.now() - started;
          forwardTokens += input.inputIds.length;
          return output;
        },
      };
      timed.set(inner, wrapper);
    }
    return wrapper;
  };
  // The baseline's distributions come from a small onnxruntime graph too (src/model/distribution.ts).
  const prepare = backend.prepareBaseline;
  backend.prepareBaseline = async (rows, targets) => {
    const started = performance.now();
    const prepared = await prepare(rows, targets);
    forwardMs += performance.now() - started;
    return prepared;
  };
  const warmMs = new Map<string, number[]>();
  if (options.warm) {
    const compress = backend.compress;
    backend.compress = (method, state) => {
      const result = compress(method, state);
      const again = compress(method, state);
      warmMs.set(method.name, [...(warmMs.get(method.name) ?? []), again.timingsMs.compress]);
      return result;
    };
  }
  // Warm-up (not timed): JIT, and the sessions every method needs (hybrid sparse attention builds its own).
  await evaluateSample(backend, evaluation[0], config.methods, {
    generationTokens: config.generation.tokens,
  });
  forwardMs = 0;
  forwardTokens = 0;
  warmMs.clear();
  const records: SampleRecord[] = [];
  const started = performance.now();
  for (const sample of evaluation) {
    const result = await evaluateSample(backend, sample, config.methods, {
      generationTokens: config.generation.tokens,
    });
    records.push(...result.records);
  }
  const wallMs = performance.now() - started;
  await backend.close();
  return {
    config,
    records,
    wallMs,
    forwardMs,
    forwardTokens,
    warmMs,
    samples: evaluation.length,
    requirement,
    loadMs,
    loadedRssBytes,
    loadPeakBytes,
    model:
      options.shape === undefined
        ? checkpoint.dir
        : `${options.shape} shape, random F16 weights (${checkpoint.dir})`,
  };
}

export async function benchProve(options: ProveBenchOptions): Promise<void> {
  const run = await runEvaluation(options);
  const outside = 1 - run.forwardMs / run.wallMs;
  console.log(
    `prove bench: preset ${run.config.name}, ${run.samples} samples x ${run.config.methods.length} methods, model ${run.model}`,
  );
  console.log(`  wall ${(run.wallMs / 1000).toFixed(2)} s, ${run.forwardTokens} tokens through the model`);
  console.log(`  throughput ${(run.forwardTokens / (run.wallMs / 1000)).toFixed(0)} tokens/s`);
  console.log(
    `  inside onnxruntime ${(run.forwardMs / 1000).toFixed(2)} s; outside ${(100 * outside).toFixed(1)}% of wall time (target < 10%)`,
  );
  // Of the time outside: the methods under test encoding and decoding their caches (recorded
  // per record), and the rest (metrics, cache layout, baseline cache, bookkeeping).
  const methodsMs = run.records.reduce((sum, r) => sum + r.timingsMs.compress + r.timingsMs.decompress, 0);
  const restMs = run.wallMs - run.forwardMs - methodsMs;
  console.log(
    `  of which methods compressing/decompressing ${(100 * (methodsMs / run.wallMs)).toFixed(1)}% (target < 5%), ` +
      `everything else ${(100 * (restMs / run.wallMs)).toFixed(1)}%`,
  );
  // Per method: its encoding and the decoding of its bytes, summed over samples.
  const share = (ms: number) => `${(100 * (ms / run.wallMs)).toFixed(1)}%`;
  const perMethod = run.config.methods.map((method) => {
    const mine = run.records.filter((r) => r.method === method.name);
    const encode = mine.reduce((sum, r) => sum + r.timingsMs.compress, 0);
    const decode = mine.reduce((sum, r) => sum + r.timingsMs.decompress, 0);
    return `${method.name} ${share(encode)} + ${share(decode)}`;
  });
  console.log(`  per method, encode + decode: ${perMethod.join(", ")}`);
  printMemory(run);
}

/** Peak resident memory of the whole process against the hardware check's requirement and the weights. */
function printMemory(run: Awaited<ReturnType<typeof runEvaluation>>): void {
  const r = run.requirement;
  const peak = peakRssBytes();
  // the whole process: node, modules, corpus, onnxruntime's arenas
  console.log(
    `  memory: peak resident ${formatBytes(peak)}; the hardware check asks for ${formatBytes(r.requiredBytes)} ` +
      `(requirement / peak ${(r.requiredBytes / peak).toFixed(2)}, target 1.00-1.25)`,
  );
  console.log(
    `  fp32 weights ${formatBytes(r.weightBytes)}: peak / weights ${(peak / r.weightBytes).toFixed(2)}; ` +
      `peak over the process (${formatBytes(r.processBytes)} at the check), weights and the run's KV, logits, attention and activations ` +
      `(${formatBytes(r.kvBytes + r.logitsBytes + r.attentionBytes + r.activationBytes)}): ` +
      `${formatBytes(peak - r.processBytes - r.weightBytes - r.kvBytes - r.logitsBytes - r.attentionBytes - r.activationBytes)}`,
  );
  console.log(
    `  load (read, scan, session): ${(run.loadMs / 1000).toFixed(1)} s; resident after it ${formatBytes(run.loadedRssBytes)}, peak during it ${formatBytes(run.loadPeakBytes)} ` +
      `(load overhead over process + weights: ${((run.loadPeakBytes - r.processBytes - r.weightBytes) / r.weightBytes).toFixed(3)} of the weights)`,
  );
}

export async function benchMethods(options: ProveBenchOptions): Promise<void> {
  const run = await runEvaluation({ ...options, warm: true });
  const summary = summarize(run.records, run.config);
  console.log(
    `methods bench: ${run.samples} samples of ${run.config.dataset.contextTokens} context tokens (preset ${run.config.name})`,
  );
  const prefillMs = run.records.filter((r) => r.method === run.config.methods[0].name);
  const meanPrefill = prefillMs.reduce((s, r) => s + r.timingsMs.prefill, 0) / prefillMs.length;
  console.log(`mean prefill ${meanPrefill.toFixed(1)} ms (the context, one row of logits)`);
  console.log(
    "method           ratio   ppl +%    mean KL   top-1  compress ms  /prefill  decompress ms  /prefill  warm compress ms  /prefill",
  );
  for (const method of run.config.methods) {
    const m = summary.methods[method.name];
    const mine = run.records.filter((r) => r.method === method.name);
    const mean = (pick: (r: SampleRecord) => number) => mine.reduce((s, r) => s + pick(r), 0) / mine.length;
    const prefill = mean((r) => r.timingsMs.prefill);
    const compress = mean((r) => r.timingsMs.compress);
    const decompress = mean((r) => r.timingsMs.decompress);
    const warm = run.warmMs.get(method.name) ?? [];
    const warmCompress = warm.reduce((a, b) => a + b, 0) / warm.length;
    console.log(
      `${method.name.padEnd(15)} ${m.compressionRatio.toFixed(2).padStart(6)}x ${m.perplexityIncreasePct.toFixed(3).padStart(8)} ` +
        `${m.meanKl.toExponential(2).padStart(10)} ${(100 * m.top1Agreement).toFixed(1).padStart(6)}% ` +
        `${compress.toFixed(1).padStart(11)} ${(100 * (compress / prefill)).toFixed(1).padStart(8)}% ` +
        `${decompress.toFixed(1).padStart(14)} ${(100 * (decompress / prefill)).toFixed(1).padStart(8)}% ` +
        `${warmCompress.toFixed(1).padStart(17)} ${(100 * (warmCompress / prefill)).toFixed(1).padStart(8)}%`,
    );
  }
  printMemory(run);
}
