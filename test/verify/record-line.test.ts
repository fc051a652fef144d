/**
 * The one-pass records line reader (src/verify/record-line.ts) against the full path it
 * stands in for (parse.ts's strict parse: JSON.parse, nesting, duplicate keys, canonical form;
 * then record.schema.json through ajv), on seeded lines: valid records, near misses built from
 * values (a field missing, added, out of range, of another type), and byte-level mutations.
 * Wherever it reads a line, the full path must accept it and give the same value with the
 * same key order; every valid canonical record it is meant to read it must read (else the fast
 * path would be a no-op that could hide nothing).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { schemasDir } from "../../src/paths.js";
import { parseJsonLinesEntry, parseStrict } from "../../src/verify/parse.js";
import { implementedRecordSchema, matchRecordLine, recordMatcherFor } from "../../src/verify/record-line.js";
import { loadSchemaValidators } from "../../src/verify/schemas.js";
import {
  count,
  type Draw,
  differentialRun,
  identifier,
  lineMutations,
  sha256,
} from "../helpers/line-draws.js";

const validators = loadSchemaValidators();
const validate = validators.get("records.jsonl")?.validate;

/** The full path's verdict on one line: its value when it parses strictly and matches the schema. */
function fullPath(bytes: Buffer): { ok: true; value: unknown } | { ok: false } {
  const parsed = parseStrict(bytes, 0, bytes.length, "records.jsonl", 1);
  if (!parsed.ok || validate === undefined) return { ok: false };
  return validate(parsed.value) ? { ok: true, value: parsed.value } : { ok: false };
}

/** A positive count (the schema's minimum 1), sometimes any count. */
function positive(draw: Draw): unknown {
  return draw.chance(0.95) ? 1 + draw.below(5000) : count(draw);
}

/** A measured figure: mostly non-negative floats of every size, sometimes what the schema or canonical form refuses. */
function figure(draw: Draw): unknown {
  if (draw.chance(0.9)) {
    return draw.pick([
      () => draw.unit() * 1000,
      () => draw.unit() * 1e-12,
      () => draw.below(100),
      () => 0,
      () => 5e-324,
      () => 1e21 * (1 + draw.unit()),
      () => 1.7976931348623157e308,
      () => 1e15 + draw.below(10),
    ])();
  }
  return draw.pick([-0.5, -0, -1e-7, "1.5", null, true, [0.5], {}]);
}

const DOCUMENTS = [
  "ce26",
  "ca01",
  "a b/c~d",
  "x".repeat(512),
  "x".repeat(513),
  "",
  'say "hi"',
  "back\\slash",
  "caf\u00e9",
  "tab\there",
  "del\u007f",
  "c1\u0085",
  "line\u2028sep",
  "\ud800",
];

function document(draw: Draw): unknown {
  if (draw.chance(0.8))
    return `c${draw.pick(["a", "b", "e", "k"])}${String(draw.below(50)).padStart(2, "0")}`;
  return draw.chance(0.95) ? draw.pick(DOCUMENTS) : draw.pick([7, null]);
}

function tokens(draw: Draw): unknown {
  if (draw.chance(0.05)) return draw.pick([null, "1", [1.5], [-1], [[1]]]);
  return Array.from({ length: draw.below(20) }, () => (draw.chance(0.98) ? draw.below(50257) : count(draw)));
}

/** A record's value, mostly valid; sometimes a field missing, added, of another type, or a weights method's. */
function recordValue(draw: Draw): Record<string, unknown> {
  const generation: Record<string, unknown> = {
    compared: count(draw),
    matches: count(draw),
    firstDivergence: draw.chance(0.5) ? null : count(draw),
  };
  if (draw.chance(0.7)) generation.baselineTokens = tokens(draw);
  if (draw.chance(0.7)) generation.tokens = tokens(draw);
  const value: Record<string, unknown> = {
    sampleId: draw.chance(0.5) ? `eval-${draw.below(20000)}` : identifier(draw),
    sampleIndex: count(draw),
    method: draw.chance(0.5) ? draw.pick(["full", "streaming", "quant-4", "spg@0.5"]) : identifier(draw),
    tokenHash: sha256(draw),
    document: document(draw),
    offset: count(draw),
    contextTokens: positive(draw),
    continuationTokens: positive(draw),
    scoredTokens: positive(draw),
    nllBaseline: figure(draw),
    nllCompressed: figure(draw),
    klSum: figure(draw),
    top1Matches: count(draw),
    generation,
    kvBytesBaseline: positive(draw),
    kvBytesCompressed: positive(draw),
    timingsMs: {
      prefill: figure(draw),
      compress: figure(draw),
      decompress: figure(draw),
      continuation: figure(draw),
      generation: figure(draw),
    },
    peakRssBytes: count(draw),
  };
  if (draw.chance(0.7)) {
    const executed = () => ({ weights: positive(draw), kv: count(draw) });
    value.runCost = {
      executionProvider: draw.chance(0.95)
        ? draw.pick(["cpu", "cuda", "webgpu"])
        : draw.pick(["gpu", "CPU", 1]),
      intraOpThreads: count(draw),
      executedBytes: executed(),
      baselineExecutedBytes: executed(),
      teacherForcedTokens: count(draw),
      decodeSteps: count(draw),
      baselineTimingsMs: { continuation: figure(draw), generation: figure(draw) },
      tokensPerSecond: {
        teacherForced: figure(draw),
        decode: figure(draw),
        baselineTeacherForced: figure(draw),
        baselineDecode: figure(draw),
      },
    };
  }
  if (draw.chance(0.05)) {
    const weights = { bytesBaseline: 10, bytesCompressed: 4, parametersBaseline: 5, parametersStored: 5 };
    if (draw.chance(0.8)) value.weights = weights;
    if (draw.chance(0.8)) value.logitCosineSum = figure(draw);
  }
  // A nested object or the record itself loses a member or gains one.
  const objects = [value, generation, value.timingsMs, value.runCost].filter(
    (item): item is Record<string, unknown> => typeof item === "object" && item !== null,
  );
  if (draw.chance(0.05)) {
    const target = draw.pick(objects);
    delete target[draw.pick(Object.keys(target))];
  }
  if (draw.chance(0.04))
    draw.pick(objects)[draw.pick(["extra", "kind", "__proto__", "Method", "tokens"])] = 1;
  return value;
}

/** Near misses of one line: the shared ones and those of a record's own fields. */
function mutations(text: string, draw: Draw): string[] {
  return [
    ...lineMutations(text, draw),
    text.replace(/"tokenHash":"/, '"tokenHash":"\\u0030'),
    text.replace(/"document":"/, '"document":"\\u0063'),
    text.replace(/"document":"/, '"document":"\\"'),
    text.replace(/"firstDivergence":null/, '"firstDivergence":nul'),
    text.replace(/"firstDivergence":null/, '"firstDivergence":false'),
    text.replace(/"executionProvider":"cpu"/, '"executionProvider":"cpu","executionProvider":"cpu"'),
    text.replace(/"baselineTokens":\[/, '"baselineTokens":[1.0,'),
    text.replace(/"baselineTokens":\[/, '"baselineTokens":[-0,'),
    text.replace(/"tokens":\[(\d+)/, '"tokens":[$1 '),
    text.replace(/"klSum":([^,]+)/, '"klSum":$1e0'),
    text.replace(/"klSum":([^,]+)/, '"klSum":$10'),
    text.replace(/"klSum":([^,]+)/, '"klSum":+$1'),
    text.replace(/"nllBaseline":([^,]+)/, '"nllBaseline":"$1"'),
    text.replace(/"prefill":([^,}]+)/, '"prefill":$1,"prefill":$1'),
    text.replace(/,"timingsMs":\{[^}]*\}/, ""),
    text.replace(/\{"compress"/, '{"aaa":1,"compress"'),
    text.replace(/"top1Matches":(\d+)\}$/, '"top1Matches":$1,"weights":{}}'),
  ];
}

test("the one-pass records reader accepts only what the full path accepts, with the same value, and every valid record it is meant to read", () => {
  assert.ok(validate !== undefined);
  const { lines, read, readable, fullAccepted } = differentialRun({
    seed: 20261208,
    rounds: 3000,
    value: recordValue,
    mutations,
    match: matchRecordLine,
    fullPath,
    // Every valid record but those the reader leaves to the full path by design: a weights
    // method's, a document outside printable unescaped ASCII.
    meantToRead: (accepted) => {
      const value = accepted as Record<string, unknown>;
      if ("weights" in value || "logitCosineSum" in value) return false;
      return /^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/.test(value.document as string);
    },
  });
  // The seeded lines reach both sides: many originals valid, most mutations not.
  assert.ok(read > 1000 && read === readable, `${read} read, ${readable} readable`);
  assert.ok(lines - fullAccepted > lines / 2, `${fullAccepted} of ${lines} accepted by the full path`);
});

const GOOD_RECORD =
  '{"contextTokens":1024,"continuationTokens":64,"document":"ce26","generation":{"baselineTokens":[262,898],"compared":2,"firstDivergence":null,"matches":2,"tokens":[262,898]},"klSum":3.703704010149522e-13,"kvBytesBaseline":2097152,"kvBytesCompressed":2097152,"method":"full","nllBaseline":477.8636445772751,"nllCompressed":477.8636445772751,"offset":1176,"peakRssBytes":496971776,"runCost":{"baselineExecutedBytes":{"kv":4259840,"weights":55679156},"baselineTimingsMs":{"continuation":118.3149000000003,"generation":142.07072599999992},"decodeSteps":16,"executedBytes":{"kv":4259840,"weights":55679156},"executionProvider":"cpu","intraOpThreads":0,"teacherForcedTokens":63,"tokensPerSecond":{"baselineDecode":112.61996366513964,"baselineTeacherForced":532.4773126630698,"decode":103.42126062398152,"teacherForced":388.8014853549782}},"sampleId":"eval-0000","sampleIndex":0,"scoredTokens":63,"timingsMs":{"compress":75.86573500000031,"continuation":162.03641799999968,"decompress":26.93659899999966,"generation":154.7070679999997,"prefill":259.49919699999964},"tokenHash":"6a165f86a59343cc72832b0b9249c30c0a6b960ee3392111f9ebdd3cb94f6417","top1Matches":63}';

test("records the reader leaves to the full path get the full path's code", () => {
  assert.deepEqual(matchRecordLine(Buffer.from(GOOD_RECORD), 0, GOOD_RECORD.length), JSON.parse(GOOD_RECORD));
  const codeOf = (text: string) => {
    const parsed = parseJsonLinesEntry(Buffer.from(`${text}\n`), "records.jsonl");
    return parsed.ok ? "OK" : parsed.code;
  };
  const cases: [string, string][] = [
    [GOOD_RECORD.replace('"offset":1176', '"offset":1176,"offset":1176'), "E_JSON_DUPLICATE_KEY"],
    [GOOD_RECORD.replace(":1176", ":1176.0"), "E_JSON_NOT_CANONICAL"],
    [GOOD_RECORD.replace(":477.8636445772751,", ":477.86364457727510,"), "E_JSON_NOT_CANONICAL"],
    [GOOD_RECORD.replace(":1176", ":NaN"), "E_JSON_SYNTAX"],
    [GOOD_RECORD.replace(":1176", ":1e400"), "E_JSON_NOT_CANONICAL"],
    [GOOD_RECORD.replace('"ce26"', '"c\\u006526"'), "E_JSON_NOT_CANONICAL"],
    [`\ufeff${GOOD_RECORD}`, "E_ENTRY_BOM"],
    [`${GOOD_RECORD}\r`, "E_JSON_NOT_CANONICAL"],
  ];
  for (const [text, code] of cases) {
    assert.equal(matchRecordLine(Buffer.from(text), 0, Buffer.byteLength(text)), undefined, text);
    assert.equal(codeOf(text), code, text);
  }
});

test("the reader is used only where record.schema.json is the schema it implements", () => {
  const schema = JSON.parse(readFileSync(join(schemasDir(), "record.schema.json"), "utf8")) as Record<
    string,
    unknown
  >;
  assert.equal(recordMatcherFor(schema), matchRecordLine);
  assert.equal(validators.get("records.jsonl")?.matchLine, matchRecordLine);
  assert.ok(implementedRecordSchema().$defs !== undefined);
  /** The schema with the value at `path` set (the last key's parent must exist). */
  const changed = (path: string[], value: unknown) => {
    const copy = structuredClone(schema);
    let node = copy;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
    node[path[path.length - 1]] = value;
    return recordMatcherFor(copy);
  };
  // Annotations and the order of a required list change nothing; any assertion does.
  assert.equal(changed(["properties", "document", "description"], "other words"), matchRecordLine);
  assert.equal(changed(["required"], [...(schema.required as string[])].reverse()), matchRecordLine);
  assert.equal(changed(["properties", "offset", "maximum"], 100), undefined);
  assert.equal(changed(["properties", "document", "pattern"], "^.{1,512}$"), undefined);
  assert.equal(changed(["properties", "klSum", "minimum"], 1), undefined);
  assert.equal(changed(["properties", "generation", "required"], ["compared"]), undefined);
  assert.equal(
    changed(["properties", "runCost", "properties", "executionProvider", "enum"], ["cpu"]),
    undefined,
  );
  assert.equal(changed(["$defs", "executedBytes", "properties", "kv", "minimum"], 1), undefined);
  assert.equal(changed(["dependentRequired"], {}), undefined);
  assert.equal(changed(["additionalProperties"], true), undefined);
  assert.equal(changed(["properties", "extra"], { type: "string" }), undefined);
});
