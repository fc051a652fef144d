/**
 * Reads and validates a Hugging Face GPT-Neo checkpoint directory: config.json plus model.safetensors or a
 * sharded model.safetensors.index.json. Every tensor the config implies must be present with the right
 * shape; old persistent buffers and, for a tied head, an explicit lm_head.weight are checked and dropped
 * (with tie_word_embeddings false, lm_head.weight is a weight the config implies); anything else is
 * rejected. All headers are validated before any tensor data is read.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { endianness } from "node:os";
import { isAbsolute, join, normalize, resolve, sep } from "node:path";
import { SpgError } from "../errors.js";
import { CONFIG_FILE, readGptNeoConfig } from "./config.js";
import {
  bytesToFloat32,
  FLOAT_DTYPES,
  readSafetensorsHeader,
  readTensorBytes,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from "./safetensors.js";
import { firstNonFinite, type StoredTensor, StoredWeights, scanBuffer } from "./stored-weights.js";
import { type CheckpointFile, type GptNeoCheckpoint, type GptNeoConfig, headIsTied } from "./types.js";

export const SAFETENSORS_FILE = "model.safetensors";
export const SAFETENSORS_INDEX_FILE = "model.safetensors.index.json";
export const PYTORCH_BIN_FILES: readonly string[] = ["pytorch_model.bin", "pytorch_model.bin.index.json"];
export const LM_HEAD = "lm_head.weight";
export const WTE = "transformer.wte.weight";

const littleEndianHost = endianness() === "LE";

const CONVERT_FIX =
  "convert it with Python and transformers: " +
  "`from transformers import GPTNeoForCausalLM; m = GPTNeoForCausalLM.from_pretrained(DIR); " +
  "m.save_pretrained(DIR, safe_serialization=True)` (writes model.safetensors next to config.json)";

/** The weights a GPT-Neo config implies, by Hugging Face name, with their shapes. */
export function expectedWeightShapes(config: GptNeoConfig): Map<string, number[]> {
  const hidden = config.hiddenSize;
  const inner = config.intermediateSize;
  const shapes = new Map<string, number[]>();
  shapes.set(WTE, [config.vocabSize, hidden]);
  shapes.set("transformer.wpe.weight", [config.maxPositions, hidden]);
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `transformer.h.${layer}`;
    shapes.set(`${p}.ln_1.weight`, [hidden]);
    shapes.set(`${p}.ln_1.bias`, [hidden]);
    for (const proj of ["q_proj", "k_proj", "v_proj"])
      shapes.set(`${p}.attn.attention.${proj}.weight`, [hidden, hidden]);
    shapes.set(`${p}.attn.attention.out_proj.weight`, [hidden, hidden]);
    shapes.set(`${p}.attn.attention.out_proj.bias`, [hidden]);
    shapes.set(`${p}.ln_2.weight`, [hidden]);
    shapes.set(`${p}.ln_2.bias`, [hidden]);
    shapes.set(`${p}.mlp.c_fc.weight`, [inner, hidden]);
    shapes.set(`${p}.mlp.c_fc.bias`, [inner]);
    shapes.set(`${p}.mlp.c_proj.weight`, [hidden, inner]);
    shapes.set(`${p}.mlp.c_proj.bias`, [hidden]);
  }
  shapes.set("transformer.ln_f.weight", [hidden]);
  shapes.set("transformer.ln_f.bias", [hidden]);
  if (!headIsTied(config)) shapes.set(LM_HEAD, [config.vocabSize, hidden]);
  return shapes;
}

/** Tensors that may appear besides the weights, what they are, and what they must look like. */
interface OptionalTensorRule {
  kind: "buffer" | "tied-lm-head";
  shape: number[];
  dtypes: readonly SafetensorsDtype[];
}

/** Old persistent buffers (attention mask, masked_bias) and an explicit lm_head, by name. */
export function optionalTensorRules(config: GptNeoConfig): Map<string, OptionalTensorRule> {
  const rules = new Map<string, OptionalTensorRule>();
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `transformer.h.${layer}.attn.attention`;
    // transformers < 4.31 saved the causal/local mask buffer `bias` and the scalar `masked_bias` (-1e9).
    rules.set(`${p}.bias`, {
      kind: "buffer",
      shape: [1, 1, config.maxPositions, config.maxPositions],
      dtypes: ["BOOL", "U8"],
    });
    rules.set(`${p}.masked_bias`, { kind: "buffer", shape: [], dtypes: FLOAT_DTYPES });
  }
  if (headIsTied(config)) {
    rules.set(LM_HEAD, {
      kind: "tied-lm-head",
      shape: [config.vocabSize, config.hiddenSize],
      dtypes: FLOAT_DTYPES,
    });
  }
  return rules;
}

/** One tensor found in the checkpoint, and what the reader did with it. */
export interface TensorRecord {
  name: string;
  /** File (relative to the checkpoint dir) holding it. */
  file: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: number;
  /** weight: kept; buffer: checked and dropped; tied-lm-head: checked and dropped (tied to wte). */
  kind: "weight" | "buffer" | "tied-lm-head";
}

export interface CheckpointReport {
  checkpoint: GptNeoCheckpoint;
  /** "single" (model.safetensors) or "sharded" (model.safetensors.index.json). */
  layout: "single" | "sharded";
  tensors: TensorRecord[];
  /** Things worth telling the user that are not errors (dropped buffers, lm_head vs wte). */
  notes: string[];
}

/** Read, validate and load a GPT-Neo checkpoint. */
export async function readCheckpoint(dir: string): Promise<GptNeoCheckpoint> {
  return (await readCheckpointReport(dir)).checkpoint;
}

/** The checkpoint's identity: sha256 over its files' sha256 hex digests, sorted, joined by "\n". */
export function checkpointSha256(files: readonly CheckpointFile[]): string {
  const digests = files.map((f) => f.sha256).sort();
  return createHash("sha256").update(digests.join("\n"), "utf8").digest("hex");
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function findWeightFiles(dir: string): { layout: "single" | "sharded"; notes: string[] } {
  const single = existsSync(join(dir, SAFETENSORS_FILE));
  const sharded = existsSync(join(dir, SAFETENSORS_INDEX_FILE));
  if (single) {
    // transformers' from_pretrained also looks for model.safetensors before the index.
    const notes = sharded
      ? [
          `both ${SAFETENSORS_FILE} and ${SAFETENSORS_INDEX_FILE} exist; read ${SAFETENSORS_FILE} as transformers does`,
        ]
      : [];
    return { layout: "single", notes };
  }
  if (sharded) return { layout: "sharded", notes: [] };
  const bin = PYTORCH_BIN_FILES.find((name) => existsSync(join(dir, name)));
  if (bin !== undefined) {
    throw new SpgError(
      "E_PYTORCH_BIN_ONLY",
      `${dir} holds PyTorch pickle weights (${bin}) but no safetensors; spg reads only safetensors (pickles can run code)`,
      { file: join(dir, bin), fix: CONVERT_FIX },
    );
  }
  throw new SpgError(
    "E_CHECKPOINT_MISSING",
    `no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE} in ${dir}`,
    {
      file: join(dir, SAFETENSORS_FILE),
      fix: "point spg at a Hugging Face GPT-Neo checkpoint directory (config.json + model.safetensors)",
    },
  );
}

/** Shard file names from the index's weight_map, and which shard each tensor is said to be in. */
function readShardIndex(dir: string): { shards: string[]; weightMap: Map<string, string> } {
  const file = join(dir, SAFETENSORS_INDEX_FILE);
  const invalid = (message: string, field?: string): SpgError =>
    new SpgError("E_CHECKPOINT_INDEX", message, {
      file,
      field,
      fix: "restore model.safetensors.index.json from the checkpoint's source (or re-save with save_pretrained)",
    });
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw invalid(`${SAFETENSORS_INDEX_FILE} is not valid JSON: ${(cause as Error).message}`);
  }
  const weightMapRaw = (json as { weight_map?: unknown } | null)?.weight_map;
  if (weightMapRaw === null || typeof weightMapRaw !== "object" || Array.isArray(weightMapRaw)) {
    throw invalid("weight_map must be an object mapping tensor names to shard files", "weight_map");
  }
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMapRaw as Record<string, unknown>)) {
    if (
      typeof shard !== "string" ||
      shard === "" ||
      isAbsolute(shard) ||
      normalize(shard).split(sep).includes("..")
    ) {
      throw invalid(
        `weight_map.${tensor} must name a shard file inside the checkpoint directory`,
        `weight_map.${tensor}`,
      );
    }
    weightMap.set(tensor, normalize(shard));
  }
  if (weightMap.size === 0) throw invalid("weight_map is empty", "weight_map");
  const shards = [...new Set(weightMap.values())].sort();
  for (const shard of shards) {
    if (!existsSync(join(dir, shard))) {
      throw new SpgError(
        "E_CHECKPOINT_MISSING",
        `shard ${shard} named in ${SAFETENSORS_INDEX_FILE} does not exist`,
        {
          file: join(dir, shard),
          field: "weight_map",
          fix: "download every shard listed in model.safetensors.index.json into the checkpoint directory",
        },
      );
    }
  }
  return { shards, weightMap };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function listNames(names: string[]): string {
  const shown = names.slice(0, 8).join(", ");
  return names.length > 8 ? `${shown} and ${names.length - 8} more` : shown;
}

/** A validated checkpoint whose weights are not loaded: names, shapes, dtypes, files, hashes. */
export interface CheckpointScan {
  dir: string;
  config: GptNeoConfig;
  layout: "single" | "sharded";
  tensors: TensorRecord[];
  files: CheckpointFile[];
  sha256: string;
  notes: string[];
  /** Parsed safetensors headers by file name (relative to dir). */
  headers: Map<string, SafetensorsHeader>;
  /** Where each stored tensor lives. */
  location: Map<string, { file: string; entry: SafetensorsEntry }>;
}

/**
 * Validate a checkpoint directory without loading its weights (only headers, config, file hashes, and
 * lm_head/wte when an explicit lm_head must be compared): what `spg model inspect` needs for large models.
 */
/**
 * The checks that need no weight bytes: the directory exists, holds safetensors weights and a
 * GPT-Neo config.json. Cheap, so a bad path is refused before any long work (verify's --model).
 */
export function checkpointLayout(dirArg: string) {
  const dir = resolve(dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new SpgError("E_CHECKPOINT_MISSING", `checkpoint directory ${dir} does not exist`, {
      file: dir,
      fix: "give the path of a Hugging Face GPT-Neo checkpoint directory (config.json + model.safetensors)",
    });
  }
  const { layout, notes } = findWeightFiles(dir);
  return { dir, layout, notes, config: readGptNeoConfig(dir) };
}

export async function scanCheckpoint(dirArg: string): Promise<CheckpointScan> {
  const { dir, layout, notes, config } = checkpointLayout(dirArg);

  // Headers of every weight file, and where each tensor lives.
  const headers = new Map<string, SafetensorsHeader>();
  const location = new Map<string, { file: string; entry: SafetensorsEntry }>();
  const metaFiles = [CONFIG_FILE];
  let weightMap = new Map<string, string>();
  if (layout === "single") {
    headers.set(SAFETENSORS_FILE, readSafetensorsHeader(join(dir, SAFETENSORS_FILE)));
  } else {
    metaFiles.push(SAFETENSORS_INDEX_FILE);
    const index = readShardIndex(dir);
    weightMap = index.weightMap;
    for (const shard of index.shards) headers.set(shard, readSafetensorsHeader(join(dir, shard)));
  }
  for (const [file, header] of headers) {
    for (const [name, entry] of header.tensors) {
      const previous = location.get(name);
      if (previous !== undefined) {
        throw new SpgError(
          "E_TENSOR_DUPLICATE",
          `tensor ${name} is stored in both ${previous.file} and ${file}`,
          {
            file: join(dir, file),
            field: name,
            fix: "each tensor must be stored exactly once; restore the shards from the checkpoint's source",
          },
        );
      }
      location.set(name, { file, entry });
    }
  }
  if (layout === "sharded") {
    for (const [name, shard] of weightMap) {
      const found = location.get(name);
      if (found === undefined) {
        throw new SpgError(
          "E_TENSOR_MISSING",
          `tensor ${name} is listed in the index under ${shard} but no shard holds it`,
          {
            file: join(dir, shard),
            field: name,
            fix: "restore the shards from the checkpoint's source",
          },
        );
      }
      if (found.file !== shard) {
        throw new SpgError(
          "E_CHECKPOINT_INDEX",
          `tensor ${name} is listed under ${shard} but stored in ${found.file}`,
          {
            file: join(dir, SAFETENSORS_INDEX_FILE),
            field: `weight_map.${name}`,
            fix: "restore model.safetensors.index.json from the checkpoint's source",
          },
        );
      }
    }
    for (const [name, found] of location) {
      if (!weightMap.has(name)) {
        throw new SpgError(
          "E_CHECKPOINT_INDEX",
          `tensor ${name} is stored in ${found.file} but missing from weight_map`,
          {
            file: join(dir, SAFETENSORS_INDEX_FILE),
            field: "weight_map",
            fix: "restore model.safetensors.index.json from the checkpoint's source",
          },
        );
      }
    }
  }

  // Check names, shapes and dtypes against what the config implies, before reading any data.
  const expected = expectedWeightShapes(config);
  const optional = optionalTensorRules(config);
  const missing = [...expected.keys()].filter((name) => !location.has(name));
  if (missing.length > 0) {
    throw new SpgError(
      "E_TENSOR_MISSING",
      `${missing.length} tensor(s) the config implies are missing: ${listNames(missing)}`,
      {
        file: join(dir, layout === "single" ? SAFETENSORS_FILE : SAFETENSORS_INDEX_FILE),
        field: missing[0],
        fix: missing.includes(LM_HEAD)
          ? `config.json says tie_word_embeddings false, so the head is ${LM_HEAD}, which is not stored; set tie_word_embeddings true if the head is ${WTE}, or export the checkpoint with its head`
          : "the weights do not match config.json (wrong num_layers, or an incomplete export); use the config saved with these weights",
      },
    );
  }
  const unexpected = [...location.keys()].filter((name) => !expected.has(name) && !optional.has(name)).sort();
  if (unexpected.length > 0) {
    const first = location.get(unexpected[0])!;
    throw new SpgError(
      "E_TENSOR_UNEXPECTED",
      `${unexpected.length} tensor(s) that GPT-Neo does not have: ${listNames(unexpected)}`,
      {
        file: join(dir, first.file),
        field: unexpected[0],
        fix: "this is not a GPTNeoForCausalLM checkpoint matching config.json (or it carries extra heads/adapters); export the plain causal LM",
      },
    );
  }
  const tensors: TensorRecord[] = [];
  for (const [name, { file, entry }] of location) {
    const weightShape = expected.get(name);
    const rule = optional.get(name);
    const wantShape = weightShape ?? rule!.shape;
    const wantDtypes = weightShape !== undefined ? FLOAT_DTYPES : rule!.dtypes;
    if (!sameShape(entry.shape, wantShape)) {
      throw new SpgError(
        "E_TENSOR_SHAPE",
        `tensor ${name} has shape ${JSON.stringify(entry.shape)} but config.json implies ${JSON.stringify(wantShape)}`,
        {
          file: join(dir, file),
          field: name,
          fix: "the weights do not match config.json; use the config saved with these weights",
        },
      );
    }
    if (!wantDtypes.includes(entry.dtype)) {
      throw new SpgError(
        "E_TENSOR_DTYPE",
        `tensor ${name} is ${entry.dtype}; expected one of ${wantDtypes.join(", ")}`,
        {
          file: join(dir, file),
          field: `${name}.dtype`,
          fix: `store ${name} as ${wantDtypes.join(" or ")}`,
        },
      );
    }
    tensors.push({
      name,
      file,
      dtype: entry.dtype,
      shape: [...entry.shape],
      bytes: entry.end - entry.begin,
      kind: weightShape !== undefined ? "weight" : rule!.kind,
    });
  }

  const buffers = tensors.filter((t) => t.kind === "buffer");
  if (buffers.length > 0) {
    notes.push(
      `dropped ${buffers.length} persistent attention buffer(s) (attn.attention.bias / masked_bias) saved by older transformers; the runtime builds masks itself`,
    );
  }
  const lmHead = headIsTied(config) ? location.get(LM_HEAD) : undefined;
  if (lmHead !== undefined) {
    const head = readEntryFloat32(headers.get(lmHead.file)!, lmHead.entry);
    const wteAt = location.get(WTE)!;
    const wte = readEntryFloat32(headers.get(wteAt.file)!, wteAt.entry);
    let differing = 0;
    let maxAbsDiff = 0;
    for (let i = 0; i < wte.length; i++) {
      if (!Object.is(head[i], wte[i])) {
        differing++;
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(head[i] - wte[i]));
      }
    }
    notes.push(
      differing === 0
        ? `${LM_HEAD} is stored and equals ${WTE}; dropped (tied)`
        : `${LM_HEAD} is stored but differs from ${WTE} in ${differing} of ${wte.length} values (max |diff| ${maxAbsDiff}); dropped, since tied GPT-Neo uses ${WTE} as the head (as transformers' tie_weights does)`,
    );
  }

  const files: CheckpointFile[] = [];
  for (const name of [...metaFiles, ...headers.keys()]) {
    const path = join(dir, name);
    files.push({ name, bytes: statSync(path).size, sha256: await sha256File(path) });
  }
  return { dir, config, layout, tensors, files, sha256: checkpointSha256(files), notes, headers, location };
}

/** Read a float tensor to float32; F32 on a little-endian host is used in place (no copy). */
function readEntryFloat32(header: SafetensorsHeader, entry: SafetensorsEntry): Float32Array {
  const bytes = readTensorBytes(header, entry);
  if (entry.dtype === "F32" && littleEndianHost) return new Float32Array(bytes.buffer, 0, entry.elements);
  return bytesToFloat32(bytes, entry.dtype, entry.elements);
}

/**
 * Read and validate a GPT-Neo checkpoint, with a record of every tensor and notes. The weights
 * stay in their files (StoredWeights: read on demand, handed to onnxruntime as external data);
 * every weight's values are scanned once, in chunks, for infinities and NaNs.
 */
export async function readCheckpointReport(dir: string): Promise<CheckpointReport> {
  const scan = await scanCheckpoint(dir);
  const stored = new Map<string, StoredTensor>();
  for (const [name, shape] of expectedWeightShapes(scan.config)) {
    const { file, entry } = scan.location.get(name)!;
    const header = scan.headers.get(file)!;
    stored.set(name, {
      name,
      file,
      header,
      dtype: entry.dtype,
      shape: [...shape],
      elements: entry.elements,
      offset: header.dataStart + entry.begin,
      bytes: entry.end - entry.begin,
    });
  }
  const scratch = scanBuffer(stored.values());
  for (const tensor of stored.values()) {
    const bad = firstNonFinite(tensor, scratch);
    if (bad !== undefined) {
      throw new SpgError(
        "E_TENSOR_NONFINITE",
        `tensor ${tensor.name} holds ${bad.value} at flat index ${bad.index}`,
        {
          file: join(scan.dir, tensor.file),
          field: tensor.name,
          fix: "the weights are corrupt (or overflowed when converted to a narrower dtype); use an intact checkpoint",
        },
      );
    }
  }
  const checkpoint: GptNeoCheckpoint = {
    dir: scan.dir,
    config: scan.config,
    weights: new StoredWeights(stored),
    files: scan.files,
    sha256: scan.sha256,
  };
  return { checkpoint, layout: scan.layout, tensors: scan.tensors, notes: scan.notes };
}
