/**
 * Dataset files as people download them, read as streams: the raw bytes are hashed as they go
 * by (the file's sha256 as on disk), `.gz` is inflated with Node's zlib and `.zst` with fzstd,
 * and the text comes out line by line, so a multi-GB shard is never held in memory.
 */

import { constants } from "node:buffer";
import { createHash } from "node:crypto";
import { promises as fs, constants as fsConstants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { basename } from "node:path";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { Decompress } from "fzstd";
import { SpgError } from "../errors.js";
import { fileKind } from "../paths.js";

export type Compression = "none" | "gzip" | "zstd";

/** A file's identity as downloaded: its size and the sha256 of its bytes on disk. */
export interface FileDigest {
  /** The path as configured (after `{split}` is replaced). */
  path: string;
  bytes: number;
  sha256: string;
}

const READ_CHUNK_BYTES = 1 << 20;

/** Compression named by the file's extension (`.gz`, `.zst`/`.zstd`); anything else is read as is. */
export function compressionOf(file: string): Compression {
  const name = basename(file).toLowerCase();
  if (name.endsWith(".gz")) return "gzip";
  if (name.endsWith(".zst") || name.endsWith(".zstd")) return "zstd";
  return "none";
}

/** sha256 and size of an opened file (openDatasetFile), read in chunks from its start. */
export async function digestFile(opened: OpenedDatasetFile, path: string = opened.file): Promise<FileDigest> {
  const digest = new RawDigest(path);
  for await (const _ of hashedChunks(opened, digest.update)) {
    // hashed as it goes by
  }
  return digest.result();
}

/** Size and sha256 of the raw bytes of a file, fed chunk by chunk as they are read. */
export class RawDigest {
  private readonly hash = createHash("sha256");
  private bytes = 0;

  /** `path`: as configured (FileDigest.path). */
  constructor(private readonly path: string) {}

  readonly update = (chunk: Uint8Array): void => {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  };

  result(): FileDigest {
    return { path: this.path, bytes: this.bytes, sha256: this.hash.digest("hex") };
  }
}

/** E_DATASET_UNREADABLE for a file system error (permissions, I/O) met while reading `file`. */
export function unreadableDataset(file: string, error: unknown): SpgError {
  const code = (error as NodeJS.ErrnoException).code;
  return new SpgError(
    "E_DATASET_UNREADABLE",
    `cannot read ${file}: ${code ?? (error as Error).message}${code === "EACCES" ? " (permission denied)" : ""}`,
    {
      file,
      fix:
        code === "EACCES"
          ? `give this user read permission (e.g. chmod a+r '${file}'), or leave the file out of the dataset`
          : "check that the file is a readable regular file on a working disk",
      cause: error,
    },
  );
}

/** E_DATASET_NOT_REGULAR: a FIFO, socket, device or directory where a dataset file belongs. */
export function notRegularDataset(path: string, what: string): SpgError {
  return new SpgError("E_DATASET_NOT_REGULAR", `${path} is ${what}, not a regular file`, {
    file: path,
    fix: "point the dataset at regular files (a FIFO, socket or device is never read: it could block or never end)",
  });
}

/** A dataset file opened once: every check and read goes through `handle` (never the path again). */
export interface OpenedDatasetFile {
  file: string;
  handle: FileHandle;
  bytes: number;
}

/**
 * Open a dataset file once and check it through the handle (fstat): a regular file, else
 * E_DATASET_NOT_REGULAR. O_NONBLOCK, so a FIFO is refused by its fstat instead of blocking the
 * open; a path swapped after any earlier check is still checked, since the check is on what is read.
 */
export async function openDatasetFile(file: string): Promise<OpenedDatasetFile> {
  let handle: FileHandle;
  try {
    handle = await fs.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw unreadableDataset(file, error);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw notRegularDataset(file, fileKind(stats));
    return { file, handle, bytes: stats.size };
  } catch (error) {
    await handle.close();
    throw error instanceof SpgError ? error : unreadableDataset(file, error);
  }
}

/** Run `read` on the file opened once, closing it after (also when `read` throws). */
export async function withDatasetFile<T>(
  file: string,
  read: (opened: OpenedDatasetFile) => Promise<T>,
): Promise<T> {
  const opened = await openDatasetFile(file);
  try {
    return await read(opened);
  } finally {
    await opened.handle.close();
  }
}

/** Raw chunks of an opened file from its start, each also fed to `onChunk`; file system errors become E_DATASET_UNREADABLE. */
async function* hashedChunks(
  opened: OpenedDatasetFile,
  onChunk: (chunk: Uint8Array) => void,
): AsyncGenerator<Uint8Array> {
  const { file, handle } = opened;
  // autoClose off: the handle is its opener's to close, and may be read again (a second pass).
  const stream = handle.createReadStream({
    start: 0,
    highWaterMark: READ_CHUNK_BYTES,
    autoClose: false,
  }) as AsyncIterable<Buffer>;
  const iterator = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw unreadableDataset(file, error);
      }
      if (next.done) return;
      onChunk(next.value);
      yield next.value;
    }
  } finally {
    // A reader that stops early (an error further down) closes the file.
    await iterator.return?.();
  }
}

function truncated(compression: "gzip" | "zstd", file: string, detail: string, cause?: unknown): SpgError {
  const tool = compression === "gzip" ? "gzip -t" : "zstd -t";
  return new SpgError(
    compression === "gzip" ? "E_DATASET_GZIP" : "E_DATASET_ZSTD",
    `${compression} stream is damaged or cut short: ${detail}`,
    {
      file,
      fix: `download the file again (check it with \`${tool} ${basename(file)}\`), or give the decompressed file`,
      cause,
    },
  );
}

async function* gunzipped(raw: AsyncIterable<Uint8Array>, file: string): AsyncGenerator<Uint8Array> {
  const source = Readable.from(raw);
  const gunzip = createGunzip();
  source.on("error", (error) => gunzip.destroy(error));
  source.pipe(gunzip);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk;
  } catch (error) {
    if (error instanceof SpgError) throw error;
    throw truncated("gzip", file, (error as Error).message, error);
  } finally {
    source.destroy();
  }
}

/**
 * zstd's own decoder refuses frames whose window exceeds 2^27 bytes unless told otherwise
 * (ZSTD_WINDOWLOG_LIMIT_DEFAULT, RFC 8878 section 3.1.1.1.2); fzstd has no such limit and
 * allocates the declared window (or a single-segment frame's content size) up front.
 */
const ZSTD_WINDOW_LOG_LIMIT = 27;
const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Walks the frame and block headers of a zstd stream as its raw bytes go by (RFC 8878), so every
 * frame's window is known before fzstd sees the frame. Only headers are parsed; block contents
 * are skipped by their stated sizes.
 */
export class ZstdWindowGuard {
  private pending: number[] = [];
  private skip = 0;
  private state: "magic" | "skippable-size" | "header" | "block" | "checksum" = "magic";
  private checksum = false;
  private headerBytes = 0;

  constructor(
    private readonly file: string,
    private readonly limitLog = ZSTD_WINDOW_LOG_LIMIT,
  ) {}

  feed(chunk: Uint8Array): void {
    let index = 0;
    while (index < chunk.length) {
      if (this.skip > 0) {
        const step = Math.min(this.skip, chunk.length - index);
        this.skip -= step;
        index += step;
        continue;
      }
      this.pending.push(chunk[index++]);
      this.step();
    }
  }

  private step(): void {
    const p = this.pending;
    switch (this.state) {
      case "magic": {
        if (p.length < 4) return;
        const magic = (p[0] | (p[1] << 8) | (p[2] << 16) | (p[3] << 24)) >>> 0;
        this.pending = [];
        if (magic >>> 4 === 0x184d2a5) this.state = "skippable-size";
        else if (magic === ZSTD_MAGIC) this.state = "header";
        else this.state = "magic"; // not a frame: fzstd names the error
        return;
      }
      case "skippable-size":
        if (p.length < 4) return;
        this.skip = (p[0] | (p[1] << 8) | (p[2] << 16) | (p[3] << 24)) >>> 0;
        this.pending = [];
        this.state = "magic";
        return;
      case "header": {
        const descriptor = p[0];
        const contentSizeFlag = descriptor >> 6;
        const singleSegment = (descriptor >> 5) & 1;
        const dictionaryBytes = [0, 1, 2, 4][descriptor & 3];
        const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag];
        this.headerBytes = 1 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes;
        if (p.length < this.headerBytes) return;
        let windowBytes: number;
        if (singleSegment) {
          let size = 0;
          const at = 1 + dictionaryBytes;
          for (let i = contentSizeBytes - 1; i >= 0; i--) size = size * 256 + p[at + i];
          windowBytes = contentSizeBytes === 2 ? size + 256 : size;
        } else {
          const exponent = p[1] >> 3;
          const base = 2 ** (10 + exponent);
          windowBytes = base + (base / 8) * (p[1] & 7);
        }
        if (windowBytes > 2 ** this.limitLog) {
          throw new SpgError(
            "E_DATASET_ZSTD",
            `${this.file}: a zstd frame declares a ${windowBytes}-byte window, above zstd's default limit of ${2 ** this.limitLog} bytes`,
            {
              file: this.file,
              field: "zstd frame window",
              fix: "recompress the file with a standard level (zstd -19 or lower, without --long or --ultra windows) or check it with zstd -t",
            },
          );
        }
        this.checksum = ((descriptor >> 2) & 1) === 1;
        this.pending = [];
        this.state = "block";
        return;
      }
      case "block": {
        if (p.length < 3) return;
        const header = p[0] | (p[1] << 8) | (p[2] << 16);
        const last = header & 1;
        const type = (header >> 1) & 3;
        const size = header >>> 3;
        this.pending = [];
        this.skip = type === 1 ? 1 : size;
        if (last) {
          if (this.checksum) this.state = "checksum";
          else this.state = "magic";
        }
        return;
      }
      case "checksum":
        // The 4 checksum bytes: skip them, then the next frame's magic.
        this.pending = [];
        this.skip = 3;
        this.state = "magic";
        return;
    }
  }
}

async function* unzstd(raw: AsyncIterable<Uint8Array>, file: string): AsyncGenerator<Uint8Array> {
  const guard = new ZstdWindowGuard(file);
  let out: Uint8Array[] = [];
  let finished = false;
  const decompressor = new Decompress((chunk, final) => {
    out.push(chunk);
    if (final) finished = true;
  });
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      decompressor.push(chunk, final);
    } catch (error) {
      throw truncated("zstd", file, (error as Error).message, error);
    }
  };
  for await (const chunk of raw) {
    guard.feed(chunk);
    push(chunk, false);
    const ready = out;
    out = [];
    yield* ready;
  }
  push(new Uint8Array(0), true);
  yield* out;
  if (!finished) throw truncated("zstd", file, "the file ends inside a frame");
}

/** The decompressed bytes of an opened file (by its name's extension); `onRaw` sees every byte read from disk. */
export function decompressedChunks(
  opened: OpenedDatasetFile,
  onRaw: (chunk: Uint8Array) => void,
): AsyncGenerator<Uint8Array> {
  const file = opened.file;
  const raw = hashedChunks(opened, onRaw);
  const compression = compressionOf(file);
  if (compression === "gzip") return gunzipped(raw, file);
  if (compression === "zstd") return unzstd(raw, file);
  return raw;
}

/** One line of a text stream, numbered from 1, without its line break. */
export interface NumberedLine {
  line: number;
  text: string;
}

/** Where UTF-8 decoding of a stream fails: the absolute byte offset, given the previous chunk's tail. */
function invalidUtf8Offset(tail: Uint8Array, chunk: Uint8Array, bytesBefore: number): number {
  // A character split across chunks starts in the last 3 bytes of the previous chunk; leading
  // continuation bytes there belong to a character that was already complete.
  let from = 0;
  while (from < tail.length && (tail[from] & 0xc0) === 0x80) from++;
  const joined = Buffer.concat([tail.subarray(from), chunk]);
  const at = firstInvalidUtf8(joined);
  return bytesBefore - (tail.length - from) + (at < 0 ? joined.length : at);
}

/**
 * Byte offset at which UTF-8 decoding first fails (the byte that cannot continue a valid
 * sequence; for a sequence cut off by the end of the bytes, its first byte), or -1 when valid.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  // With stream: true a prefix that ends inside a character is not an error, so "this
  // prefix fails" is monotonic in its length and a binary search finds the shortest one.
  const prefixFails = (length: number): boolean => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, length), { stream: true });
      return false;
    } catch {
      return true;
    }
  };
  if (!prefixFails(bytes.length)) {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      return -1;
    } catch {
      // Truncated at the end: the last lead byte starts the incomplete character.
      let i = bytes.length - 1;
      while (i > 0 && (bytes[i] & 0xc0) === 0x80) i--;
      return i;
    }
  }
  let low = 1;
  let high = bytes.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (prefixFails(middle)) high = middle;
    else low = middle + 1;
  }
  return low - 1;
}

/**
 * The lines of a UTF-8 byte stream (`\n` or `\r\n`; a leading BOM dropped). A decompression
 * error is re-raised naming the first line that could not be read in full.
 * `asSplit`: the lines exactly as `text.split(/\r?\n/)` gives them (a last line without a
 * break keeps a trailing `\r`, and a text that ends with a break, or is empty, ends with an
 * empty line), which is how a text file is split into documents (src/data/text-split.ts).
 */
export async function* utf8Lines(
  chunks: AsyncIterable<Uint8Array>,
  file: string,
  maxLineChars: number = constants.MAX_STRING_LENGTH,
  asSplit = false,
): AsyncGenerator<NumberedLine> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let line = 0;
  let first = true;
  let bytesBefore = 0;
  let tail = new Uint8Array(0);
  const decode = (chunk: Uint8Array, stream: boolean): string => {
    try {
      const text = decoder.decode(chunk, { stream });
      bytesBefore += chunk.length;
      tail = Uint8Array.from(
        chunk.length >= 3 ? chunk.subarray(chunk.length - 3) : [...tail, ...chunk].slice(-3),
      );
      return text;
    } catch (error) {
      const offset = invalidUtf8Offset(tail, chunk, bytesBefore);
      throw new SpgError(
        "E_DATASET_ENCODING",
        `not valid UTF-8: decoding fails at byte offset ${offset}${compressionOf(file) === "none" ? "" : " of the decompressed text"} (line ${line + 1})`,
        {
          file,
          field: `line ${line + 1}`,
          fix: "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
          cause: error,
        },
      );
    }
  };
  const tooLong = (): SpgError =>
    new SpgError("E_DATASET_LINE_LENGTH", `line ${line + 1} runs past ${maxLineChars} characters`, {
      file,
      field: `line ${line + 1}`,
      fix: "split the document over several lines (JSONL: one JSON object per line), or check that the file is line-oriented text",
    });
  // The unfinished line's pieces, joined once its break arrives: only new text is searched for
  // breaks and nothing is copied per chunk (a growing string searched again for each chunk made
  // one long line quadratic); a line is refused at the longest string the engine can hold.
  let pieces: string[] = [];
  let pendingChars = 0;
  const split = function* (text: string): Generator<NumberedLine> {
    if (first && text.length > 0) {
      if (text.startsWith("\uFEFF")) text = text.slice(1);
      first = false;
    }
    let start = 0;
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
      if (pendingChars + end - start > maxLineChars) throw tooLong();
      pieces.push(text.slice(start, end));
      const raw = pieces.join("");
      pieces = [];
      pendingChars = 0;
      yield { line: ++line, text: raw.endsWith("\r") ? raw.slice(0, -1) : raw };
      start = end + 1;
    }
    if (start < text.length) {
      if (pendingChars + text.length - start > maxLineChars) throw tooLong();
      pieces.push(text.slice(start));
      pendingChars += text.length - start;
    }
  };
  try {
    for await (const chunk of chunks) yield* split(decode(chunk, true));
  } catch (error) {
    if (error instanceof SpgError && (error.code === "E_DATASET_GZIP" || error.code === "E_DATASET_ZSTD")) {
      throw new SpgError(error.code, `${error.message} (after ${line} complete lines)`, {
        file,
        field: `line ${line + 1}`,
        fix: error.fix,
        cause: error,
      });
    }
    throw error;
  }
  yield* split(decode(new Uint8Array(0), false));
  if (pendingChars > 0) {
    const last = pieces.join("");
    yield { line: ++line, text: !asSplit && last.endsWith("\r") ? last.slice(0, -1) : last };
  } else if (asSplit) {
    yield { line: ++line, text: "" };
  }
}
