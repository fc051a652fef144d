import { isUtf8 } from "node:buffer";
import { canonicalJsonString } from "../bundle/canonical.js";
import { MAX_JSON_NESTING } from "../bundle/format.js";
import type { LineMatcher } from "./fingerprint-line.js";

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
const LOWER_E = 0x65;

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

/**
 * A parsed value's shape in one walk: whether it nests deeper than `limit` (the walk stops
 * there, so a hostile depth never reaches a recursive serializer) and whether every object
 * lists its keys in ascending UTF-16 order, as canonical JSON does.
 */
function shapeOf(value: unknown, limit: number): { tooDeep: boolean; keysInOrder: boolean } {
  const shape = { tooDeep: false, keysInOrder: true };
  const walk = (item: unknown, depth: number): void => {
    if (typeof item !== "object" || item === null || shape.tooDeep) return;
    if (depth > limit) {
      shape.tooDeep = true;
      return;
    }
    if (Array.isArray(item)) {
      for (const element of item) walk(element, depth + 1);
      return;
    }
    let previous: string | undefined;
    for (const key of Object.keys(item)) {
      if (previous !== undefined && !(previous < key)) shape.keysInOrder = false;
      previous = key;
      walk((item as Record<string, unknown>)[key], depth + 1);
    }
  };
  walk(value, 1);
  return shape;
}

const COLON = 0x3a;
const COMMA = 0x2c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_A = 0x61;
const LOWER_Z = 0x7a;
const UPPER_E = 0x45;
const FIRST_NON_ASCII = 0x80;
/** Digits JSON.stringify writes back unchanged for any integer token (below 2^53 with room). */
const EXACT_INTEGER_DIGITS = 15;
/** Keys of this many digits at most are array indices, which JavaScript orders first, by value. */
const INDEX_KEY_DIGITS = 9;

/** Per nesting level of the scan below: scratch reused by every call (it neither recurses nor yields). */
const scanFrames = {
  object: new Uint8Array(MAX_JSON_NESTING + 1),
  expectKey: new Uint8Array(MAX_JSON_NESTING + 1),
  /** A key not made of digits was seen: a later index key would be reordered by JSON.parse. */
  namedKey: new Uint8Array(MAX_JSON_NESTING + 1),
  indexKeyDigits: new Int32Array(MAX_JSON_NESTING + 1),
  keyStart: new Int32Array(MAX_JSON_NESTING + 1),
  keyEnd: new Int32Array(MAX_JSON_NESTING + 1),
};

/** Whether the ASCII key bytes [start, end) sort strictly after [previousStart, previousEnd) (UTF-16 order). */
function keyAfter(
  bytes: Buffer,
  previousStart: number,
  previousEnd: number,
  start: number,
  end: number,
): boolean {
  const previousLength = previousEnd - previousStart;
  const length = end - start;
  for (let k = 0; ; k++) {
    if (k === length) return false;
    if (k === previousLength) return true;
    const before = bytes[previousStart + k];
    const after = bytes[start + k];
    if (before !== after) return before < after;
  }
}

/**
 * A byte scan that proves, for bytes JSON.parse has just read, that they are exactly what
 * JSON.stringify writes of the parsed value with every object's keys in ascending order,
 * nesting at most `MAX_JSON_NESTING` deep: no whitespace, no escapes, numbers in their
 * shortest form, ASCII keys strictly ascending (so none repeats), index-like keys ("16") only
 * ahead of the others and ascending by value too (where JSON.parse puts them). True only then;
 * false means "not shown", and the full checks below decide (and name the failure).
 */
export function writtenCanonically(bytes: Buffer, start: number, end: number): boolean {
  const { object, expectKey, namedKey, indexKeyDigits, keyStart, keyEnd } = scanFrames;
  let depth = 0;
  let index = start;
  while (index < end) {
    const byte = bytes[index];
    if (byte === QUOTE) {
      let close = index + 1;
      let ascii = true;
      for (let char = bytes[close]; char !== QUOTE; char = bytes[++close]) {
        if (char === BACKSLASH || close >= end) return false;
        if (char >= FIRST_NON_ASCII) ascii = false;
      }
      if (object[depth] === 1 && expectKey[depth] === 1) {
        if (!ascii) return false;
        const from = index + 1;
        if (keyStart[depth] >= 0 && !keyAfter(bytes, keyStart[depth], keyEnd[depth], from, close))
          return false;
        const first = bytes[from];
        if (first >= DIGIT_0 && first <= DIGIT_9) {
          const digits = close - from;
          if (namedKey[depth] === 1 || digits > INDEX_KEY_DIGITS || digits < indexKeyDigits[depth])
            return false;
          if (first === DIGIT_0 && digits > 1) return false;
          for (let k = from + 1; k < close; k++) if (bytes[k] < DIGIT_0 || bytes[k] > DIGIT_9) return false;
          indexKeyDigits[depth] = digits;
        } else namedKey[depth] = 1;
        keyStart[depth] = from;
        keyEnd[depth] = close;
        expectKey[depth] = 0;
      }
      index = close + 1;
      continue;
    }
    if (byte === MINUS || (byte >= DIGIT_0 && byte <= DIGIT_9)) {
      const digitsFrom = byte === MINUS ? index + 1 : index;
      let stop = index + 1;
      let integer = true;
      for (; stop < end; stop++) {
        const char = bytes[stop];
        if (char >= DIGIT_0 && char <= DIGIT_9) continue;
        if (char === DOT || char === LOWER_E || char === UPPER_E || char === PLUS || char === MINUS)
          integer = false;
        else break;
      }
      const digits = stop - digitsFrom;
      const plain =
        integer &&
        digits >= 1 &&
        digits <= EXACT_INTEGER_DIGITS &&
        !(bytes[digitsFrom] === DIGIT_0 && (digits > 1 || byte === MINUS));
      if (!plain) {
        const token = bytes.toString("latin1", index, stop);
        if (String(Number(token)) !== token) return false;
      }
      index = stop;
      continue;
    }
    if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > MAX_JSON_NESTING) return false;
      const isObject = byte === OPEN_BRACE ? 1 : 0;
      object[depth] = isObject;
      expectKey[depth] = isObject;
      namedKey[depth] = 0;
      indexKeyDigits[depth] = 0;
      keyStart[depth] = -1;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--;
    else if (byte === COMMA) expectKey[depth] = object[depth];
    else if (byte !== COLON && !(byte >= LOWER_A && byte <= LOWER_Z)) return false;
    index++;
  }
  return true;
}

function tooDeep(where: string): { ok: false; code: EntryParseCode; error: string } {
  return failure(
    ENTRY_PARSE_CODES.nesting,
    `${where} nests arrays or objects deeper than ${MAX_JSON_NESTING} levels`,
  );
}

/**
 * One JSON document in bytes [start, end), strictly (see the header). `name` names it in
 * errors, with its line number when it is a line of a JSON Lines entry (the text is made only
 * for an error, not for every line).
 */
export function parseStrict(
  bytes: Buffer,
  start: number,
  end: number,
  name: string,
  line?: number,
): Parsed<unknown> {
  const text = bytes.toString("utf8", start, end);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const where = line === undefined ? name : `${name} line ${line}`;
    // Too deep is named first, as it would be of a document that did parse.
    if (!nestingWithin(bytes, start, end, MAX_JSON_NESTING)) return tooDeep(where);
    return failure(ENTRY_PARSE_CODES.syntax, `${where} is not valid JSON: ${(error as Error).message}`);
  }
  // Fastest path (every line spg writes): the bytes show they are canonical, with no walk of the value.
  if (writtenCanonically(bytes, start, end)) return { ok: true, value };
  const where = line === undefined ? name : `${name} line ${line}`;
  const shape = shapeOf(value, MAX_JSON_NESTING);
  if (shape.tooDeep) return tooDeep(where);
  // Fast path: the text is its own plain serialization and every object's keys are in order,
  // which is exactly canonical (JSON.stringify with the sorted key list writes the same bytes).
  if (shape.keysInOrder && JSON.stringify(value) === text) return { ok: true, value };
  // Otherwise the canonical form names what differs (integer-like keys land here too: JSON.parse
  // puts them first, so a canonical {"16":..,"8":..} still passes below).
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
 * A JSON Lines entry read line by line as its bytes arrive (from the zip's inflater or a
 * buffer): one canonical JSON value per line, every line ending in "\n". Each line that
 * parses goes to `onValue` at once and is not kept; end() says whether the whole entry held,
 * with the same verdict, and the same precedence among failures, as reading it whole: a byte
 * order mark, then invalid UTF-8 anywhere (checked per line: no UTF-8 sequence holds a 0x0A
 * byte), then a missing final newline, then the first line that does not parse.
 */
export class JsonLinesReader {
  private pending: Buffer[] = [];
  private lines = 0;
  private bom = false;
  private invalidUtf8 = false;
  private lineFailure: { ok: false; code: EntryParseCode; error: string } | undefined;

  /**
   * `onValue` gets each line's value and whether `matchLine` (when given) showed the line
   * canonical and valid against its schema in one pass; a line it does not show is parsed
   * strictly here, and its schema is the caller's to check.
   */
  constructor(
    private readonly name: string,
    private readonly onValue: (value: unknown, line: number, shownValid: boolean) => void,
    private readonly matchLine?: LineMatcher,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    const last = chunk.lastIndexOf(NEWLINE);
    if (last !== -1 && this.pending.length > 0) {
      const end = chunk.indexOf(NEWLINE);
      this.pending.push(chunk.subarray(0, end));
      const line = Buffer.concat(this.pending);
      this.pending = [];
      this.line(line, 0, line.length, true);
      start = end + 1;
    }
    // The chunk's whole lines are UTF-8 exactly when each of them is (no UTF-8 sequence holds
    // a 0x0A byte): one check for all of them, line by line only in a chunk that fails it.
    const checkEachLine = start < last && !this.invalidUtf8 && !isUtf8(chunk.subarray(start, last));
    while (start <= last) {
      const end = chunk.indexOf(NEWLINE, start);
      this.line(chunk, start, end, checkEachLine);
      start = end + 1;
    }
    if (start < chunk.length) this.pending.push(chunk.subarray(start));
  }

  private line(bytes: Buffer, start: number, end: number, checkUtf8: boolean): void {
    const index = this.lines++;
    if (index === 0 && bytes.subarray(start, start + UTF8_BOM.length).equals(UTF8_BOM)) this.bom = true;
    if (checkUtf8 && !this.invalidUtf8 && !isUtf8(bytes.subarray(start, end))) this.invalidUtf8 = true;
    if (this.bom || this.invalidUtf8 || this.lineFailure !== undefined) return;
    const matched = this.matchLine?.(bytes, start, end);
    if (matched !== undefined) {
      this.onValue(matched, index, true);
      return;
    }
    const parsed = parseStrict(bytes, start, end, this.name, index + 1);
    if (parsed.ok) this.onValue(parsed.value, index, false);
    else this.lineFailure = parsed;
  }

  /** The verdict on the whole entry: the number of lines, or its first failure. */
  end(): Parsed<number> {
    const rest = Buffer.concat(this.pending);
    this.pending = [];
    const unterminated = rest.length > 0;
    if (unterminated) {
      if (this.lines === 0 && rest.subarray(0, UTF8_BOM.length).equals(UTF8_BOM)) this.bom = true;
      if (!isUtf8(rest)) this.invalidUtf8 = true;
    }
    const name = this.name;
    if (this.bom) {
      return failure(ENTRY_PARSE_CODES.bom, `${name} starts with a byte order mark; bundle entries never do`);
    }
    if (this.invalidUtf8) return failure(ENTRY_PARSE_CODES.utf8, `${name} is not valid UTF-8`);
    if (unterminated) {
      return failure(ENTRY_PARSE_CODES.notCanonical, `${name} does not end with a newline (truncated?)`);
    }
    return this.lineFailure ?? { ok: true, value: this.lines };
  }
}

/** A JSON Lines entry held whole (see JsonLinesReader): the array of its lines. */
export function parseJsonLinesEntry(bytes: Buffer | undefined, name: string): Parsed<unknown[]> {
  if (bytes === undefined) return failure(ENTRY_PARSE_CODES.missing, `${name} is missing`);
  const values: unknown[] = [];
  const reader = new JsonLinesReader(name, (value) => values.push(value));
  reader.push(bytes);
  const result = reader.end();
  return result.ok ? { ok: true, value: values } : result;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
