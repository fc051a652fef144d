/**
 * A KV layer's fingerprint line read in one pass over its bytes: most of a bundle's bytes
 * are these lines (24 per sample and method at GPT-Neo 1.3B's depth), and decoding each to a
 * string, JSON.parse, the canonical scan and ajv cost several passes and objects per line.
 *
 * The matcher says yes only to the exact bytes canonical JSON gives of a value that
 * fingerprint.schema.json's kvLayer branch accepts, and then returns the value JSON.parse
 * would (same keys, same order, same numbers). Anything else, including every hostile or
 * unusual line, is undefined: "not shown", and the full path (parse.ts, the schema)
 * decides and names the failure. So it changes no verdict, only how fast a good line passes;
 * test/verify/fingerprint-line.test.ts holds it to the full path on seeded, mutated lines.
 *
 * It is used only where the fingerprint schema is the one it implements (kvLayerMatcherFor).
 */
import { isDeepStrictEqual } from "node:util";
import type { LayerFingerprint } from "../bundle/types.js";

/** Reads the line in bytes [start, end) (no newline) when it is shown valid and canonical; else undefined. */
export type LineMatcher = (bytes: Buffer, start: number, end: number) => unknown;

/**
 * fingerprint.schema.json as this matcher implements it, annotations (description, title)
 * left out: a oneOf of a KV layer and a weight tensor. A KV layer's line has none of the weight
 * tensor's required keys, so it matches one branch, as oneOf demands.
 */
const IDENTIFIER = { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._@=+-]{0,127}$" };
const COUNT = { type: "integer", minimum: 0 };
const IMPLEMENTED_KV_LAYER = {
  type: "object",
  additionalProperties: false,
  required: [
    "sampleId",
    "method",
    "layer",
    "tokensKept",
    "tokensTotal",
    "headsFullPrecision",
    "bitsHistogram",
    "bytes",
    "sha256",
  ],
  properties: {
    sampleId: IDENTIFIER,
    method: IDENTIFIER,
    layer: COUNT,
    tokensKept: COUNT,
    tokensTotal: { type: "integer", minimum: 1 },
    headsFullPrecision: COUNT,
    slotsRead: COUNT,
    bitsHistogram: {
      type: "object",
      propertyNames: { pattern: "^(?:[1-9]|[12][0-9]|3[0-2])$" },
      additionalProperties: COUNT,
    },
    bytes: COUNT,
    sha256: { type: "string", pattern: "^[0-9a-f]{64}$" },
  },
};

const ANNOTATIONS = new Set(["description", "title", "$comment"]);

/** A schema with its annotations (description, title, $comment) left out: what it asserts. */
export function withoutAnnotations(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutAnnotations);
  if (typeof value !== "object" || value === null) return value;
  const kept: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!ANNOTATIONS.has(key)) kept[key] = withoutAnnotations(item);
  }
  return kept;
}

/**
 * The matcher, when `schema` (a parsed fingerprint.schema.json) is the one it implements:
 * oneOf exactly [kvLayer, weightTensor], kvLayer as above, and weightTensor requiring a key
 * kvLayer does not allow. Else undefined: every line goes the full way.
 */
export function kvLayerMatcherFor(schema: Record<string, unknown>): LineMatcher | undefined {
  const defs = schema.$defs as Record<string, Record<string, unknown>> | undefined;
  const oneOf = [{ $ref: "#/$defs/kvLayer" }, { $ref: "#/$defs/weightTensor" }];
  if (!isDeepStrictEqual(schema.oneOf, oneOf) || defs === undefined) return undefined;
  if (Object.keys(schema).some((key) => !["$schema", "$id", "$defs", "oneOf", ...ANNOTATIONS].includes(key)))
    return undefined;
  if (!isDeepStrictEqual(withoutAnnotations(defs.kvLayer), IMPLEMENTED_KV_LAYER)) return undefined;
  const weightRequired = defs.weightTensor?.required;
  const excludesKvLayers =
    Array.isArray(weightRequired) && weightRequired.some((key) => !(key in IMPLEMENTED_KV_LAYER.properties));
  return excludesKvLayers ? matchKvLayerLine : undefined;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const CLOSE_BRACE = 0x7d;
const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** Digits of an integer read here: below 2^53, so exact, and written back unchanged by JSON.stringify. */
export const MAX_INTEGER_DIGITS = 15;
/** The identifier pattern's length: its first character and up to 127 more. */
export const MAX_IDENTIFIER_BYTES = 128;

/** Bytes an identifier may hold after its first ([A-Za-z0-9._@=+-]); 2 = also a first byte ([A-Za-z0-9]). */
export const IDENTIFIER_BYTES = new Uint8Array(256);
for (const char of "._@=+-") IDENTIFIER_BYTES[char.charCodeAt(0)] = 1;
for (const [from, to] of [
  ["0", "9"],
  ["A", "Z"],
  ["a", "z"],
]) {
  for (let code = from.charCodeAt(0); code <= to.charCodeAt(0); code++) IDENTIFIER_BYTES[code] = 2;
}
export const LOWER_HEX = new Uint8Array(256);
for (const char of "0123456789abcdef") LOWER_HEX[char.charCodeAt(0)] = 1;
export const SHA256_HEX_CHARS = 64;

export const ascii = (text: string) => Uint8Array.from(text, (char) => char.charCodeAt(0));
/** The bytes between the values, in canonical (sorted) key order. */
const OPEN = ascii('{"bitsHistogram":{');
const BYTES = ascii(',"bytes":');
const HEADS = ascii(',"headsFullPrecision":');
const LAYER = ascii(',"layer":');
const METHOD = ascii(',"method":"');
const SAMPLE = ascii(',"sampleId":"');
const SHA256 = ascii(',"sha256":"');
const SLOTS = ascii(',"slotsRead":');
const KEPT = ascii(',"tokensKept":');
const TOTAL = ascii(',"tokensTotal":');

/**
 * The match in progress: the cursor and the last integer read. Module scratch, as the matcher
 * neither recurses nor yields; -1 is "no match".
 */
let at = 0;
let integer = 0;

function literal(bytes: Buffer, end: number, text: Uint8Array): boolean {
  if (at + text.length > end) return false;
  for (let k = 0; k < text.length; k++) if (bytes[at + k] !== text[k]) return false;
  at += text.length;
  return true;
}

/** A JSON integer at least `minimum` as JSON.stringify writes it ("0" or no leading zero), into `integer`. */
function readInteger(bytes: Buffer, end: number, minimum: number): boolean {
  const from = at;
  let value = 0;
  while (at < end) {
    const byte = bytes[at];
    if (byte < DIGIT_0 || byte > DIGIT_9) break;
    value = value * 10 + (byte - DIGIT_0);
    at++;
  }
  const digits = at - from;
  if (digits === 0 || digits > MAX_INTEGER_DIGITS || (digits > 1 && bytes[from] === DIGIT_0)) return false;
  // The next byte must end the number (a '.', 'e' or digit past the limit leaves it to the full path).
  if (value < minimum) return false;
  integer = value;
  return true;
}

/**
 * Strings recently read per field: lines repeat a few method names and each sample's id, so
 * a matching one is reused instead of made again for every line.
 */
export class RecentStrings {
  private readonly strings: string[] = [];
  private next = 0;
  constructor(private readonly size: number) {}

  of(bytes: Buffer, start: number, end: number): string {
    const length = end - start;
    for (const text of this.strings) {
      if (text.length !== length) continue;
      let same = true;
      for (let k = 0; k < length && same; k++) same = text.charCodeAt(k) === bytes[start + k];
      if (same) return text;
    }
    const text = bytes.toString("latin1", start, end);
    this.strings[this.next] = text;
    this.next = (this.next + 1) % this.size;
    return text;
  }
}

/** A handful of methods and one sample's id at a time: enough to find the last few again. */
const RECENT = 4;
const methods = new RecentStrings(RECENT);
const sampleIds = new RecentStrings(RECENT);

/** "identifier" (the opening quote already read): the pattern's bytes up to the closing quote. */
function readIdentifier(bytes: Buffer, end: number, recent: RecentStrings): string | undefined {
  const from = at;
  if (from >= end || IDENTIFIER_BYTES[bytes[from]] !== 2) return undefined;
  let close = from + 1;
  while (close < end && IDENTIFIER_BYTES[bytes[close]] !== 0) close++;
  if (close >= end || bytes[close] !== QUOTE || close - from > MAX_IDENTIFIER_BYTES) return undefined;
  at = close + 1;
  return recent.of(bytes, from, close);
}

/**
 * The bit histogram's members, after its "{": keys "1".."32" in ascending UTF-16 order (as
 * canonical JSON sorts them: "16" before "8"), each an integer count; at the closing "}".
 */
function readHistogram(bytes: Buffer, end: number): Record<string, number> | undefined {
  const histogram: Record<string, number> = {};
  if (at < end && bytes[at] === CLOSE_BRACE) {
    at++;
    return histogram;
  }
  // A key's order as a string: its first digit, then its second (none sorts first).
  let previous = -1;
  for (;;) {
    if (at + 4 > end || bytes[at] !== QUOTE) return undefined;
    const first = bytes[at + 1];
    const second = bytes[at + 2];
    let width: number;
    let order: number;
    if (second === QUOTE) {
      if (first < DIGIT_0 + 1 || first > DIGIT_9) return undefined;
      width = first - DIGIT_0;
      order = first * 256;
      at += 3;
    } else {
      if (bytes[at + 3] !== QUOTE || second < DIGIT_0 || second > DIGIT_9) return undefined;
      if (first < DIGIT_0 + 1 || first > DIGIT_0 + 3) return undefined;
      width = (first - DIGIT_0) * 10 + (second - DIGIT_0);
      if (width > 32) return undefined;
      order = first * 256 + second;
      at += 4;
    }
    if (order <= previous || at >= end || bytes[at] !== COLON) return undefined;
    previous = order;
    at++;
    if (!readInteger(bytes, end, 0)) return undefined;
    histogram[width] = integer;
    if (at >= end) return undefined;
    const separator = bytes[at++];
    if (separator === CLOSE_BRACE) return histogram;
    if (separator !== COMMA) return undefined;
  }
}

/** The KV layer line's value as JSON.parse gives it, when the bytes are shown valid and canonical. */
export function matchKvLayerLine(bytes: Buffer, start: number, end: number): LayerFingerprint | undefined {
  at = start;
  if (!literal(bytes, end, OPEN)) return undefined;
  const bitsHistogram = readHistogram(bytes, end);
  if (bitsHistogram === undefined) return undefined;
  if (!literal(bytes, end, BYTES) || !readInteger(bytes, end, 0)) return undefined;
  const byteCount = integer;
  if (!literal(bytes, end, HEADS) || !readInteger(bytes, end, 0)) return undefined;
  const headsFullPrecision = integer;
  if (!literal(bytes, end, LAYER) || !readInteger(bytes, end, 0)) return undefined;
  const layer = integer;
  if (!literal(bytes, end, METHOD)) return undefined;
  const method = readIdentifier(bytes, end, methods);
  if (method === undefined || !literal(bytes, end, SAMPLE)) return undefined;
  const sampleId = readIdentifier(bytes, end, sampleIds);
  if (sampleId === undefined || !literal(bytes, end, SHA256)) return undefined;
  const hexFrom = at;
  const hexEnd = hexFrom + SHA256_HEX_CHARS;
  if (hexEnd >= end || bytes[hexEnd] !== QUOTE) return undefined;
  for (let k = hexFrom; k < hexEnd; k++) if (LOWER_HEX[bytes[k]] === 0) return undefined;
  const sha256 = bytes.toString("latin1", hexFrom, hexEnd);
  at = hexEnd + 1;
  let slotsRead: number | undefined;
  if (literal(bytes, end, SLOTS)) {
    if (!readInteger(bytes, end, 0)) return undefined;
    slotsRead = integer;
  }
  if (!literal(bytes, end, KEPT) || !readInteger(bytes, end, 0)) return undefined;
  const tokensKept = integer;
  if (!literal(bytes, end, TOTAL) || !readInteger(bytes, end, 1)) return undefined;
  const tokensTotal = integer;
  if (at + 1 !== end || bytes[at] !== CLOSE_BRACE) return undefined;
  // Keys in the text's order, as JSON.parse makes them.
  return slotsRead === undefined
    ? {
        bitsHistogram,
        bytes: byteCount,
        headsFullPrecision,
        layer,
        method,
        sampleId,
        sha256,
        tokensKept,
        tokensTotal,
      }
    : {
        bitsHistogram,
        bytes: byteCount,
        headsFullPrecision,
        layer,
        method,
        sampleId,
        sha256,
        slotsRead,
        tokensKept,
        tokensTotal,
      };
}
