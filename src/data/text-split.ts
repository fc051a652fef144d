/**
 * Documents of a text file (rule in src/data/sources.ts): WikiText top-level headings start
 * documents; otherwise runs of blank lines separate them. Which of the two applies, and how
 * long a separating run is, depend on the whole file, so a streamed file is read twice: once
 * through TextLayoutScan, then through TextDocumentSplitter, which holds one document at a time.
 */
import { constants } from "node:buffer";
import { SpgError } from "../errors.js";
import type { DatasetDocument } from "./types.js";

/** A WikiText top-level heading line (` = Title = `, one `=` each side). */
export const TOP_LEVEL_HEADING = /^ ?= ([^=].*?) = ?$/;

export function trimBlankLines(lines: readonly string[]): string {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start].trim() === "") start++;
  while (end > start && lines[end - 1].trim() === "") end--;
  return lines.slice(start, end).join("\n");
}

/** E_DATASET_DOCUMENT_LENGTH: document `id` of `file` runs past `maxChars` at `line`. */
export function documentTooLong(file: string, id: string, maxChars: number, line: number): SpgError {
  return new SpgError(
    "E_DATASET_DOCUMENT_LENGTH",
    `the document ${id} runs past ${maxChars} characters (the longest string the engine can hold) at line ${line}`,
    {
      file,
      field: `line ${line}`,
      fix: "split it: in a text file, separate documents with blank lines (two between documents when one separates paragraphs); in a directory, one document per .txt file",
    },
  );
}

/** What the first pass over a text file decides: headings split it, or runs of this many blank lines. */
export interface TextLayout {
  headings: boolean;
  separatorRun: 1 | 2;
}

/** First pass: fed every line (as `text.split(/\r?\n/)` gives them), it finds the file's layout. */
export class TextLayoutScan {
  private headings = false;
  private doubleBlank = false;
  private seenText = false;
  private run = 0;

  add(line: string): void {
    if (line.trim() === "") {
      this.run++;
      return;
    }
    // Only a run between two non-blank lines separates anything: blank lines at the start or
    // the end of the file (a file ending "text\n\n") say nothing about the layout.
    if (this.run >= 2 && this.seenText) this.doubleBlank = true;
    this.seenText = true;
    this.run = 0;
    if (!this.headings && TOP_LEVEL_HEADING.test(line)) this.headings = true;
  }

  layout(): TextLayout {
    return { headings: this.headings, separatorRun: this.doubleBlank ? 2 : 1 };
  }
}

/**
 * Second pass: fed the same lines with their numbers (from 1), it returns each document as
 * soon as the line that ends it arrives, holding only the current document (and, between
 * documents, at most `separatorRun` blank lines). E_DATASET_DOCUMENT_LENGTH when one document
 * grows past `maxChars` (the longest string the engine can hold, by default).
 */
export class TextDocumentSplitter {
  private body: string[] = [];
  private bodyChars = 0;
  private id = "L1";
  /** Line number of the first non-blank line of the current document (blank-line layout). */
  private firstLine = 0;
  private blanks: string[] = [];
  private blankRun = 0;

  constructor(
    private readonly layout: TextLayout,
    private readonly file: string,
    private readonly maxChars: number = constants.MAX_STRING_LENGTH,
  ) {}

  /** The document `line` ends, if it ends one. */
  push(number: number, line: string): DatasetDocument | undefined {
    if (this.layout.headings) {
      const heading = TOP_LEVEL_HEADING.exec(line);
      const done = heading ? this.flush() : undefined;
      if (heading) this.id = `L${number} ${heading[1].trim()}`;
      this.append(line, number);
      return done;
    }
    if (line.trim() === "") {
      this.blankRun++;
      // Blank lines are kept only while they may turn out to be inside a document.
      if (this.blanks.length < this.layout.separatorRun) this.blanks.push(line);
      return undefined;
    }
    let done: DatasetDocument | undefined;
    if (this.blankRun >= this.layout.separatorRun) done = this.flush();
    else if (this.firstLine > 0) for (const blank of this.blanks) this.append(blank, number);
    this.blanks = [];
    this.blankRun = 0;
    if (this.firstLine === 0) {
      this.firstLine = number;
      this.id = `L${number}`;
    }
    this.append(line, number);
    return done;
  }

  /** The last document, once every line has been pushed. */
  end(): DatasetDocument | undefined {
    return this.flush();
  }

  private append(line: string, number: number): void {
    this.bodyChars += line.length + 1;
    if (this.bodyChars > this.maxChars) {
      throw documentTooLong(this.file, this.id, this.maxChars, number);
    }
    this.body.push(line);
  }

  private flush(): DatasetDocument | undefined {
    const text = trimBlankLines(this.body);
    const id = this.id;
    this.body = [];
    this.bodyChars = 0;
    this.firstLine = 0;
    return text.trim() === "" ? undefined : { id, text };
  }
}

/** Splits a text file held in memory into documents (rule in the comment of src/data/sources.ts). */
export function splitTextDocuments(text: string): DatasetDocument[] {
  const lines = text.split(/\r?\n/);
  const scan = new TextLayoutScan();
  for (const line of lines) scan.add(line);
  const splitter = new TextDocumentSplitter(scan.layout(), "(text)");
  const documents: DatasetDocument[] = [];
  lines.forEach((line, i) => {
    const document = splitter.push(i + 1, line);
    if (document) documents.push(document);
  });
  const last = splitter.end();
  if (last) documents.push(last);
  return documents;
}
