/**
 * The one-pass fingerprint line reader (src/verify/fingerprint-line.ts) against the full path
 * it stands in for (parse.ts's strict parse: JSON.parse, nesting, duplicate keys, canonical
 * form; then fingerprint.schema.json through ajv), on seeded lines: valid ones, near misses
 * built from values, and byte-level mutations. Wherever it reads a line, the full path must
 * accept it and give the same value with the same key order; on every valid canonical KV
 * line it must read it (else the fast path would be a no-op that could hide nothing).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { MAX_JSON_NESTING } from "../../src/bundle/format.js";
import { schemasDir } from "../../src/paths.js";
import { kvLayerMatcherFor, matchKvLayerLine } from "../../src/verify/fingerprint-line.js";
import { parseJsonLinesEntry, parseStrict } from "../../src/verify/parse.js";
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
const validate = validators.get("fingerprints.jsonl")?.validate;

/** The full path's verdict on one line: its value when it parses strictly and matches the schema. */
function fullPath(bytes: Buffer): { ok: true; value: unknown } | { ok: false } {
  const parsed = parseStrict(bytes, 0, bytes.length, "fingerprints.jsonl", 1);
  if (!parsed.ok || validate === undefined) return { ok: false };
  return validate(parsed.value) ? { ok: true, value: parsed.value } : { ok: false };
}

function histogram(draw: Draw): Record<string, unknown> {
  const keys = [
    "1",
    "2",
    "4",
    "8",
    "9",
    "10",
    "16",
    "19",
    "20",
    "29",
    "30",
    "32",
    "33",
    "0",
    "01",
    "100",
    "a",
    "-1",
  ];
  const result: Record<string, unknown> = {};
  const members = draw.below(5);
  for (let k = 0; k < members; k++) {
    const key = draw.chance(0.9) ? draw.pick(keys.slice(0, 12)) : draw.pick(keys);
    result[key] = count(draw);
  }
  return result;
}

/** A KV layer fingerprint value, mostly valid; sometimes a field missing, added or a weight tensor's. */
function kvValue(draw: Draw): Record<string, unknown> {
  const value: Record<string, unknown> = {
    sampleId: draw.chance(0.5) ? `eval-${draw.below(20000)}` : identifier(draw),
    method: draw.chance(0.5) ? draw.pick(["full", "stream", "quant-4", "spg@0.5"]) : identifier(draw),
    layer: count(draw),
    tokensKept: count(draw),
    tokensTotal: draw.chance(0.95) ? 1 + draw.below(5000) : count(draw),
    headsFullPrecision: count(draw),
    bitsHistogram: draw.chance(0.97) ? histogram(draw) : draw.pick([[], null, { "16": { a: 1 } }]),
    bytes: count(draw),
    sha256: sha256(draw),
  };
  if (draw.chance(0.7)) value.slotsRead = count(draw);
  if (draw.chance(0.04)) delete value[draw.pick(Object.keys(value))];
  if (draw.chance(0.03)) value[draw.pick(["kind", "extra", "tensor", "__proto__", "Layer"])] = "weights";
  return value;
}

/** Near misses of one line: the shared ones and those of a fingerprint's own fields. */
function mutations(text: string, draw: Draw): string[] {
  return [
    ...lineMutations(text, draw),
    text.replace(/"sha256":"/, '"sha256":"\\u0030'),
    text.replace(/\{"16":(\d+)\}/, '{"16":$1,"16":$1}'),
    text.replace(/\{"(\d+)":(\d+),"(\d+)":(\d+)/, '{"$3":$4,"$1":$2'),
    text.replace(/"bitsHistogram":\{/, '"bitsHistogram":{"4":1,'),
    text.replace(/"bitsHistogram":\{/, '"bitsHistogram":{"8":1,'),
    text.replace(/,"tokensTotal":\d+/, ""),
  ];
}

test("the one-pass fingerprint reader accepts only what the full path accepts, with the same value, and every valid KV line", () => {
  assert.ok(validate !== undefined);
  const { lines, read, readable, fullAccepted } = differentialRun({
    seed: 20261207,
    rounds: 4000,
    value: kvValue,
    mutations,
    match: matchKvLayerLine,
    fullPath,
    // Every valid KV line, but one with an integer of 16 digits or more (left to the full path).
    meantToRead: (accepted) => {
      const value = accepted as Record<string, unknown>;
      if ("kind" in value) return false;
      const counts = [...Object.values(value), ...Object.values(value.bitsHistogram as object)];
      return !counts.some((item) => typeof item === "number" && item >= 1e15);
    },
  });
  // The seeded lines reach both sides: most originals valid, most mutations not.
  assert.ok(read > 2000 && read === readable, `${read} read, ${readable} readable`);
  assert.ok(lines - fullAccepted > lines / 2, `${fullAccepted} of ${lines} accepted by the full path`);
});

test("lines the reader leaves to the full path get the full path's code", () => {
  const good =
    '{"bitsHistogram":{"16":192,"32":24},"bytes":480,"headsFullPrecision":0,"layer":0,"method":"stream","sampleId":"eval-0000","sha256":"8a24bca53b6ba7a68e4cdcc3a921995c200c97e6a6093781f5a84a8e66f891ae","slotsRead":12,"tokensKept":24,"tokensTotal":32}';
  assert.notEqual(matchKvLayerLine(Buffer.from(good), 0, good.length), undefined);
  const codeOf = (text: string) => {
    const parsed = parseJsonLinesEntry(Buffer.from(`${text}\n`), "fingerprints.jsonl");
    return parsed.ok ? "OK" : parsed.code;
  };
  const cases: [string, string][] = [
    [good.replace('"bytes":480', '"bytes":480,"bytes":480'), "E_JSON_DUPLICATE_KEY"],
    [good.replace(":480", ":480.0"), "E_JSON_NOT_CANONICAL"],
    [good.replace(":480", ":NaN"), "E_JSON_SYNTAX"],
    [good.replace(":480", ":1e400"), "E_JSON_NOT_CANONICAL"],
    [
      good.replace(":480", `:${"[".repeat(MAX_JSON_NESTING + 1)}${"]".repeat(MAX_JSON_NESTING + 1)}`),
      "E_JSON_NESTING",
    ],
    [`\ufeff${good}`, "E_ENTRY_BOM"],
    [`${good}\r`, "E_JSON_NOT_CANONICAL"],
    ['{"bitsHistogram":{"32":24,"16":192}}', "E_JSON_NOT_CANONICAL"],
  ];
  for (const [text, code] of cases) {
    assert.equal(matchKvLayerLine(Buffer.from(text), 0, Buffer.byteLength(text)), undefined, text);
    assert.equal(codeOf(text), code, text);
  }
});

test("the reader is used only where fingerprint.schema.json is the schema it implements", () => {
  const schema = JSON.parse(readFileSync(join(schemasDir(), "fingerprint.schema.json"), "utf8")) as Record<
    string,
    unknown
  >;
  assert.equal(kvLayerMatcherFor(schema), matchKvLayerLine);
  assert.equal(validators.get("fingerprints.jsonl")?.matchLine, matchKvLayerLine);
  /** The schema with the value at `path` set (the last key's parent must exist). */
  const changed = (path: string[], value: unknown) => {
    const copy = structuredClone(schema);
    let node = copy;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
    node[path[path.length - 1]] = value;
    return kvLayerMatcherFor(copy);
  };
  // Annotations change nothing; any assertion does.
  assert.equal(changed(["$defs", "kvLayer", "description"], "other words"), matchKvLayerLine);
  assert.equal(changed(["$defs", "kvLayer", "properties", "layer", "maximum"], 100), undefined);
  assert.equal(changed(["$defs", "kvLayer", "properties", "sha256", "pattern"], "^[0-9a-f]{40}$"), undefined);
  assert.equal(changed(["$defs", "kvLayer", "required"], ["sampleId"]), undefined);
  assert.equal(changed(["$defs", "weightTensor", "required"], ["method"]), undefined);
  assert.equal(changed(["anyOf"], schema.oneOf), undefined);
});
