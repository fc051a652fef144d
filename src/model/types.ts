/** The parts of a Hugging Face GPT-Neo config.json the runtime uses, resolved (no nulls). */
export interface GptNeoConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  /** One entry per layer, expanded from `attention_types`. */
  attentionLayers: ("global" | "local")[];
  /** Local layers attend to keys with 0 <= pos_q - pos_k < windowSize. */
  windowSize: number;
  maxPositions: number;
  /** `intermediate_size`, or 4 * hidden_size when the config has null. */
  intermediateSize: number;
  layerNormEpsilon: number;
  activation: string;
  bosTokenId: number | undefined;
  eosTokenId: number | undefined;
  /**
   * `tie_word_embeddings` (transformers' default true): false when lm_head.weight is a matrix of
   * its own. Absent means tied (configs built in code, bundles from before untied heads ran).
   */
  tieWordEmbeddings?: boolean;
}

/** Whether the LM head is transformer.wte.weight (tied) rather than lm_head.weight. */
export function headIsTied(config: Pick<GptNeoConfig, "tieWordEmbeddings">): boolean {
  return config.tieWordEmbeddings !== false;
}

/** Past keys/values of one layer as the graph reads them: [heads, slots, headDim], padded per head. */
export interface LayerPast {
  slots: number;
  keys: Float32Array;
  values: Float32Array;
}

/** One call of the GPT-Neo graph over q new tokens. */
export interface ForwardInput {
  inputIds: readonly number[];
  /** True positions of the q new tokens. */
  positionIds: readonly number[];
  /** One entry per layer. */
  past: LayerPast[];
  /**
   * Per layer, additive bias [heads, q, slots + q], or [1, q, slots + q] shared by every head:
   * 0 where allowed, a large negative where not.
   */
  attentionBias: Float32Array[];
  /** Logits for the last this-many query rows only (1..q; absent: every row). */
  logitRows?: number;
  /** Hybrid sparse attention: each query attends only to its top-k keys (0 or absent: dense). */
  sparseTopK?: number;
  /**
   * Rows scored in the graph against a reference distribution: the first targets.length logit
   * rows, probs [rows, vocab] the reference's p~ (absent: none scored).
   */
  scored?: { probs: Float32Array; targets: readonly number[] };
  /**
   * Which bulky outputs are copied out of onnxruntime (each default true): the logits, the
   * last rows of attention probabilities, the scoring statistics (column and window sums of
   * attention, key and value norms), the new tokens' keys and values. Those not asked for come
   * back empty; log-sum-exp, argmax and scores always come back. A teacher-forced pass that
   * scores in the graph needs none of them; a decode step only the keys and values; a prefill
   * for the compression methods the statistics, not the attention rows.
   */
  returns?: OutputSelection;
}

export interface OutputSelection {
  logits?: boolean;
  attention?: boolean;
  statistics?: boolean;
  present?: boolean;
}

export interface ForwardOutput {
  /**
   * [rows, vocab] for the last `logitRows` query rows (all q unless the input asked for fewer);
   * empty when the input's `returns` left them out (so are the attention and present arrays).
   */
  logits: Float32Array;
  /** [rows]: log sum_v exp(logits[row, v]), in float64. */
  logitsLogSumExp: Float64Array;
  /** [rows]: the first index of each row's largest logit. */
  logitsArgmax: Int32Array;
  /** [scored rows]: sum_v p~[v] logits[v] in float64 (empty when nothing was scored). */
  scoredExpectedLogit: Float64Array;
  /** [scored rows]: logits[target]. */
  scoredTargetLogit: Float32Array;
  /** Per layer, the new tokens' keys [heads, q, headDim]. */
  presentKeys: Float32Array[];
  /** Per layer, the new tokens' values [heads, q, headDim]. */
  presentValues: Float32Array[];
  /** Per layer, attention probabilities of the last min(w, q) query rows [heads, rows, slots + q]. */
  attentionLastRows: Float32Array[];
  /** Number of query rows in attentionLastRows. */
  attentionRows: number;
  /** Per layer, attention probabilities summed over all q query rows [heads, slots + q]. */
  attentionColumnSums: Float32Array[];
  /**
   * Per layer [heads, rows, slots + q]: row i is the sum of attentionLastRows' rows i..rows-1,
   * the attention of the last (rows - i) queries (a float32 running sum from the last row up).
   */
  attentionWindowSums: Float32Array[];
  /** Per layer [heads, q]: the L2 norm of each new token's key, in float64. */
  keyNorms: Float64Array[];
  /** Per layer [heads, q]: the L2 norm of each new token's value, in float64. */
  valueNorms: Float64Array[];
}

/** A float32 tensor as the runtime uses it (checkpoint F16/BF16 are widened on read). */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/** A checkpoint file with its identity, for environment.json and graph-cache keys. */
export interface CheckpointFile {
  /** Path relative to the checkpoint directory. */
  name: string;
  bytes: number;
  sha256: string;
}

/** A read, validated Hugging Face GPT-Neo checkpoint (src/model/checkpoint.ts). */
export interface GptNeoCheckpoint {
  dir: string;
  config: GptNeoConfig;
  /** Weights by Hugging Face name; lm_head.weight only when untied (else the head is transformer.wte.weight), buffers dropped. */
  weights: ReadonlyMap<string, WeightTensor>;
  files: CheckpointFile[];
  /** sha256 over the sorted file hashes: the checkpoint's identity. */
  sha256: string;
  /**
   * Low-rank weights the graph runs factorised (src/weights): W = left [rows, rank] @ right
   * [rank, cols]; such a name's entry in `weights` is not read by the graph.
   */
  factors?: Map<string, LowRankFactors>;
}

export interface LowRankFactors {
  left: WeightTensor;
  right: WeightTensor;
}

/**
 * How the graph's vocabulary projection reads its matrix W (wte when tied, else lm_head):
 *   "in-place":   logits = (W @ h^T)^T, W read as stored: the session's only float32 copy of it;
 *   "transposed": logits = h @ W^T, whose constant W^T onnxruntime folds into a second float32
 *                 copy at load (wte stays for the embedding): the graph bundles of format
 *                 version 3 and before were proved with, which their replay and executed bytes use.
 */
export type HeadLayout = "in-place" | "transposed";

export interface RuntimeOptions {
  device: "cpu" | "cuda" | "webgpu";
  /** Query rows whose attention probabilities the graph returns (attentionLastRows). */
  observationWindow: number;
  /** Default "in-place" (graph.ts). */
  headLayout?: HeadLayout;
  /** Where built graphs (ONNX external data) are cached. */
  cacheDir?: string;
}

/** A GPT-Neo forward pass on onnxruntime-node (src/model/session.ts). */
export interface GptNeoRuntime {
  config: GptNeoConfig;
  /** onnxruntime execution provider actually used ("cpu" | "cuda" | "webgpu"). */
  executionProvider: string;
  /** Bytes of the weights the session holds once loaded, at the dtype it computes with (src/model/executed.ts). */
  executedWeightBytes: number;
  forward(input: ForwardInput): Promise<ForwardOutput>;
  close(): Promise<void>;
}
