/**
 * What verify re-derives without the model (the draw, report.md) and what its policy refuses,
 * on crafted bundles re-signed with the trusted fixture key: the signature, integrity and trust
 * hold, so only the check under test can catch them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { zipEntries } from "../../src/bundle/write.js";
import { loadLocalSplit } from "../../src/data/sources.js";
import { SpgError } from "../../src/errors.js";
import { checkDraw } from "../../src/verify/checks/draw.js";
import { effectiveTolerances, loadVerifyPolicy, type VerifyPolicy } from "../../src/verify/policy.js";
import {
  EXIT_CLAIMS,
  EXIT_INVALID,
  EXIT_PASS,
  runAllChecks,
  type VerifyOptions,
} from "../../src/verify/runner.js";
import type { Finding } from "../../src/verify/types.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import {
  buildEntries,
  type FixtureParts,
  fixtureKey,
  fixtureParts,
  fixtureSignedMessage,
  fixtureValidators,
  sha256Hex,
} from "../helpers/bundle-fixture.js";

const key = fixtureKey();
const options: VerifyOptions = {
  signedMessage: fixtureSignedMessage,
  trustedKeyIds: new Set([key.keyId]),
  requireTrusted: true,
  validators: fixtureValidators(),
};
const dir = mkdtempSync(join(tmpdir(), "spg-rederive-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Verify the parts as a producer holding the trusted key would sign them. */
async function verifySigned(parts: FixtureParts, policy?: VerifyPolicy) {
  const result = await runAllChecks({ entries: buildEntries(parts, { key }) }, { ...options, policy });
  const failing = result.findings.filter((f) => !f.ok).map((f) => `${f.check}:${f.code}`);
  return { result, failing };
}

const warnings = (findings: Finding[]) =>
  findings.filter((f) => f.warning).map((f) => `${f.check}:${f.code}`);

test("the fixture's samples are re-drawn from the bundled corpus and its report regenerated", async () => {
  const { result, failing } = await verifySigned(fixtureParts());
  assert.deepEqual(failing, []);
  // The fixture's model is a synthetic one, not here: its shapes are the signer's word.
  assert.deepEqual(warnings(result.findings), ["model:W_MODEL_NOT_CHECKED"]);
  assert.match(result.findings.find((f) => f.check === "draw")!.message, /re-drawn here .* identical/);
  assert.equal(result.exitCode, EXIT_PASS);
});

test("dropping the worst sample with its evaluation entry is refused without replay (protocol; the draw then skipped)", async () => {
  const parts = fixtureParts();
  // The worst sample for "stream" is the one with the largest extra NLL.
  const stream = parts.records.filter((r) => r.method === "stream");
  const worst = stream.reduce((a, b) =>
    b.nllCompressed - b.nllBaseline > a.nllCompressed - a.nllBaseline ? b : a,
  );
  parts.records = parts.records.filter((r) => r.sampleId !== worst.sampleId);
  parts.fingerprints = parts.fingerprints.filter((f) => f.sampleId !== worst.sampleId);
  parts.environment.evaluation.samples = parts.environment.evaluation.samples.filter(
    (s) => s.sampleId !== worst.sampleId,
  );
  parts.config.dataset.samples -= 1;
  const { result, failing } = await verifySigned(parts);
  // The later samples sit at other places than listed: protocol refuses it, and the draw, which
  // trusts those places, is not run on it (it used to report E_DRAW_MISMATCH).
  assert.ok(failing.includes("protocol:E_PROTOCOL_SAMPLE_INDEX"), failing.join());
  assert.ok(failing.includes("draw:E_CHECK_SKIPPED"), failing.join());
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("invented calibration hashes, a moved window and a swapped sample fail the draw", async () => {
  const calibration = fixtureParts();
  calibration.environment.calibration.samples = calibration.environment.calibration.samples.map((s, i) => ({
    ...s,
    tokenHash: sha256Hex(`random ${i}`),
  }));
  assert.deepEqual((await verifySigned(calibration)).failing, ["draw:E_DRAW_MISMATCH"]);

  const moved = fixtureParts();
  for (const record of moved.records) if (record.sampleIndex === 1) record.offset += 1;
  assert.deepEqual((await verifySigned(moved)).failing, ["draw:E_DRAW_RECORD"]);

  // Another window's hash in both the list and the records: consistent with itself, not with the draw.
  const swapped = fixtureParts();
  const other = sha256Hex("a friendlier window");
  swapped.environment.evaluation.samples[0].tokenHash = other;
  for (const record of swapped.records) if (record.sampleIndex === 0) record.tokenHash = other;
  assert.deepEqual((await verifySigned(swapped)).failing, ["draw:E_DRAW_MISMATCH", "draw:E_DRAW_RECORD"]);
});

test("a dataset the verifier does not hold is a warning, never a pass, and no bundle path is read", async () => {
  const parts = fixtureParts();
  parts.config.dataset.source = "text";
  parts.config.dataset.path = "/dev/zero";
  // A local split's calibration file (prove asks for it): neither path is read.
  parts.config.dataset.calibrationPath = "/dev/full";
  parts.environment.dataset.source = "text";
  // What prove records for a local source: drawn in one pass.
  parts.environment.dataset.sampling = "stream";
  const { result, failing } = await verifySigned(parts);
  assert.deepEqual(failing, []);
  assert.deepEqual(warnings(result.findings), ["model:W_MODEL_NOT_CHECKED", "draw:W_DRAW_NOT_CHECKED"]);
  assert.match(
    result.findings.find((f) => f.check === "draw")!.message,
    /^not checked: .*not available here/,
  );
});

test("a dataset the verifier does not hold fails a demanded replay (--replay all): nothing was replayed", async () => {
  const parts = fixtureParts();
  parts.config.dataset.source = "text";
  parts.config.dataset.path = "/dev/zero";
  // A local split's calibration file (prove asks for it): neither path is read.
  parts.config.dataset.calibrationPath = "/dev/full";
  parts.environment.dataset.source = "text";
  parts.environment.dataset.sampling = "stream";
  const file = join(dir, "dataset-not-here.zip");
  const entries = buildEntries(parts, { key });
  writeFileSync(file, await zipEntries([...entries].map(([name, data]) => ({ name, data }))));
  const demanded = await verifyBundleFile(file, {
    requireTrusted: false,
    replay: { samples: "all", required: true },
  });
  const replay = demanded.findings.find((f) => f.check === "replay")!;
  assert.equal(replay.code, "E_REPLAY_UNAVAILABLE");
  assert.match(replay.message, /dataset is not here/);
  assert.equal(demanded.exitCode, EXIT_INVALID);
  const auto = await verifyBundleFile(file, { requireTrusted: false, replay: { samples: "all" } });
  assert.equal(auto.findings.find((f) => f.check === "replay")!.code, "W_REPLAY_NOT_CHECKED");
  assert.equal(auto.exitCode, EXIT_PASS);
});

test("a dataset the verifier names is matched by sha256, never by its path", async () => {
  const evaluationFile = join(dir, "eval.txt");
  const calibrationFile = join(dir, "calibration.txt");
  writeFileSync(evaluationFile, "one document\n\n\nanother document\n");
  writeFileSync(calibrationFile, "calibration text\n");
  const parts = fixtureParts();
  parts.config.dataset.source = "text";
  parts.config.dataset.path = "/somewhere/the/producer/chose";
  const evaluation = await loadLocalSplit("text", evaluationFile, "eval");
  const calibration = await loadLocalSplit("text", calibrationFile, "calibration");
  parts.environment.dataset.sha256 = evaluation.sha256;
  parts.environment.dataset.calibrationSha256 = calibration.sha256;
  const given = { path: evaluationFile, calibrationPath: calibrationFile };
  const matched = await checkDraw({
    config: parts.config,
    environment: parts.environment,
    records: parts.records,
    dataset: given,
  });
  assert.ok(
    matched.findings.every((f) => f.code !== "E_DRAW_DATASET_MISMATCH" && f.code !== "W_DRAW_NOT_CHECKED"),
    JSON.stringify(matched.findings),
  );

  parts.environment.dataset.sha256 = sha256Hex("another corpus");
  const mismatch = await checkDraw({
    config: parts.config,
    environment: parts.environment,
    records: [],
    dataset: given,
  });
  assert.deepEqual(
    mismatch.findings.map((f) => f.code),
    ["E_DRAW_DATASET_MISMATCH"],
  );
});

test("report.md is regenerated: a signed report saying 450x fails", async () => {
  const parts = fixtureParts();
  parts.reportMd = "# spg proof bundle\n\nstream: 450x, verified.\n";
  const { result, failing } = await verifySigned(parts);
  assert.deepEqual(failing, ["report-md:E_REPORT_MD_MISMATCH"]);
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("the bundle's tolerances only tighten the verifier's", async () => {
  const policy = loadVerifyPolicy().replay.tolerances;
  const loose = effectiveTolerances(policy, { nllPerToken: 1e9, klPerToken: 1e9, agreementFraction: 1 });
  assert.deepEqual(loose.tolerances, policy);
  assert.equal(loose.ignored.length, 3);
  const tight = effectiveTolerances(policy, {
    nllPerToken: 0,
    klPerToken: policy.klPerToken,
    agreementFraction: 0,
  });
  assert.deepEqual(tight.tolerances, { ...policy, nllPerToken: 0, agreementFraction: 0 });
  assert.deepEqual(tight.ignored, []);

  // A loosened bundle passes the policy check with a note; consistency judges with the policy's.
  const parts = fixtureParts();
  parts.config.tolerances = { nllPerToken: 1e9, klPerToken: 1e9, agreementFraction: 1 };
  const record = parts.records.find((r) => r.method === "stream")!;
  record.nllBaseline += 1;
  const { result, failing } = await verifySigned(parts);
  assert.ok(failing.includes("consistency:E_CONSISTENCY_BASELINE_NLL"), failing.join());
  assert.match(result.findings.find((f) => f.check === "policy")!.message, /looser than this verifier's/);
  assert.deepEqual(result.thresholds?.replay.tolerances, policy);
});

test("a huge bootstrap.resamples is refused before anything is computed", async () => {
  const parts = fixtureParts();
  parts.config.bootstrap.resamples = 1e9;
  // The producer's summary: summarize() at 1e9 resamples is exactly what must not run.
  parts.summary = JSON.parse("{}");
  parts.reportMd = "";
  const { result, failing } = await verifySigned(parts);
  assert.ok(failing.includes("policy:E_POLICY_RESOURCE_BOUND"), failing.join());
  assert.ok(failing.includes("recompute:E_CHECK_SKIPPED"));
  assert.ok(failing.includes("claims:E_CHECK_SKIPPED"));
  assert.equal(result.recomputed, undefined);
});

test("the policy: minimum samples and resamples, a quality bound beside each ratio, interval width", async () => {
  const policy = loadVerifyPolicy();
  const strict: VerifyPolicy = structuredClone(policy);
  strict.samples.minimum = 4;
  strict.bootstrap.minimumResamples = 500;
  // The fixture keeps the same slots in every sample (its ratio interval is a point): the perplexity one is wide.
  strict.claims.maximumIntervalWidth = { perplexity_increase_pct: 0.1 };
  const { result, failing } = await verifySigned(fixtureParts(), strict);
  assert.deepEqual(failing, [
    "policy:E_POLICY_SAMPLES",
    "policy:E_POLICY_RESAMPLES",
    "policy:E_POLICY_INTERVAL_WIDTH",
  ]);
  assert.equal(result.exitCode, EXIT_CLAIMS);

  // top-1 agreement satisfies the claims check's quality rule, not the policy's.
  const unbounded = fixtureParts();
  unbounded.config.claims = [
    { method: "stream", metric: "compression_ratio", op: ">=", threshold: 1.2, judge: "point" },
    { method: "stream", metric: "top1_agreement", op: ">=", threshold: 0.5, judge: "point" },
  ];
  assert.deepEqual((await verifySigned(unbounded)).failing, ["policy:E_POLICY_QUALITY_BOUND"]);
});

test("a bad policy file is the verifier's error, named with its field", async () => {
  const file = join(dir, "policy.yaml");
  writeFileSync(file, "replay: {tolerances: {nllPerToken: -1, klPerToken: 0, agreementFraction: 0}}\n");
  assert.throws(
    () => loadVerifyPolicy(file),
    (error: unknown) => error instanceof SpgError && error.code === "E_VERIFY_POLICY" && error.exitCode === 2,
  );
  writeFileSync(file, "samples: {minimum: 1}\nsamples: {minimum: 2}\n");
  assert.throws(() => loadVerifyPolicy(file), /E_VERIFY_POLICY|Map keys must be unique/);
});
