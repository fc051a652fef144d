/**
 * The evaluation protocol for weights methods (docs/ARCHITECTURE.md "The data path", issue 8).
 * The checkpoint is compressed once per method and run (factorised) on its own runtime; per
 * sample the compressed model prefills the context itself, continues teacher-forced over the
 * continuation and generates greedily, and is compared with the uncompressed baseline:
 *   - the same scored rows as the KV methods (the first continuation token is fed, not
 *     scored), the same NLL / KL / top-1 sums (src/measure/metrics.ts), and the logit cosine;
 *   - both caches at the KV baseline dtype (the cache is not what is compressed here);
 *   - greedy generation compared from the first generated token on: that token is the
 *     compressed model's own prediction, not a shared prefill's.
 * Methods run one after another over all samples, so one compressed runtime is open at a time;
 * the baseline's logits per sample are kept meanwhile.
 */
import type { SampleRecord, WeightFingerprintLine } from "../bundle/types.js";
import type { MethodConfig } from "../config/types.js";
import type { Sample } from "../data/types.js";
import { type GreedyStep, type LoadRuntimeOptions, loadRuntime } from "../model/session.js";
import type { GptNeoCheckpoint, GptNeoRuntime } from "../model/types.js";
import { type CompressedWeights, compressCheckpoint } from "../weights/compress.js";
import { policyOfMethod } from "../weights/method.js";
import { layerOfTensorName } from "../weights/policy.js";
import { factorisedCheckpoint } from "../weights/runtime.js";
import {
  continueFrom,
  type EvaluationBackend,
  type GreedyTraces,
  greedyTraceKey,
  measuredRecord,
  runCostOf,
  type SideCost,
} from "./evaluate.js";
import { logitCosineSum } from "./logit-cosine.js";
import { assertFinite, compareWithBaseline, generationRecord, type LogitRows } from "./metrics.js";

/** The uncompressed model's side of one sample, shared by every weights method. */
export interface SampleBaseline {
  sample: Sample;
  /** Teacher-forced logit rows [scored rows, vocab]. */
  rows: LogitRows;
  targets: number[];
  /** Greedy generation from the end of the context, first token included (generation.tokens long). */
  generated: number[];
  /** The dense session's executed bytes and timings on this sample (each record's runCost baseline). */
  cost: SideCost;
  /** Greedy steps of `generated` (null for its first token, the prefill's), when traced. */
  trace?: (GreedyStep | null)[];
}

function contextOf(sample: Sample): number[] {
  return sample.tokens.slice(0, sample.contextTokens);
}

/** Prefill, teacher-forced continuation and greedy generation of `runtime` from a sample's context. */
async function runFromContext(
  backend: EvaluationBackend,
  runtime: GptNeoRuntime,
  sample: Sample,
  tokens: number,
  trace?: GreedyStep[],
) {
  const started = performance.now();
  const prefill = await backend.prefill(runtime, contextOf(sample));
  const prefillMs = performance.now() - started;
  // The prefill returns its last row's logits (the evaluation backend asks for one).
  const first = prefill.output.logitsArgmax[prefill.output.logitsArgmax.length - 1];
  const cache = backend.baselineCache(prefill);
  const result = await continueFrom(
    backend,
    runtime,
    cache,
    sample,
    first,
    decodeStepsOf(tokens),
    (laidOut, fed, positions) => backend.extend(runtime, laidOut, fed, positions),
    false,
    trace,
  );
  return {
    ...result,
    rows: result.forced,
    prefillMs,
    generated: tokens > 0 ? [first, ...result.generated] : [],
    kvBytes: backend.baselineBytes(prefill.cache),
  };
}

export async function sampleBaseline(
  backend: EvaluationBackend,
  sample: Sample,
  generationTokens: number,
  traced = false,
): Promise<SampleBaseline> {
  const dense = await backend.runtime(undefined);
  const trace = traced ? ([] as GreedyStep[]) : undefined;
  const run = await runFromContext(backend, dense, sample, generationTokens, trace);
  return {
    sample,
    rows: run.rows,
    targets: sample.tokens.slice(sample.contextTokens + 1),
    generated: run.generated,
    cost: sideCost(dense, run),
    ...(trace === undefined ? {} : { trace: firstTokenUntraced(trace, generationTokens) }),
  };
}

/** A weights list's steps: its first token is the prefill's (no decode step), the rest traced. */
function firstTokenUntraced(trace: GreedyStep[], generationTokens: number): (GreedyStep | null)[] {
  return generationTokens > 0 ? [null, ...trace] : [];
}

function sideCost(
  runtime: GptNeoRuntime,
  run: { kvReadBytes: number; continuationMs: number; generationMs: number },
): SideCost {
  return {
    executed: { weights: runtime.executedWeightBytes, kv: run.kvReadBytes },
    continuationMs: run.continuationMs,
    generationMs: run.generationMs,
  };
}

/** Greedy decode steps after the first generated token, which each model's own prefill predicts. */
function decodeStepsOf(generationTokens: number): number {
  return Math.max(0, generationTokens - 1);
}

/** A weights method's compressed checkpoint, open on its own runtime. */
export interface CompressedModel {
  method: MethodConfig;
  compressed: CompressedWeights;
  runtime: GptNeoRuntime;
  /** Encoding the checkpoint (once per run; repeated in each record of the method). */
  compressMs: number;
  /** Decoding the stored bytes into the factors and weights the runtime reads (once per run). */
  decompressMs: number;
  fingerprints: WeightFingerprintLine[];
}

/** One fingerprint line per stored tensor (dense ones too: the record's bytes are their sum). */
export function weightFingerprintLines(
  method: string,
  compressed: CompressedWeights,
): WeightFingerprintLine[] {
  return compressed.tensors.map((tensor) => {
    const { name: _name, ...stored } = tensor.fingerprint;
    return {
      kind: "weights",
      method,
      tensor: tensor.name,
      module: tensor.plan?.kind ?? null,
      layer: layerOfTensorName(tensor.name),
      ...stored,
    };
  });
}

export async function openCompressedModel(
  checkpoint: GptNeoCheckpoint,
  method: MethodConfig,
  runtimeOptions: Omit<LoadRuntimeOptions, "externalDataThresholdBytes">,
): Promise<CompressedModel> {
  const started = performance.now();
  const compressed = compressCheckpoint(checkpoint, policyOfMethod(method));
  const compressMs = performance.now() - started;
  const decodeStarted = performance.now();
  const factorised = factorisedCheckpoint(compressed);
  const decompressMs = performance.now() - decodeStarted;
  const runtime = await loadRuntime(factorised, runtimeOptions);
  return {
    method,
    compressed,
    runtime,
    compressMs,
    decompressMs,
    fingerprints: weightFingerprintLines(method.name, compressed),
  };
}

/** One record: the compressed model on one sample against its baseline. */
export async function evaluateWeightsSample(
  backend: EvaluationBackend,
  model: CompressedModel,
  baseline: SampleBaseline,
  generationTokens: number,
  greedyTraces?: GreedyTraces,
): Promise<SampleRecord> {
  const { sample, targets } = baseline;
  const vocab = backend.config.vocabSize;
  const trace = greedyTraces === undefined ? undefined : ([] as GreedyStep[]);
  const run = await runFromContext(backend, model.runtime, sample, generationTokens, trace);
  if (trace !== undefined && baseline.trace !== undefined)
    greedyTraces?.set(greedyTraceKey(sample.sampleId, model.method.name), {
      baseline: baseline.trace,
      tokens: firstTokenUntraced(trace, generationTokens),
    });
  const forced = compareWithBaseline(
    await backend.prepareBaseline(baseline.rows, targets),
    run.rows,
    targets,
    vocab,
  );
  const c = model.compressed;
  return {
    ...measuredRecord(
      sample,
      model.method.name,
      forced,
      generationRecord(baseline.generated, run.generated),
      {
        kvBytesBaseline: run.kvBytes,
        // The cache is kept whole at the baseline dtype: a weights method compresses no KV bytes.
        kvBytesCompressed: run.kvBytes,
        timingsMs: {
          prefill: run.prefillMs,
          compress: model.compressMs,
          decompress: model.decompressMs,
          continuation: run.continuationMs,
          generation: run.generationMs,
        },
        runCost: runCostOf(
          backend,
          sideCost(model.runtime, run),
          baseline.cost,
          { teacherForced: sample.continuationTokens - 1, decodeSteps: decodeStepsOf(generationTokens) },
          `sample ${sample.sampleId}, method ${model.method.name}`,
        ),
      },
    ),
    weights: {
      bytesBaseline: c.baselineBytes,
      bytesCompressed: c.compressedBytes,
      parametersBaseline: c.baselineParameters,
      parametersStored: c.storedParameters,
    },
    logitCosineSum: assertFinite(
      logitCosineSum(baseline.rows.logits, run.rows.logits, targets.length, vocab),
      `sample ${sample.sampleId}, method ${model.method.name}: logit cosine`,
    ),
  };
}

export interface WeightsEvaluation {
  records: SampleRecord[];
  fingerprints: WeightFingerprintLine[];
}

/** Every weights method on every sample: baselines first, then one compressed runtime at a time. */
export async function evaluateWeightsMethods(
  backend: EvaluationBackend,
  checkpoint: GptNeoCheckpoint,
  samples: readonly Sample[],
  methods: readonly MethodConfig[],
  options: {
    generationTokens: number;
    runtime: Omit<LoadRuntimeOptions, "externalDataThresholdBytes">;
    greedyTraces?: GreedyTraces;
  },
  onMethodDone?: (method: string, done: number, total: number) => void,
): Promise<WeightsEvaluation> {
  const records: SampleRecord[] = [];
  const fingerprints: WeightFingerprintLine[] = [];
  if (methods.length === 0) return { records, fingerprints };
  const baselines: SampleBaseline[] = [];
  for (const sample of samples)
    baselines.push(
      await sampleBaseline(backend, sample, options.generationTokens, options.greedyTraces !== undefined),
    );
  for (const [index, method] of methods.entries()) {
    const model = await openCompressedModel(checkpoint, method, options.runtime);
    try {
      for (const baseline of baselines) {
        records.push(
          await evaluateWeightsSample(
            backend,
            model,
            baseline,
            options.generationTokens,
            options.greedyTraces,
          ),
        );
      }
    } finally {
      await model.runtime.close();
    }
    fingerprints.push(...model.fingerprints);
    onMethodDone?.(method.name, index + 1, methods.length);
  }
  return { records, fingerprints };
}
