/**
 * A checkpoint's weights left where they are stored: the reader records each tensor's file,
 * byte offset and dtype, and the graph hands those locations to onnxruntime as ONNX external
 * data (src/model/graph-cache.ts), so the weights reach onnxruntime without passing through
 * JavaScript arrays. Code that does need the values as float32 (weights methods, the float64
 * reference) reads a tensor on demand; nothing is kept here.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { SpgError } from "../errors.js";
import {
  bytesToFloat32,
  readTensorBytes,
  type SafetensorsDtype,
  type SafetensorsHeader,
} from "./safetensors.js";
import type { WeightTensor } from "./types.js";

/** Where one weight's bytes are: `header.dataStart + entry.begin` of `header.path`. */
export interface StoredTensor {
  name: string;
  /** The file, relative to the checkpoint directory. */
  file: string;
  header: SafetensorsHeader;
  dtype: SafetensorsDtype;
  shape: number[];
  elements: number;
  /** Absolute byte offset in the file. */
  offset: number;
  bytes: number;
}

/** A read-only map of weights read from their files on each get (no copy is held). */
export class StoredWeights implements ReadonlyMap<string, WeightTensor> {
  constructor(readonly stored: ReadonlyMap<string, StoredTensor>) {}

  get size(): number {
    return this.stored.size;
  }

  has(name: string): boolean {
    return this.stored.has(name);
  }

  get(name: string): WeightTensor | undefined {
    const tensor = this.stored.get(name);
    if (tensor === undefined) return undefined;
    const entry = tensor.header.tensors.get(name);
    if (entry === undefined) return undefined;
    const bytes = readTensorBytes(tensor.header, entry);
    const data =
      tensor.dtype === "F32" && littleEndian()
        ? new Float32Array(bytes.buffer, 0, tensor.elements)
        : bytesToFloat32(bytes, tensor.dtype, tensor.elements);
    return { shape: [...tensor.shape], data };
  }

  *keys(): MapIterator<string> {
    yield* this.stored.keys();
  }

  *values(): MapIterator<WeightTensor> {
    for (const name of this.stored.keys()) yield this.get(name)!;
  }

  *entries(): MapIterator<[string, WeightTensor]> {
    for (const name of this.stored.keys()) yield [name, this.get(name)!];
  }

  [Symbol.iterator](): MapIterator<[string, WeightTensor]> {
    return this.entries();
  }

  forEach(
    callback: (value: WeightTensor, key: string, map: ReadonlyMap<string, WeightTensor>) => void,
  ): void {
    for (const [name, tensor] of this.entries()) callback(tensor, name, this);
  }
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/**
 * Bytes read per step when scanning a tensor's values: a multiple of every element width.
 * One such buffer serves every tensor of a checkpoint: a buffer per tensor (64 MiB each, the
 * chunk size before) stayed resident as garbage until V8 collected it, 29 MiB at the 125m
 * shape when the session was opened.
 */
export const SCAN_CHUNK_BYTES = 1 << 22;

/** A scratch buffer for firstNonFinite, sized for the largest of `tensors` (at most one chunk). */
export function scanBuffer(tensors: Iterable<StoredTensor>): ArrayBuffer {
  let largest = 0;
  for (const tensor of tensors) largest = Math.max(largest, tensor.bytes);
  return new ArrayBuffer(Math.min(SCAN_CHUNK_BYTES, largest));
}

/**
 * The first non-finite value of a stored float tensor, found from its bit patterns in chunks
 * of `buffer`'s size (exponent all ones: infinity or NaN), or undefined. The tensor is never
 * held whole.
 */
export function firstNonFinite(
  tensor: StoredTensor,
  buffer: ArrayBuffer = scanBuffer([tensor]),
): { index: number; value: number } | undefined {
  const width = tensor.bytes / Math.max(1, tensor.elements);
  const fd = openSync(tensor.header.path, "r");
  try {
    for (let done = 0; done < tensor.bytes; ) {
      const want = Math.min(buffer.byteLength, tensor.bytes - done);
      const chunk = new Uint8Array(buffer, 0, want);
      let got = 0;
      while (got < want) {
        const read = readSync(fd, chunk, got, want - got, tensor.offset + done + got);
        if (read === 0) {
          throw new SpgError("E_SAFETENSORS_TRUNCATED", `unexpected end of file in tensor ${tensor.name}`, {
            file: tensor.header.path,
            field: tensor.name,
            fix: "the file is truncated or changed while being read; fetch or export it again",
          });
        }
        got += read;
      }
      const bad = nonFiniteIndex(chunk, tensor.dtype);
      if (bad >= 0) {
        const index = done / width + bad;
        const value = bytesToFloat32(chunk.subarray(bad * width, (bad + 1) * width), tensor.dtype, 1)[0];
        return { index, value };
      }
      done += want;
    }
  } finally {
    closeSync(fd);
  }
  return undefined;
}

/** Index of the first element whose exponent bits are all ones, or -1 (little-endian bytes). */
function nonFiniteIndex(chunk: Uint8Array, dtype: SafetensorsDtype): number {
  switch (dtype) {
    case "F16": {
      for (let i = 1, e = 0; i < chunk.length; i += 2, e++) if ((chunk[i] & 0x7c) === 0x7c) return e;
      return -1;
    }
    case "BF16": {
      for (let i = 1, e = 0; i < chunk.length; i += 2, e++)
        if ((chunk[i] & 0x7f) === 0x7f && (chunk[i - 1] & 0x80) !== 0) return e;
      return -1;
    }
    case "F32": {
      for (let i = 3, e = 0; i < chunk.length; i += 4, e++)
        if ((chunk[i] & 0x7f) === 0x7f && (chunk[i - 1] & 0x80) !== 0) return e;
      return -1;
    }
    case "F64": {
      for (let i = 7, e = 0; i < chunk.length; i += 8, e++)
        if ((chunk[i] & 0x7f) === 0x7f && (chunk[i - 1] & 0xf0) === 0xf0) return e;
      return -1;
    }
    default:
      return -1;
  }
}
