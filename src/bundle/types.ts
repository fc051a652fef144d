/**
 * What a bundle holds, file by file. schemas/*.schema.json are the source of truth;
 * these types mirror them. Sums, not means, are recorded so every aggregate can be
 * recomputed exactly from the records.
 */

/** records.jsonl: one line per (evaluation sample, method). */
export interface SampleRecord {
  sampleId: string;
  sampleIndex: number;
  method: string;
  /** sha256 hex of the sample's token ids (context then continuation) as little-endian uint32. */
  tokenHash: string;
  document: string;
  offset: number;
  contextTokens: number;
  continuationTokens: number;
  /** Continuation tokens whose prediction reads the (compressed) cache. */
  scoredTokens: number;
  /** Summed natural-log NLL over scored tokens. */
  nllBaseline: number;
  nllCompressed: number;
  /** Summed KL(baseline || compressed) over scored tokens, nats. */
  klSum: number;
  /** Scored positions where the argmax of both models agrees. */
  top1Matches: number;
  generation: {
    compared: number;
    matches: number;
    firstDivergence: number | null;
    /**
     * Optional (added; older bundles lack them): the greedy token ids compared, the baseline's
     * and this method's (KV methods: after the first token, which the shared prefill predicts;
     * weights methods: from the first token, which each model predicts itself).
     */
    baselineTokens?: number[];
    tokens?: number[];
  };
  kvBytesBaseline: number;
  kvBytesCompressed: number;
  timingsMs: {
    prefill: number;
    compress: number;
    decompress: number;
    continuation: number;
    generation: number;
  };
  peakRssBytes: number;
  /**
   * Weights methods only: the bytes their ratio counts (serialized weights, every tensor, vs
   * the checkpoint at the policy's baseline dtype) and parameters; the cache is not compressed.
   */
  weights?: WeightBytes;
  /** Weights methods only: Σ over scored rows of cos(baseline logits row, compressed logits row). */
  logitCosineSum?: number;
  /**
   * Format version 3 (required there; older bundles lack it): what running this method cost
   * beside what it stores, accounted exactly (src/model/executed.ts), and its speed.
   */
  runCost?: RunCost;
}

/** Bytes a session held while running: weights as executed, KV cache as the graph read it. */
export interface ExecutedBytes {
  weights: number;
  kv: number;
}

export interface RunCost {
  /** The execution provider and onnxruntime intra-op thread setting the timings come from (0: onnxruntime's default). */
  executionProvider: "cpu" | "cuda" | "webgpu";
  intraOpThreads: number;
  /** This method's session and cache, and the uncompressed baseline's, on the same sample. */
  executedBytes: ExecutedBytes;
  baselineExecutedBytes: ExecutedBytes;
  /** Tokens of the teacher-forced pass (fed) and decode steps of greedy generation, same for both sides. */
  teacherForcedTokens: number;
  decodeSteps: number;
  /** The baseline's teacher-forced pass and generation on this sample (the method's are timingsMs). */
  baselineTimingsMs: { continuation: number; generation: number };
  /** tokens / (ms / 1000) of each pass, from those timings. */
  tokensPerSecond: {
    teacherForced: number;
    decode: number;
    baselineTeacherForced: number;
    baselineDecode: number;
  };
}

export interface WeightBytes {
  bytesBaseline: number;
  bytesCompressed: number;
  parametersBaseline: number;
  parametersStored: number;
}

/** fingerprints.jsonl line of a weights method: one per stored tensor of the checkpoint. */
export interface WeightFingerprintLine {
  kind: "weights";
  method: string;
  /** Hugging Face tensor name. */
  tensor: string;
  /** Module kind a policy addresses (q_proj ... wpe); null for vectors (biases, layer norms). */
  module: string | null;
  /** Transformer layer; null for the embeddings and the final layer norm. */
  layer: number | null;
  encoding: "dense" | "quantized" | "lowrank";
  rank: number | null;
  bits: number;
  bytes: number;
  baselineBytes: number;
  parameters: number;
  /** sha256 hex of the tensor's serialized bytes. */
  sha256: string;
}

/** A line of fingerprints.jsonl: a KV layer (no `kind`) or a weight tensor (`kind: "weights"`). */
export type FingerprintLine = LayerFingerprint | WeightFingerprintLine;

export function isWeightFingerprint(line: FingerprintLine): line is WeightFingerprintLine {
  return (line as { kind?: unknown }).kind === "weights";
}

/** fingerprints.jsonl: one line per (sample, method, layer). */
/**
 * The widest bit width a layer fingerprint's histogram may name (fingerprint.schema.json's
 * propertyNames: "1".."32"): a schema-valid histogram is read by width, 1..MAX_BIT_WIDTH, with no walk of its keys.
 */
export const MAX_BIT_WIDTH = 32;

export interface LayerFingerprint {
  sampleId: string;
  method: string;
  layer: number;
  /** Slots kept, summed over heads, and the slots the full cache had. */
  tokensKept: number;
  tokensTotal: number;
  /** Heads stored at full (baseline) precision. */
  headsFullPrecision: number;
  /** Stored key/value elements per bit width (1..MAX_BIT_WIDTH), e.g. {"16": 1024, "4": 8192}. */
  bitsHistogram: Record<string, number>;
  /** Bytes this layer's compressed representation occupies. */
  bytes: number;
  /** sha256 hex of this layer's serialized compressed bytes. */
  sha256: string;
  /**
   * Format version 3: slots of the widest head of the decoded cache, which the graph reads
   * (padded per head) before the decode room; older bundles lack it.
   */
  slotsRead?: number;
}

export interface Interval {
  low: number;
  high: number;
}

export interface MethodSummary {
  samples: number;
  scoredTokens: number;
  nllBaseline: number;
  nllCompressed: number;
  perplexityBaseline: number;
  perplexityCompressed: number;
  perplexityIncreasePct: number;
  meanKl: number;
  top1Agreement: number;
  generationAgreement: number;
  kvBytesBaseline: number;
  kvBytesCompressed: number;
  /** kvBytes* for KV methods; weightBytes* for weights methods (then the KV cache is not compressed). */
  compressionRatio: number;
  /** Weights methods only. */
  weights?: WeightsSummary;
  /**
   * Format version 3 (records with runCost): Σ baseline executed bytes / Σ executed bytes
   * (below 1 when the method holds more at run time than the baseline).
   */
  executedMemoryRatio?: number;
  /** Format version 3: decode tokens/s of the method / of the baseline, each Σ steps / Σ seconds. */
  decodeSpeedRatio?: number;
  /** Format version 3: the sums behind those ratios. */
  runCost?: RunCostSummary;
  /** Bootstrap intervals over samples, seeded from config.bootstrap. */
  intervals: {
    compressionRatio: Interval;
    perplexityIncreasePct: Interval;
    meanKl: Interval;
    top1Agreement: Interval;
    generationAgreement: Interval;
    executedMemoryRatio?: Interval;
    decodeSpeedRatio?: Interval;
  };
}

export interface RunCostSummary {
  executedBytes: number;
  executedBytesBaseline: number;
  teacherForcedTokensPerSecond: number;
  decodeTokensPerSecond: number;
  baselineTeacherForcedTokensPerSecond: number;
  baselineDecodeTokensPerSecond: number;
}

export interface WeightsSummary {
  /** compressionRatio counts these bytes. */
  bytesBaseline: number;
  bytesCompressed: number;
  parametersBaseline: number;
  parametersStored: number;
  /** parametersBaseline / parametersStored: what "N:1 in parameters" claims quote; not the ratio. */
  parameterRatio: number;
  /** Σ logitCosineSum / scoredTokens. */
  meanLogitCosine: number;
}

export interface ClaimResult {
  method: string;
  metric: string;
  op: ">=" | "<=";
  threshold: number;
  judge: "point" | "bound";
  /** Point estimate and the value judged (equal to `value` when judge is "point"). */
  value: number;
  judged: number;
  pass: boolean;
}

/** summary.json */
export interface Summary {
  methods: Record<string, MethodSummary>;
  claims: ClaimResult[];
  allClaimsPass: boolean;
  /** Methods on the Pareto frontier of compression ratio vs perplexity increase: overall, and per method family. */
  frontiers: { all: string[]; byMethod: Record<string, string[]> };
  /** `spg prove --sensitivity`: per weights method, its layers ranked by measurement. */
  sensitivity?: Record<string, SensitivitySummary>;
}

export interface SensitivityEntry {
  unit: string;
  /** The variant method measured. */
  method: string;
  perplexityIncreasePct: number;
}

export interface SensitivitySummary {
  /** The method's own perplexity increase (everything its policy compresses). */
  perplexityIncreasePct: number;
  /** Everything compressed but the unit; recoveredPct = method's increase − the variant's. */
  restore: (SensitivityEntry & { recoveredPct: number })[];
  /** Only the unit compressed. */
  only: SensitivityEntry[];
  /** Units by recoveredPct, largest first (ties: unit order): the load-bearing ones first. */
  ranking: string[];
}

/** A drawn sample: its id and the sha256 of its token ids (environment.json). */
export interface SampleHash {
  sampleId: string;
  tokenHash: string;
}

export interface ModelArchitecture {
  vocabSize: number;
  maxPositions: number;
  intermediateSize: number;
  activation: string;
  /** Added: false for an untied head (lm_head.weight a matrix of its own); absent when tied. */
  tieWordEmbeddings?: false;
}

/** environment.json (schemas/environment.schema.json). */
export interface EnvironmentFile {
  os: Record<string, unknown>;
  cpu: Record<string, unknown>;
  memory: Record<string, unknown>;
  gpus: Record<string, unknown>[];
  node: string;
  onnxruntime: string;
  executionProvider: "cpu" | "cuda" | "webgpu";
  packages: Record<string, string>;
  hardwareCheck: {
    device: "cpu" | "cuda" | "webgpu";
    requiredBytes: number;
    availableBytes: number;
    marginFraction: number;
    verdict: "pass" | "fail";
    inputs: Record<string, number | string | boolean | null>;
  };
  model: {
    path: string;
    sha256: string;
    files: { name: string; sha256: string; bytes: number }[];
    layers: number;
    heads: number;
    hiddenSize: number;
    /** Format version 3: the other config.json shapes the executed bytes follow from. */
    architecture?: ModelArchitecture;
  };
  dataset: {
    source: "brown" | "text" | "jsonl" | "parquet" | "dir";
    split: string;
    calibrationSplit: string;
    sha256: string;
    calibrationSha256: string;
    documents: number;
    /** Added: the rule that drew the samples; absent in bundles from before it was recorded (all "pool"). */
    sampling?: "pool" | "stream";
  };
  calibration: { samples: SampleHash[] };
  evaluation: { samples: SampleHash[] };
}
