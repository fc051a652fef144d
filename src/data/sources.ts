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
 *   file has any between two non-blank lines (single blank lines then separate paragraphs
 *   inside a document), else by single blank lines. Document id: `L<line>` of its first line (WikiText: `L<line> <title>`).
 * - jsonl: one JSON object per non-blank line, its `textField` (default "text") a string;
 *   gzip (`.gz`) and zstd (`.zst`) files are decompressed as they stream.
 * - parquet: the `textField` column (a string per row).
 *   JSONL lines and parquet rows are documents, or, when the first non-blank row is a WikiText
 *   heading (the hub's WikiText parquet: one row per line of wiki.<split>.raw), lines of
 *   WikiText articles (src/data/rows.ts).
 * - dir: every *.txt file below the directory (recursively), sorted by relative path
 *   (byte order); id = the relative path with `/` separators. A symbolic link named *.txt is
 *   read when its target is a regular file inside the directory (id: the link's path); a link
 *   leaving the directory, a broken one, or one to a directory (which could make a cycle) is
 *   E_DATASET_LINK. A *.txt that is a FIFO, socket or device is E_DATASET_NOT_REGULAR (never
 *   opened: a FIFO would block); other names are not read at all.
 * Files must be UTF-8 (a leading BOM is dropped). Leading/trailing blank lines of a
 * document are trimmed; whitespace-only documents are dropped. Unreadable files and
 * directories are E_DATASET_UNREADABLE.
 *
 * Every source streams (stream-sampling.ts draws from it in one pass): only one document (a
 * parquet source: one row group) is held at a time. A text file is read twice, since its layout
 * depends on the whole file: once for the layout, once for the documents; both passes hash
 * the bytes, and a file that changed in between is E_DATASET_CHANGED. The file's sha256 is
 * taken from the bytes the documents came from, as they go by.
 */
import { constants } from "node:buffer";
import { type Dirent, lstatSync, readdirSync, realpathSync, type Stats, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import type { RunConfig } from "../config/types.js";
import { SpgError } from "../errors.js";
import { fileKind } from "../paths.js";
import { DocumentsHash, hashDocuments } from "./hash.js";
import { jsonlRows } from "./jsonl.js";
import { parquetTextRows } from "./parquet.js";
import { type RowLayout, rowDocuments, type TextRow } from "./rows.js";
import {
  compressionOf,
  decompressedChunks,
  digestFile,
  type FileDigest,
  type NumberedLine,
  notRegularDataset,
  type OpenedDatasetFile,
  openDatasetFile,
  RawDigest,
  unreadableDataset,
  utf8Lines,
} from "./streams.js";
import {
  documentTooLong,
  splitTextDocuments,
  TextDocumentSplitter,
  TextLayoutScan,
  trimBlankLines,
} from "./text-split.js";
import type { DatasetDocument, DatasetIdentity, DatasetSplit } from "./types.js";

export { firstInvalidUtf8 } from "./streams.js";
export { hashDocuments, splitTextDocuments };

export type LocalSource = "text" | "jsonl" | "parquet" | "dir";

export const LOCAL_SOURCES: readonly LocalSource[] = ["text", "jsonl", "parquet", "dir"];

export interface LocalSourceOptions {
  /** JSONL field or parquet column holding the text (default "text"). */
  textField?: string;
}

export function isLocalSource(source: string): source is LocalSource {
  return (LOCAL_SOURCES as readonly string[]).includes(source);
}

const notRegular = notRegularDataset;

function badLink(path: string, what: string, fix: string): SpgError {
  return new SpgError("E_DATASET_LINK", `${path} ${what}`, { file: path, fix });
}

/** Whether `path` (resolved, real) lies inside the real directory `root`. */
function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Relative ids (with `/`) of the *.txt documents below `dir`, checked entry by entry (rule above). */
function listTextFiles(dir: string): string[] {
  const root = realpathSync(dir);
  const files: string[] = [];
  const walk = (current: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch (error) {
      throw unreadableDataset(current, error);
    }
    for (const entry of entries) {
      const full = join(current, entry.name);
      const isText = entry.name.endsWith(".txt");
      if (entry.isDirectory()) walk(full);
      else if (entry.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(full);
        } catch {
          if (!isText) continue;
          throw badLink(
            full,
            "is a symbolic link whose target does not exist",
            "remove the link, or restore its target",
          );
        }
        const stats = statSync(target);
        if (stats.isDirectory()) {
          throw badLink(
            full,
            `is a symbolic link to the directory ${target}; spg does not follow links to directories (one can make a cycle)`,
            "replace the link with the directory (or a copy: cp -rL), or point --dataset-path at it",
          );
        }
        if (!isText) continue;
        if (!inside(root, target)) {
          throw badLink(
            full,
            `is a symbolic link to ${target}, outside the dataset directory ${root}`,
            "copy the files into the directory (cp -rL follows links), or point --dataset-path at the directory that holds them",
          );
        }
        if (!stats.isFile()) throw notRegular(full, fileKind(stats));
        files.push(full);
      } else if (isText) {
        if (!entry.isFile()) throw notRegular(full, fileKind(lstatSync(full)));
        files.push(full);
      }
    }
  };
  walk(dir);
  const ids = files.map((f) => relative(dir, f).split(sep).join("/"));
  // Byte order, not locale order, so every machine agrees.
  return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * E_DATASET_MISSING unless `absolute` exists and is a directory exactly when the source is
 * "dir"; E_DATASET_NOT_REGULAR for a FIFO, socket or device.
 */
export function checkLocalPath(source: LocalSource, absolute: string, split: string): void {
  let stats: Stats;
  try {
    stats = statSync(absolute);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw unreadableDataset(absolute, error);
    throw new SpgError("E_DATASET_MISSING", `dataset ${source} for split "${split}" not found: ${absolute}`, {
      file: absolute,
      field: "dataset.path",
      fix: "check --dataset-path (and {split} in it, or --calibration-path)",
    });
  }
  const isDirectory = stats.isDirectory();
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
  if (!isDirectory && !stats.isFile()) throw notRegular(absolute, fileKind(stats));
}

function emptySplit(split: string, absolute: string): SpgError {
  return new SpgError("E_DATASET_EMPTY", `split "${split}" has no text: ${absolute}`, {
    file: absolute,
    fix: "point the dataset at a file or directory that holds text",
  });
}

/** How a split's files are stored, for the record: text, dir, jsonl, jsonl.gz, jsonl.zst or parquet. */
export function streamedFormat(source: LocalSource, file: string): string {
  if (source !== "jsonl") return source;
  const compression = compressionOf(file);
  return compression === "gzip" ? "jsonl.gz" : compression === "zstd" ? "jsonl.zst" : "jsonl";
}

/** A split read as a stream: its documents, then (once they are read to the end) its identity. */
export interface StreamedSplit {
  documents: AsyncIterable<DatasetDocument>;
  /** Complete only after `documents` has been iterated to its end. */
  identity(): DatasetIdentity;
}

/** The lines of an opened file as `text.split(/\r?\n/)` gives them (gzip and zstd by extension), its raw bytes fed to `digest`. */
function fileLines(opened: OpenedDatasetFile, digest: RawDigest): AsyncGenerator<NumberedLine> {
  return utf8Lines(decompressedChunks(opened, digest.update), opened.file, undefined, true);
}

/** The documents of a text file, in two passes (layout, then documents); `done` gets the file's digest. */
async function* textFileDocuments(
  absolute: string,
  path: string,
  done: (file: FileDigest) => void,
): AsyncGenerator<DatasetDocument> {
  // Both passes read the one file opened and checked here (a swapped path is never read).
  const opened = await openDatasetFile(absolute);
  let file: FileDigest;
  let first: RawDigest;
  try {
    const scan = new TextLayoutScan();
    first = new RawDigest(path);
    for await (const { text } of fileLines(opened, first)) scan.add(text);
    const second = new RawDigest(path);
    const splitter = new TextDocumentSplitter(scan.layout(), absolute);
    for await (const { line, text } of fileLines(opened, second)) {
      const document = splitter.push(line, text);
      if (document) yield document;
    }
    const last = splitter.end();
    if (last) yield last;
    file = second.result();
  } finally {
    await opened.handle.close();
  }
  if (file.sha256 !== first.result().sha256) {
    throw new SpgError(
      "E_DATASET_CHANGED",
      `${absolute} changed while it was being read (its sha256 differs between the two passes)`,
      {
        file: absolute,
        fix: "let whatever writes the file finish (or copy it) and run again",
      },
    );
  }
  done(file);
}

/** One document per *.txt file below `absolute` (rule above), read one file at a time. */
async function* directoryDocuments(
  absolute: string,
  maxChars = constants.MAX_STRING_LENGTH,
): AsyncGenerator<DatasetDocument> {
  const ids = listTextFiles(absolute);
  if (ids.length === 0) {
    throw new SpgError("E_DATASET_EMPTY", `no .txt files below ${absolute}`, {
      file: absolute,
      fix: "put the documents in *.txt files, one document per file",
    });
  }
  for (const id of ids) {
    const file = join(absolute, id);
    const lines: string[] = [];
    let chars = 0;
    // The listing checked the entry; the file read is checked again on its handle (it may have been swapped).
    const opened = await openDatasetFile(file);
    try {
      for await (const { line, text } of fileLines(opened, new RawDigest(file))) {
        chars += text.length + 1;
        if (chars > maxChars) throw documentTooLong(file, id, maxChars, line);
        lines.push(text);
      }
    } finally {
      await opened.handle.close();
    }
    const text = trimBlankLines(lines);
    if (text.trim() !== "") yield { id, text };
  }
}

/**
 * Streams one split of a local source. Errors (raised while iterating): E_DATASET_MISSING,
 * E_DATASET_EMPTY, E_DATASET_ENCODING, E_DATASET_UNREADABLE, E_DATASET_NOT_REGULAR,
 * E_DATASET_LINK, E_DATASET_DOCUMENT_LENGTH, E_DATASET_LINE_LENGTH, E_DATASET_CHANGED,
 * E_DATASET_JSONL, E_DATASET_GZIP, E_DATASET_ZSTD, E_DATASET_PARQUET, E_DATASET_PARQUET_COLUMN.
 */
export function streamLocalSplit(
  source: LocalSource,
  path: string,
  split: string,
  options: LocalSourceOptions = {},
): StreamedSplit {
  const absolute = resolve(path);
  const rowSource = source === "jsonl" || source === "parquet";
  const textField = options.textField ?? "text";
  const layout: { value?: RowLayout } = {};
  const hash = new DocumentsHash();
  let file: FileDigest | undefined;
  let finished = false;
  let sha256: string | undefined;
  const sourceDocuments = (): AsyncIterable<DatasetDocument> => {
    if (source === "text")
      return textFileDocuments(absolute, path, (digest) => {
        file = digest;
      });
    if (source === "dir") return directoryDocuments(absolute);
    if (source === "jsonl") {
      return (async function* () {
        const opened = await openDatasetFile(absolute);
        try {
          const raw = new RawDigest(path);
          const rows = jsonlRows(
            utf8Lines(decompressedChunks(opened, raw.update), absolute),
            absolute,
            textField,
          );
          yield* rowDocuments(rows, layout);
          file = raw.result();
        } finally {
          await opened.handle.close();
        }
      })();
    }
    return (async function* () {
      const opened = await openDatasetFile(absolute);
      try {
        yield* rowDocuments(parquetRows(opened, textField), layout);
        file = await digestFile(opened, path);
      } finally {
        await opened.handle.close();
      }
    })();
  };
  const documents = async function* (): AsyncGenerator<DatasetDocument> {
    checkLocalPath(source, absolute, split);
    for await (const document of sourceDocuments()) {
      hash.add(document);
      yield document;
    }
    if (hash.count === 0) throw emptySplit(split, absolute);
    sha256 = hash.digest();
    finished = true;
  };
  return {
    documents: documents(),
    identity: () => {
      if (!finished || sha256 === undefined)
        throw new Error(`split "${split}" of ${absolute} was not read to its end`);
      return {
        source,
        split,
        path: absolute,
        sha256,
        documents: hash.count,
        format: streamedFormat(source, absolute),
        ...(file ? { file } : {}),
        ...(rowSource ? { textField, layout: layout.value } : {}),
        sampling: "stream",
      };
    },
  };
}

async function* parquetRows(opened: OpenedDatasetFile, textField: string): AsyncGenerator<TextRow> {
  for await (const { row, text } of parquetTextRows(opened, textField))
    yield { id: `R${row}`, line: row + 1, text };
}

/**
 * Reads one split of a local source into memory (through streamLocalSplit: what `spg model
 * eval` and the pool draw of older bundles need). Errors: those of streamLocalSplit.
 */
export async function loadLocalSplit(
  source: LocalSource,
  path: string,
  split: string,
  options: LocalSourceOptions = {},
): Promise<DatasetSplit> {
  const streamed = streamLocalSplit(source, path, split, options);
  const documents: DatasetDocument[] = [];
  for await (const document of streamed.documents) documents.push(document);
  const { sha256, path: absolute, sampling: _, documents: __, ...identity } = streamed.identity();
  return { ...identity, source, split, path: absolute, documents, sha256 };
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
