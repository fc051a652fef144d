import assert from "node:assert/strict";
import { test } from "node:test";
import {
  canonicalJson,
  canonicalJsonl,
  canonicalJsonString,
  canonicalJsonStringByHand,
  isCanonicalJson,
  isCanonicalJsonl,
  parseJson,
  parseJsonl,
} from "../../src/bundle/canonical.js";
import { SpgError } from "../../src/errors.js";

function assertSpgError(fn: () => unknown, code: string, field?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof SpgError, `expected SpgError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  });
}

test("canonical JSON sorts keys recursively and writes no whitespace (golden string)", () => {
  const value = { b: 1, a: [true, null, "x", { d: 2, c: 3 }], c: { z: 0.1, y: -0, x: 1e21, w: 1.5e-7 } };
  assert.equal(
    canonicalJsonString(value),
    '{"a":[true,null,"x",{"c":3,"d":2}],"b":1,"c":{"w":1.5e-7,"x":1e+21,"y":0,"z":0.1}}',
  );
});

test("keys sort by UTF-16 code units, as RFC 8785 (not by code point)", () => {
  // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FFFF in UTF-16 order.
  const value = { "\uffff": 1, "😀": 2, é: 3, z: 4, Z: 5, "": 6, aa: 7, a: 8 };
  assert.equal(canonicalJsonString(value), '{"":6,"Z":5,"a":8,"aa":7,"z":4,"é":3,"😀":2,"\uffff":1}');
});

test("numbers use the shortest round-trip form", () => {
  assert.equal(
    canonicalJsonString([0.1 + 0.2, 5e-324, 2 ** 53, -1.5, 100, 1e-7]),
    "[0.30000000000000004,5e-324,9007199254740992,-1.5,100,1e-7]",
  );
});

test("strings are escaped as JSON requires and the output is UTF-8", () => {
  const text = 'line\nbreak"quote\u0001 tab\t é \ud800';
  const bytes = canonicalJson({ text });
  assert.equal(bytes.toString("utf8"), '{"text":"line\\nbreak\\"quote\\u0001 tab\\t é \\ud800"}');
  assert.deepEqual([...bytes.subarray(bytes.indexOf(0xc3), bytes.indexOf(0xc3) + 2)], [0xc3, 0xa9]);
});

test("the same content in another key order gives the same bytes", () => {
  const one = canonicalJson({ x: { b: [1, 2], a: "s" }, y: null });
  const two = canonicalJson({ y: null, x: { a: "s", b: [1, 2] } });
  assert.ok(one.equals(two));
  assert.deepEqual(parseJson(one), { x: { a: "s", b: [1, 2] }, y: null });
});

test("NaN, Infinity and undefined are refused with the JSON path named", () => {
  assertSpgError(() => canonicalJson({ a: { b: [1, Number.NaN] } }), "E_NON_FINITE", "$.a.b[1]");
  assertSpgError(() => canonicalJson({ x: Number.POSITIVE_INFINITY }), "E_NON_FINITE", "$.x");
  assertSpgError(() => canonicalJson([Number.NEGATIVE_INFINITY]), "E_NON_FINITE", "$[0]");
  assertSpgError(() => canonicalJson({ "odd key": undefined }), "E_NON_FINITE", '$["odd key"]');
  assertSpgError(
    () => canonicalJsonl([{ x: 1 }, { x: 2 }, { y: { x: Number.NaN } }]),
    "E_NON_FINITE",
    "$[2].y.x",
  );
});

test("values JSON cannot represent faithfully are refused", () => {
  assertSpgError(() => canonicalJson({ n: 1n }), "E_NON_JSON", "$.n");
  assertSpgError(() => canonicalJson({ t: new Float32Array(2) }), "E_NON_JSON", "$.t");
  assertSpgError(() => canonicalJson({ d: new Date(0) }), "E_NON_JSON", "$.d");
  assertSpgError(() => canonicalJson({ f: () => 1 }), "E_NON_JSON", "$.f");
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assertSpgError(() => canonicalJson(cycle), "E_NON_JSON", "$.self");
  // A shared (non-cyclic) reference is fine.
  const shared = { v: 1 };
  assert.equal(canonicalJsonString({ a: shared, b: shared }), '{"a":{"v":1},"b":{"v":1}}');
});

test("JSON Lines: one canonical value per line, each ending in a newline", () => {
  const bytes = canonicalJsonl([{ b: 1, a: 2 }, [], "s"]);
  assert.equal(bytes.toString("utf8"), '{"a":2,"b":1}\n[]\n"s"\n');
  assert.equal(canonicalJsonl([]).length, 0);
  assert.deepEqual(parseJsonl(bytes), [{ a: 2, b: 1 }, [], "s"]);
  assert.deepEqual(parseJsonl(Buffer.alloc(0)), []);
  assert.ok(isCanonicalJsonl(bytes));
  assert.equal(isCanonicalJsonl(Buffer.from('{"b":1,"a":2}\n')), false);
});

test("parse errors name the file and line", () => {
  assertSpgError(() => parseJson(Buffer.from("{nope"), "config.json"), "E_JSON_PARSE");
  assertSpgError(() => parseJson(Buffer.from([0x22, 0xff, 0x22]), "config.json"), "E_JSON_PARSE");
  assertSpgError(
    () => parseJsonl(Buffer.from('{"a":1}\n{"a":\n'), "records.jsonl"),
    "E_JSON_PARSE",
    "line 2",
  );
  assertSpgError(() => parseJsonl(Buffer.from('{"a":1}\n{"a":2}'), "records.jsonl"), "E_JSON_PARSE");
});

test("isCanonicalJson tells canonical bytes from equivalent non-canonical ones", () => {
  assert.ok(isCanonicalJson(Buffer.from('{"a":1,"b":[2]}')));
  assert.equal(isCanonicalJson(Buffer.from('{"b":[2],"a":1}')), false);
  assert.equal(isCanonicalJson(Buffer.from('{"a": 1,"b":[2]}')), false);
  assert.equal(isCanonicalJson(Buffer.from('{"a":1.0,"b":[2]}')), false);
  assert.equal(isCanonicalJson(Buffer.from("not json")), false);
});

test("random documents survive canonical serialization and parsing unchanged", () => {
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const make = (depth: number): unknown => {
    const pick = Math.floor(random() * (depth > 3 ? 4 : 6));
    if (pick === 0) return (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20);
    if (pick === 1)
      return String.fromCharCode(...Array.from({ length: 5 }, () => Math.floor(random() * 0x3000)));
    if (pick === 2) return random() < 0.5 ? null : random() < 0.5;
    if (pick === 3) return Math.floor(random() * 1e6);
    if (pick === 4) return Array.from({ length: Math.floor(random() * 4) }, () => make(depth + 1));
    const object: Record<string, unknown> = {};
    for (let i = 0; i < 4; i++) {
      // Integer-like keys ("16" sorts before "4") are where JS property order and canonical order differ.
      const key = random() < 0.3 ? String(Math.floor(random() * 40)) : `k${Math.floor(random() * 100)}`;
      object[key] = make(depth + 1);
    }
    return object;
  };
  for (let i = 0; i < 200; i++) {
    const value = make(0);
    const bytes = canonicalJson(value);
    // JSON.parse is the independent reference for what the bytes mean.
    assert.deepEqual(JSON.parse(bytes.toString("utf8")), value);
    assert.ok(isCanonicalJson(bytes));
    // The native fast path and the by-hand serializer are two implementations of one rule.
    assert.equal(bytes.toString("utf8"), canonicalJsonStringByHand(value));
  }
});

test("integer-like keys sort as strings, and documents with very many keys take the by-hand path", () => {
  assert.equal(
    canonicalJsonString({ "4": 1, "16": 2, "0": 3, "01": 4, a: 5 }),
    '{"0":3,"01":4,"16":2,"4":1,"a":5}',
  );
  const wide: Record<string, number> = {};
  for (let i = 2000; i > 0; i--) wide[`key${i}`] = i;
  const text = canonicalJsonString({ wide, "10": 1, "9": 2 });
  assert.equal(text, canonicalJsonStringByHand({ wide, "10": 1, "9": 2 }));
  assert.ok(
    text.startsWith('{"10":1,"9":2,"wide":{"key1":1,"key10":10,"key100":100,"key1000":1000,"key1001":1001,'),
  );
});

test("keys Object.prototype has (__proto__, constructor, toString) are written only where they are own keys", () => {
  // JSON.parse makes "__proto__" an own key, as a hostile bundle would; other objects must not inherit it.
  const value = JSON.parse(
    '{"a":{"__proto__":{"x":1}},"b":{"y":2},"c":{"constructor":3},"d":{"toString":4},"e":{}}',
  );
  const text = canonicalJsonString(value);
  assert.equal(
    text,
    '{"a":{"__proto__":{"x":1}},"b":{"y":2},"c":{"constructor":3},"d":{"toString":4},"e":{}}',
  );
  assert.equal(text, canonicalJsonStringByHand(value));
  assert.deepEqual(JSON.parse(text), value);
});
