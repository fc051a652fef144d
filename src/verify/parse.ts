import { isUtf8 } from "node:buffer";

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

/**
 * One JSON value per line; a final newline is allowed, blank lines elsewhere are not.
 * Decoded line by line from the bytes, so a records file of hundreds of MB never becomes
 * one string (V8 caps strings near 512 MiB).
 */
export function parseJsonLinesEntry(bytes: Buffer | undefined, name: string): Parsed<unknown[]> {
  if (bytes === undefined) return { ok: false, error: `${name} is missing` };
  if (!isUtf8(bytes)) return { ok: false, error: `${name} is not valid UTF-8` };
  const values: unknown[] = [];
  let start = 0;
  let line = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    line += 1;
    try {
      values.push(JSON.parse(bytes.toString("utf8", start, end)));
    } catch (error) {
      return { ok: false, error: `${name} line ${line} is not valid JSON: ${(error as Error).message}` };
    }
    start = end + 1;
  }
  return { ok: true, value: values };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
