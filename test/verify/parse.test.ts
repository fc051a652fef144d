import assert from "node:assert/strict";
import { test } from "node:test";
import { parseJsonEntry, parseJsonLinesEntry } from "../../src/verify/parse.js";

test("JSON lines: final newline optional, blank or broken lines named, invalid UTF-8 refused", () => {
  assert.deepEqual(parseJsonLinesEntry(Buffer.from('{"a":1}\n{"b":"é"}\n'), "r"), {
    ok: true,
    value: [{ a: 1 }, { b: "é" }],
  });
  assert.deepEqual(parseJsonLinesEntry(Buffer.from('{"a":1}\n{"b":2}'), "r"), {
    ok: true,
    value: [{ a: 1 }, { b: 2 }],
  });
  assert.deepEqual(parseJsonLinesEntry(Buffer.from(""), "r"), { ok: true, value: [] });
  const blank = parseJsonLinesEntry(Buffer.from('{"a":1}\n\n{"b":2}\n'), "r");
  assert.equal(blank.ok, false);
  assert.match(blank.ok ? "" : blank.error, /^r line 2 is not valid JSON/);
  const nan = parseJsonLinesEntry(Buffer.from('{"a":1}\n{"a":NaN}\n'), "r");
  assert.match(nan.ok ? "" : nan.error, /^r line 2 is not valid JSON/);
  assert.deepEqual(parseJsonLinesEntry(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), "r"), {
    ok: false,
    error: "r is not valid UTF-8",
  });
  assert.deepEqual(parseJsonLinesEntry(undefined, "r"), { ok: false, error: "r is missing" });
});

test("JSON: parsed, or a named error", () => {
  assert.deepEqual(parseJsonEntry(Buffer.from('{"a":[1,2]}'), "c"), { ok: true, value: { a: [1, 2] } });
  assert.match((parseJsonEntry(Buffer.from("{"), "c") as { error: string }).error, /^c is not valid JSON/);
  assert.deepEqual(parseJsonEntry(Buffer.from([0xff]), "c"), { ok: false, error: "c is not valid UTF-8" });
});
