/**
 * Local dataset sources for real runs: a text file, JSONL, or a directory of .txt files.
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
 *   id `L<line>`.
 * - dir: every *.txt file below the directory (recursively), sorted by relative path
 *   (byte order); id = the relative path with `/` separators.
 * Files must be UTF-8 (a leading BOM is dropped). Leading/trailing blank lines of a
 * document are trimmed; whitespace-only documents are dropped.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import type { RunConfig } from "../config/types.js";
import { SpgError } from "../errors.js";
import type { DatasetDocument, DatasetSplit } from "./types.js";

export type LocalSource = "text" | "jsonl" | "dir";

export interface LocalSourceOptions {
  /** JSONL field holding the text (default "text"). */
  textField?: string;
}

import { hashDocuments } from "./hash.js";

export { hashDocuments };

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

const TOP_LEVEL_HEADING = /^ ?= ([^=].*?) = ?$/;

function trimBlankLines(lines: readonly string[]): string {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start].trim() === "") start++;
  while (end > start && lines[end - 1].trim() === "") end--;
  return lines.slice(start, end).join("\n");
}

/** Splits a text file into documents (rule in the module comment). */
export function splitTextDocuments(text: string): DatasetDocument[] {
  const lines = text.split(/\r?\n/);
  const documents: DatasetDocument[] = [];
  const push = (id: string, body: readonly string[]) => {
    const content = trimBlankLines(body);
    if (content.trim() !== "") documents.push({ id, text: content });
  };
  const headings = lines.flatMap((line, i) => {
    const match = TOP_LEVEL_HEADING.exec(line);
    return match ? [{ line: i, title: match[1].trim() }] : [];
  });
  if (headings.length > 0) {
    push("L1", lines.slice(0, headings[0].line));
    headings.forEach((heading, k) => {
      const end = k + 1 < headings.length ? headings[k + 1].line : lines.length;
      push(`L${heading.line + 1} ${heading.title}`, lines.slice(heading.line, end));
    });
    return documents;
  }
  const blank = lines.map((line) => line.trim() === "");
  let separatorRun = 1;
  for (let i = 0, run = 0; i < blank.length; i++) {
    run = blank[i] ? run + 1 : 0;
    if (run >= 2) {
      separatorRun = 2;
      break;
    }
  }
  let start = 0;
  let run = 0;
  for (let i = 0; i <= lines.length; i++) {
    const isBlank = i < lines.length && blank[i];
    if (isBlank) {
      run++;
      continue;
    }
    if (run >= separatorRun || i === lines.length) {
      const end = i === lines.length ? i : i - run;
      if (end > start) push(`L${firstNonBlank(blank, start) + 1}`, lines.slice(start, end));
      start = i;
    }
    run = 0;
  }
  return documents;
}

function firstNonBlank(blank: readonly boolean[], from: number): number {
  let i = from;
  while (i < blank.length && blank[i]) i++;
  return i;
}

function parseJsonl(text: string, file: string, textField: string): DatasetDocument[] {
  const documents: DatasetDocument[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    const lineNumber = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new SpgError(
        "E_DATASET_JSONL",
        `line ${lineNumber} is not valid JSON: ${(error as Error).message}`,
        {
          file,
          field: `line ${lineNumber}`,
          fix: "make every non-blank line one JSON object",
          cause: error,
        },
      );
    }
    const field =
      typeof value === "object" && value !== null && !Array.isArray(value)
        ? (value as Record<string, unknown>)[textField]
        : undefined;
    if (typeof field !== "string") {
      throw new SpgError("E_DATASET_JSONL", `line ${lineNumber} has no string field "${textField}"`, {
        file,
        field: `line ${lineNumber}.${textField}`,
        fix: `give each object a "${textField}" string, or name the field with dataset.textField`,
      });
    }
    if (field.trim() !== "") documents.push({ id: `L${lineNumber}`, text: field });
  });
  return documents;
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

/** Reads one split of a local source. Errors: E_DATASET_MISSING, E_DATASET_EMPTY, E_DATASET_ENCODING, E_DATASET_JSONL. */
export function loadLocalSplit(
  source: LocalSource,
  path: string,
  split: string,
  options: LocalSourceOptions = {},
): DatasetSplit {
  const absolute = resolve(path);
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
          : "use --dataset text or jsonl for a file",
      },
    );
  }
  let documents: DatasetDocument[];
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
    const text = readUtf8(absolute);
    documents =
      source === "jsonl" ? parseJsonl(text, absolute, options.textField ?? "text") : splitTextDocuments(text);
  }
  if (documents.length === 0) {
    throw new SpgError("E_DATASET_EMPTY", `split "${split}" has no text: ${absolute}`, {
      file: absolute,
      fix: "point the dataset at a file or directory that holds text",
    });
  }
  return { source, split, path: absolute, documents, sha256: hashDocuments(documents) };
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

/** The configured local split for a role (source text, jsonl or dir). */
export function loadConfiguredLocalSplit(
  dataset: RunConfig["dataset"],
  role: "eval" | "calibration",
): DatasetSplit {
  if (dataset.source === "brown") {
    throw new SpgError("E_DATASET_MISSING", "the Brown corpus is not a local source", {
      field: "dataset.source",
      fix: "load it with src/data/brown.ts",
    });
  }
  const split = role === "eval" ? dataset.split : dataset.calibrationSplit;
  return loadLocalSplit(dataset.source, localSplitPath(dataset, role), split, {
    textField: dataset.textField,
  });
}
