import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_JSON_NESTING } from "../../src/bundle/format.js";
import { firstDuplicateKey, parseJsonEntry, parseJsonLinesEntry } from "../../src/verify/parse.js";

const codeOf = (result: { ok: boolean; code?: string }) => (result.ok ? "OK" : result.code);

test("JSON lines: canonical lines each ending in a newline; blank, broken or unterminated lines named", () => {
  assert.deepEqual(parseJsonLinesEntry(Buffer.from('{"a":1}\n{"b":"é"}\n'), "r"), {
    ok: true,
    value: [{ a: 1 }, { b: "é" }],
  });
  assert.equal(codeOf(parseJsonLinesEntry(Buffer.from('{"a":1}\n{"b":2}'), "r")), "E_JSON_NOT_CANONICAL");
  assert.deepEqual(parseJsonLinesEntry(Buffer.from(""), "r"), { ok: true, value: [] });
  const blank = parseJsonLinesEntry(Buffer.from('{"a":1}\n\n{"b":2}\n'), "r");
  assert.equal(codeOf(blank), "E_JSON_SYNTAX");
  assert.match(blank.ok ? "" : blank.error, /^r line 2 is not valid JSON/);
  const nan = parseJsonLinesEntry(Buffer.from('{"a":1}\n{"a":NaN}\n'), "r");
  assert.match(nan.ok ? "" : nan.error, /^r line 2 is not valid JSON/);
  assert.deepEqual(parseJsonLinesEntry(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), "r"), {
    ok: false,
    code: "E_ENTRY_UTF8",
    error: "r is not valid UTF-8",
  });
  assert.equal(codeOf(parseJsonLinesEntry(undefined, "r")), "E_ENTRY_MISSING");
  assert.equal(codeOf(parseJsonLinesEntry(Buffer.from('{"a":1,"a":2}\n'), "r")), "E_JSON_DUPLICATE_KEY");
});

test("JSON: parsed, or a named error with its own code", () => {
  assert.deepEqual(parseJsonEntry(Buffer.from('{"a":[1,2]}'), "c"), { ok: true, value: { a: [1, 2] } });
  assert.match((parseJsonEntry(Buffer.from("{"), "c") as { error: string }).error, /^c is not valid JSON/);
  assert.equal(codeOf(parseJsonEntry(Buffer.from([0xff]), "c")), "E_ENTRY_UTF8");
});

test("one BOM rule: refused in .json and .jsonl alike", () => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  assert.equal(codeOf(parseJsonEntry(Buffer.concat([bom, Buffer.from('{"a":1}')]), "c")), "E_ENTRY_BOM");
  assert.equal(
    codeOf(parseJsonLinesEntry(Buffer.concat([bom, Buffer.from('{"a":1}\n')]), "r")),
    "E_ENTRY_BOM",
  );
});

test("duplicate keys are refused, compared after decoding escapes, at any depth", () => {
  for (const text of ['{"a":1,"a":2}', '{"a":1,"\\u0061":2}', '{"x":[{"b":{"c":1,"c":1}}]}']) {
    assert.equal(codeOf(parseJsonEntry(Buffer.from(text), "c")), "E_JSON_DUPLICATE_KEY", text);
  }
  assert.equal(firstDuplicateKey('{"a":{"a":1},"b":["a","a"]}'), undefined);
  assert.equal(firstDuplicateKey('{"a":{"b":1},"c":{"b":2,"b":3}}'), "b");
  assert.equal(firstDuplicateKey('{"k\\"":1,"k\\"":2}'), 'k"');
});

test("anything but the canonical bytes is refused: whitespace, key order, number forms, escapes", () => {
  for (const text of [
    '{"a": 1}',
    '{"b":1,"a":2}',
    '{"a":1.0}',
    '{"a":1e2}',
    '{"a":"\\u0062"}',
    '{"a":1}\n',
  ]) {
    assert.equal(codeOf(parseJsonEntry(Buffer.from(text), "c")), "E_JSON_NOT_CANONICAL", text);
  }
  // Digits beyond float precision re-serialize differently: two parsers could disagree.
  assert.equal(
    codeOf(parseJsonEntry(Buffer.from('{"a":12345678901234567890123}'), "c")),
    "E_JSON_NOT_CANONICAL",
  );
});

test("nesting deeper than the format's limit is refused before any recursive walk", () => {
  const deep = (levels: number) => Buffer.from(`${"[".repeat(levels)}${"]".repeat(levels)}`);
  assert.equal(codeOf(parseJsonEntry(deep(MAX_JSON_NESTING), "c")), "OK");
  assert.equal(codeOf(parseJsonEntry(deep(MAX_JSON_NESTING + 1), "c")), "E_JSON_NESTING");
  // A million levels: refused quickly, no stack overflow.
  assert.equal(codeOf(parseJsonEntry(deep(1_000_000), "c")), "E_JSON_NESTING");
  // Brackets inside strings do not count.
  assert.equal(codeOf(parseJsonEntry(Buffer.from(`["${"[".repeat(1000)}"]`), "c")), "OK");
});
