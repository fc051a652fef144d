/**
 * Verify streams records.jsonl and fingerprints.jsonl through the line folds as the zip
 * inflates (checks/lines.ts); entries already in memory go through the same folds from their
 * buffers. The two paths must judge every bundle alike, the streamed one must not keep the
 * lines, and a JSON Lines entry must read the same however its bytes are cut into chunks.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parse, stringify } from "yaml";
import { adversarialCases } from "../../scripts/adversarial-bundles.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { zipEntries } from "../../src/bundle/write.js";
import { isSpgError } from "../../src/errors.js";
import { mulberry32 } from "../../src/measure/prng.js";
import { bundledModelDir } from "../../src/paths.js";
import { JsonLinesReader, parseJsonLinesEntry } from "../../src/verify/parse.js";
import { defaultPolicyPath } from "../../src/verify/policy.js";
import { runChecks } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { bundleFixture } from "../helpers/bundle-fixture.js";

const dir = mkdtempSync(join(tmpdir(), "spg-streamed-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const shown = (findings: readonly { check: string; code?: string; ok: boolean; message: string }[]) =>
  findings.map((f) => `${f.check}:${f.ok ? "ok" : f.code}:${f.message}`);

test("streamed and in-memory verification give the same findings, bundle by bundle", async () => {
  const fixture = bundleFixture();
  const bundles: [string, Buffer][] = [
    ["valid", await zipEntries([...fixture.contents.entries].map(([name, data]) => ({ name, data })))],
    ...adversarialCases(fixture.contents.entries, 1).map((hostile): [string, Buffer] => [
      hostile.name,
      hostile.build(),
    ]),
  ];
  let compared = 0;
  for (const [name, zip] of bundles) {
    const path = join(dir, `${name}.zip`);
    writeFileSync(path, zip);
    const read = await readBundleZip(path);
    if (!read.ok) continue;
    const streamed = await verifyBundleFile(path, { requireTrusted: false, replay: false });
    const inMemory = runChecks({ entries: read.entries }, { requireTrusted: false });
    const checks = new Set(inMemory.findings.map((finding) => finding.check));
    assert.deepEqual(
      shown(streamed.findings.filter((finding) => checks.has(finding.check))),
      shown(inMemory.findings),
      name,
    );
    // The lines were folded as they passed, not kept.
    assert.equal(streamed.entries?.has("records.jsonl"), false, name);
    assert.equal(streamed.entries?.has("fingerprints.jsonl"), false, name);
    compared++;
  }
  assert.ok(compared >= 10, `${compared} bundles compared`);
});

test("a JSON Lines entry reads the same however its bytes are cut into chunks", () => {
  const inputs = [
    '{"a":1,"b":"é漢字"}\n{"c":[1,2,{"d":null}]}\n{"e":"\\u0000"}\n',
    '{"a":1}\n{"b":2}',
    '{"a":1}\n{"a":1,"a":2}\n',
    '{"a":1}\n{"b":1 }\n',
    '{"b":1,"a":2}\n',
    '\ufeff{"a":1}\n',
    `{"a":1}\n${"[".repeat(70)}${"]".repeat(70)}\n`,
    `{"a":1}\n${"[".repeat(70)}\n`,
    "",
  ];
  const invalidUtf8 = Buffer.concat([
    Buffer.from('{"a":1}\n{"b":"'),
    Buffer.from([0xc3, 0x28]),
    Buffer.from('"}\n'),
  ]);
  const next = mulberry32(3);
  for (const bytes of [...inputs.map((text) => Buffer.from(text, "utf8")), invalidUtf8]) {
    const whole = parseJsonLinesEntry(bytes, "r");
    for (let trial = 0; trial < 20; trial++) {
      const values: unknown[] = [];
      const reader = new JsonLinesReader("r", (value) => values.push(value));
      let at = 0;
      while (at < bytes.length) {
        const size = 1 + Math.floor(next() * 7);
        reader.push(bytes.subarray(at, at + size));
        at += size;
      }
      const verdict = reader.end();
      if (whole.ok) {
        assert.deepEqual(verdict, { ok: true, value: whole.value.length });
        assert.deepEqual(values, whole.value);
      } else {
        assert.deepEqual(verdict, whole);
      }
    }
  }
  // The valid input's lines are exactly what JSON.parse gives, line by line.
  const text = inputs[0];
  const parsed = parseJsonLinesEntry(Buffer.from(text, "utf8"), "r");
  assert.ok(parsed.ok);
  assert.deepEqual(
    parsed.value,
    text
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line)),
  );
});

test("the policy bounds every entry verify holds, not the streamed ones", async () => {
  const { entries } = bundleFixture().contents;
  const path = join(dir, "held.zip");
  writeFileSync(path, await zipEntries([...entries].map(([name, data]) => ({ name, data }))));
  const streamed = new Set(["records.jsonl", "fingerprints.jsonl"]);
  const largestHeld = Math.max(
    ...[...entries].filter(([name]) => !streamed.has(name)).map(([, data]) => data.length),
  );
  assert.ok((entries.get("records.jsonl")?.length ?? 0) > largestHeld, "records.jsonl is the larger one");
  const withLimit = (limit: number) => {
    const policy = parse(readFileSync(defaultPolicyPath(), "utf8"));
    policy.bundle = { maxHeldEntryBytes: limit };
    const file = join(dir, `policy-${limit}.yaml`);
    writeFileSync(file, stringify(policy));
    return verifyBundleFile(path, { requireTrusted: false, replay: false, policyFile: file });
  };
  const within = await withLimit(largestHeld);
  assert.equal(within.exitCode, 0, shown(within.findings.filter((f) => !f.ok)).join("; "));
  const over = await withLimit(largestHeld - 1);
  assert.equal(over.exitCode, 3);
  assert.match(over.findings[0]?.message ?? "", /held in memory/);
  assert.equal(over.findings[0]?.code, "E_ZIP_TOO_LARGE");
});

test("the verifier's model is read only when replay runs; a bad --model path is still refused first", async () => {
  // A checkpoint whose layout is right but whose weights are not safetensors: reading it fails.
  // As large as the real weights (zeros), so the config's sizes fit the files' bytes.
  const model = join(dir, "unreadable-model");
  mkdirSync(model, { recursive: true });
  copyFileSync(join(bundledModelDir(), "config.json"), join(model, "config.json"));
  const weightBytes = statSync(join(bundledModelDir(), "model.safetensors")).size;
  writeFileSync(join(model, "model.safetensors"), Buffer.alloc(weightBytes));
  const { entries } = bundleFixture().contents;
  const tampered = new Map(entries);
  tampered.set("report.md", Buffer.from("# changed after signing\n"));
  const path = join(dir, "tampered.zip");
  writeFileSync(path, await zipEntries([...tampered].map(([name, data]) => ({ name, data }))));
  // Integrity fails, so replay never runs and the model is never read.
  const result = await verifyBundleFile(path, {
    requireTrusted: false,
    replay: { samples: 1, modelDir: model },
  });
  assert.equal(result.exitCode, 4);
  assert.equal(result.findings.find((finding) => finding.check === "replay")?.code, "E_CHECK_SKIPPED");
  await assert.rejects(
    verifyBundleFile(path, {
      requireTrusted: false,
      replay: { samples: 1, modelDir: join(dir, "no-such-model") },
    }),
    (error) => isSpgError(error) && error.code === "E_CHECKPOINT_MISSING" && error.exitCode === 2,
  );
});
