import assert from "node:assert/strict";
import { test } from "node:test";
import {
  EXIT_CLAIMS,
  EXIT_INVALID,
  EXIT_PASS,
  EXIT_TAMPERED,
  EXIT_UNREADABLE,
  exitCodeFor,
  runAllChecks,
  type VerifyOptions,
} from "../../src/verify/runner.js";
import { CHECK_ORDER, type Finding } from "../../src/verify/types.js";
import {
  buildEntries,
  bundleFixture,
  fixtureKey,
  fixtureParts,
  fixtureSignedMessage,
  fixtureValidators,
  resign,
} from "../helpers/bundle-fixture.js";

const validators = fixtureValidators();
const trusted = fixtureKey();
const options: VerifyOptions = {
  signedMessage: fixtureSignedMessage,
  trustedKeyIds: new Set([trusted.keyId]),
  requireTrusted: true,
  validators,
};

function failingCodes(findings: Finding[]): string[] {
  return findings.filter((finding) => !finding.ok).map((finding) => `${finding.check}:${finding.code}`);
}

test("the fixture bundle passes every check, one OK finding per check", async () => {
  const { contents } = bundleFixture();
  const result = await runAllChecks(contents, options);
  assert.deepEqual(failingCodes(result.findings), []);
  assert.equal(result.exitCode, EXIT_PASS);
  assert.equal(result.passed, true);
  assert.deepEqual(
    result.findings.map((finding) => finding.check),
    // zip-safety runs before the runner, replay after it (verify-bundle.ts); shards speaks
    // only for a shard or a merged bundle.
    CHECK_ORDER.filter((check) => check !== "zip-safety" && check !== "replay" && check !== "shards"),
  );
  assert.ok(result.recomputed !== undefined);
});

test("a byte flipped in records.jsonl is tampering (exit 4), and everything else is still reported", async () => {
  const { contents } = bundleFixture();
  const records = Buffer.from(contents.entries.get("records.jsonl")!);
  records[10] ^= 0x01;
  contents.entries.set("records.jsonl", records);
  const result = await runAllChecks(contents, options);
  assert.ok(failingCodes(result.findings).includes("integrity:E_INTEGRITY_HASH"));
  assert.equal(result.exitCode, EXIT_TAMPERED);
  assert.equal(result.findings.filter((finding) => finding.check === "protocol").length >= 1, true);
});

test("summary.json edited and re-signed with the trusted key: recompute fails (exit 5)", async () => {
  const parts = fixtureParts();
  const entries = buildEntries(parts);
  const summary = JSON.parse(entries.get("summary.json")!.toString("utf8"));
  summary.methods.stream.compressionRatio = 853.1;
  entries.set("summary.json", Buffer.from(JSON.stringify(summary)));
  resign(entries, trusted);
  const result = await runAllChecks({ entries }, options);
  assert.deepEqual(failingCodes(result.findings), ["recompute:E_RECOMPUTE_MISMATCH"]);
  assert.match(
    result.findings.find((finding) => !finding.ok)!.message,
    /summary\.methods\.stream\.compressionRatio/,
  );
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("records edited consistently and re-signed: the recomputed claims fail (exit 6)", async () => {
  const parts = fixtureParts();
  for (const record of parts.records) if (record.method === "stream") record.nllCompressed += 20;
  const entries = buildEntries(parts); // summary recomputed, so it agrees with the edited records
  const result = await runAllChecks({ entries }, options);
  assert.deepEqual(failingCodes(result.findings), ["claims:E_CLAIM_FAILED"]);
  assert.equal(result.exitCode, EXIT_CLAIMS);
});

test("a summary that claims to pass while the recomputed claims fail is caught twice", async () => {
  const parts = fixtureParts();
  for (const record of parts.records) if (record.method === "stream") record.nllCompressed += 20;
  const honest = buildEntries(parts);
  const summary = JSON.parse(honest.get("summary.json")!.toString("utf8"));
  for (const claim of summary.claims) claim.pass = true;
  summary.allClaimsPass = true;
  honest.set("summary.json", Buffer.from(JSON.stringify(summary)));
  resign(honest, trusted);
  const codes = failingCodes((await runAllChecks({ entries: honest }, options)).findings);
  assert.ok(codes.includes("recompute:E_RECOMPUTE_MISMATCH"));
  assert.ok(codes.includes("claims:E_CLAIM_FAILED"));
});

test("schema-invalid records skip the checks that need them, and skipping fails", async () => {
  const parts = fixtureParts();
  (parts.records[0] as unknown as Record<string, unknown>).extra = 1;
  const entries = buildEntries({ ...parts, summary: undefined });
  const result = await runAllChecks({ entries }, options);
  const codes = failingCodes(result.findings);
  assert.ok(codes.includes("schemas:E_SCHEMA_RECORDS"));
  assert.ok(codes.includes("consistency:E_CHECK_SKIPPED"));
  assert.ok(codes.includes("recompute:E_CHECK_SKIPPED"));
  assert.ok(codes.includes("claims:E_CHECK_SKIPPED"));
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("a check that throws becomes E_CHECK_CRASHED, not a crash", async () => {
  const { contents } = bundleFixture();
  const result = await runAllChecks(contents, {
    ...options,
    signedMessage: () => {
      throw new Error("boom");
    },
  });
  const crashed = result.findings.find((finding) => finding.code === "E_CHECK_CRASHED");
  assert.equal(crashed?.check, "signature");
  assert.equal(result.exitCode, EXIT_TAMPERED);
});

test("exit code precedence: tampered before invalid before claims", async () => {
  const finding = (check: Finding["check"]): Finding => ({
    check,
    code: "E_CHECK_CRASHED",
    ok: false,
    message: "",
  });
  assert.equal(exitCodeFor([]), EXIT_PASS);
  assert.equal(exitCodeFor([finding("claims"), finding("schemas")]), EXIT_INVALID);
  assert.equal(exitCodeFor([finding("claims"), finding("protocol"), finding("trust")]), EXIT_TAMPERED);
  assert.equal(exitCodeFor([finding("claims")]), EXIT_CLAIMS);
  assert.equal(exitCodeFor([finding("integrity"), finding("zip-safety")]), EXIT_UNREADABLE);
});

test("calibration/evaluation overlap, re-signed with the trusted key: E_PROTOCOL_LEAK (exit 5)", async () => {
  const parts = fixtureParts();
  parts.environment.calibration.samples[0].tokenHash = parts.environment.evaluation.samples[1].tokenHash;
  const result = await runAllChecks({ entries: buildEntries(parts) }, options);
  // The draw and the model check trust protocol-level facts: they are not run on a leaking run.
  assert.deepEqual(failingCodes(result.findings), [
    "protocol:E_PROTOCOL_LEAK",
    "model:E_CHECK_SKIPPED",
    "draw:E_CHECK_SKIPPED",
  ]);
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("missing model hash, re-signed: named by the protocol check as well as the schema (exit 5)", async () => {
  const parts = fixtureParts();
  delete (parts.environment.model as { sha256?: string }).sha256;
  const result = await runAllChecks({ entries: buildEntries(parts) }, options);
  assert.deepEqual(failingCodes(result.findings), [
    "schemas:E_SCHEMA_ENVIRONMENT",
    "config-rules:E_CHECK_SKIPPED",
    "consistency:E_CHECK_SKIPPED",
    "budget:E_CHECK_SKIPPED",
    "executed-cost:E_CHECK_SKIPPED",
    "recompute:E_CHECK_SKIPPED",
    "claims:E_CHECK_SKIPPED",
    "protocol:E_PROTOCOL_MODEL_HASH",
    "report-md:E_CHECK_SKIPPED",
    "model:E_CHECK_SKIPPED",
    "draw:E_CHECK_SKIPPED",
  ]);
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("an 853:1-style bundle: a ratio claim with no quality claim fails even when the ratio holds", async () => {
  const parts = fixtureParts();
  parts.config.claims = parts.config.claims.filter((claim) => claim.metric === "compression_ratio");
  const result = await runAllChecks({ entries: buildEntries(parts) }, options);
  assert.deepEqual(failingCodes(result.findings), [
    "claims:E_CLAIM_NO_QUALITY_BOUND",
    "policy:E_POLICY_QUALITY_BOUND",
  ]);
  assert.equal(result.exitCode, EXIT_CLAIMS);
});

test("a bootstrap too large to recompute is refused, not run (E_RECOMPUTE_LIMIT)", async () => {
  const parts = fixtureParts();
  parts.config.bootstrap.resamples = 1000;
  const result = await runAllChecks(
    { entries: buildEntries(parts) },
    { ...options, maxBootstrapDraws: 5999 },
  );
  assert.deepEqual(failingCodes(result.findings), [
    "recompute:E_RECOMPUTE_LIMIT",
    "claims:E_CHECK_SKIPPED",
    "report-md:E_CHECK_SKIPPED",
  ]);
  assert.equal(result.exitCode, EXIT_INVALID);
  assert.equal(
    (await runAllChecks({ entries: buildEntries(parts) }, { ...options, maxBootstrapDraws: 6000 })).passed,
    true,
  );
});
