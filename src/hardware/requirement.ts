/**
 * How much memory a run needs, from the checkpoint's config and the run config; nothing
 * here is a guess hidden in code: the formula is below, its two knobs are in the config
 * (hardware.activationFactor, hardware.marginFraction).
 *
 *   tokens      = contextTokens + max(continuationTokens, generation.tokens)
 *   weights     = parameterCount(model) * bytes(model.dtype) * runtimes, runtimes = 1 + the
 *                 distinct hybrid-sparse top-k values of the KV methods (each decodes through
 *                 its own onnxruntime session, holding its own copy of the weights)
 *   kv          = CACHES_HELD * 2 (keys, values) * layers * hidden * tokens * 4   (fp32 at run time)
 *   logits      = rows * vocab * (4 + 8 + 4 + 3 * 8 + 2 * 8), rows = max(1, continuationTokens - 1)
 *                 (the teacher-forced pass's float32 logits and the graph's float64 copy for
 *                 their log-sum-exp; the baseline's float32 probabilities and the distribution
 *                 graph's three float64 intermediates; a method's pass scoring in the graph:
 *                 float64 copies of those probabilities and of the scored logit rows; the
 *                 prefill asks for one row only)
 *   attention   = heads * contextTokens^2 * 4      (one layer's prefill attention probabilities)
 *   activations = activationFactor * contextTokens * max(hidden, intermediate) * 4
 *   weightsMethods = what weights methods add (src/weights/memory.ts; 0 without them)
 *   required    = (weights + kv + logits + attention + activations + weightsMethods) * (1 + marginFraction)
 *
 * CACHES_HELD is 2 because the protocol keeps the full baseline cache alive while a method's
 * compressed cache is evaluated from the same prefill.
 */
import type { RunConfig } from "../config/types.js";
import { isMethodKind, methods } from "../kv/methods/index.js";
import type { GptNeoConfig } from "../model/types.js";
import { weightsMethodsBytes } from "../weights/memory.js";

/** Byte width of a run-time float32 value. */
const FLOAT32_BYTES = 4;
const FLOAT64_BYTES = 8;
const DTYPE_BYTES: Record<RunConfig["model"]["dtype"], number> = { fp32: 4 };
/** The baseline cache and one compressed cache live at the same time (see above). */
export const CACHES_HELD = 2;

export interface MemoryRequirement {
  device: RunConfig["model"]["device"];
  tokens: number;
  parameters: number;
  /** Model sessions held at once: the dense one and one per distinct hybrid-sparse top-k. */
  runtimes: number;
  weightBytes: number;
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
  /** subtotal * (1 + margin), rounded up to whole bytes. */
  requiredBytes: number;
}

/**
 * Parameters of a GPT-Neo checkpoint: token and position embeddings, per layer two
 * LayerNorms, q/k/v (no bias), out_proj (bias), the MLP (biases), the final LayerNorm;
 * lm_head is tied to wte and not counted twice.
 */
export function parameterCount(model: GptNeoConfig): number {
  const h = model.hiddenSize;
  const inner = model.intermediateSize;
  const layerNorm = 2 * h;
  const attention = 3 * h * h + (h * h + h);
  const mlp = h * inner + inner + (inner * h + h);
  const perLayer = 2 * layerNorm + attention + mlp;
  return model.vocabSize * h + model.maxPositions * h + model.numLayers * perLayer + layerNorm;
}

/**
 * Model sessions a run holds: the dense runtime, plus one per distinct hybrid-sparse top-k
 * the KV methods ask of the decode graph (each definition's decodeTopK; spg's decode.sparseTopK),
 * as the evaluation backend builds them.
 */
export function runtimeCount(config: RunConfig): number {
  const topKs = new Set<number>();
  for (const method of config.methods) {
    const topK = isMethodKind(method.kind) ? methods[method.kind].decodeTopK(method.params) : 0;
    if (topK > 0) topKs.add(topK);
  }
  return 1 + topKs.size;
}

/** The memory this run needs on its device (formula in the module comment). */
export function memoryRequirement(model: GptNeoConfig, config: RunConfig): MemoryRequirement {
  const { contextTokens, continuationTokens } = config.dataset;
  const tokens = contextTokens + Math.max(continuationTokens, config.generation.tokens);
  const parameters = parameterCount(model);
  const runtimes = runtimeCount(config);
  const weightBytes = parameters * DTYPE_BYTES[config.model.dtype] * runtimes;
  const kvBytes = CACHES_HELD * 2 * model.numLayers * model.hiddenSize * tokens * FLOAT32_BYTES;
  const logitRows = Math.max(1, continuationTokens - 1);
  const logitsBytes =
    logitRows *
    model.vocabSize *
    (FLOAT32_BYTES + FLOAT64_BYTES + FLOAT32_BYTES + 3 * FLOAT64_BYTES + 2 * FLOAT64_BYTES);
  const attentionBytes = model.numHeads * contextTokens * contextTokens * FLOAT32_BYTES;
  const { activationFactor, marginFraction } = config.hardware;
  const activationBytes = Math.ceil(
    activationFactor * contextTokens * Math.max(model.hiddenSize, model.intermediateSize) * FLOAT32_BYTES,
  );
  const weightsMethodBytes = weightsMethodsBytes(model, config, parameters);
  const subtotalBytes =
    weightBytes + kvBytes + logitsBytes + attentionBytes + activationBytes + weightsMethodBytes;
  return {
    device: config.model.device,
    tokens,
    parameters,
    runtimes,
    weightBytes,
    kvBytes,
    logitsBytes,
    attentionBytes,
    activationBytes,
    weightsMethodBytes,
    subtotalBytes,
    marginFraction,
    activationFactor,
    requiredBytes: Math.ceil(subtotalBytes * (1 + marginFraction)),
  };
}

/** "1.50 GiB" / "12.0 MiB": for messages. */
export function formatBytes(bytes: number): string {
  const mib = bytes / 2 ** 20;
  return mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(1)} MiB`;
}
