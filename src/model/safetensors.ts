/**
 * safetensors reader and writer (https://huggingface.co/docs/safetensors, "Format"):
 *   [u64 little-endian N][N bytes of JSON header][data area]
 * The header maps tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the
 * data area) plus an optional "__metadata__" string map. As the format requires, the tensors must tile the
 * data area exactly: no overlaps, no holes, nothing past its end, no trailing bytes.
 *
 * Files can be large, so the reader reads the header first and then each tensor's byte range on demand.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { writeFileAtomic } from "../bundle/atomic.js";
import { SpgError } from "../errors.js";
import { floatToHalfBits, halfBitsToFloat } from "../numeric/fp16.js";

export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "BOOL"
  | "U8"
  | "I8"
  | "U16"
  | "I16"
  | "U32"
  | "I32"
  | "U64"
  | "I64";

/** Bytes per element of each dtype (a format constant). */
export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  BOOL: 1,
  U8: 1,
  I8: 1,
  U16: 2,
  I16: 2,
  U32: 4,
  I32: 4,
  U64: 8,
  I64: 8,
};

export const FLOAT_DTYPES: readonly SafetensorsDtype[] = ["F64", "F32", "F16", "BF16"];

/** The safetensors reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Node reads at most ~2 GiB per call; large tensors are read in chunks of this size. */
const READ_CHUNK_BYTES = 1 << 28;

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Element count: product(shape), 1 for a scalar. */
  elements: number;
  /** Byte range relative to the start of the data area. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  fileBytes: number;
  /** N, the JSON header's length in bytes. */
  headerBytes: number;
  /** Absolute file offset where the data area starts (8 + N). */
  dataStart: number;
  metadata: Record<string, string>;
  /** Tensors in header order. */
  tensors: Map<string, SafetensorsEntry>;
}

function headerError(path: string, message: string, field?: string): SpgError {
  return new SpgError("E_SAFETENSORS_HEADER", message, {
    file: path,
    field,
    fix: "the safetensors header is malformed; re-export the checkpoint (transformers: model.save_pretrained(dir, safe_serialization=True))",
  });
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === "string" && Object.hasOwn(DTYPE_BYTES, value);
}

/**
 * Validate a parsed header object against a data area of `dataBytes` bytes (exported so that tests and
 * other writers can check a header without a file).
 */
export function parseSafetensorsHeaderJson(
  path: string,
  json: unknown,
  dataBytes: number,
): { metadata: Record<string, string>; tensors: Map<string, SafetensorsEntry> } {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw headerError(path, "header is not a JSON object");
  }
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        throw headerError(path, "__metadata__ must be an object of strings", name);
      }
      for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof value !== "string") {
          throw headerError(path, `__metadata__.${key} must be a string`, `__metadata__.${key}`);
        }
        metadata[key] = value;
      }
      continue;
    }
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw headerError(path, `tensor ${name}: entry must be an object`, name);
    }
    const entry = raw as Record<string, unknown>;
    if (!isDtype(entry.dtype)) {
      throw new SpgError(
        "E_TENSOR_DTYPE",
        `tensor ${name}: unsupported dtype ${JSON.stringify(entry.dtype)}`,
        {
          file: path,
          field: `${name}.dtype`,
          fix: `convert the tensor to one of ${Object.keys(DTYPE_BYTES).join(", ")}`,
        },
      );
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw headerError(
        path,
        `tensor ${name}: shape must be an array of non-negative integers`,
        `${name}.shape`,
      );
    }
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw headerError(
        path,
        `tensor ${name}: data_offsets must be [begin, end] byte offsets`,
        `${name}.data_offsets`,
      );
    }
    const [begin, end] = offsets as [number, number];
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const expectedBytes = elements * DTYPE_BYTES[entry.dtype];
    if (!Number.isSafeInteger(expectedBytes)) {
      throw headerError(path, `tensor ${name}: shape ${JSON.stringify(shape)} is too large`, `${name}.shape`);
    }
    if (end < begin) {
      throw offsetsError(path, `tensor ${name}: data_offsets [${begin}, ${end}] end before they begin`, name);
    }
    if (end - begin !== expectedBytes) {
      throw offsetsError(
        path,
        `tensor ${name}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${entry.dtype} ${JSON.stringify(shape)} needs ${expectedBytes}`,
        name,
      );
    }
    if (end > dataBytes) {
      throw new SpgError(
        "E_SAFETENSORS_TRUNCATED",
        `tensor ${name} ends at data byte ${end} but the file's data area holds only ${dataBytes} bytes`,
        {
          file: path,
          field: `${name}.data_offsets`,
          fix: "the file is truncated (an interrupted download or copy?); fetch or export it again",
        },
      );
    }
    tensors.set(name, { name, dtype: entry.dtype, shape: [...(shape as number[])], elements, begin, end });
  }
  // The format requires the tensors to tile the data area: sorted by offset, each begins where the previous
  // ended, and the last ends at the end of the file. This catches overlaps, holes and trailing bytes.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const entry of sorted) {
    if (entry.begin < cursor) {
      throw offsetsError(
        path,
        `tensor ${entry.name}: data_offsets begin at ${entry.begin}, overlapping the previous tensor (ends at ${cursor})`,
        entry.name,
      );
    }
    if (entry.begin > cursor) {
      throw offsetsError(
        path,
        `tensor ${entry.name}: data_offsets begin at ${entry.begin}, leaving a hole after byte ${cursor}`,
        entry.name,
      );
    }
    cursor = entry.end;
  }
  if (cursor !== dataBytes) {
    throw offsetsError(
      path,
      `the tensors cover ${cursor} bytes of a ${dataBytes}-byte data area (unindexed trailing bytes)`,
    );
  }
  return { metadata, tensors };
}

function offsetsError(path: string, message: string, tensor?: string): SpgError {
  return new SpgError("E_SAFETENSORS_OFFSETS", message, {
    file: path,
    field: tensor === undefined ? undefined : `${tensor}.data_offsets`,
    fix: "the header's data_offsets do not describe the data area; the file is corrupt or was not written by a safetensors writer: export it again",
  });
}

function readExactly(fd: number, target: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < target.length) {
    const want = Math.min(READ_CHUNK_BYTES, target.length - done);
    const got = readSync(fd, target, done, want, position + done);
    if (got === 0) {
      throw new SpgError("E_SAFETENSORS_TRUNCATED", `unexpected end of file at byte ${position + done}`, {
        file: path,
        fix: "the file is truncated or changed while being read; fetch or export it again",
      });
    }
    done += got;
  }
}

/**
 * The first key that the top-level object of `text` (valid JSON) holds twice. JSON.parse keeps the
 * last of duplicate keys silently, so two descriptions of one tensor would otherwise go unnoticed.
 */
export function firstDuplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = depth === 1;
    } else if (c === "}" || c === "]") {
      depth--;
    } else if (c === "," && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

/** Read and validate a safetensors file's header (only the header bytes are read). */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (cause) {
    throw new SpgError("E_CHECKPOINT_MISSING", `cannot open ${path}: ${(cause as Error).message}`, {
      file: path,
      fix: "check the path and that the file is readable",
      cause,
    });
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      throw new SpgError("E_CHECKPOINT_MISSING", `${path} is not a regular file`, {
        file: path,
        fix: "a weights file must be a safetensors file; check the path (or the shard names in model.safetensors.index.json)",
      });
    }
    const fileBytes = stats.size;
    if (fileBytes < 8) {
      throw new SpgError(
        "E_SAFETENSORS_TRUNCATED",
        `file is ${fileBytes} bytes, shorter than the 8-byte header length`,
        {
          file: path,
          fix: "the file is truncated or empty; fetch or export it again",
        },
      );
    }
    const lengthBytes = new Uint8Array(8);
    readExactly(fd, lengthBytes, 0, path);
    if (Buffer.from(lengthBytes).toString("latin1") === "version ") {
      throw new SpgError("E_SAFETENSORS_HEADER", "this is a Git LFS pointer file, not the weights", {
        file: path,
        fix: "fetch the real file: `git lfs install && git lfs pull` in the checkpoint's clone, or download it from the hub",
      });
    }
    const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw headerError(
        path,
        `header length ${headerLength} is above the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`,
      );
    }
    const headerBytes = Number(headerLength);
    if (8 + headerBytes > fileBytes) {
      throw new SpgError(
        "E_SAFETENSORS_TRUNCATED",
        `header length ${headerBytes} runs past the end of the ${fileBytes}-byte file`,
        { file: path, fix: "the file is truncated (or not a safetensors file); fetch or export it again" },
      );
    }
    const headerRaw = new Uint8Array(headerBytes);
    readExactly(fd, headerRaw, 8, path);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(headerRaw);
    } catch (cause) {
      throw headerError(path, `header is not valid UTF-8 (${(cause as Error).message})`);
    }
    if (!text.startsWith("{")) throw headerError(path, "header does not start with '{'");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw headerError(path, `header is not valid JSON: ${(cause as Error).message}`);
    }
    const duplicate = firstDuplicateTopLevelKey(text);
    if (duplicate !== undefined) {
      throw new SpgError("E_TENSOR_DUPLICATE", `the header names ${duplicate} more than once`, {
        file: path,
        field: duplicate,
        fix: "each tensor must be described exactly once; the file was not written by a safetensors writer: export it again",
      });
    }
    const dataStart = 8 + headerBytes;
    const { metadata, tensors } = parseSafetensorsHeaderJson(path, json, fileBytes - dataStart);
    return { path, fileBytes, headerBytes, dataStart, metadata, tensors };
  } finally {
    closeSync(fd);
  }
}

/** The raw little-endian bytes of one tensor, in a fresh 8-byte-aligned buffer. */
export function readTensorBytes(header: SafetensorsHeader, entry: SafetensorsEntry): Uint8Array {
  const bytes = new Uint8Array(new ArrayBuffer(entry.end - entry.begin));
  const fd = openSync(header.path, "r");
  try {
    if (fstatSync(fd).size !== header.fileBytes) {
      throw new SpgError("E_SAFETENSORS_TRUNCATED", "file changed size since its header was read", {
        file: header.path,
        fix: "do not modify the checkpoint while spg reads it",
      });
    }
    readExactly(fd, bytes, header.dataStart + entry.begin, header.path);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

const littleEndianHost = endianness() === "LE";

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bfloat16 bits -> float32 value: bfloat16 is the top half of a float32. */
export function bfloat16BitsToFloat(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** float32 value -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function floatToBfloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode a tensor's raw bytes to float32, widening F16/BF16 and narrowing F64 (float dtypes only). */
export function bytesToFloat32(bytes: Uint8Array, dtype: SafetensorsDtype, elements: number): Float32Array {
  const out = new Float32Array(elements);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F32":
      if (littleEndianHost && bytes.byteOffset % 4 === 0) {
        out.set(new Float32Array(bytes.buffer, bytes.byteOffset, elements));
      } else {
        for (let i = 0; i < elements; i++) out[i] = view.getFloat32(i * 4, true);
      }
      return out;
    case "F16": {
      for (let i = 0; i < elements; i++) out[i] = halfBitsToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case "BF16": {
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < elements; i++) outBits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
    case "F64":
      for (let i = 0; i < elements; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    default:
      throw new Error(`bytesToFloat32: ${dtype} is not a float dtype`);
  }
}

export type TensorValues =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array;

/** Decode raw bytes to the natural typed array of the dtype (F16/BF16 widened to float32, BOOL as 0/1 bytes). */
export function bytesToValues(bytes: Uint8Array, dtype: SafetensorsDtype, elements: number): TensorValues {
  if (dtype === "F32" || dtype === "F16" || dtype === "BF16") return bytesToFloat32(bytes, dtype, elements);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fill = <T extends { [i: number]: number | bigint }>(
    out: T,
    get: (i: number) => number | bigint,
  ): T => {
    for (let i = 0; i < elements; i++) out[i] = get(i);
    return out;
  };
  switch (dtype) {
    case "F64":
      return fill(new Float64Array(elements), (i) => view.getFloat64(i * 8, true));
    case "BOOL":
    case "U8":
      return Uint8Array.from(bytes.subarray(0, elements));
    case "I8":
      return fill(new Int8Array(elements), (i) => view.getInt8(i));
    case "U16":
      return fill(new Uint16Array(elements), (i) => view.getUint16(i * 2, true));
    case "I16":
      return fill(new Int16Array(elements), (i) => view.getInt16(i * 2, true));
    case "U32":
      return fill(new Uint32Array(elements), (i) => view.getUint32(i * 4, true));
    case "I32":
      return fill(new Int32Array(elements), (i) => view.getInt32(i * 4, true));
    case "U64":
      return fill(new BigUint64Array(elements), (i) => view.getBigUint64(i * 8, true));
    case "I64":
      return fill(new BigInt64Array(elements), (i) => view.getBigInt64(i * 8, true));
  }
}

/** Read one tensor and return float32 values (float dtypes only). */
export function readTensorFloat32(header: SafetensorsHeader, name: string): Float32Array {
  const entry = requireEntry(header, name);
  if (!FLOAT_DTYPES.includes(entry.dtype)) {
    throw new SpgError("E_TENSOR_DTYPE", `tensor ${name} is ${entry.dtype}, expected a float dtype`, {
      file: header.path,
      field: `${name}.dtype`,
      fix: `store ${name} as F32, F16 or BF16`,
    });
  }
  return bytesToFloat32(readTensorBytes(header, entry), entry.dtype, entry.elements);
}

/** Read one tensor as the natural typed array of its dtype. */
export function readTensorValues(header: SafetensorsHeader, name: string): TensorValues {
  const entry = requireEntry(header, name);
  return bytesToValues(readTensorBytes(header, entry), entry.dtype, entry.elements);
}

function requireEntry(header: SafetensorsHeader, name: string): SafetensorsEntry {
  const entry = header.tensors.get(name);
  if (entry === undefined) {
    throw new SpgError("E_TENSOR_MISSING", `tensor ${name} is not in the file`, {
      file: header.path,
      field: name,
      fix: "use a checkpoint that contains this tensor",
    });
  }
  return entry;
}

/** A tensor to write: float data is converted to `dtype`; for other dtypes give raw little-endian bytes or a typed array. */
export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data:
    | Float32Array
    | Float64Array
    | Uint8Array
    | Int8Array
    | Int16Array
    | Int32Array
    | BigInt64Array
    | number[];
}

/** Encode one tensor's values as little-endian bytes of its dtype. */
export function encodeTensor(tensor: TensorToWrite): Uint8Array {
  const elements = tensor.shape.reduce((a, b) => a * b, 1);
  const width = DTYPE_BYTES[tensor.dtype];
  const { data } = tensor;
  if (data.length !== elements) {
    throw new Error(
      `encodeTensor ${tensor.name}: ${data.length} values for shape ${JSON.stringify(tensor.shape)}`,
    );
  }
  const out = new Uint8Array(elements * width);
  const view = new DataView(out.buffer);
  const num = (i: number): number => Number(data[i]);
  for (let i = 0; i < elements; i++) {
    switch (tensor.dtype) {
      case "F64":
        view.setFloat64(i * 8, num(i), true);
        break;
      case "F32":
        view.setFloat32(i * 4, num(i), true);
        break;
      case "F16":
        view.setUint16(i * 2, floatToHalfBits(num(i)), true);
        break;
      case "BF16":
        view.setUint16(i * 2, floatToBfloat16Bits(num(i)), true);
        break;
      case "BOOL":
        out[i] = num(i) !== 0 ? 1 : 0;
        break;
      case "U8":
        view.setUint8(i, num(i));
        break;
      case "I8":
        view.setInt8(i, num(i));
        break;
      case "U16":
        view.setUint16(i * 2, num(i), true);
        break;
      case "I16":
        view.setInt16(i * 2, num(i), true);
        break;
      case "U32":
        view.setUint32(i * 4, num(i), true);
        break;
      case "I32":
        view.setInt32(i * 4, num(i), true);
        break;
      case "U64":
        view.setBigUint64(i * 8, BigInt(data[i]), true);
        break;
      case "I64":
        view.setBigInt64(i * 8, BigInt(data[i]), true);
        break;
    }
  }
  return out;
}

/**
 * Serialise tensors the way the safetensors library does: `__metadata__` first, tensors sorted by name and
 * laid out in that order, header padded with spaces to a multiple of 8 bytes.
 */
export function encodeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  const bodies: Uint8Array[] = [];
  let offset = 0;
  for (const tensor of sorted) {
    if (Object.hasOwn(header, tensor.name))
      throw new Error(`encodeSafetensors: duplicate tensor ${tensor.name}`);
    const body = encodeTensor(tensor);
    header[tensor.name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + body.length],
    };
    bodies.push(body);
    offset += body.length;
  }
  let headerText = JSON.stringify(header);
  const headerLength = Buffer.byteLength(headerText, "utf8");
  headerText += " ".repeat((8 - (headerLength % 8)) % 8);
  const headerBytes = Buffer.from(headerText, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.length;
  for (const body of bodies) {
    out.set(body, position);
    position += body.length;
  }
  return out;
}

/** Write a safetensors file atomically (src/bundle/atomic.ts: whole or not at all; replaces an earlier file). */
export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata), { overwrite: true });
}
