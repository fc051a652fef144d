/**
 * Row sources (JSONL lines, parquet rows) to documents. Two layouts, told apart by the first
 * row that holds text:
 * - "rows": each row is a document (C4, the Pile, OpenWebText dumps); id `L<line>` for JSONL,
 *   `R<row>` (from 0) for parquet. Rows whose text is whitespace only are dropped.
 * - "wikitext-lines": the first non-blank row is a WikiText top-level heading (` = Title = `),
 *   as in the hub's WikiText parquet, where each row is one line of wiki.<split>.raw. Each
 *   heading row starts a document running to the next heading (rows before the first one
 *   form a document of their own), its rows joined by "\n" (each row's own trailing line
 *   break dropped) and blank rows trimmed from both ends, as in a text file; id
 *   `L<row + 1> <title>`, the line number the row has in the raw file.
 */
import { TOP_LEVEL_HEADING, trimBlankLines } from "./text-split.js";
import type { DatasetDocument } from "./types.js";

export type RowLayout = "rows" | "wikitext-lines";

/** One row of a row source: its text and where it is (`line` from 1 for JSONL, from 0 for parquet rows). */
export interface TextRow {
  /** Document id in the "rows" layout. */
  id: string;
  /** Line number in the "wikitext-lines" layout (1-based). */
  line: number;
  text: string;
}

/** Documents of a row stream; `layout.value` is set once the first non-blank row has been seen. */
export async function* rowDocuments(
  rows: AsyncIterable<TextRow>,
  layout: { value?: RowLayout },
): AsyncGenerator<DatasetDocument> {
  let lines: string[] = [];
  let id = "";
  const flush = (): DatasetDocument | undefined => {
    const text = trimBlankLines(lines);
    lines = [];
    return text.trim() === "" ? undefined : { id, text };
  };
  for await (const row of rows) {
    if (layout.value === undefined) {
      if (row.text.trim() === "") continue;
      layout.value = TOP_LEVEL_HEADING.test(withoutLineBreak(row.text)) ? "wikitext-lines" : "rows";
    }
    if (layout.value === "rows") {
      if (row.text.trim() !== "") yield { id: row.id, text: row.text };
      continue;
    }
    const line = withoutLineBreak(row.text);
    const heading = TOP_LEVEL_HEADING.exec(line);
    if (heading) {
      const document = flush();
      if (document) yield document;
      id = `L${row.line} ${heading[1].trim()}`;
    }
    lines.push(line);
  }
  if (layout.value === "wikitext-lines") {
    const document = flush();
    if (document) yield document;
  }
}

function withoutLineBreak(text: string): string {
  return text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
}
