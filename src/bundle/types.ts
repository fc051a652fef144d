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
  generation: { compared: number; matches: number; firstDivergence: number | null };
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
}

/** fingerprints.jsonl: one line per (sample, method, layer). */
export interface LayerFingerprint {
  sampleId: string;
  method: string;
  layer: number;
  /** Slots kept, summed over heads, and the slots the full cache had. */
  tokensKept: number;
  tokensTotal: number;
  /** Heads stored at full (baseline) precision. */
  headsFullPrecision: number;
  /** Stored key/value elements per bit width, e.g. {"16": 1024, "4": 8192}. */
  bitsHistogram: Record<string, number>;
  /** Bytes this layer's compressed representation occupies. */
  bytes: number;
  /** sha256 hex of this layer's serialized compressed bytes. */
  sha256: string;
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
  compressionRatio: number;
  /** Bootstrap intervals over samples, seeded from config.bootstrap. */
  intervals: {
    compressionRatio: Interval;
    perplexityIncreasePct: Interval;
    meanKl: Interval;
    top1Agreement: Interval;
    generationAgreement: Interval;
  };
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
}
