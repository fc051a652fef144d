import { isUtf8 } from "node:buffer";
import { canonicalJsonString } from "../bundle/canonical.js";
import { MAX_JSON_NESTING } from "../bundle/format.js";

/**
 * Parsing bundle entries without trusting them: every failure is a value with a stable
 * code, never a throw, so a hostile entry becomes a finding. One rule for every entry:
 * UTF-8, no byte order mark. JSON entries must also be exactly the canonical bytes spg
 * writes (src/bundle/canonical.ts): no duplicate keys (two readers could see different
 * values), no whitespace, no escapes or number forms that another parser reads otherwise.
 */
export const ENTRY_PARSE_CODES = {
  missing: "E_ENTRY_MISSING",
  bom: "E_ENTRY_BOM",
  utf8: "E_ENTRY_UTF8",
  syntax: "E_JSON_SYNTAX",
  nesting: "E_JSON_NESTING",
  duplicateKey: "E_JSON_DUPLICATE_KEY",
  notCanonical: "E_JSON_NOT_CANONICAL",
} as const;
export type EntryParseCode = (typeof ENTRY_PARSE_CODES)[keyof typeof ENTRY_PARSE_CODES];
export const ENTRY_PARSE_CODE_LIST: readonly EntryParseCode[] = Object.values(ENTRY_PARSE_CODES);

export type Parsed<T> = { ok: true; value: T } | { ok: false; code: EntryParseCode; error: string };

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;

function failure(code: EntryParseCode, error: string): { ok: false; code: EntryParseCode; error: string } {
  return { ok: false, code, error };
}

/** The text rule every entry follows (report.md included): UTF-8 without a BOM. */
export function checkEntryText(bytes: Buffer | undefined, name: string): Parsed<Buffer> {
  if (bytes === undefined) return failure(ENTRY_PARSE_CODES.missing, `${name} is missing`);
  if (bytes.subarray(0, UTF8_BOM.length).equals(UTF8_BOM)) {
    return failure(ENTRY_PARSE_CODES.bom, `${name} starts with a byte order mark; bundle entries never do`);
  }
  if (!isUtf8(bytes)) return failure(ENTRY_PARSE_CODES.utf8, `${name} is not valid UTF-8`);
  return { ok: true, value: bytes };
}

/**
 * Deepest nesting of arrays and objects in [start, end), stopping as soon as it passes
 * `limit`: a byte scan, so a hostile "[[[[..." never reaches a recursive walker.
 */
function nestingWithin(bytes: Buffer, start: number, end: number, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = start; index < end; index++) {
    const byte = bytes[index];
    if (inString) {
      if (byte === BACKSLASH) index++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > limit) return false;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--;
  }
  return true;
}

/**
 * The first key that appears twice in one object of `text` (already valid JSON), or
 * undefined. Keys are compared decoded, so "a" and "\u0061" are the same key.
 */
export function firstDuplicateKey(text: string): string | undefined {
  const frames: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (char === "{") frames.push({ keys: new Set(), expectKey: true });
    else if (char === "[") frames.push({ keys: null, expectKey: false });
    else if (char === "}" || char === "]") frames.pop();
    else if (char === ",") {
      const top = frames[frames.length - 1];
      if (top?.keys !== null && top !== undefined) top.expectKey = true;
    } else if (char === '"') {
      const begin = index;
      for (index++; text[index] !== '"'; index++) if (text[index] === "\\") index++;
      const top = frames[frames.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(begin, index + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
    }
  }
  return undefined;
}

/** One JSON document in bytes [start, end), strictly (see the header). `where` names it in errors. */
function parseStrict(bytes: Buffer, start: number, end: number, where: string): Parsed<unknown> {
  if (!nestingWithin(bytes, start, end, MAX_JSON_NESTING)) {
    return failure(
      ENTRY_PARSE_CODES.nesting,
      `${where} nests arrays or objects deeper than ${MAX_JSON_NESTING} levels`,
    );
  }
  const text = bytes.toString("utf8", start, end);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return failure(ENTRY_PARSE_CODES.syntax, `${where} is not valid JSON: ${(error as Error).message}`);
  }
  let canonical: string | undefined;
  try {
    canonical = canonicalJsonString(value);
  } catch (error) {
    return failure(
      ENTRY_PARSE_CODES.notCanonical,
      `${where} holds a value canonical JSON cannot: ${(error as Error).message}`,
    );
  }
  if (canonical === text) return { ok: true, value };
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined) {
    return failure(
      ENTRY_PARSE_CODES.duplicateKey,
      `${where} has the key ${JSON.stringify(duplicate)} twice in one object`,
    );
  }
  return failure(
    ENTRY_PARSE_CODES.notCanonical,
    `${where} is not in canonical form (sorted keys, no whitespace, shortest numbers) as spg writes it`,
  );
}

/** A JSON entry: UTF-8 without BOM, canonical, no duplicate keys, bounded nesting. */
export function parseJsonEntry(bytes: Buffer | undefined, name: string): Parsed<unknown> {
  const text = checkEntryText(bytes, name);
  if (!text.ok) return text;
  return parseStrict(text.value, 0, text.value.length, name);
}

/**
 * A JSON Lines entry: one canonical JSON value per line, every line ending in "\n".
 * Parsed line by line from the bytes, so a records file of hundreds of MB never becomes
 * one string (V8 caps strings near 512 MiB).
 */
export function parseJsonLinesEntry(bytes: Buffer | undefined, name: string): Parsed<unknown[]> {
  const text = checkEntryText(bytes, name);
  if (!text.ok) return text;
  const data = text.value;
  if (data.length > 0 && data[data.length - 1] !== NEWLINE) {
    return failure(ENTRY_PARSE_CODES.notCanonical, `${name} does not end with a newline (truncated?)`);
  }
  const values: unknown[] = [];
  let start = 0;
  let line = 0;
  while (start < data.length) {
    const end = data.indexOf(NEWLINE, start);
    line += 1;
    const parsed = parseStrict(data, start, end, `${name} line ${line}`);
    if (!parsed.ok) return parsed;
    values.push(parsed.value);
    start = end + 1;
  }
  return { ok: true, value: values };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
