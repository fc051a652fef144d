/**
 * Where a built graph lives. Graphs whose weights fit comfortably in one protobuf message
 * are built in memory and handed to onnxruntime as bytes (building is fast). Larger ones
 * are written once as ONNX external data (model.onnx + weights.bin) into a cache entry
 * keyed by sha256(checkpoint hash, graph options, builder version), then reused; every
 * reuse re-hashes the files against the entry's manifest, and a mismatching entry is
 * rebuilt (the reason is returned, never hidden).
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { temporarySibling } from "../bundle/atomic.js";
import { SpgError } from "../errors.js";
import {
  buildGptNeoGraph,
  externalTensor,
  float32Bytes,
  GRAPH_BUILDER_VERSION,
  type GraphOptions,
  gptNeoModelProto,
  type InitializerPlacement,
  initializerBytes,
  inlinePlacement,
  PROTOBUF_INLINE_LIMIT_BYTES,
} from "./graph.js";
import { encodeModel, OnnxDataType } from "./onnx-proto.js";
import { StoredWeights } from "./stored-weights.js";
import type { GptNeoCheckpoint } from "./types.js";

export const MODEL_FILE = "model.onnx";
export const WEIGHTS_FILE = "weights.bin";
const MANIFEST_FILE = "manifest.json";
/** onnxruntime memory-maps external data; page-aligned offsets keep every tensor mappable. */
const EXTERNAL_DATA_ALIGNMENT = 4096;
/** Default: go external well before protobuf's 2 GiB ceiling. */
export const DEFAULT_EXTERNAL_DATA_THRESHOLD_BYTES = Math.floor(PROTOBUF_INLINE_LIMIT_BYTES * 0.85);

export interface GraphCacheOptions {
  /** Default ~/.cache/spg/graphs. */
  cacheDir?: string;
  /** Weights above this many bytes go to external data (tests force it small). */
  externalDataThresholdBytes?: number;
}

export type PreparedGraph =
  /** externalDataDir: the folder the graph's external data locations are relative to. */
  | { kind: "bytes"; bytes: Uint8Array; externalDataDir?: string }
  | { kind: "file"; path: string; entryDir: string; reused: boolean; rebuiltBecause?: string };

export function defaultGraphCacheDir(): string {
  return join(homedir(), ".cache", "spg", "graphs");
}

/** The cache key: what the graph is built from. */
export function graphCacheKey(checkpoint: GptNeoCheckpoint, options: GraphOptions): string {
  const identity = {
    builder: GRAPH_BUILDER_VERSION,
    checkpoint: checkpoint.sha256,
    observationWindow: options.observationWindow,
    headLayout: options.headLayout ?? "in-place",
  };
  return createHash("sha256").update(JSON.stringify(identity)).digest("hex");
}

interface CacheManifest {
  key: string;
  builder: string;
  checkpointSha256: string;
  files: { name: string; bytes: number; sha256: string }[];
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Why a cache entry cannot be reused, or undefined when every file matches its manifest. */
async function entryProblem(entryDir: string, key: string): Promise<string | undefined> {
  const manifestPath = join(entryDir, MANIFEST_FILE);
  if (!existsSync(manifestPath)) return "no manifest";
  let manifest: CacheManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as CacheManifest;
  } catch {
    return "unreadable manifest";
  }
  if (manifest.key !== key) return "manifest key differs";
  for (const file of manifest.files) {
    const path = join(entryDir, file.name);
    if (!existsSync(path)) return `${file.name} missing`;
    if ((await fileSha256(path)) !== file.sha256) return `${file.name} sha256 differs from the manifest`;
  }
  return undefined;
}

/** Writes model.onnx + weights.bin + manifest.json into a temp dir, then renames it into place. */
async function writeEntry(
  checkpoint: GptNeoCheckpoint,
  options: GraphOptions,
  entryDir: string,
  key: string,
) {
  // Named as the atomic file writer names its temporaries (a random suffix beside the target, so
  // the rename stays on one file system and two writers never share one); a directory is renamed
  // into place itself, as link() (placeTemporary's no-overwrite move) does not take directories.
  const tempDir = temporarySibling(entryDir);
  mkdirSync(tempDir, { recursive: true });
  try {
    const weightsPath = join(tempDir, WEIGHTS_FILE);
    const fd = openSync(weightsPath, "w");
    let offset = 0;
    try {
      const model = gptNeoModelProto(checkpoint, options, (name, weight) => {
        const padding =
          (EXTERNAL_DATA_ALIGNMENT - (offset % EXTERNAL_DATA_ALIGNMENT)) % EXTERNAL_DATA_ALIGNMENT;
        if (padding > 0) writeSync(fd, new Uint8Array(padding));
        offset += padding;
        const { data, shape } = weight();
        const bytes = float32Bytes(data);
        writeSync(fd, bytes);
        const placed = externalTensor(name, shape, WEIGHTS_FILE, offset, bytes.byteLength);
        offset += bytes.byteLength;
        return placed;
      });
      writeFileSync(join(tempDir, MODEL_FILE), encodeModel(model));
    } finally {
      closeSync(fd);
    }
    const files = [];
    for (const name of [MODEL_FILE, WEIGHTS_FILE]) {
      const path = join(tempDir, name);
      const bytes = statSync(path).size;
      files.push({ name, bytes, sha256: await fileSha256(path) });
    }
    const manifest: CacheManifest = {
      key,
      builder: GRAPH_BUILDER_VERSION,
      checkpointSha256: checkpoint.sha256,
      files,
    };
    writeFileSync(join(tempDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
    rmSync(entryDir, { recursive: true, force: true });
    try {
      renameSync(tempDir, entryDir);
    } catch (error) {
      // Another process may have put the same entry in place meanwhile: use it if it verifies.
      if (existsSync(entryDir) && (await entryProblem(entryDir, key)) === undefined) {
        rmSync(tempDir, { recursive: true, force: true });
        return;
      }
      throw error;
    }
  } catch (error) {
    rmSync(tempDir, { recursive: true, force: true });
    throw new SpgError("E_GRAPH_CACHE_WRITE", `could not write the graph cache entry ${entryDir}`, {
      file: entryDir,
      fix: "make the cache directory writable (or pass another cacheDir) and check free disk space",
      cause: error,
    });
  }
}

/** ONNX element type of a stored float dtype. */
const STORED_DATA_TYPES: Record<string, number> = {
  F32: OnnxDataType.FLOAT,
  F16: OnnxDataType.FLOAT16,
  BF16: OnnxDataType.BFLOAT16,
  F64: OnnxDataType.DOUBLE,
};

/**
 * Each weight read where the checkpoint stores it (its file, relative to the checkpoint
 * directory, at its byte offset); safetensors is little-endian, as ONNX raw data is. A weight
 * not in float32 is placed under another name and cast to float32 in the graph. Factors of a
 * compressed weight are not in the file: those go inline.
 */
export function storedPlacement(weights: StoredWeights): InitializerPlacement {
  return (name, weight) => {
    const stored = weights.stored.get(name);
    const dataType = stored === undefined ? undefined : STORED_DATA_TYPES[stored.dtype];
    if (stored === undefined || dataType === undefined) return inlinePlacement(name, weight);
    return externalTensor(
      dataType === OnnxDataType.FLOAT ? name : `${name}:stored`,
      stored.shape,
      stored.file,
      stored.offset,
      stored.bytes,
      dataType,
    );
  };
}

/** The graph for a checkpoint: bytes in memory, or a verified on-disk entry with external data. */
export async function prepareGraph(
  checkpoint: GptNeoCheckpoint,
  options: GraphOptions,
  cache: GraphCacheOptions = {},
): Promise<PreparedGraph> {
  if (checkpoint.weights instanceof StoredWeights) {
    // The weights stay in the checkpoint's files: the graph (its structure only) points at them.
    return {
      kind: "bytes",
      bytes: encodeModel(gptNeoModelProto(checkpoint, options, storedPlacement(checkpoint.weights))),
      externalDataDir: checkpoint.dir,
    };
  }
  const threshold = cache.externalDataThresholdBytes ?? DEFAULT_EXTERNAL_DATA_THRESHOLD_BYTES;
  if (initializerBytes(checkpoint) <= threshold) {
    return { kind: "bytes", bytes: buildGptNeoGraph(checkpoint, options) };
  }
  const key = graphCacheKey(checkpoint, options);
  const entryDir = join(cache.cacheDir ?? defaultGraphCacheDir(), key);
  const problem = existsSync(entryDir) ? await entryProblem(entryDir, key) : "not built yet";
  if (problem === undefined)
    return { kind: "file", path: join(entryDir, MODEL_FILE), entryDir, reused: true };
  await writeEntry(checkpoint, options, entryDir, key);
  return { kind: "file", path: join(entryDir, MODEL_FILE), entryDir, reused: false, rebuiltBecause: problem };
}
