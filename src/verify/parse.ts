/**
 * Parsing bundle entries without trusting them: every failure is a value, never a throw,
 * so a hostile entry becomes a finding.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** JSON.parse of a UTF-8 entry; invalid UTF-8 is an error, not a replacement character. */
export function parseJsonEntry(bytes: Buffer | undefined, name: string): Parsed<unknown> {
  if (bytes === undefined) return { ok: false, error: `${name} is missing` };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, error: `${name} is not valid UTF-8` };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: `${name} is not valid JSON: ${(error as Error).message}` };
  }
}

/** One JSON value per line; a final newline is allowed, blank lines elsewhere are not. */
export function parseJsonLinesEntry(bytes: Buffer | undefined, name: string): Parsed<unknown[]> {
  if (bytes === undefined) return { ok: false, error: `${name} is missing` };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, error: `${name} is not valid UTF-8` };
  }
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const values: unknown[] = [];
  for (let i = 0; i < lines.length; i++) {
    try {
      values.push(JSON.parse(lines[i]));
    } catch (error) {
      return { ok: false, error: `${name} line ${i + 1} is not valid JSON: ${(error as Error).message}` };
    }
  }
  return { ok: true, value: values };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
