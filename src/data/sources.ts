/**
 * Local dataset sources for real runs, read as people download them: a text file, JSONL
 * (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`), parquet, or a directory of .txt files.
 * The user names the split: `dataset.path` with `{split}` replaced by the split name
 * (e.g. wikitext's wiki.{split}.raw), or `dataset.path` for evaluation plus
 * `dataset.calibrationPath` for calibration.
 *
 * How documents are found:
 * - text: if any line is a WikiText top-level heading (` = Title = `, one `=` each side;
 *   ` = = Section = = ` lines are not top-level), each heading starts a document that runs
 *   to the next one (text before the first heading is a document of its own). Otherwise
 *   documents are separated by blank lines: by runs of two or more blank lines when the
 *   file has any (single blank lines then separate paragraphs inside a document), else by
 *   single blank lines. Document id: `L<line>` of its first line (WikiText: `L<line> <title>`).
 * - jsonl: one JSON object per non-blank line, its `textField` (default "text") a string;
 *   gzip (`.gz`) and zstd (`.zst`) files are decompressed as they stream.
 * - parquet: the `textField` column (a string per row).
 *   JSONL lines and parquet rows are documents, or, when the first non-blank row is a WikiText
 *   heading (the hub's WikiText parquet: one row per line of wiki.<split>.raw), lines of
 *   WikiText articles (src/data/rows.ts).
 * - dir: every *.txt file below the directory (recursively), sorted by relative path
 *   (byte order); id = the relative path with `/` separators.
 * Files must be UTF-8 (a leading BOM is dropped). Leading/trailing blank lines of a
 * document are trimmed; whitespace-only documents are dropped.
 *
 * text and dir are read whole (their splits are small, and sampling.ts draws from them);
 * jsonl and parquet stream (stream-sampling.ts draws from them in one pass), and their
 * file's sha256 is taken from the same bytes as they go by.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import type { RunConfig } from "../config/types.js";
import { SpgError } from "../errors.js";
import { sha256Hex } from "../numeric/sha256.js";
import { DocumentsHash, hashDocuments } from "./hash.js";
import { jsonlRows } from "./jsonl.js";
import { parquetTextRows } from "./parquet.js";
import { type RowLayout, rowDocuments, type TextRow } from "./rows.js";
import { compressionOf, decompressedChunks, digestFile, type FileDigest, utf8Lines } from "./streams.js";
import { splitTextDocuments, trimBlankLines } from "./text-split.js";
import type { DatasetDocument, DatasetIdentity, DatasetSplit } from "./types.js";

export { hashDocuments, splitTextDocuments };

export type LocalSource = "text" | "jsonl" | "parquet" | "dir";
export type StreamedSource = "jsonl" | "parquet";

export const LOCAL_SOURCES: readonly LocalSource[] = ["text", "jsonl", "parquet", "dir"];

export interface LocalSourceOptions {
  /** JSONL field or parquet column holding the text (default "text"). */
  textField?: string;
}

export function isLocalSource(source: string): source is LocalSource {
  return (LOCAL_SOURCES as readonly string[]).includes(source);
}

export function isStreamedSource(source: string): source is StreamedSource {
  return source === "jsonl" || source === "parquet";
}

/**
 * Byte offset at which UTF-8 decoding first fails (the byte that cannot continue a valid
 * sequence; for a sequence cut off by the end of the file, its first byte), or -1 when valid.
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

function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return text.startsWith("\uFEFF") ? text.slice(1) : text;
  } catch (error) {
    throw new SpgError(
      "E_DATASET_ENCODING",
      `not valid UTF-8: decoding fails at byte offset ${firstInvalidUtf8(bytes)}`,
      { file, fix: "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)", cause: error },
    );
  }
}

function readUtf8(file: string): string {
  return decodeUtf8(readFileSync(file), file);
}

function listTextFiles(dir: string): string[] {
  const files: string[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.endsWith(".txt")) files.push(full);
    }
  };
  walk(dir);
  const ids = files.map((f) => relative(dir, f).split(sep).join("/"));
  // Byte order, not locale order, so every machine agrees.
  return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** E_DATASET_MISSING unless `absolute` exists and is a directory exactly when the source is "dir". */
function checkLocalPath(source: LocalSource, absolute: string, split: string): void {
  if (!existsSync(absolute)) {
    throw new SpgError("E_DATASET_MISSING", `dataset ${source} for split "${split}" not found: ${absolute}`, {
      file: absolute,
      field: "dataset.path",
      fix: "check --dataset-path (and {split} in it, or --calibration-path)",
    });
  }
  const isDirectory = statSync(absolute).isDirectory();
  if (isDirectory !== (source === "dir")) {
    throw new SpgError(
      "E_DATASET_MISSING",
      `${absolute} is ${isDirectory ? "a directory" : "a file"}, but dataset.source is "${source}"`,
      {
        file: absolute,
        field: "dataset.source",
        fix: isDirectory
          ? "use --dataset dir for a directory of .txt files"
          : "use --dataset text, jsonl or parquet for a file",
      },
    );
  }
}

function emptySplit(split: string, absolute: string): SpgError {
  return new SpgError("E_DATASET_EMPTY", `split "${split}" has no text: ${absolute}`, {
    file: absolute,
    fix: "point the dataset at a file or directory that holds text",
  });
}

/** How a streamed file is stored, for the record: jsonl, jsonl.gz, jsonl.zst or parquet. */
export function streamedFormat(source: StreamedSource, file: string): string {
  if (source === "parquet") return "parquet";
  const compression = compressionOf(file);
  return compression === "gzip" ? "jsonl.gz" : compression === "zstd" ? "jsonl.zst" : "jsonl";
}

/** A split read as a stream: its documents, then (once they are read to the end) its identity. */
export interface StreamedSplit {
  documents: AsyncIterable<DatasetDocument>;
  /** Complete only after `documents` has been iterated to its end. */
  identity(): DatasetIdentity;
}

/**
 * Streams one split of a JSONL or parquet source. Errors (raised while iterating):
 * E_DATASET_MISSING, E_DATASET_EMPTY, E_DATASET_ENCODING, E_DATASET_JSONL, E_DATASET_GZIP,
 * E_DATASET_ZSTD, E_DATASET_PARQUET, E_DATASET_PARQUET_COLUMN.
 */
export function streamLocalSplit(
  source: StreamedSource,
  path: string,
  split: string,
  options: LocalSourceOptions = {},
): StreamedSplit {
  const absolute = resolve(path);
  const textField = options.textField ?? "text";
  const layout: { value?: RowLayout } = {};
  const hash = new DocumentsHash();
  let file: FileDigest | undefined;
  let sha256: string | undefined;
  const documents = async function* (): AsyncGenerator<DatasetDocument> {
    checkLocalPath(source, absolute, split);
    let rows: AsyncIterable<TextRow>;
    let rawDigest: (() => FileDigest) | undefined;
    if (source === "jsonl") {
      const raw = createHash("sha256");
      let bytes = 0;
      const chunks = decompressedChunks(absolute, (chunk) => {
        raw.update(chunk);
        bytes += chunk.length;
      });
      rows = jsonlRows(utf8Lines(chunks, absolute), absolute, textField);
      rawDigest = () => ({ path, bytes, sha256: raw.digest("hex") });
    } else {
      rows = parquetRows(absolute, textField);
    }
    for await (const document of rowDocuments(rows, layout)) {
      hash.add(document);
      yield document;
    }
    if (hash.count === 0) throw emptySplit(split, absolute);
    file = rawDigest ? rawDigest() : await digestFile(absolute, path);
    sha256 = hash.digest();
  };
  return {
    documents: documents(),
    identity: () => {
      if (file === undefined || sha256 === undefined)
        throw new Error(`split "${split}" of ${absolute} was not read to its end`);
      return {
        source,
        split,
        path: absolute,
        sha256,
        documents: hash.count,
        format: streamedFormat(source, absolute),
        file,
        textField,
        layout: layout.value,
        sampling: "stream",
      };
    },
  };
}

async function* parquetRows(file: string, textField: string): AsyncGenerator<TextRow> {
  for await (const { row, text } of parquetTextRows(file, textField))
    yield { id: `R${row}`, line: row + 1, text };
}

/**
 * Reads one split of a local source into memory (jsonl and parquet through streamLocalSplit).
 * Errors: those of streamLocalSplit.
 */
export async function loadLocalSplit(
  source: LocalSource,
  path: string,
  split: string,
  options: LocalSourceOptions = {},
): Promise<DatasetSplit> {
  if (isStreamedSource(source)) {
    const streamed = streamLocalSplit(source, path, split, options);
    const documents: DatasetDocument[] = [];
    for await (const document of streamed.documents) documents.push(document);
    const { sha256, path: absolute, ...identity } = streamed.identity();
    return { ...identity, source, split, path: absolute, documents, sha256 };
  }
  const absolute = resolve(path);
  checkLocalPath(source, absolute, split);
  let documents: DatasetDocument[];
  let file: FileDigest | undefined;
  if (source === "dir") {
    const ids = listTextFiles(absolute);
    if (ids.length === 0) {
      throw new SpgError("E_DATASET_EMPTY", `no .txt files below ${absolute}`, {
        file: absolute,
        fix: "put the documents in *.txt files, one document per file",
      });
    }
    documents = ids
      .map((id) => ({ id, text: trimBlankLines(readUtf8(join(absolute, id)).split(/\r?\n/)) }))
      .filter((d) => d.text.trim() !== "");
  } else {
    const bytes = readFileSync(absolute);
    file = { path, bytes: bytes.length, sha256: sha256Hex(bytes) };
    documents = splitTextDocuments(decodeUtf8(bytes, absolute));
  }
  if (documents.length === 0) throw emptySplit(split, absolute);
  return {
    source,
    split,
    path: absolute,
    documents,
    sha256: hashDocuments(documents),
    format: source,
    ...(file ? { file } : {}),
  };
}

/** The path a split of a local source reads: `{split}` in dataset.path, or calibrationPath for calibration. */
export function localSplitPath(dataset: RunConfig["dataset"], role: "eval" | "calibration"): string {
  if (dataset.path === null) {
    throw new SpgError("E_DATASET_MISSING", `dataset.source "${dataset.source}" needs dataset.path`, {
      field: "dataset.path",
      fix: "give --dataset-path",
    });
  }
  const split = role === "eval" ? dataset.split : dataset.calibrationSplit;
  if (role === "calibration" && dataset.calibrationPath != null) return dataset.calibrationPath;
  if (role === "calibration" && !dataset.path.includes("{split}")) {
    throw new SpgError(
      "E_DATASET_MISSING",
      "no calibration path: dataset.path has no {split} and calibrationPath is unset",
      {
        field: "dataset.calibrationPath",
        fix: "give --calibration-path, or put {split} in --dataset-path",
      },
    );
  }
  return dataset.path.replaceAll("{split}", split);
}

/** The configured local source, its path for a role, and the options it is read with. */
export function configuredLocalSource(
  dataset: RunConfig["dataset"],
  role: "eval" | "calibration",
): { source: LocalSource; path: string; split: string; options: LocalSourceOptions } {
  if (dataset.source === "brown") {
    throw new SpgError("E_DATASET_MISSING", "the Brown corpus is not a local source", {
      field: "dataset.source",
      fix: "load it with src/data/brown.ts",
    });
  }
  const split = role === "eval" ? dataset.split : dataset.calibrationSplit;
  return {
    source: dataset.source,
    path: localSplitPath(dataset, role),
    split,
    options: { textField: dataset.textField },
  };
}

/** The configured local split for a role, read into memory. */
export function loadConfiguredLocalSplit(
  dataset: RunConfig["dataset"],
  role: "eval" | "calibration",
): Promise<DatasetSplit> {
  const { source, path, split, options } = configuredLocalSource(dataset, role);
  return loadLocalSplit(source, path, split, options);
}
