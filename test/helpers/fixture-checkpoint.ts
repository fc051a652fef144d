/**
 * A minimal private loader for the F32 Hugging Face fixtures (test/fixtures/gpt-neo-hf),
 * so the graph tests do not depend on the production checkpoint reader. It parses the
 * safetensors layout (u64 LE header length, JSON header, raw little-endian data) and the
 * few config.json fields the runtime needs; anything else is out of scope here.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { emptyCache, pastInputs } from "../../src/kv/layout.js";
import type { ForwardInput, GptNeoCheckpoint, GptNeoConfig, WeightTensor } from "../../src/model/types.js";

export const fixturesRoot = fileURLToPath(new URL("../../../test/fixtures/gpt-neo-hf/", import.meta.url));

export function fixtureDir(name: "A" | "B"): string {
  return join(fixturesRoot, `config-${name}`);
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

interface HfConfig {
  vocab_size: number;
  hidden_size: number;
  num_layers: number;
  num_heads: number;
  attention_types: [string[], number][];
  window_size: number;
  max_position_embeddings: number;
  intermediate_size: number | null;
  layer_norm_epsilon: number;
  activation_function: string;
  bos_token_id?: number;
  eos_token_id?: number;
}

export function configFromJson(json: HfConfig): GptNeoConfig {
  const attentionLayers: ("global" | "local")[] = [];
  for (const [kinds, repeat] of json.attention_types) {
    for (let r = 0; r < repeat; r++)
      for (const kind of kinds) attentionLayers.push(kind as "global" | "local");
  }
  return {
    vocabSize: json.vocab_size,
    hiddenSize: json.hidden_size,
    numLayers: json.num_layers,
    numHeads: json.num_heads,
    headDim: json.hidden_size / json.num_heads,
    attentionLayers,
    windowSize: json.window_size,
    maxPositions: json.max_position_embeddings,
    intermediateSize: json.intermediate_size ?? 4 * json.hidden_size,
    layerNormEpsilon: json.layer_norm_epsilon,
    activation: json.activation_function,
    bosTokenId: json.bos_token_id,
    eosTokenId: json.eos_token_id,
  };
}

export function parseSafetensorsF32(bytes: Uint8Array): Map<string, WeightTensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const dataStart = 8 + headerLength;
  const weights = new Map<string, WeightTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (entry.dtype !== "F32") throw new Error(`fixture loader reads F32 only; ${name} is ${entry.dtype}`);
    const [begin, end] = entry.data_offsets;
    const copy = bytes.slice(dataStart + begin, dataStart + end);
    weights.set(name, { shape: entry.shape, data: new Float32Array(copy.buffer, 0, (end - begin) / 4) });
  }
  return weights;
}

export function loadFixtureCheckpoint(name: "A" | "B"): GptNeoCheckpoint {
  const dir = fixtureDir(name);
  const configBytes = readFileSync(join(dir, "config.json"));
  const modelBytes = readFileSync(join(dir, "model.safetensors"));
  const files = [
    { name: "config.json", bytes: configBytes.length, sha256: sha256(configBytes) },
    { name: "model.safetensors", bytes: modelBytes.length, sha256: sha256(modelBytes) },
  ];
  return {
    dir,
    config: configFromJson(JSON.parse(configBytes.toString("utf8")) as HfConfig),
    weights: parseSafetensorsF32(
      new Uint8Array(modelBytes.buffer, modelBytes.byteOffset, modelBytes.byteLength),
    ),
    files,
    sha256: sha256(new TextEncoder().encode(files.map((f) => f.sha256).join("\n"))),
  };
}

export interface FixtureTensor {
  shape: number[];
  data: number[];
}

export interface FixtureCase {
  name: string;
  kind: string;
  input_ids: number[][];
  logits?: FixtureTensor;
  prefill_length?: number;
  prefill_logits?: FixtureTensor;
  steps?: { position: number; input_id: number; logits: FixtureTensor }[];
  final_past_key_values?: Record<string, { key: FixtureTensor; value: FixtureTensor }>;
  full_forward_logits_same_ids?: FixtureTensor;
  attentions?: FixtureTensor[];
  attention_mask?: number[][];
  position_ids?: number[][];
}

export function loadFixtureReference(name: "A" | "B"): { cases: FixtureCase[] } {
  return JSON.parse(readFileSync(join(fixtureDir(name), "reference.json"), "utf8")) as {
    cases: FixtureCase[];
  };
}

export function fixtureCase(name: "A" | "B", caseName: string): FixtureCase {
  const found = loadFixtureReference(name).cases.find((c) => c.name === caseName);
  if (found === undefined) throw new Error(`fixture ${name} has no case ${caseName}`);
  return found;
}

/** Largest |a[i] - b[i]| (lengths must match). */
/** The graph input of a prefill: ids at positions 0..n-1 over an empty cache. */
export function prefillInput(checkpoint: GptNeoCheckpoint, ids: readonly number[]): ForwardInput {
  const positions = ids.map((_, i) => i);
  return {
    inputIds: ids,
    positionIds: positions,
    ...pastInputs(emptyCache(checkpoint.config), checkpoint.config, positions),
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
