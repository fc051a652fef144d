/** JSONL rows: one JSON object per non-blank line, its `textField` a string. */
import { SpgError } from "../errors.js";
import type { TextRow } from "./rows.js";
import type { NumberedLine } from "./streams.js";

/** The text of one JSONL line. E_DATASET_JSONL names the file, the line and the fix. */
export function jsonlText(line: NumberedLine, file: string, textField: string): string {
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch (error) {
    throw new SpgError(
      "E_DATASET_JSONL",
      `line ${line.line} is not valid JSON: ${(error as Error).message}`,
      {
        file,
        field: `line ${line.line}`,
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
    throw new SpgError("E_DATASET_JSONL", `line ${line.line} has no string field "${textField}"`, {
      file,
      field: `line ${line.line}.${textField}`,
      fix: `give each object a "${textField}" string, or name the field with --text-field (dataset.textField)`,
    });
  }
  return field;
}

/** The rows of a JSONL line stream (blank lines skipped). */
export async function* jsonlRows(
  lines: AsyncIterable<NumberedLine>,
  file: string,
  textField: string,
): AsyncGenerator<TextRow> {
  for await (const line of lines) {
    if (line.text.trim() === "") continue;
    yield { id: `L${line.line}`, line: line.line, text: jsonlText(line, file, textField) };
  }
}
