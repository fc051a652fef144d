/**
 * What `spg model inspect` reports about a checkpoint: a plain object computed from the validated
 * checkpoint and its config (nothing tabled), and a text rendering of it for people.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SpgError } from "../errors.js";
import { bundledModelDir } from "../paths.js";
import { type CheckpointScan, scanCheckpoint } from "./checkpoint.js";
import { GPT_NEO_ARCHITECTURE } from "./config.js";
import type { SafetensorsDtype } from "./safetensors.js";
import { type GptNeoConfig, headIsTied } from "./types.js";

/** Bytes of one float element in the KV cache, by storage precision (format constants). */
const FP16_BYTES = 2;
const FP32_BYTES = 4;

export interface DtypeUsage {
  tensors: number;
  elements: number;
  bytes: number;
}

export interface ContextMemory {
  tokens: number;
  /** Keys and values of every layer for `tokens` positions (transformers keeps local layers' full cache too). */
  kvFullBytesFp16: number;
  kvFullBytesFp32: number;
  /** Same, with local layers holding only their last window_size positions (all they can attend to). */
  kvWindowedBytesFp16: number;
  kvWindowedBytesFp32: number;
  /** Float32 weights in memory plus the full fp32 KV cache (activations and runtime overhead excluded). */
  weightsPlusKvFp32: number;
  /** Largest attention-score buffer of one layer in a single prefill of `tokens` (heads x tokens x tokens, fp32). */
  prefillAttentionScoresBytesFp32: number;
}

export interface CheckpointDescription {
  dir: string;
  architecture: string;
  /** "single" (model.safetensors) or "sharded" (model.safetensors.index.json). */
  layout: "single" | "sharded";
  sha256: string;
  config: GptNeoConfig;
  globalLayers: number;
  localLayers: number;
  /** Parameters the runtime uses (a tied lm_head counted once, as transformers' num_parameters does). */
  parameters: number;
  /** Parameters widened to float32 in memory. */
  weightBytesFp32: number;
  /** Stored tensors by dtype: the kept weights, and the buffers / lm_head that were checked and dropped. */
  weightsByDtype: Partial<Record<SafetensorsDtype, DtypeUsage>>;
  droppedByDtype: Partial<Record<SafetensorsDtype, DtypeUsage>>;
  bytesOnDisk: number;
  files: { name: string; bytes: number; sha256: string }[];
  kvBytesPerTokenFp16: number;
  kvBytesPerTokenFp32: number;
  context: ContextMemory;
  notes: string[];
}

/** KV-cache bytes per token: keys and values, every layer, hidden_size values each. */
export function kvBytesPerToken(config: GptNeoConfig, elementBytes: number): number {
  return 2 * config.numLayers * config.hiddenSize * elementBytes;
}

/** Memory a context of `tokens` positions needs, from the config alone. */
export function contextMemory(config: GptNeoConfig, parameters: number, tokens: number): ContextMemory {
  const locals = config.attentionLayers.filter((kind) => kind === "local").length;
  const globals = config.numLayers - locals;
  const windowedSlots = globals * tokens + locals * Math.min(tokens, config.windowSize);
  const perSlot = 2 * config.hiddenSize;
  const kvFullBytesFp32 = kvBytesPerToken(config, FP32_BYTES) * tokens;
  return {
    tokens,
    kvFullBytesFp16: kvBytesPerToken(config, FP16_BYTES) * tokens,
    kvFullBytesFp32,
    kvWindowedBytesFp16: perSlot * windowedSlots * FP16_BYTES,
    kvWindowedBytesFp32: perSlot * windowedSlots * FP32_BYTES,
    weightsPlusKvFp32: parameters * FP32_BYTES + kvFullBytesFp32,
    prefillAttentionScoresBytesFp32: config.numHeads * tokens * tokens * FP32_BYTES,
  };
}

function addUsage(
  table: Partial<Record<SafetensorsDtype, DtypeUsage>>,
  dtype: SafetensorsDtype,
  elements: number,
  bytes: number,
) {
  const usage = table[dtype] ?? { tensors: 0, elements: 0, bytes: 0 };
  usage.tensors += 1;
  usage.elements += elements;
  usage.bytes += bytes;
  table[dtype] = usage;
}

/**
 * Describe a validated checkpoint (from scanCheckpoint: weights need not be loaded);
 * `contextTokens` defaults to max_position_embeddings.
 */
export function describeCheckpoint(scan: CheckpointScan, contextTokens?: number): CheckpointDescription {
  const { config } = scan;
  const tokens = contextTokens ?? config.maxPositions;
  if (!Number.isSafeInteger(tokens) || tokens < 1 || tokens > config.maxPositions) {
    throw new SpgError(
      "E_CONTEXT_LENGTH",
      `context of ${tokens} tokens is outside 1..${config.maxPositions} (max_position_embeddings)`,
      {
        file: join(scan.dir, "config.json"),
        field: "--context",
        fix: `give --context between 1 and ${config.maxPositions}; GPT-Neo has no positions beyond max_position_embeddings`,
      },
    );
  }
  let parameters = 0;
  const weightsByDtype: Partial<Record<SafetensorsDtype, DtypeUsage>> = {};
  const droppedByDtype: Partial<Record<SafetensorsDtype, DtypeUsage>> = {};
  for (const tensor of scan.tensors) {
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (tensor.kind === "weight") parameters += elements;
    addUsage(
      tensor.kind === "weight" ? weightsByDtype : droppedByDtype,
      tensor.dtype,
      elements,
      tensor.bytes,
    );
  }
  const localLayers = config.attentionLayers.filter((kind) => kind === "local").length;
  return {
    dir: scan.dir,
    architecture: GPT_NEO_ARCHITECTURE,
    layout: scan.layout,
    sha256: scan.sha256,
    config,
    globalLayers: config.numLayers - localLayers,
    localLayers,
    parameters,
    weightBytesFp32: parameters * FP32_BYTES,
    weightsByDtype,
    droppedByDtype,
    bytesOnDisk: scan.files.reduce((sum, file) => sum + file.bytes, 0),
    files: scan.files.map((file) => ({ ...file })),
    kvBytesPerTokenFp16: kvBytesPerToken(config, FP16_BYTES),
    kvBytesPerTokenFp32: kvBytesPerToken(config, FP32_BYTES),
    context: contextMemory(config, parameters, tokens),
    notes: [...scan.notes],
  };
}

/** Read, validate and describe the checkpoint in `dir`, or the bundled model when `dir` is undefined. */
export async function describeCheckpointDir(
  dir: string | undefined,
  contextTokens?: number,
): Promise<CheckpointDescription> {
  const target = dir ?? bundledModelDir();
  if (dir === undefined && !existsSync(target)) {
    throw new SpgError(
      "E_CHECKPOINT_MISSING",
      `the bundled model is not in this package (looked in ${target})`,
      {
        file: target,
        fix: "train it with scripts/train_gpt_neo.py (it writes models/gpt-neo-brown), or pass a checkpoint directory: spg model inspect DIR",
      },
    );
  }
  return describeCheckpoint(await scanCheckpoint(target), contextTokens);
}

/** Bytes for people: exact count plus a binary-prefixed size. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(2)} ${units[unit]} (${bytes} B)`;
}

function formatUsage(table: Partial<Record<SafetensorsDtype, DtypeUsage>>): string[] {
  return Object.entries(table).map(
    ([dtype, usage]) =>
      `    ${dtype}: ${usage.tensors} tensors, ${usage.elements} values, ${formatBytes(usage.bytes)}`,
  );
}

/** The description as text for a terminal. */
export function formatDescription(d: CheckpointDescription): string {
  const c = d.config;
  const pattern = c.attentionLayers.map((kind) => (kind === "global" ? "G" : "L")).join("");
  const lines = [
    `${d.architecture} checkpoint ${d.dir}`,
    `  layers:              ${c.numLayers} (${d.globalLayers} global, ${d.localLayers} local; pattern ${pattern})`,
    `  local window:        ${c.windowSize} tokens (0 <= pos_q - pos_k < ${c.windowSize})`,
    `  hidden size:         ${c.hiddenSize}`,
    `  heads:               ${c.numHeads} x head dim ${c.headDim}`,
    `  MLP inner size:      ${c.intermediateSize} (${c.activation})`,
    `  vocabulary:          ${c.vocabSize}`,
    `  max positions:       ${c.maxPositions}`,
    `  layer norm epsilon:  ${c.layerNormEpsilon}`,
    `  parameters:          ${d.parameters} (${headIsTied(c) ? "lm_head tied to wte, counted once" : "lm_head untied: a matrix of its own"}); ${formatBytes(d.weightBytesFp32)} as float32`,
    "  stored weights by dtype:",
    ...formatUsage(d.weightsByDtype),
  ];
  if (Object.keys(d.droppedByDtype).length > 0) {
    lines.push("  checked and dropped (old buffers, tied lm_head):", ...formatUsage(d.droppedByDtype));
  }
  lines.push(
    `  KV cache per token:  ${formatBytes(d.kvBytesPerTokenFp16)} fp16, ${formatBytes(d.kvBytesPerTokenFp32)} fp32`,
    `  context of ${d.context.tokens} tokens:`,
    `    KV cache, all positions:          ${formatBytes(d.context.kvFullBytesFp16)} fp16, ${formatBytes(d.context.kvFullBytesFp32)} fp32`,
    `    KV cache, local layers windowed:  ${formatBytes(d.context.kvWindowedBytesFp16)} fp16, ${formatBytes(d.context.kvWindowedBytesFp32)} fp32`,
    `    fp32 weights + full fp32 KV:      ${formatBytes(d.context.weightsPlusKvFp32)} (activations excluded)`,
    `    one layer's prefill scores, fp32: ${formatBytes(d.context.prefillAttentionScoresBytesFp32)}`,
    `  files (${d.layout}), ${formatBytes(d.bytesOnDisk)} on disk:`,
    ...d.files.map((f) => `    ${f.name}  ${f.bytes} B  sha256 ${f.sha256}`),
    `  checkpoint sha256:   ${d.sha256}`,
  );
  for (const note of d.notes) lines.push(`  note: ${note}`);
  return lines.join("\n");
}
