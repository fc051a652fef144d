import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { packageRoot } from "../../src/paths.js";
import { RUNNER_CODES } from "../../src/verify/checks/index.js";
import { matchKvLayerLine } from "../../src/verify/fingerprint-line.js";
import { matchRecordLine } from "../../src/verify/record-line.js";
import { runChecks } from "../../src/verify/runner.js";
import { CHECK_ORDER } from "../../src/verify/types.js";
import { CHECK_UNITS } from "../../src/verify/verify-bundle.js";
import { bundleFixture, fixtureKey, fixtureValidators, resign } from "../helpers/bundle-fixture.js";

test("the runner walks one unit per check, in report order", () => {
  assert.deepEqual(
    CHECK_UNITS.map((unit) => unit.name),
    CHECK_ORDER,
  );
});

test("every code a check's source can emit is among its unit's declared codes", () => {
  const sources: Record<string, string[]> = {
    integrity: ["integrity.ts"],
    signature: ["signature.ts"],
    trust: ["trust.ts"],
    schemas: ["schemas.ts"],
    consistency: ["consistency.ts", "weights-consistency.ts"],
    "executed-cost": ["executed-cost.ts"],
    recompute: ["recompute.ts"],
    claims: ["claims.ts"],
    protocol: ["protocol.ts"],
    replay: ["replay.ts"],
    shards: ["shards.ts"],
  };
  for (const unit of CHECK_UNITS) {
    const declared = new Set<string>([...unit.codes, ...RUNNER_CODES]);
    for (const file of sources[unit.name] ?? []) {
      const text = readFileSync(join(packageRoot(), "src", "verify", "checks", file), "utf8");
      for (const [code] of text.matchAll(/"E_[A-Z0-9_]+"/g)) {
        assert.ok(declared.has(JSON.parse(code)), `${unit.name} (${file}) emits ${code}, undeclared`);
      }
    }
  }
});

test("nothing runs on a tampered entry: a config edited to a billion resamples is never bootstrapped", () => {
  const { contents } = bundleFixture();
  const config = JSON.parse(contents.entries.get("config.json")!.toString("utf8"));
  config.bootstrap.resamples = 1e9;
  contents.entries.set("config.json", Buffer.from(JSON.stringify(config)));
  const started = process.cpuUsage();
  const result = runChecks(contents, { requireTrusted: false, validators: fixtureValidators() });
  const byCheck = new Map(result.findings.map((finding) => [finding.check, finding]));
  assert.equal(byCheck.get("integrity")?.code, "E_INTEGRITY_HASH");
  for (const check of ["schemas", "consistency", "recompute", "claims", "protocol"] as const) {
    assert.equal(byCheck.get(check)?.code, "E_CHECK_SKIPPED", check);
    assert.equal(byCheck.get(check)?.ok, false);
  }
  assert.match(byCheck.get("recompute")!.message, /skipped because schemas, consistency failed/);
  assert.match(byCheck.get("schemas")!.message, /skipped because integrity failed/);
  // A billion resamples would take minutes; skipping takes nothing (loose bound: CPU, not wall).
  const used = process.cpuUsage(started);
  assert.ok(used.user + used.system < 5e6, `${used.user + used.system} µs of CPU`);
  assert.equal(result.exitCode, 4);
});

test("the context parses each entry once: every check reads the same object", () => {
  const { contents } = bundleFixture();
  resign(contents.entries, fixtureKey());
  const validators = fixtureValidators();
  const parse = JSON.parse;
  let parses = 0;
  JSON.parse = ((...args: Parameters<typeof JSON.parse>) => {
    parses++;
    return parse(...args);
  }) as typeof JSON.parse;
  try {
    runChecks(contents, { requireTrusted: false, validators });
  } finally {
    JSON.parse = parse;
  }
  // One parse per JSON document: 5 .json entries plus one per .jsonl line, plus the signing
  // domain's read of manifest.json's version inside the one Ed25519 verifier (src/bundle/sign.ts);
  // a KV fingerprint line and a records line are read by the one-pass readers instead
  // (fingerprint-line.ts, record-line.ts), no JSON.parse.
  const linesOf = (name: string) => contents.entries.get(name)!.toString("utf8").split("\n").slice(0, -1);
  const readInOnePass = (lines: string[], match: typeof matchKvLayerLine | typeof matchRecordLine) =>
    lines.filter((line) => match(Buffer.from(line), 0, Buffer.byteLength(line)) !== undefined).length;
  const records = linesOf("records.jsonl");
  const fingerprints = linesOf("fingerprints.jsonl");
  const fingerprintsInOnePass = readInOnePass(fingerprints, matchKvLayerLine);
  const recordsInOnePass = readInOnePass(records, matchRecordLine);
  assert.ok(fingerprintsInOnePass > 0 && recordsInOnePass > 0);
  assert.equal(
    parses,
    5 + records.length - recordsInOnePass + fingerprints.length - fingerprintsInOnePass + 1,
  );
});

test("replay requires every check before it but those it runs beside (derived from CHECK_ORDER)", () => {
  const replay = CHECK_UNITS.find((unit) => unit.name === "replay");
  const before = CHECK_ORDER.slice(0, CHECK_ORDER.indexOf("replay"));
  // What replay may run without: the figures derived from the records, shards, and zip-safety (always first).
  const beside = ["zip-safety", "executed-cost", "recompute", "claims", "policy", "shards", "report-md"];
  assert.deepEqual(
    replay?.requires,
    before.filter((check) => !beside.includes(check)),
  );
  // The checks whose failure must keep a model's time from being spent (named in its reasons).
  for (const check of ["config-rules", "consistency", "budget", "protocol", "model", "draw"] as const)
    assert.ok(replay?.requires.includes(check), check);
});
