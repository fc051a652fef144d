/**
 * The per-sample evaluation protocol (docs/ARCHITECTURE.md "The data path"):
 * prefill the context once with the full cache, then for every method compress that cache,
 * continue teacher-forced over the continuation and generate greedily, and compare each
 * against the uncompressed baseline from the same prefill.
 */
import type { ExecutedBytes, LayerFingerprint, RunCost, SampleRecord } from "../bundle/types.js";
import type { MethodConfig } from "../config/types.js";
import type { Sample } from "../data/types.js";
import type { KvCache } from "../kv/cache.js";
import type { PaddedCache } from "../kv/padded-cache.js";
import type { GreedyStep } from "../model/session.js";
import type { ForwardOutput, GptNeoConfig, GptNeoRuntime } from "../model/types.js";
import {
  assertFinite,
  compareScored,
  generationRecord,
  type LogitRows,
  type PreparedBaseline,
  type ScoredRows,
  type TeacherForcedComparison,
} from "./metrics.js";

/** What a compression method hands back, as far as evaluation needs it. */
export interface CompressionResult {
  bytes: number;
  layers: {
    bytes: number;
    tokensKept: number;
    tokensTotal: number;
    headsFullPrecision: number;
    bitsHistogram: Record<string, number>;
    sha256: string;
    /** The decoded cache's widest head in this layer: the slots the graph reads before the decode room. */
    slotsRead: number;
  }[];
  /** The cache the model reads, reconstructed from the stored bytes. */
  cache: KvCache;
  /** Hybrid sparse attention at decode time: each query attends to its top-k keys. */
  sparseTopK: number | undefined;
  /** The method's encoding (cache to stored bytes) and the decoding of those bytes for the model. */
  timingsMs: { compress: number; decompress: number };
}

export interface PrefillState {
  cache: KvCache;
  output: ForwardOutput;
  positions: number[];
}

/** The pieces evaluation needs from the model runtime, the cache layout and the methods. */
export interface EvaluationBackend {
  config: GptNeoConfig;
  /** Where the timings come from: the execution provider and the intra-op thread setting (0: onnxruntime's default). */
  executionProvider: RunCost["executionProvider"];
  intraOpThreads: number;
  /** A runtime for dense attention (undefined) or hybrid sparse attention with top-k. */
  runtime(sparseTopK: number | undefined): Promise<GptNeoRuntime>;
  prefill(runtime: GptNeoRuntime, tokens: number[]): Promise<PrefillState>;
  /** The baseline side of the teacher-forced comparison (its distributions, once per sample). */
  prepareBaseline(rows: LogitRows, targets: readonly number[]): Promise<PreparedBaseline>;
  /** The cache laid out once as the model reads it, with room for `room` more tokens per head. */
  layout(cache: KvCache, room: number): PaddedCache;
  /** Runs tokens at positions on top of cache in one pass (the cache is not changed); their logit rows. */
  extend(
    runtime: GptNeoRuntime,
    cache: PaddedCache,
    tokens: number[],
    positions: number[],
  ): Promise<LogitRows>;
  /**
   * extend, with the first targets.length rows scored against the baseline's p~ in the graph:
   * what a method's comparison needs, without copying [rows, vocab] logits out.
   */
  score(
    runtime: GptNeoRuntime,
    cache: PaddedCache,
    tokens: number[],
    positions: number[],
    baseline: PreparedBaseline,
    targets: readonly number[],
  ): Promise<ScoredRows>;
  /**
   * Greedy decoding from cache: feeds firstToken at startPosition, returns the next `steps`
   * tokens; the steps are appended to the cache, which needs room for them.
   */
  generate(
    runtime: GptNeoRuntime,
    cache: PaddedCache,
    firstToken: number,
    startPosition: number,
    steps: number,
    /** When given, each step's runner-up and logit gap are pushed to it (replay reads them). */
    trace?: GreedyStep[],
  ): Promise<number[]>;
  baselineBytes(cache: KvCache): number;
  /**
   * The uncompressed cache as the baseline counts it (every slot at the baseline dtype):
   * the baseline continues from this, so a method is compared with what its ratio is against.
   */
  baselineCache(prefill: PrefillState, layoutRoom?: number): KvCache;
  /** `layoutRoom`: the tokens the decoder will append to the cache (see CompressedCache.materialize). */
  compress(method: MethodConfig, prefill: PrefillState, layoutRoom?: number): CompressionResult;
}

export interface EvaluationOptions {
  generationTokens: number;
  /** When given, every record's greedy steps are traced into it (replay; prove leaves it out). */
  greedyTraces?: GreedyTraces;
}

/**
 * The greedy steps behind one record's generated token lists, position by position (null where
 * the step is not a decode step: a weights method's first token, which its prefill predicts).
 */
export interface GreedyTrace {
  baseline: (GreedyStep | null)[];
  tokens: (GreedyStep | null)[];
}

/** Traces by record: greedyTraceKey(sampleId, method). */
export type GreedyTraces = Map<string, GreedyTrace>;

export function greedyTraceKey(sampleId: string, method: string): string {
  return `${sampleId}\u0000${method}`;
}

export interface SampleEvaluation {
  records: SampleRecord[];
  fingerprints: LayerFingerprint[];
}

export interface Continuation<T> {
  /** What the teacher-forced pass returned (logit rows, or rows scored in the graph). */
  forced: T;
  generated: number[];
  continuationMs: number;
  generationMs: number;
  /** Bytes of the laid-out cache the graph read (src/kv/padded-cache.ts readBytes). */
  kvReadBytes: number;
}

/** The teacher-forced pass over the continuation: fed tokens at their positions on the laid-out cache. */
export type TeacherForced<T> = (cache: PaddedCache, tokens: number[], positions: number[]) => Promise<T>;

export async function continueFrom<T>(
  backend: EvaluationBackend,
  runtime: GptNeoRuntime,
  cache: KvCache,
  sample: Sample,
  firstGenerated: number,
  generationTokens: number,
  teacherForced: TeacherForced<T>,
  /**
   * Nothing reads `cache` after this continuation: the layout's buffers (its own, or the
   * ones it took over from `cache`) are lent to the next layouts instead of collected.
   */
  cacheDone = false,
  /** When given, generation's greedy steps are pushed to it. */
  trace?: GreedyStep[],
): Promise<Continuation<T>> {
  const continuation = sample.tokens.slice(sample.contextTokens);
  // The first continuation token is predicted by the full-cache prefill: it is fed, not scored.
  const fed = continuation.slice(0, -1);
  const fedPositions = fed.map((_, i) => sample.contextTokens + i);
  // Laid out once: the teacher-forced pass reads it, then generation appends to it.
  const laidOut = backend.layout(cache, generationTokens);
  let started = performance.now();
  const forced = await teacherForced(laidOut, fed, fedPositions);
  const continuationMs = performance.now() - started;

  // Greedy generation from the end of the context; the first token comes from the shared prefill.
  started = performance.now();
  const generated = await backend.generate(
    runtime,
    laidOut,
    firstGenerated,
    sample.contextTokens,
    generationTokens,
    trace,
  );
  const generationMs = performance.now() - started;
  const kvReadBytes = laidOut.readBytes;
  if (cacheDone) laidOut.recycle();
  return { forced, generated, continuationMs, generationMs, kvReadBytes };
}

/** One side's executed bytes and timings, as runCostOf reads them. */
export interface SideCost {
  executed: ExecutedBytes;
  continuationMs: number;
  generationMs: number;
}

function tokensPerSecond(tokens: number, ms: number, what: string): number {
  if (tokens === 0) return 0;
  return assertFinite(tokens / (ms / 1000), `${what}: tokens per second`);
}

/**
 * A record's runCost: both sides' executed bytes, and tokens/s of the teacher-forced pass
 * (`teacherForcedTokens` fed in one pass) and of greedy decoding (`decodeSteps` passes).
 */
export function runCostOf(
  backend: Pick<EvaluationBackend, "executionProvider" | "intraOpThreads">,
  method: SideCost,
  baseline: SideCost,
  tokens: { teacherForced: number; decodeSteps: number },
  where: string,
): RunCost {
  return {
    executionProvider: backend.executionProvider,
    intraOpThreads: backend.intraOpThreads,
    executedBytes: method.executed,
    baselineExecutedBytes: baseline.executed,
    teacherForcedTokens: tokens.teacherForced,
    decodeSteps: tokens.decodeSteps,
    baselineTimingsMs: { continuation: baseline.continuationMs, generation: baseline.generationMs },
    tokensPerSecond: {
      teacherForced: tokensPerSecond(tokens.teacherForced, method.continuationMs, where),
      decode: tokensPerSecond(tokens.decodeSteps, method.generationMs, where),
      baselineTeacherForced: tokensPerSecond(tokens.teacherForced, baseline.continuationMs, where),
      baselineDecode: tokensPerSecond(tokens.decodeSteps, baseline.generationMs, where),
    },
  };
}

export function peakRssBytes(): number {
  // maxRSS is the process's peak resident set in kilobytes, measured by the OS.
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * One record from a sample's measurements: the sample's identity, the teacher-forced sums
 * (NaN or Infinity fails the run) and generation agreement, bytes and timings as given.
 */
export function measuredRecord(
  sample: Sample,
  method: string,
  forced: TeacherForcedComparison,
  generation: SampleRecord["generation"],
  measured: Pick<SampleRecord, "kvBytesBaseline" | "kvBytesCompressed" | "timingsMs" | "runCost">,
): SampleRecord {
  const where = `sample ${sample.sampleId}, method ${method}`;
  return {
    sampleId: sample.sampleId,
    sampleIndex: sample.index,
    method,
    tokenHash: sample.tokenHash,
    document: sample.document,
    offset: sample.offset,
    contextTokens: sample.contextTokens,
    continuationTokens: sample.continuationTokens,
    scoredTokens: forced.scoredTokens,
    nllBaseline: assertFinite(forced.nllBaseline, `${where}: baseline NLL`),
    nllCompressed: assertFinite(forced.nllCompressed, `${where}: compressed NLL`),
    klSum: assertFinite(forced.klSum, `${where}: KL`),
    top1Matches: forced.top1Matches,
    generation,
    ...measured,
    peakRssBytes: peakRssBytes(),
  };
}

/** Evaluates every configured method on one sample, all from the same prefill. */
export async function evaluateSample(
  backend: EvaluationBackend,
  sample: Sample,
  methods: MethodConfig[],
  options: EvaluationOptions,
): Promise<SampleEvaluation> {
  const denseRuntime = await backend.runtime(undefined);
  const context = sample.tokens.slice(0, sample.contextTokens);
  const started = performance.now();
  const prefill = await backend.prefill(denseRuntime, context);
  const prefillMs = performance.now() - started;
  // The prefill returns its last row's logits only (the evaluation backend asks for one).
  const firstGenerated = prefill.output.logitsArgmax[prefill.output.logitsArgmax.length - 1];

  // The first decode after a prefill pays onnxruntime's one-off work for the decode shapes; an
  // untimed pass on a throwaway layout keeps it out of the baseline's timing, which every
  // method's speed ratio divides by (without it, `full` decoded 1.2-1.3x "faster" than itself).
  // The baseline's cache is rounded once: the warm-up and the timed pass lay out the same one.
  const baselineCache = backend.baselineCache(prefill, options.generationTokens);
  await backend.generate(
    denseRuntime,
    backend.layout(baselineCache, options.generationTokens),
    firstGenerated,
    sample.contextTokens,
    options.generationTokens,
  );
  const baselineTrace = options.greedyTraces === undefined ? undefined : ([] as GreedyStep[]);
  const baseline = await continueFrom(
    backend,
    denseRuntime,
    baselineCache,
    sample,
    firstGenerated,
    options.generationTokens,
    (cache, tokens, positions) => backend.extend(denseRuntime, cache, tokens, positions),
    true,
    baselineTrace,
  );
  const targets = sample.tokens.slice(sample.contextTokens + 1);
  const preparedBaseline = await backend.prepareBaseline(baseline.forced, targets);
  const kvBytesBaseline = backend.baselineBytes(prefill.cache);
  const teacherForced = sample.continuationTokens - 1;
  const baselineSide: SideCost = {
    executed: { weights: denseRuntime.executedWeightBytes, kv: baseline.kvReadBytes },
    continuationMs: baseline.continuationMs,
    generationMs: baseline.generationMs,
  };

  const records: SampleRecord[] = [];
  const fingerprints: LayerFingerprint[] = [];
  for (const method of methods) {
    const compressed = backend.compress(method, prefill, options.generationTokens);
    const runtime = await backend.runtime(compressed.sparseTopK);
    const trace = baselineTrace === undefined ? undefined : ([] as GreedyStep[]);
    const result = await continueFrom(
      backend,
      runtime,
      compressed.cache,
      sample,
      firstGenerated,
      options.generationTokens,
      (cache, tokens, positions) =>
        backend.score(runtime, cache, tokens, positions, preparedBaseline, targets),
      true,
      trace,
    );
    if (baselineTrace !== undefined && trace !== undefined)
      options.greedyTraces?.set(greedyTraceKey(sample.sampleId, method.name), {
        baseline: baselineTrace,
        tokens: trace,
      });
    const forced = compareScored(preparedBaseline, result.forced, targets);
    records.push(
      measuredRecord(sample, method.name, forced, generationRecord(baseline.generated, result.generated), {
        kvBytesBaseline,
        kvBytesCompressed: compressed.bytes,
        timingsMs: {
          prefill: prefillMs,
          compress: compressed.timingsMs.compress,
          decompress: compressed.timingsMs.decompress,
          continuation: result.continuationMs,
          generation: result.generationMs,
        },
        runCost: runCostOf(
          backend,
          {
            // The method runs on the same session (a sparse top-k is an input): the same weights.
            executed: { weights: runtime.executedWeightBytes, kv: result.kvReadBytes },
            continuationMs: result.continuationMs,
            generationMs: result.generationMs,
          },
          baselineSide,
          { teacherForced, decodeSteps: options.generationTokens },
          `sample ${sample.sampleId}, method ${method.name}`,
        ),
      }),
    );
    compressed.layers.forEach((layer, index) => {
      fingerprints.push({ sampleId: sample.sampleId, method: method.name, layer: index, ...layer });
    });
  }
  return { records, fingerprints };
}
