/**
 * Documents of a text file (rule in src/data/sources.ts): WikiText top-level headings start
 * documents; otherwise runs of blank lines separate them.
 */
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

/** Splits a text file into documents (rule in the comment of src/data/sources.ts). */
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
