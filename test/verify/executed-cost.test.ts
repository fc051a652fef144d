import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { readBundleZip } from "../../src/bundle/read.js";
import type { SampleRecord } from "../../src/bundle/types.js";
import { packageRoot } from "../../src/paths.js";
import { runChecks, type VerifyOptions } from "../../src/verify/runner.js";
import type { Finding } from "../../src/verify/types.js";
import {
  buildEntries,
  canonicalJson,
  type FixtureParts,
  fixtureKey,
  fixtureParts,
  fixtureSignedMessage,
  fixtureValidators,
  resign,
} from "../helpers/bundle-fixture.js";

const key = fixtureKey();
const options: VerifyOptions = {
  signedMessage: fixtureSignedMessage,
  trustedKeyIds: new Set([key.keyId]),
  requireTrusted: true,
  validators: fixtureValidators(),
};
const failing = (findings: Finding[]) => findings.filter((f) => !f.ok).map((f) => f.code);
const executedCost = (findings: Finding[]) => findings.filter((f) => f.check === "executed-cost");

function verify(parts: FixtureParts, version: 1 | 2 | 3 | 4) {
  return runChecks({ entries: buildEntries(parts, { key, version }) }, options);
}

/** A version 3 bundle whose records a forger rewrote after summarizing, re-signed with a trusted key. */
function forged(edit: (records: SampleRecord[], parts: FixtureParts) => void) {
  const parts = fixtureParts({ runCost: true });
  const entries = buildEntries(parts, { key, version: 4 });
  edit(parts.records, parts);
  entries.set("records.jsonl", Buffer.from(`${parts.records.map((r) => canonicalJson(r)).join("\n")}\n`));
  entries.set(
    "fingerprints.jsonl",
    Buffer.from(`${parts.fingerprints.map((f) => canonicalJson(f)).join("\n")}\n`),
  );
  resign(entries, key);
  return runChecks({ entries }, options);
}

test("a version 4 bundle with run cost verifies, and its summary states the run-cost ratios", () => {
  const parts = fixtureParts({ runCost: true });
  const result = verify(parts, 4);
  assert.deepEqual(failing(result.findings), []);
  assert.equal(executedCost(result.findings)[0].code, "OK");
  const stream = result.recomputed!.methods.stream;
  // Closed form: per sample, the weights W are the same; the cache reads 2 · hidden · slots · 4 per layer.
  const record = parts.records.find((r) => r.method === "stream")!;
  const weights = record.runCost!.executedBytes.weights;
  const kv = (slots: number) => 2 * 2 * 8 * (slots + 6) * 4; // layers 2, hidden 8, room 6
  const kept = [12, 8, 10];
  const baseline = kept.reduce((t) => t + weights + kv(16), 0);
  const method = kept.reduce((t, s) => t + weights + kv(s), 0);
  assert.equal(stream.executedMemoryRatio, baseline / method);
  // Decode: 6 steps in 3 ms against 6 in 4 ms on every sample.
  assert.ok(Math.abs(stream.decodeSpeedRatio! - 4 / 3) < 1e-12);
  assert.ok(stream.intervals.executedMemoryRatio!.low <= stream.executedMemoryRatio!);
});

test("an older-format bundle without run cost verifies with a warning naming what is missing", () => {
  const result = verify(fixtureParts({ runCost: false }), 2);
  assert.ok(result.passed);
  const [finding] = executedCost(result.findings);
  assert.equal(finding.code, "W_EXECUTED_COST_ABSENT");
  assert.equal(finding.warning, true);
  assert.match(finding.message, /runCost/);
  assert.equal(result.recomputed!.methods.stream.executedMemoryRatio, undefined);
});

test("a version 4 bundle without run cost fails", () => {
  const result = verify(fixtureParts({ runCost: false }), 4);
  assert.ok(failing(result.findings).includes("E_EXECUTED_BYTES"));
});

test("a claim on a run-cost metric in an older-format bundle fails, never passes", () => {
  const parts = fixtureParts({ runCost: false });
  parts.config.claims.push({
    method: "stream",
    metric: "executed_memory_ratio",
    op: ">=",
    threshold: 1,
    judge: "point",
  });
  // The producer could not summarize it either: hand verify the v3 summary of the same records.
  parts.summary = verify(fixtureParts({ runCost: true }), 4).recomputed;
  const result = verify(parts, 2);
  assert.equal(result.passed, false);
  assert.ok(failing(result.findings).includes("E_RECOMPUTE_FAILED"));
});

test("claims may name executed_memory_ratio and decode_speed_ratio", () => {
  const parts = fixtureParts({ runCost: true });
  parts.config.claims.push(
    { method: "stream", metric: "executed_memory_ratio", op: ">=", threshold: 1, judge: "bound" },
    { method: "stream", metric: "decode_speed_ratio", op: ">=", threshold: 10, judge: "point" },
  );
  const result = verify(parts, 4);
  const claims = result.recomputed!.claims.slice(-2);
  assert.deepEqual(
    claims.map((c) => c.pass),
    [true, false],
  );
  assert.deepEqual(failing(result.findings), ["E_CLAIM_FAILED"]);
});

test("executed bytes that do not follow from the shapes and fingerprints fail", () => {
  const cases: [string, (records: SampleRecord[], parts: FixtureParts) => void][] = [
    ["method kv", (records) => (records[1].runCost!.executedBytes.kv += 4)],
    ["method weights", (records) => (records[1].runCost!.executedBytes.weights -= 4)],
    ["baseline weights", (records) => (records[0].runCost!.baselineExecutedBytes.weights *= 2)],
    ["baseline kv", (records) => (records[0].runCost!.baselineExecutedBytes.kv += 8)],
    [
      "slotsRead past the kept slots",
      (_records, parts) => {
        for (const line of parts.fingerprints) if (line.method === "stream") line.slotsRead = 40;
      },
    ],
    [
      "slotsRead missing",
      (_records, parts) => {
        delete parts.fingerprints[0].slotsRead;
      },
    ],
  ];
  for (const [name, edit] of cases) {
    const result = forged(edit);
    assert.ok(failing(result.findings).includes("E_EXECUTED_BYTES"), `${name}: ${failing(result.findings)}`);
  }
});

test("a changed model architecture in environment.json fails the executed bytes", () => {
  const parts = fixtureParts({ runCost: true });
  const entries = buildEntries(parts, { key, version: 4 });
  parts.environment.model.architecture!.intermediateSize *= 2;
  entries.set("environment.json", Buffer.from(canonicalJson(parts.environment)));
  resign(entries, key);
  assert.ok(failing(runChecks({ entries }, options).findings).includes("E_EXECUTED_BYTES"));
});

test("speeds, token counts and provider that disagree with the timings, config or environment fail", () => {
  const cases: [string, (records: SampleRecord[]) => void][] = [
    ["decode speed", (records) => (records[1].runCost!.tokensPerSecond.decode *= 2)],
    ["baseline speed", (records) => (records[0].runCost!.tokensPerSecond.baselineTeacherForced += 1)],
    ["decode steps", (records) => (records[1].runCost!.decodeSteps += 1)],
    ["teacher-forced tokens", (records) => (records[1].runCost!.teacherForcedTokens -= 1)],
    ["provider", (records) => (records[1].runCost!.executionProvider = "cuda")],
  ];
  for (const [name, edit] of cases) {
    const result = forged(edit);
    assert.ok(failing(result.findings).includes("E_EXECUTED_SPEED"), `${name}: ${failing(result.findings)}`);
  }
});

test("a factor rank stated below the policy's (fewer executed bytes claimed) fails", async () => {
  const read = await readBundleZip(join(packageRoot(), "bundles", "weights.zip"));
  assert.ok(read.ok);
  if (!read.ok) return;
  const entries = new Map(read.entries);
  const lines = entries.get("fingerprints.jsonl")!.toString("utf8").trim().split("\n");
  // naive: rank 128 on every matrix (full rank on 128-wide ones); state one factor at rank 1.
  const at = lines.findIndex(
    (line) => line.includes('"encoding":"lowrank"') && line.includes('"method":"naive"'),
  );
  assert.ok(at >= 0);
  const line = JSON.parse(lines[at]) as { rank: number };
  line.rank = 1;
  lines[at] = canonicalJson(line);
  entries.set("fingerprints.jsonl", Buffer.from(`${lines.join("\n")}\n`));
  resign(entries, key);
  const result = runChecks({ entries }, options);
  const messages = result.findings.filter((f) => f.code === "E_EXECUTED_BYTES").map((f) => f.message);
  assert.ok(
    messages.some((m) => /rank 1, the policy gives 128/.test(m)),
    messages.join("\n"),
  );
});
