/**
 * The fully resolved run configuration: what `spg prove` runs and what goes into a
 * bundle's config.json. schemas/config.schema.json is the source of truth; this type
 * mirrors it. Every number here comes from configs/ presets, a config file or flags.
 */
import type { PrefillChunkSplit } from "../model/prefill-chunks.js";

export interface RunConfig {
  /** Preset or config name, for people. */
  name: string;
  model: {
    /** Checkpoint directory; "bundled" means the model shipped in models/. */
    path: string;
    /** dtype the weights run in. */
    dtype: "fp32";
    device: "cpu" | "cuda" | "webgpu";
  };
  dataset: {
    /** "brown" = the bundled Brown corpus; the others read `path`. */
    source: "brown" | "text" | "jsonl" | "parquet" | "dir";
    /** Local sources: file or directory; `{split}` in it is replaced by the split name. */
    path: string | null;
    /** Optional (added): calibration split's path when `path` has no `{split}`. */
    calibrationPath?: string | null;
    /** Optional (added): JSONL field or parquet column holding the text (default "text"). */
    textField?: string;
    /** Split the evaluation samples are drawn from. */
    split: string;
    /** Split used for calibration (tuning); must never share a sample with `split`. */
    calibrationSplit: string;
    samples: number;
    calibrationSamples: number;
    contextTokens: number;
    continuationTokens: number;
    seed: number;
  };
  /** Greedy generation after the context, baseline vs compressed. */
  generation: { tokens: number };
  kv: {
    /** dtype the uncompressed baseline cache is counted in (fp16 as the field reports it). */
    baselineDtype: "fp16" | "fp32";
    /** Query rows whose attention the graph returns for scoring methods (observation window). */
    observationWindow: number;
    /**
     * Optional (added): the prefill runs in passes of this many query rows against the growing
     * cache (onnxruntime then holds [heads, chunk, context] attention, not [heads, context,
     * context]); absent: one pass, as bundles written before it were proved.
     */
    prefillChunkTokens?: number;
    /**
     * Optional (added): how the chunked prefill splits the context (src/model/prefill-chunks.ts);
     * absent: "remainder-first", as bundles written before it were proved.
     */
    prefillChunkSplit?: PrefillChunkSplit;
  };
  /** Methods to run, each from the same prefill. The first must be kind "full". */
  methods: MethodConfig[];
  hardware: HardwareConfig;
  claims: Claim[];
  bootstrap: { resamples: number; confidence: number; seed: number };
  tolerances: Tolerances;
}

export interface MethodConfig {
  /** Unique name in this run (records use it). */
  name: string;
  /** Which src/kv method file implements it; "weights" rewrites the checkpoint (src/weights). */
  kind: "full" | "window-trim" | "streaming" | "h2o" | "snapkv" | "quant" | "spg" | "weights";
  /** Method parameters; each method validates its own against the schema. */
  params: Record<string, unknown>;
}

export interface HardwareConfig {
  /** Fraction added on top of the computed requirement (0.2 = 20%). */
  marginFraction: number;
  /** Bytes of activations per token of context per hidden unit, multiplier from config. */
  activationFactor: number;
  /** Multiplier on the logits term: what else holds rows of logits' size (measured). */
  logitsCopies?: number;
  /** Whole-context float32 KV caches alive at once (measured). Absent: 2. */
  kvCopies?: number;
  /** Copies of one layer's [heads, rows, keys] attention onnxruntime holds in a pass (measured). Absent: 1. */
  attentionCopies?: number;
  /** What onnxruntime and V8 add to the process whatever the model, in bytes (measured). */
  fixedOverheadBytes?: number;
  /** Session creation's transient on top of the float32 weights, as a fraction of them (measured). */
  loadOverheadFraction?: number;
}

export type ClaimMetric =
  | "compression_ratio"
  | "perplexity_increase_pct"
  | "mean_kl"
  | "top1_agreement"
  | "generation_agreement"
  | "executed_memory_ratio"
  | "decode_speed_ratio";

export interface Claim {
  method: string;
  metric: ClaimMetric;
  /** ">=" for ratio and agreements, "<=" for perplexity increase and KL. */
  op: ">=" | "<=";
  threshold: number;
  /** Judge the point estimate, or the conservative end of the bootstrap interval. */
  judge: "point" | "bound";
}

export interface Tolerances {
  /** Replay: absolute tolerance on per-token NLL and KL. */
  nllPerToken: number;
  klPerToken: number;
  /** Replay: agreement counts may differ by at most this fraction of tokens. */
  agreementFraction: number;
}
