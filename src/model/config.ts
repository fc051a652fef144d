/**
 * Reads a Hugging Face GPT-Neo `config.json` into a resolved GptNeoConfig, with the semantics of
 * transformers' GPTNeoConfig (configuration_gpt_neo.py): `attention_types` [[pattern, repeat], ...]
 * expands to one entry per layer, `intermediate_size: null` means 4 * hidden_size.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { SpgError } from "../errors.js";
import { configsDir } from "../paths.js";
import { checkActivation } from "./activations.js";
import { DTYPE_BYTES, FLOAT_DTYPES } from "./safetensors.js";
import type { GptNeoConfig } from "./types.js";

export const CONFIG_FILE = "config.json";
const SAFETENSORS_SUFFIX = ".safetensors";
export const GPT_NEO_ARCHITECTURE = "GPTNeoForCausalLM";
export const GPT_NEO_MODEL_TYPE = "gpt_neo";

/** configs/model/gpt-neo-defaults.json: transformers' GPTNeoConfig defaults for keys a config.json leaves out. */
export const GPT_NEO_DEFAULTS_FILE = join("model", "gpt-neo-defaults.json");

let cachedDefaults: Readonly<Record<string, unknown>> | undefined;

/** transformers' GPTNeoConfig.__init__ defaults, read once from configs/ (never typed into code). */
export function gptNeoConfigDefaults(): Readonly<Record<string, unknown>> {
  if (cachedDefaults === undefined) {
    const path = join(configsDir(), GPT_NEO_DEFAULTS_FILE);
    const parsed = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    cachedDefaults = Object.fromEntries(Object.entries(parsed).filter(([key]) => key !== "$comment"));
  }
  return cachedDefaults;
}

type AttentionKind = "global" | "local";

/** Expand transformers' `attention_types` ([[["global","local"], 2]] -> global, local, global, local). */
export function expandAttentionTypes(
  attentionTypes: unknown,
  file: string,
  numLayers?: number,
): AttentionKind[] {
  const invalid = (why: string): SpgError =>
    new SpgError("E_CONFIG_INVALID", `attention_types ${why}`, {
      file,
      field: "attention_types",
      fix: 'write attention_types as [[["global", "local"], repeat], ...] with one entry per layer in total',
    });
  if (!Array.isArray(attentionTypes) || attentionTypes.length === 0)
    throw invalid("must be a non-empty array");
  // Check every entry and count the layers before expanding, so that a hostile repeat count
  // fails here instead of allocating one array slot per claimed layer.
  let total = 0;
  for (const [index, item] of attentionTypes.entries()) {
    if (!Array.isArray(item) || item.length !== 2) throw invalid(`[${index}] must be [pattern, repeat]`);
    const [pattern, repeat] = item as [unknown, unknown];
    if (!Array.isArray(pattern) || pattern.length === 0) {
      throw invalid(`[${index}][0] must be a non-empty list of "global"/"local"`);
    }
    for (const kind of pattern) {
      if (kind !== "global" && kind !== "local") {
        throw invalid(`[${index}][0] holds ${JSON.stringify(kind)}; only "global" and "local" exist`);
      }
    }
    if (!Number.isSafeInteger(repeat) || (repeat as number) < 0) {
      throw invalid(`[${index}][1] must be a non-negative integer repeat count`);
    }
    total += pattern.length * (repeat as number);
  }
  if (numLayers !== undefined && total !== numLayers) {
    throw invalid(`expands to ${total} layers but num_layers is ${numLayers}`);
  }
  const layers: AttentionKind[] = [];
  for (const [pattern, repeat] of attentionTypes as [AttentionKind[], number][]) {
    for (let r = 0; r < repeat; r++) layers.push(...pattern);
  }
  return layers;
}

/** Read and validate `<dir>/config.json`. */
export function readGptNeoConfig(dir: string): GptNeoConfig {
  const file = join(dir, CONFIG_FILE);
  if (!existsSync(file)) {
    throw new SpgError("E_CHECKPOINT_MISSING", `no ${CONFIG_FILE} in ${dir}`, {
      file,
      fix: "point spg at a Hugging Face GPT-Neo checkpoint directory (config.json + model.safetensors)",
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new SpgError("E_CONFIG_INVALID", `${CONFIG_FILE} is not valid JSON: ${(cause as Error).message}`, {
      file,
      fix: "restore config.json from the checkpoint's source",
      cause,
    });
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new SpgError("E_CONFIG_INVALID", `${CONFIG_FILE} must hold a JSON object`, {
      file,
      fix: "restore config.json from the checkpoint's source",
    });
  }
  return parseGptNeoConfig(raw as Record<string, unknown>, file, storedWeightBytes(dir));
}

/** Total bytes of the safetensors files in `dir`, or undefined when it holds none (a config-only folder). */
function storedWeightBytes(dir: string): number | undefined {
  const sizes = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.name.endsWith(SAFETENSORS_SUFFIX) && entry.isFile())
    .map((entry) => statSync(join(dir, entry.name)).size);
  return sizes.length === 0 ? undefined : sizes.reduce((a, b) => a + b, 0);
}

/**
 * A config whose sizes imply more weight bytes than the checkpoint's files hold is refused before
 * anything is sized from it (a hostile num_layers or hidden_size would otherwise allocate per layer).
 * The bound is a strict lower one: the embeddings plus each layer's four attention projections, at
 * the narrowest float dtype a checkpoint may store.
 */
function checkSizesFitWeights(
  file: string,
  weightBytes: number,
  sizes: { vocabSize: number; hiddenSize: number; numLayers: number; maxPositions: number },
): void {
  const { vocabSize, hiddenSize, numLayers, maxPositions } = sizes;
  const narrowest = Math.min(...FLOAT_DTYPES.map((dtype) => DTYPE_BYTES[dtype]));
  const minimumElements = (vocabSize + maxPositions) * hiddenSize + numLayers * 4 * hiddenSize * hiddenSize;
  const minimumBytes = minimumElements * narrowest;
  if (minimumBytes > weightBytes) {
    throw new SpgError(
      "E_CONFIG_INVALID",
      `config.json's sizes (vocab_size ${vocabSize}, hidden_size ${hiddenSize}, num_layers ${numLayers}, max_position_embeddings ${maxPositions}) need at least ${minimumBytes} bytes of weights but the checkpoint's safetensors files hold ${weightBytes}`,
      {
        file,
        field: "num_layers",
        fix: "the config does not describe these weights; use the config.json saved with them",
      },
    );
  }
}

/** Validate a parsed config.json object (`file` is only used in error messages). */
export function parseGptNeoConfig(
  stored: Record<string, unknown>,
  file: string,
  storedWeightBytes?: number,
): GptNeoConfig {
  // fromEntries defines own properties: a stored "__proto__" key cannot change the prototype.
  const json: Record<string, unknown> = Object.fromEntries([
    ...Object.entries(gptNeoConfigDefaults()),
    ...Object.entries(stored).filter(([, value]) => value !== undefined),
  ]);
  const architectures = json.architectures;
  // GPTNeoForCausalLM.from_pretrained loads a gpt_neo config without `architectures`; one that
  // names other heads only (GPTNeoModel, ...) comes from a checkpoint without the LM layout.
  if (
    json.model_type !== GPT_NEO_MODEL_TYPE ||
    (architectures !== undefined &&
      (!Array.isArray(architectures) || !architectures.includes(GPT_NEO_ARCHITECTURE)))
  ) {
    throw new SpgError(
      "E_CHECKPOINT_ARCH",
      `this is not a GPT-Neo causal LM checkpoint (model_type ${JSON.stringify(json.model_type)}, architectures ${JSON.stringify(architectures)})`,
      {
        file,
        field: json.model_type !== GPT_NEO_MODEL_TYPE ? "model_type" : "architectures",
        fix: `spg runs only Hugging Face GPT-Neo checkpoints: model_type "${GPT_NEO_MODEL_TYPE}" with architectures ["${GPT_NEO_ARCHITECTURE}"] (e.g. EleutherAI/gpt-neo-125m)`,
      },
    );
  }

  const positiveInteger = (field: string): number => {
    const value = json[field];
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new SpgError(
        "E_CONFIG_INVALID",
        `${field} must be a positive integer, got ${JSON.stringify(value)}`,
        {
          file,
          field,
          fix: `set ${field} in config.json to the value the checkpoint was trained with`,
        },
      );
    }
    return value as number;
  };

  const vocabSize = positiveInteger("vocab_size");
  const hiddenSize = positiveInteger("hidden_size");
  const numLayers = positiveInteger("num_layers");
  const numHeads = positiveInteger("num_heads");
  const windowSize = positiveInteger("window_size");
  const maxPositions = positiveInteger("max_position_embeddings");

  if (hiddenSize % numHeads !== 0) {
    throw new SpgError(
      "E_CONFIG_INVALID",
      `hidden_size ${hiddenSize} is not divisible by num_heads ${numHeads}`,
      {
        file,
        field: "num_heads",
        fix: "num_heads must divide hidden_size (head_dim = hidden_size / num_heads); transformers rejects this config too",
      },
    );
  }

  let intermediateSize: number;
  if (json.intermediate_size === null) {
    // transformers: inner_dim = config.intermediate_size if not None else 4 * hidden_size
    intermediateSize = 4 * hiddenSize;
  } else {
    intermediateSize = positiveInteger("intermediate_size");
  }

  if (storedWeightBytes !== undefined) {
    checkSizesFitWeights(file, storedWeightBytes, { vocabSize, hiddenSize, numLayers, maxPositions });
  }
  const attentionLayers = expandAttentionTypes(json.attention_types, file, numLayers);
  // transformers' PretrainedConfig sets a stored attention_layers after expanding attention_types,
  // so the stored list is what the model runs: it must agree with the expansion we use.
  if (json.attention_layers !== undefined) {
    const stated = json.attention_layers;
    if (
      !Array.isArray(stated) ||
      stated.length !== attentionLayers.length ||
      stated.some((kind, i) => kind !== attentionLayers[i])
    ) {
      throw new SpgError(
        "E_CONFIG_INVALID",
        `attention_layers ${JSON.stringify(stated)} disagrees with attention_types, which expands to ${JSON.stringify(attentionLayers)}`,
        {
          file,
          field: "attention_layers",
          fix: "delete attention_layers (transformers recomputes it from attention_types) or make them agree",
        },
      );
    }
  }

  const epsilon = json.layer_norm_epsilon;
  if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon < 0) {
    throw new SpgError(
      "E_CONFIG_INVALID",
      `layer_norm_epsilon must be a non-negative number, got ${JSON.stringify(epsilon)}`,
      {
        file,
        field: "layer_norm_epsilon",
        fix: "set layer_norm_epsilon (GPT-Neo checkpoints use 1e-5)",
      },
    );
  }

  const activation = checkActivation(json.activation_function, file);

  // transformers' PretrainedConfig default is true; false makes lm_head.weight a matrix of its own.
  const tie = json.tie_word_embeddings;
  if (tie !== undefined && typeof tie !== "boolean") {
    throw new SpgError(
      "E_CONFIG_INVALID",
      `tie_word_embeddings must be true or false, got ${JSON.stringify(tie)}`,
      {
        file,
        field: "tie_word_embeddings",
        fix: "set tie_word_embeddings to true (lm_head is transformer.wte) or false (lm_head.weight is stored), or remove it",
      },
    );
  }

  // transformers does not check bos/eos against vocab_size (its defaults, 50256, exceed small
  // vocabularies): an id the model cannot emit is recorded as absent, since nothing can match it.
  const optionalTokenId = (field: string): number | undefined => {
    const value = json[field];
    if (value === undefined || value === null) return undefined;
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      throw new SpgError("E_CONFIG_INVALID", `${field} must be a non-negative integer token id`, {
        file,
        field,
        fix: `set ${field} to a valid token id or remove it`,
      });
    }
    return (value as number) < vocabSize ? (value as number) : undefined;
  };

  return {
    vocabSize,
    hiddenSize,
    numLayers,
    numHeads,
    headDim: hiddenSize / numHeads,
    attentionLayers,
    windowSize,
    maxPositions,
    intermediateSize,
    layerNormEpsilon: epsilon,
    activation,
    bosTokenId: optionalTokenId("bos_token_id"),
    eosTokenId: optionalTokenId("eos_token_id"),
    ...(tie === false ? { tieWordEmbeddings: false } : {}),
  };
}
