/**
 * A records.jsonl line read in one pass over its bytes, as fingerprint-line.ts reads a KV
 * layer's: decoding each line to a string, JSON.parse, the canonical scan and ajv cost
 * several passes and objects per record.
 *
 * The reader says yes only to the exact bytes canonical JSON gives of a value that
 * record.schema.json accepts, and then returns the value JSON.parse would (same keys, same
 * order, same numbers). Anything else is undefined, "not shown", and the full path (parse.ts,
 * the schema) decides and names the failure: a record with a key the reader leaves to the
 * full path (a weights method's `weights` and `logitCosineSum`, tied by dependentRequired),
 * an integer of more than 15 digits, a `document` with a byte outside printable ASCII or one
 * JSON escapes, every hostile or unusual line. test/verify/record-line.test.ts holds it to
 * the full path on seeded, mutated lines.
 *
 * RECORD_FIELDS below is the one description of what it reads; the reader is used only where
 * the schema that description implies is record.schema.json, annotations left out
 * (recordMatcherFor), so a schema change turns it off instead of making it wrong.
 */
import { isDeepStrictEqual } from "node:util";
import type { SampleRecord } from "../bundle/types.js";
import {
  ascii,
  IDENTIFIER_BYTES,
  type LineMatcher,
  LOWER_HEX,
  MAX_IDENTIFIER_BYTES,
  MAX_INTEGER_DIGITS,
  RecentStrings,
  SHA256_HEX_CHARS,
  withoutAnnotations,
} from "./fingerprint-line.js";

const IDENTIFIER_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._@=+-]{0,127}$";
const SHA256_PATTERN = "^[0-9a-f]{64}$";
const DOCUMENT_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,512}$";
/** The document pattern's most characters; the reader takes ASCII only, so bytes are characters. */
const MAX_DOCUMENT_CHARS = 512;

/** What one value may be, as the reader reads it (and the schema fragment that says the same). */
type ValueKind =
  | { kind: "integer"; minimum: number }
  | { kind: "number"; minimum: number }
  | { kind: "integerOrNull"; minimum: number }
  | { kind: "integers"; minimum: number }
  /** Its recent strings: each identifier field repeats a few values across lines. */
  | { kind: "identifier"; strings: RecentStrings }
  | { kind: "sha256" }
  | { kind: "document" }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "object"; fields: readonly Field[]; build: Build; ref?: string }
  /** A key the reader leaves to the full path: its presence makes the line "not shown". */
  | { kind: "leftToFullPath"; schema: unknown };

interface Field {
  key: string;
  required: boolean;
  value: ValueKind;
}

const integer = (minimum: number): ValueKind => ({ kind: "integer", minimum });
const number = (minimum: number): ValueKind => ({ kind: "number", minimum });
const required = (key: string, value: ValueKind): Field => ({ key, required: true, value });
const optional = (key: string, value: ValueKind): Field => ({ key, required: false, value });
/**
 * An object's value from its members' values in field order (undefined: absent), written as an
 * object literal: one shape per object, where setting keys one by one from the field list costs
 * a generic keyed store per member (most of the reader's time). fieldsBuilt holds each to its fields.
 */
type Build = (values: readonly unknown[]) => Record<string, unknown>;
const object = (fields: Field[], build: Build, ref?: string): ValueKind => ({
  kind: "object",
  fields,
  build,
  ref,
});

/** Strings repeated across lines: a few methods, and each sample's id, token hash and document (2+ lines each). */
const RECENT = 4;
const methods = new RecentStrings(RECENT);
const sampleIds = new RecentStrings(RECENT);
const documents = new RecentStrings(RECENT);
const hashes = new RecentStrings(RECENT);

const EXECUTED_BYTES = "executedBytes";
const executedBytes = object(
  [required("kv", integer(0)), required("weights", integer(1))],
  (v) => ({ kv: v[0], weights: v[1] }),
  EXECUTED_BYTES,
);

function buildGeneration(v: readonly unknown[]): Record<string, unknown> {
  const generation: Record<string, unknown> =
    v[0] === undefined
      ? { compared: v[1], firstDivergence: v[2], matches: v[3] }
      : { baselineTokens: v[0], compared: v[1], firstDivergence: v[2], matches: v[3] };
  if (v[4] !== undefined) generation.tokens = v[4];
  return generation;
}

/** A record's value (indices as in RECORD_FIELDS; 7 and 20 are left to the full path, 13 is optional). */
function buildRecord(v: readonly unknown[]): Record<string, unknown> {
  return v[13] === undefined
    ? {
        contextTokens: v[0],
        continuationTokens: v[1],
        document: v[2],
        generation: v[3],
        klSum: v[4],
        kvBytesBaseline: v[5],
        kvBytesCompressed: v[6],
        method: v[8],
        nllBaseline: v[9],
        nllCompressed: v[10],
        offset: v[11],
        peakRssBytes: v[12],
        sampleId: v[14],
        sampleIndex: v[15],
        scoredTokens: v[16],
        timingsMs: v[17],
        tokenHash: v[18],
        top1Matches: v[19],
      }
    : {
        contextTokens: v[0],
        continuationTokens: v[1],
        document: v[2],
        generation: v[3],
        klSum: v[4],
        kvBytesBaseline: v[5],
        kvBytesCompressed: v[6],
        method: v[8],
        nllBaseline: v[9],
        nllCompressed: v[10],
        offset: v[11],
        peakRssBytes: v[12],
        runCost: v[13],
        sampleId: v[14],
        sampleIndex: v[15],
        scoredTokens: v[16],
        timingsMs: v[17],
        tokenHash: v[18],
        top1Matches: v[19],
      };
}

/** record.schema.json's members in canonical (ascending) key order, each as the reader reads it. */
const RECORD_FIELDS: readonly Field[] = [
  required("contextTokens", integer(1)),
  required("continuationTokens", integer(1)),
  required("document", { kind: "document" }),
  required(
    "generation",
    object(
      [
        optional("baselineTokens", { kind: "integers", minimum: 0 }),
        required("compared", integer(0)),
        required("firstDivergence", { kind: "integerOrNull", minimum: 0 }),
        required("matches", integer(0)),
        optional("tokens", { kind: "integers", minimum: 0 }),
      ],
      buildGeneration,
    ),
  ),
  required("klSum", number(0)),
  required("kvBytesBaseline", integer(1)),
  required("kvBytesCompressed", integer(1)),
  optional("logitCosineSum", { kind: "leftToFullPath", schema: { type: "number" } }),
  required("method", { kind: "identifier", strings: methods }),
  required("nllBaseline", number(0)),
  required("nllCompressed", number(0)),
  required("offset", integer(0)),
  required("peakRssBytes", integer(0)),
  optional(
    "runCost",
    object(
      [
        required("baselineExecutedBytes", executedBytes),
        required(
          "baselineTimingsMs",
          object([required("continuation", number(0)), required("generation", number(0))], (v) => ({
            continuation: v[0],
            generation: v[1],
          })),
        ),
        required("decodeSteps", integer(0)),
        required("executedBytes", executedBytes),
        required("executionProvider", { kind: "enum", values: ["cpu", "cuda", "webgpu"] }),
        required("intraOpThreads", integer(0)),
        required("teacherForcedTokens", integer(0)),
        required(
          "tokensPerSecond",
          object(
            [
              required("baselineDecode", number(0)),
              required("baselineTeacherForced", number(0)),
              required("decode", number(0)),
              required("teacherForced", number(0)),
            ],
            (v) => ({ baselineDecode: v[0], baselineTeacherForced: v[1], decode: v[2], teacherForced: v[3] }),
          ),
        ),
      ],
      (v) => ({
        baselineExecutedBytes: v[0],
        baselineTimingsMs: v[1],
        decodeSteps: v[2],
        executedBytes: v[3],
        executionProvider: v[4],
        intraOpThreads: v[5],
        teacherForcedTokens: v[6],
        tokensPerSecond: v[7],
      }),
    ),
  ),
  required("sampleId", { kind: "identifier", strings: sampleIds }),
  required("sampleIndex", integer(0)),
  required("scoredTokens", integer(1)),
  required(
    "timingsMs",
    object(
      [
        required("compress", number(0)),
        required("continuation", number(0)),
        required("decompress", number(0)),
        required("generation", number(0)),
        required("prefill", number(0)),
      ],
      (v) => ({ compress: v[0], continuation: v[1], decompress: v[2], generation: v[3], prefill: v[4] }),
    ),
  ),
  required("tokenHash", { kind: "sha256" }),
  required("top1Matches", integer(0)),
  optional("weights", {
    kind: "leftToFullPath",
    schema: {
      type: "object",
      additionalProperties: false,
      required: ["bytesBaseline", "bytesCompressed", "parametersBaseline", "parametersStored"],
      properties: {
        bytesBaseline: { type: "integer", minimum: 1 },
        bytesCompressed: { type: "integer", minimum: 1 },
        parametersBaseline: { type: "integer", minimum: 1 },
        parametersStored: { type: "integer", minimum: 1 },
      },
    },
  }),
];

const RECORD_OBJECT = object([...RECORD_FIELDS], buildRecord);

/** The schema's rule on the keys left to the full path: a line holding neither meets it. */
const DEPENDENT_REQUIRED = { weights: ["logitCosineSum"], logitCosineSum: ["weights"] };

/** The schema fragment a value kind implements; `defs` collects the named objects. */
function schemaOf(value: ValueKind, defs: Record<string, unknown>): unknown {
  switch (value.kind) {
    case "integer":
    case "number":
      return { type: value.kind, minimum: value.minimum };
    case "integerOrNull":
      return { type: ["integer", "null"], minimum: value.minimum };
    case "integers":
      return { type: "array", items: { type: "integer", minimum: value.minimum } };
    case "identifier":
      return { type: "string", pattern: IDENTIFIER_PATTERN };
    case "sha256":
      return { type: "string", pattern: SHA256_PATTERN };
    case "document":
      return { type: "string", pattern: DOCUMENT_PATTERN };
    case "enum":
      return { enum: value.values };
    case "leftToFullPath":
      return value.schema;
    case "object": {
      const schema = {
        type: "object",
        additionalProperties: false,
        required: value.fields.filter((field) => field.required).map((field) => field.key),
        properties: Object.fromEntries(value.fields.map((field) => [field.key, schemaOf(field.value, defs)])),
      };
      if (value.ref === undefined) return schema;
      defs[value.ref] = schema;
      return { $ref: `#/$defs/${value.ref}` };
    }
  }
}

/** The same schema with every `required` list sorted (its order asserts nothing). */
function requiredSorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(requiredSorted);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      key === "required" && Array.isArray(item) ? [...item].sort() : requiredSorted(item),
    ]),
  );
}

/** Every object's fields in strictly ascending key order (UTF-16), as canonical JSON writes them. */
function fieldsAscending(fields: readonly Field[]): boolean {
  return fields.every(
    (field, index) =>
      (index === 0 || fields[index - 1].key < field.key) &&
      (field.value.kind !== "object" || fieldsAscending(field.value.fields)),
  );
}

/**
 * Whether every object's build gives its members' values under their keys, in field order, with
 * the keys left to the full path never and each optional one only when present.
 */
function fieldsBuilt(value: ValueKind): boolean {
  if (value.kind !== "object") return true;
  const { fields, build } = value;
  const kept = fields.filter((field) => field.value.kind !== "leftToFullPath");
  const absentSets = [[], ...kept.filter((field) => !field.required).map((field) => [field.key])];
  return (
    fields.every((field) => fieldsBuilt(field.value)) &&
    absentSets.every((absent: string[]) => {
      const built = build(fields.map((field, index) => (absent.includes(field.key) ? undefined : index)));
      const expected = kept.filter((field) => !absent.includes(field.key));
      return isDeepStrictEqual(
        Object.entries(built),
        expected.map((field) => [field.key, fields.indexOf(field)]),
      );
    })
  );
}

/** The schema RECORD_FIELDS implements, annotations left out, as record.schema.json states it. */
export function implementedRecordSchema(): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  const schema = schemaOf(RECORD_OBJECT, defs) as Record<string, unknown>;
  return { ...schema, $defs: defs, dependentRequired: DEPENDENT_REQUIRED };
}

/**
 * The reader, when `schema` (a parsed record.schema.json) is the one RECORD_FIELDS implements
 * ($schema and $id aside, annotations left out, `required` in any order); else undefined:
 * every line goes the full way.
 */
export function recordMatcherFor(schema: Record<string, unknown>): LineMatcher | undefined {
  const { $schema: _schema, $id: _id, ...asserted } = withoutAnnotations(schema) as Record<string, unknown>;
  const implemented = implementedRecordSchema();
  if (!fieldsAscending(RECORD_FIELDS) || !fieldsBuilt(RECORD_OBJECT)) return undefined;
  return isDeepStrictEqual(requiredSorted(asserted), requiredSorted(implemented))
    ? matchRecordLine
    : undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const SPACE = 0x20;
const TILDE = 0x7e;
const NULL_BYTES = ascii("null");

/** A field with its key's bytes as they open an object ('"key":') and follow a member (',"key":'). */
interface ReadField {
  key: string;
  required: boolean;
  value: ReadKind;
  first: Uint8Array;
  next: Uint8Array;
}
type ReadKind =
  | Exclude<ValueKind, { kind: "object" } | { kind: "enum" }>
  | { kind: "enum"; values: readonly string[]; quoted: readonly Uint8Array[] }
  | { kind: "object"; fields: readonly ReadField[]; build: Build; values: unknown[] };

function readFields(fields: readonly Field[]): ReadField[] {
  return fields.map((field) => ({
    key: field.key,
    required: field.required,
    first: ascii(`"${field.key}":`),
    next: ascii(`,"${field.key}":`),
    value:
      field.value.kind === "object"
        ? readObjectKind(field.value)
        : field.value.kind === "enum"
          ? { ...field.value, quoted: field.value.values.map((text) => ascii(JSON.stringify(text))) }
          : field.value,
  }));
}

function readObjectKind(value: Extract<ValueKind, { kind: "object" }>): ReadKind {
  return { kind: "object", fields: readFields(value.fields), build: value.build, values: [] };
}

const RECORD = readObjectKind(RECORD_OBJECT as Extract<ValueKind, { kind: "object" }>);

/**
 * The match in progress: the line's bytes, the cursor and the line's end. Module scratch, as
 * the reader neither yields nor keeps anything between lines.
 */
const NO_LINE = Buffer.alloc(0);
let line: Buffer = NO_LINE;
let at = 0;
let end = 0;
/** A value read, or this when the bytes are not shown. */
const NOT_SHOWN = Symbol("not shown");

function literal(text: Uint8Array): boolean {
  if (at + text.length > end) return false;
  for (let k = 0; k < text.length; k++) if (line[at + k] !== text[k]) return false;
  at += text.length;
  return true;
}

/**
 * A JSON number exactly as JSON.stringify writes it, at least `minimum` (and whole, for the
 * schema's "integer", which ajv takes to be any finite number with no fraction: 1e+21 is one).
 * Plain digits up to 15 (exact below 2^53) are summed as read; any other token must be its own
 * String(Number(token)).
 */
function readNumber(minimum: number, whole: boolean): number | typeof NOT_SHOWN {
  const from = at;
  let plain = true;
  let value = 0;
  while (at < end) {
    const byte = line[at];
    if (byte >= DIGIT_0 && byte <= DIGIT_9) value = value * 10 + (byte - DIGIT_0);
    else if (byte === DOT || byte === LOWER_E || byte === UPPER_E || byte === PLUS || byte === MINUS)
      plain = false;
    else break;
    at++;
  }
  const length = at - from;
  if (length === 0) return NOT_SHOWN;
  if (!plain || length > MAX_INTEGER_DIGITS || (length > 1 && line[from] === DIGIT_0)) {
    const token = line.toString("latin1", from, at);
    value = Number(token);
    if (String(value) !== token || (whole && !Number.isInteger(value))) return NOT_SHOWN;
  }
  return value < minimum ? NOT_SHOWN : value;
}

/** '"' identifier '"' as the identifier pattern allows it. */
function readIdentifier(recent: RecentStrings): string | typeof NOT_SHOWN {
  if (at >= end || line[at] !== QUOTE) return NOT_SHOWN;
  const from = at + 1;
  if (from >= end || IDENTIFIER_BYTES[line[from]] !== 2) return NOT_SHOWN;
  let close = from + 1;
  while (close < end && IDENTIFIER_BYTES[line[close]] !== 0) close++;
  if (close >= end || line[close] !== QUOTE || close - from > MAX_IDENTIFIER_BYTES) return NOT_SHOWN;
  at = close + 1;
  return recent.of(line, from, close);
}

function readSha256(): string | typeof NOT_SHOWN {
  if (at >= end || line[at] !== QUOTE) return NOT_SHOWN;
  const from = at + 1;
  const close = from + SHA256_HEX_CHARS;
  if (close >= end || line[close] !== QUOTE) return NOT_SHOWN;
  for (let k = from; k < close; k++) if (LOWER_HEX[line[k]] === 0) return NOT_SHOWN;
  at = close + 1;
  return hashes.of(line, from, close);
}

/** A document name of printable ASCII that JSON writes unescaped (no '"' or '\'), 1 to 512 characters. */
function readDocument(): string | typeof NOT_SHOWN {
  if (at >= end || line[at] !== QUOTE) return NOT_SHOWN;
  const from = at + 1;
  let close = from;
  while (close < end) {
    const byte = line[close];
    if (byte === QUOTE) break;
    if (byte < SPACE || byte > TILDE || byte === BACKSLASH) return NOT_SHOWN;
    close++;
  }
  const length = close - from;
  if (close >= end || length < 1 || length > MAX_DOCUMENT_CHARS) return NOT_SHOWN;
  at = close + 1;
  return documents.of(line, from, close);
}

/** '[' integers ']' each at least `minimum`. */
function readIntegers(minimum: number): number[] | typeof NOT_SHOWN {
  if (at >= end || line[at] !== OPEN_BRACKET) return NOT_SHOWN;
  at++;
  const values: number[] = [];
  if (at < end && line[at] === CLOSE_BRACKET) {
    at++;
    return values;
  }
  for (;;) {
    const value = readNumber(minimum, true);
    if (value === NOT_SHOWN || at >= end) return NOT_SHOWN;
    values.push(value);
    const separator = line[at++];
    if (separator === CLOSE_BRACKET) return values;
    if (separator !== COMMA) return NOT_SHOWN;
  }
}

function readValue(value: ReadKind): unknown {
  switch (value.kind) {
    case "integer":
      return readNumber(value.minimum, true);
    case "number":
      return readNumber(value.minimum, false);
    case "integerOrNull":
      return literal(NULL_BYTES) ? null : readNumber(value.minimum, true);
    case "integers":
      return readIntegers(value.minimum);
    case "identifier":
      return readIdentifier(value.strings);
    case "sha256":
      return readSha256();
    case "document":
      return readDocument();
    case "enum": {
      for (let k = 0; k < value.quoted.length; k++) if (literal(value.quoted[k])) return value.values[k];
      return NOT_SHOWN;
    }
    case "object":
      return readObject(value);
    case "leftToFullPath":
      return NOT_SHOWN;
  }
}

/**
 * '{' members '}' in the fields' order, every required one present, no other key. The members'
 * values go to the kind's own scratch list (no object nests inside one of its own kind, and
 * build copies them out), then into one object literal.
 */
function readObject(kind: Extract<ReadKind, { kind: "object" }>): Record<string, unknown> | typeof NOT_SHOWN {
  if (at >= end || line[at] !== OPEN_BRACE) return NOT_SHOWN;
  at++;
  const { fields, values } = kind;
  let first = true;
  for (let index = 0; index < fields.length; index++) {
    const field = fields[index];
    if (!literal(first ? field.first : field.next)) {
      if (field.required) return NOT_SHOWN;
      values[index] = undefined;
      continue;
    }
    first = false;
    const item = readValue(field.value);
    if (item === NOT_SHOWN) return NOT_SHOWN;
    values[index] = item;
  }
  if (at >= end || line[at] !== CLOSE_BRACE) return NOT_SHOWN;
  at++;
  return kind.build(values);
}

/** The record line's value as JSON.parse gives it, when the bytes are shown valid and canonical. */
export function matchRecordLine(bytes: Buffer, start: number, stop: number): SampleRecord | undefined {
  line = bytes;
  at = start;
  end = stop;
  const value = readValue(RECORD);
  // The chunk is not kept past the line.
  line = NO_LINE;
  return value === NOT_SHOWN || at !== stop ? undefined : (value as unknown as SampleRecord);
}
