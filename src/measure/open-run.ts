/**
 * Opening a run: what `spg prove` and verify's replay share, so a replayed sample is measured
 * the way it was proved: the config's draw (evaluation and calibration samples, disjoint),
 * and the config's backend (device, observation window, baseline dtype) over a checkpoint
 * with every method evaluated on the samples given. Which checkpoint and which samples are
 * the caller's: prove reads the config's model, replay the verifier's.
 */
import type { FingerprintLine, SampleRecord } from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
import { drawConfiguredSplit, type SamplingRule } from "../data/draw.js";
import { assertDisjointSamples } from "../data/sampling.js";
import type { DatasetIdentity, Sample } from "../data/types.js";
import type { GptNeoCheckpoint, HeadLayout } from "../model/types.js";
import type { GreedyTraces } from "./evaluate.js";
import type { RunProgress } from "./run-methods.js";

/**
 * The evaluation and calibration samples a config draws, with their splits' identities; they
 * must never share a token sequence. `rule`: a bundle's recorded sampling rule (verify), else
 * the source's current one.
 */
export async function drawRunSamples(
  config: RunConfig,
  rule?: SamplingRule,
): Promise<{
  evaluationSplit: DatasetIdentity;
  calibrationSplit: DatasetIdentity;
  evaluation: Sample[];
  calibration: Sample[];
}> {
  const evaluation = await drawConfiguredSplit(config.dataset, "eval", config.dataset.samples, rule);
  const calibration = await drawConfiguredSplit(
    config.dataset,
    "calibration",
    config.dataset.calibrationSamples,
    rule,
  );
  assertDisjointSamples(evaluation.samples, calibration.samples);
  return {
    evaluationSplit: evaluation.identity,
    calibrationSplit: calibration.identity,
    evaluation: evaluation.samples,
    calibration: calibration.samples,
  };
}

export interface MeasureRunOptions {
  device: RunConfig["model"]["device"];
  cacheDir?: string;
  intraOpThreads?: number;
  /** The head's layout (default in-place): replay gives the one the bundle's format version was proved with. */
  headLayout?: HeadLayout;
  /** When given, every record's greedy steps are traced into it (replay judges its token lists with them). */
  greedyTraces?: GreedyTraces;
}

export interface MeasureRunProgress extends RunProgress {
  /** The backend is open (its execution provider), before the first sample is measured. */
  backendOpened?: (executionProvider: string) => void;
}

/** Every configured method on `samples`: the config's backend opened on `checkpoint`, used, closed. */
export async function measureRun(
  checkpoint: GptNeoCheckpoint,
  samples: readonly Sample[],
  config: RunConfig,
  options: MeasureRunOptions,
  progress: MeasureRunProgress = {},
): Promise<{ records: SampleRecord[]; fingerprints: FingerprintLine[]; executionProvider: string }> {
  // Loaded here, not at import: they load onnxruntime, which `spg verify` needs only to replay.
  const [{ createBackend }, { evaluateRun }] = await Promise.all([
    import("./backend.js"),
    import("./run-methods.js"),
  ]);
  const backend = await createBackend(checkpoint, {
    device: options.device,
    observationWindow: config.kv.observationWindow,
    baselineDtype: config.kv.baselineDtype,
    prefillChunkTokens: config.kv.prefillChunkTokens,
    prefillChunkSplit: config.kv.prefillChunkSplit,
    cacheDir: options.cacheDir,
    intraOpThreads: options.intraOpThreads,
    headLayout: options.headLayout,
  });
  try {
    progress.backendOpened?.(backend.executionProvider);
    const measured = await evaluateRun(backend, checkpoint, samples, config, options, progress);
    return { ...measured, executionProvider: backend.executionProvider };
  } finally {
    await backend.close();
  }
}
