/**
 * How much memory a run needs, from the checkpoint's config, the run config and the process's
 * own resident memory when the check runs; nothing here is a guess hidden in code: the
 * formula is below, its measured knobs are in the config (hardware.*, measurements noted in
 * configs/default.yaml).
 *
 *   tokens      = contextTokens + max(continuationTokens, generation.tokens)
 *   process     = the process's resident bytes when the check runs (cpu; 0 for a GPU, whose
 *                 memory holds only onnxruntime's)
 *   weights     = parameterCount(model) * bytes(model.dtype)   (one session serves the
 *                 baseline and every KV method: hybrid-sparse top-k is an input of its graph;
 *                 the head reads wte, or an untied lm_head, in place: no second copy)
 *   load        = loadOverheadFraction * weights   (while the session is created: the stored
 *                 F16 tensors, their float32 casts and the pre-packed matrices overlap)
 *   passRows    = the query rows of the widest forward pass: the prefill's widest pass as
 *                 src/model/prefill-chunks.ts splits the context (kv.prefillChunkTokens and
 *                 kv.prefillChunkSplit; the last pass holds at least the observation window), or
 *                 the whole context when the prefill runs in one pass; the continuation pass if wider
 *   kv          = kvCopies * 2 (keys, values) * layers * hidden * tokens * 4   (fp32 at run time:
 *                 the prefill's cache, the baseline's fp16-rounded copy and its laid-out copy, a
 *                 method's reconstructed and laid-out caches, what V8 has not yet collected)
 *   logits      = logitsCopies * rows * vocab * (4 + 8 + 4 + 3 * 8 + 2 * 8), rows = max(1, continuationTokens - 1)
 *                 (the teacher-forced pass's float32 logits and the graph's float64 copy for
 *                 their log-sum-exp; the baseline's float32 probabilities and the distribution
 *                 graph's three float64 intermediates; a method's pass scoring in the graph:
 *                 float64 copies of those probabilities and of the scored logit rows; the
 *                 prefill asks for one row only; logitsCopies, measured, counts what else holds
 *                 rows of that size: the baselines kept per sample, onnxruntime's arena)
 *   attention   = attentionCopies * heads * passRows * keys * 4, keys = contextTokens (+ passRows
 *                 when chunked: a pass reads the cache laid out for the whole context and its own
 *                 rows): one layer's [heads, rows, keys] scores, biased scores, probabilities and
 *                 the If's output, as many as onnxruntime's arena keeps (attentionCopies, measured)
 *   activations = activationFactor * passRows * max(hidden, intermediate) * 4
 *   run         = kv + logits + attention + activations
 *   weightsMethods = what weights methods add (src/weights/memory.ts; 0 without them)
 *   fixed       = fixedOverheadBytes   (measured: what onnxruntime and V8 add to the process
 *                 whatever the model: arenas' first chunks, compiled code, the corpus)
 *   required    = (process + fixed + weights + max(load, run) + weightsMethods) * (1 + marginFraction)
 *
 * The load overhead is gone before the first forward pass, so it and the run's working set
 * never add up. On a GPU the process term is 0 and every other term is counted as if on the
 * device; the caches the JS side holds are on the host there, so the device figure counts
 * more than the device holds (never measured: no GPU was at hand).
 */
import type { RunConfig } from "../config/types.js";
import { prefillChunkSizes } from "../model/prefill-chunks.js";
import { type GptNeoConfig, headIsTied } from "../model/types.js";
import { weightsMethodsBytes } from "../weights/memory.js";

/** Byte width of a run-time float32 value. */
const FLOAT32_BYTES = 4;
const FLOAT64_BYTES = 8;
const DTYPE_BYTES: Record<RunConfig["model"]["dtype"], number> = { fp32: 4 };
/** kvCopies when the config has none (configs written before the knob): baseline and one method's cache. */
export const DEFAULT_KV_COPIES = 2;

export interface MemoryRequirement {
  device: RunConfig["model"]["device"];
  tokens: number;
  parameters: number;
  /** The process's own resident bytes when the check ran (0 on a GPU). */
  processBytes: number;
  weightBytes: number;
  /** What creating the session holds on top of the weights, before any forward pass. */
  loadBytes: number;
  /** Query rows of the widest forward pass (prefill chunk or whole context, or the continuation). */
  passRows: number;
  kvBytes: number;
  logitsBytes: number;
  attentionBytes: number;
  activationBytes: number;
  /** A compressed runtime, the compression's working copies and the kept baselines (weights methods). */
  weightsMethodBytes: number;
  /** Sum of the parts before the margin. */
  subtotalBytes: number;
  marginFraction: number;
  activationFactor: number;
  logitsCopies: number;
  kvCopies: number;
  attentionCopies: number;
  loadOverheadFraction: number;
  fixedOverheadBytes: number;
  /** subtotal * (1 + margin), rounded up to whole bytes. */
  requiredBytes: number;
}

/**
 * Parameters of a GPT-Neo checkpoint: token and position embeddings, per layer two
 * LayerNorms, q/k/v (no bias), out_proj (bias), the MLP (biases), the final LayerNorm;
 * lm_head is tied to wte and not counted twice, unless tie_word_embeddings is false.
 */
export function parameterCount(model: GptNeoConfig): number {
  const h = model.hiddenSize;
  const inner = model.intermediateSize;
  const layerNorm = 2 * h;
  const attention = 3 * h * h + (h * h + h);
  const mlp = h * inner + inner + (inner * h + h);
  const perLayer = 2 * layerNorm + attention + mlp;
  const head = headIsTied(model) ? 0 : model.vocabSize * h;
  return model.vocabSize * h + model.maxPositions * h + model.numLayers * perLayer + layerNorm + head;
}

/**
 * The memory this run needs on its device (formula in the module comment); `processBytes` is
 * the caller's resident memory now (counted on cpu only).
 */
export function memoryRequirement(
  model: GptNeoConfig,
  config: RunConfig,
  processBytes = 0,
): MemoryRequirement {
  const { contextTokens, continuationTokens } = config.dataset;
  const tokens = contextTokens + Math.max(continuationTokens, config.generation.tokens);
  const parameters = parameterCount(model);
  const onHost = config.model.device === "cpu";
  const weightBytes = parameters * DTYPE_BYTES[config.model.dtype];
  const { activationFactor, marginFraction } = config.hardware;
  const logitsCopies = config.hardware.logitsCopies ?? 1;
  const loadOverheadFraction = config.hardware.loadOverheadFraction ?? 0;
  const fixedOverheadBytes = config.hardware.fixedOverheadBytes ?? 0;
  const kvCopies = config.hardware.kvCopies ?? DEFAULT_KV_COPIES;
  const attentionCopies = config.hardware.attentionCopies ?? 1;
  const loadBytes = Math.ceil(loadOverheadFraction * weightBytes);
  const kvBytes = Math.ceil(kvCopies * 2 * model.numLayers * model.hiddenSize * tokens * FLOAT32_BYTES);
  const logitRows = Math.max(1, continuationTokens - 1);
  const chunk = config.kv.prefillChunkTokens;
  const passes =
    chunk === undefined
      ? [contextTokens]
      : prefillChunkSizes(contextTokens, {
          tokens: chunk,
          lastRows: config.kv.observationWindow,
          split: config.kv.prefillChunkSplit,
        });
  const prefillRows = Math.max(...passes);
  const prefillKeys = passes.length === 1 ? contextTokens : contextTokens + prefillRows;
  // The teacher-forced continuation is one pass over the (laid-out) context and its own rows.
  const continuationKeys = tokens + logitRows;
  const passRows = Math.max(prefillRows, logitRows);
  const logitsBytes =
    logitsCopies *
    logitRows *
    model.vocabSize *
    (FLOAT32_BYTES + FLOAT64_BYTES + FLOAT32_BYTES + 3 * FLOAT64_BYTES + 2 * FLOAT64_BYTES);
  const attentionBytes = Math.ceil(
    attentionCopies *
      model.numHeads *
      Math.max(prefillRows * prefillKeys, logitRows * continuationKeys) *
      FLOAT32_BYTES,
  );
  const activationBytes = Math.ceil(
    activationFactor * passRows * Math.max(model.hiddenSize, model.intermediateSize) * FLOAT32_BYTES,
  );
  const weightsMethodBytes = weightsMethodsBytes(model, config, parameters);
  const runBytes = kvBytes + logitsBytes + attentionBytes + activationBytes;
  const process = onHost ? Math.ceil(processBytes) : 0;
  const subtotalBytes =
    process + fixedOverheadBytes + weightBytes + Math.max(loadBytes, runBytes) + weightsMethodBytes;
  return {
    device: config.model.device,
    tokens,
    parameters,
    processBytes: process,
    weightBytes,
    loadBytes,
    passRows,
    kvBytes,
    logitsBytes,
    attentionBytes,
    activationBytes,
    weightsMethodBytes,
    subtotalBytes,
    marginFraction,
    activationFactor,
    logitsCopies,
    kvCopies,
    attentionCopies,
    loadOverheadFraction,
    fixedOverheadBytes,
    requiredBytes: Math.ceil(subtotalBytes * (1 + marginFraction)),
  };
}

/** "1.50 GiB" / "12.0 MiB": for messages. */
export function formatBytes(bytes: number): string {
  const mib = bytes / 2 ** 20;
  return mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(1)} MiB`;
}
