/**
 * Every configured method on the evaluation samples: KV-cache methods per sample from one
 * shared prefill (evaluate.ts), weights methods one compressed model at a time
 * (evaluate-weights.ts). Records come back in (sample, config method) order whatever ran first.
 */
import type { FingerprintLine, SampleRecord } from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
import type { Sample } from "../data/types.js";
import type { GptNeoCheckpoint, HeadLayout } from "../model/types.js";
import { type EvaluationBackend, evaluateSample, type GreedyTraces } from "./evaluate.js";
import { evaluateWeightsMethods } from "./evaluate-weights.js";

export interface RunProgress {
  sampleDone?: (done: number, total: number, methods: number) => void;
  weightsMethodDone?: (method: string, done: number, total: number) => void;
}

export async function evaluateRun(
  backend: EvaluationBackend,
  checkpoint: GptNeoCheckpoint,
  samples: readonly Sample[],
  config: RunConfig,
  options: {
    cacheDir?: string;
    device?: RunConfig["model"]["device"];
    intraOpThreads?: number;
    headLayout?: HeadLayout;
    /** When given, every record's greedy steps are traced into it (replay). */
    greedyTraces?: GreedyTraces;
  } = {},
  progress: RunProgress = {},
): Promise<{ records: SampleRecord[]; fingerprints: FingerprintLine[] }> {
  const kvMethods = config.methods.filter((method) => method.kind !== "weights");
  const weightsMethods = config.methods.filter((method) => method.kind === "weights");
  const records: SampleRecord[] = [];
  const fingerprints: FingerprintLine[] = [];
  for (const [done, sample] of samples.entries()) {
    const result = await evaluateSample(backend, sample, kvMethods, {
      generationTokens: config.generation.tokens,
      greedyTraces: options.greedyTraces,
    });
    records.push(...result.records);
    fingerprints.push(...result.fingerprints);
    progress.sampleDone?.(done + 1, samples.length, kvMethods.length);
  }
  const weights = await evaluateWeightsMethods(
    backend,
    checkpoint,
    samples,
    weightsMethods,
    {
      generationTokens: config.generation.tokens,
      runtime: {
        device: options.device ?? config.model.device,
        observationWindow: config.kv.observationWindow,
        cacheDir: options.cacheDir,
        intraOpThreads: options.intraOpThreads,
        headLayout: options.headLayout,
      },
      greedyTraces: options.greedyTraces,
    },
    progress.weightsMethodDone,
  );
  records.push(...weights.records);
  fingerprints.push(...weights.fingerprints);
  const order = new Map(config.methods.map((method, i) => [method.name, i]));
  records.sort((a, b) => a.sampleIndex - b.sampleIndex || order.get(a.method)! - order.get(b.method)!);
  return { records, fingerprints };
}
