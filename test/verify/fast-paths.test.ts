/**
 * Verify's fast paths never change a verdict: the byte scan that spares a canonical line its
 * re-serialization (parse.ts writtenCanonically) says yes only to text that is JSON.stringify's
 * own output with every object's keys ascending (what the full check accepts), and the precompiled schemas (and the oneOf shortcut on fingerprint lines) pass
 * and fail exactly what the schemas compiled now do, with the same errors.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { canonicalJsonString } from "../../src/bundle/canonical.js";
import { MAX_JSON_NESTING } from "../../src/bundle/format.js";
import { Mulberry32 } from "../../src/data/prng.js";
import { schemasDir } from "../../src/paths.js";
import { parseJsonEntry, writtenCanonically } from "../../src/verify/parse.js";
import { loadSchemaValidators, precompiledSchemasSource } from "../../src/verify/schemas.js";
import { fixtureParts } from "../helpers/bundle-fixture.js";

const KEYS = [
  "a",
  "b",
  "B",
  "16",
  "8",
  "0",
  "01",
  "10",
  "9",
  "4294967296",
  "__proto__",
  "é",
  'q"',
  "",
  "-1",
  "$",
];
const STRINGS = ["x", "é", "\n", "\\", "\u2028", "\u007f", "", "a b", "😀"];
const NUMBERS = [0, -0, 1, -1, 1.5, 1e21, 1e-7, 123456789012345, 1234567890123456800, 0.1, 2.5e-300, -42];

function randomValue(next: () => number, depth: number): unknown {
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)];
  const kind = depth > 3 ? Math.floor(next() * 4) : Math.floor(next() * 6);
  if (kind === 0) return pick(STRINGS);
  if (kind === 1) return pick(NUMBERS);
  if (kind === 2) return pick([true, false, null]);
  if (kind === 3) return Math.floor(next() * 1000);
  if (kind === 4) return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 5); i > 0; i--) {
    // An own data property, as JSON.parse makes ("__proto__" included).
    Object.defineProperty(object, pick(KEYS), {
      value: randomValue(next, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return object;
}

/** Whether every object in the value lists its keys in ascending UTF-16 order. */
function keysAscending(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (Array.isArray(value)) return value.every(keysAscending);
  const keys = Object.keys(value);
  return (
    keys.every((key, index) => index === 0 || keys[index - 1] < key) &&
    Object.values(value).every(keysAscending)
  );
}

/** Texts near canonical ones: other key orders, whitespace, number forms, escapes, repeated keys. */
function variants(value: unknown): string[] {
  const canonical = canonicalJsonString(value);
  return [
    canonical,
    JSON.stringify(value),
    JSON.stringify(value, null, 1),
    canonical.replace(/([0-9])([,}\]])/, "$1.0$2"),
    canonical.replace(/"a"/, '"\\u0061"'),
    canonical.replace(/\{"/, '{"a":1,"'),
    canonical.replace(/:1([,}])/, ":1e0$1"),
    canonical.replace(/:0([,}])/, ":-0$1"),
  ];
}

test("the byte scan says canonical only of JSON.stringify's own text with keys ascending, and of most canonical text", () => {
  const generator = new Mulberry32(20261207);
  const next = () => generator.nextUint32() / 4294967296;
  let accepted = 0;
  let canonicalWithoutEscapes = 0;
  for (let round = 0; round < 3000; round++) {
    const value = randomValue(next, 0);
    for (const text of variants(value)) {
      const bytes = Buffer.from(text, "utf8");
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        continue;
      }
      if (writtenCanonically(bytes, 0, bytes.length)) {
        accepted += 1;
        // What the scan shows: the text is V8's own serialization of the value, every object's keys ascending.
        assert.equal(JSON.stringify(parsed), text, `scanned as canonical: ${text}`);
        assert.ok(keysAscending(parsed), `scanned as canonical: ${text}`);
        assert.equal(parseJsonEntry(bytes, "c").ok, true, text);
      }
    }
    const canonical = canonicalJsonString(value);
    if (!canonical.includes("\\")) canonicalWithoutEscapes += 1;
  }
  // The scan is the path of every line spg writes: it must take most canonical texts.
  assert.ok(accepted > canonicalWithoutEscapes / 2, `${accepted} of ${canonicalWithoutEscapes}`);
  // Limits the scan refers to the full checks: too deep, index keys out of JavaScript's order.
  const deep = Buffer.from(`${"[".repeat(MAX_JSON_NESTING + 1)}${"]".repeat(MAX_JSON_NESTING + 1)}`);
  assert.equal(writtenCanonically(deep, 0, deep.length), false);
  for (const text of ['{"16":1,"8":2}', '{"$":1,"16":2}', '{"a":1,"a":2}', '{"a":1.0}', '{"a":-0}']) {
    assert.equal(writtenCanonically(Buffer.from(text), 0, text.length), false, text);
  }
  for (const text of ['{"16":1,"32":2,"a":[1,-2,0.5,"é"]}', '{"__proto__":{"8":1}}', "[]", '"x"']) {
    assert.equal(writtenCanonically(Buffer.from(text), 0, Buffer.byteLength(text)), true, text);
  }
});

test("precompiled schemas and the oneOf shortcut pass and fail what schemas compiled now do, with the same errors", () => {
  // The module as the build writes it, beside this test so its requires resolve to the package's ajv.
  const here = dirname(fileURLToPath(import.meta.url));
  const precompiledFile = join(here, "fast-paths-compiled-schemas.cjs");
  const changed = mkdtempSync(join(tmpdir(), "spg-schemas-"));
  try {
    writeFileSync(precompiledFile, precompiledSchemasSource());
    const ahead = loadSchemaValidators(schemasDir(), precompiledFile);
    // Same schemas, other bytes: the precompiled module is not theirs, so they are compiled now.
    cpSync(schemasDir(), changed, { recursive: true });
    for (const file of readdirSync(changed)) {
      writeFileSync(join(changed, file), `${readFileSync(join(changed, file), "utf8")}\n`);
    }
    const now = loadSchemaValidators(changed, precompiledFile);
    const parts = fixtureParts({ samples: 3 });
    const kv = parts.fingerprints[0] as unknown as Record<string, unknown>;
    const weight = {
      kind: "weights",
      method: "w",
      tensor: "h.0.attn.q_proj",
      module: "q_proj",
      layer: 0,
      encoding: "lowrank",
      rank: 4,
      bits: 16,
      bytes: 10,
      baselineBytes: 20,
      parameters: 5,
      sha256: "0".repeat(64),
    };
    const fingerprints: unknown[] = [
      kv,
      weight,
      { ...kv, kind: "weights" },
      { ...weight, sampleId: "s" },
      { ...kv, layer: -1 },
      { ...kv, sha256: "X" },
      { ...kv, extra: 1 },
      { ...kv, bitsHistogram: { "33": 1 } },
      { ...weight, kind: undefined },
      { ...kv, sampleId: undefined },
      { ...weight, encoding: "other", rank: "x" },
      {},
      [],
      null,
      "line",
    ];
    const cases: [string, unknown[]][] = [
      ["fingerprints.jsonl", fingerprints],
      ["records.jsonl", [parts.records[0], { ...parts.records[0], nllBaseline: "x" }, {}]],
      ["config.json", [parts.config, { ...parts.config, seed: -1 }]],
      ["environment.json", [parts.environment, {}]],
    ];
    let shortcuts = 0;
    for (const [entry, values] of cases) {
      const fast = ahead.get(entry);
      const slow = now.get(entry);
      assert.equal(fast?.precompiled, true, entry);
      assert.equal(slow?.precompiled, false, entry);
      for (const value of values) {
        const shown = `${entry} ${JSON.stringify(value)}`;
        const verdict: boolean | undefined = slow?.validate?.(value);
        assert.equal(fast?.validate?.(value), verdict, shown);
        assert.deepEqual(fast?.validate?.errors, slow?.validate?.errors, shown);
        for (const accepts of [fast?.accepts, slow?.accepts]) {
          if (accepts?.(value) === true) {
            shortcuts += 1;
            assert.equal(verdict, true, `the shortcut passed ${shown}`);
          }
        }
      }
    }
    // The shortcut took the valid KV and weight lines, each under both compilations.
    assert.equal(shortcuts, 4);
  } finally {
    rmSync(precompiledFile, { force: true });
    rmSync(changed, { recursive: true, force: true });
  }
});
