import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { zipEntries } from "../../src/bundle/write.js";
import { packageRoot } from "../../src/paths.js";
import { loadVerifyPolicy } from "../../src/verify/policy.js";
import {
  EXIT_CLAIMS,
  EXIT_INVALID,
  EXIT_PASS,
  EXIT_TAMPERED,
  EXIT_UNREADABLE,
} from "../../src/verify/runner.js";
import { requireTrustedByDefault, verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { buildEntries, bundleFixture, fixtureKey, fixtureParts } from "../helpers/bundle-fixture.js";

const dir = mkdtempSync(join(tmpdir(), "spg-verify-cmd-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const keysFile = join(dir, "trusted-keys.txt");
writeFileSync(keysFile, `# the fixture's signer\n${fixtureKey().keyId}\n`);

async function writeZip(name: string, entries: Map<string, Buffer>): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, await zipEntries([...entries].map(([entryName, data]) => ({ name: entryName, data }))));
  return path;
}

const codes = (findings: { ok: boolean; code: string }[]) => findings.filter((f) => !f.ok).map((f) => f.code);

test("verifyBundleFile: a valid zip passes under trust; tampered, unsafe and failing-claims zips get their exit codes", async () => {
  const valid = await writeZip("valid.zip", bundleFixture().contents.entries);
  const passed = await verifyBundleFile(valid, { trustedKeysFile: keysFile, requireTrusted: true });
  assert.deepEqual(codes(passed.findings), []);
  assert.equal(passed.exitCode, EXIT_PASS);
  assert.equal(passed.findings[0].check, "zip-safety");

  const tamperedEntries = bundleFixture().contents.entries;
  const records = Buffer.from(
    tamperedEntries.get("records.jsonl")!.toString("utf8").replace('"klSum":0.4', '"klSum":0.1'),
  );
  tamperedEntries.set("records.jsonl", records);
  const tampered = await verifyBundleFile(await writeZip("tampered.zip", tamperedEntries), {
    trustedKeysFile: keysFile,
    requireTrusted: true,
  });
  assert.ok(codes(tampered.findings).includes("E_INTEGRITY_HASH"));
  assert.equal(tampered.exitCode, EXIT_TAMPERED);

  const garbage = join(dir, "garbage.zip");
  writeFileSync(garbage, "not a zip at all");
  const unreadable = await verifyBundleFile(garbage, { requireTrusted: false });
  assert.equal(unreadable.exitCode, EXIT_UNREADABLE);
  // Nothing inside an unsafe zip is looked at: every later check says it was skipped, and why.
  for (const finding of unreadable.findings) {
    assert.equal(finding.ok, false);
    if (finding.check !== "zip-safety") assert.equal(finding.code, "E_CHECK_SKIPPED");
  }
  assert.ok(unreadable.findings.some((f) => f.check === "zip-safety" && f.code === "E_ZIP_UNREADABLE"));
  assert.match(
    unreadable.findings.find((f) => f.check === "integrity")!.message,
    /because zip-safety failed/,
  );

  const parts = fixtureParts();
  parts.config.claims[0].threshold = 2;
  const claims = await verifyBundleFile(await writeZip("claims.zip", buildEntries(parts)), {
    trustedKeysFile: keysFile,
    requireTrusted: true,
  });
  assert.deepEqual(codes(claims.findings), ["E_CLAIM_FAILED"]);
  assert.equal(claims.exitCode, EXIT_CLAIMS);

  assert.equal(requireTrustedByDefault({ CI: "true" }), true);
  assert.equal(requireTrustedByDefault({}), false);
});

test("spg verify and spg inspect from the command line", async () => {
  const valid = await writeZip("cli.zip", bundleFixture().contents.entries);
  const summary = join(dir, "step-summary.md");
  writeFileSync(summary, "");
  const bin = join(packageRoot(), "bin", "run.js");
  const env = { ...process.env, CI: "true", GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summary };

  const untrusted = spawnSync(process.execPath, [bin, "verify", valid], { env, encoding: "utf8" });
  assert.equal(untrusted.status, EXIT_TAMPERED, untrusted.stderr);
  assert.match(untrusted.stdout, /✗ trust\s+1 failure\n\s+E_NO_TRUSTED_KEYS/);
  assert.match(untrusted.stdout, /^::error file=.*cli\.zip,title=spg verify::E_NO_TRUSTED_KEYS \[trust\]/m);

  const trusted = spawnSync(process.execPath, [bin, "verify", valid, "--trusted-keys", keysFile, "--json"], {
    env,
    encoding: "utf8",
  });
  assert.equal(trusted.status, EXIT_PASS, trusted.stdout + trusted.stderr);
  // Under GitHub Actions the annotations follow the JSON: the fixture's model is not here, so
  // replay is a warning, annotated as one.
  const annotations = trusted.stdout.indexOf("\n::");
  assert.match(trusted.stdout.slice(annotations), /^::warning .*W_REPLAY_NOT_CHECKED \[replay\]/m);
  // Nor its checkpoint: the stated shapes are the signer's word, and the output says so.
  assert.match(trusted.stdout.slice(annotations), /^::warning .*W_MODEL_NOT_CHECKED \[model\]/m);
  const json = JSON.parse(trusted.stdout.slice(0, annotations + 1));
  assert.equal(json.passed, true);
  assert.equal(json.findings.length, 17);
  assert.deepEqual(json.thresholds.policy, loadVerifyPolicy());
  assert.equal(json.recomputed.methods.stream.compressionRatio, 1.6);
  const table = readFileSync(summary, "utf8");
  assert.match(table, /❌ fail \(exit 4\)[\s\S]*✅ pass/);

  const inspect = spawnSync(process.execPath, [bin, "inspect", valid], { encoding: "utf8" });
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /not verified/);
  assert.match(inspect.stdout, /stream\s+streaming\s+1\.6/);
});

test("--replay all or N demands a replay: a bundle whose model is not here fails, where auto warns", async () => {
  // A producer dodging replay names a model hash the verifier does not hold (the fixture's is such).
  const valid = await writeZip("replay-demanded.zip", bundleFixture().contents.entries);
  const bin = join(packageRoot(), "bin", "run.js");
  const run = (...extra: string[]) =>
    spawnSync(process.execPath, [bin, "verify", valid, "--trusted-keys", keysFile, ...extra], {
      encoding: "utf8",
    });
  const auto = run("--replay", "auto");
  assert.equal(auto.status, EXIT_PASS, auto.stdout + auto.stderr);
  assert.match(auto.stdout, /! replay\s+not checked: the bundle.s model is not available here/);
  for (const demanded of [
    ["--replay", "all"],
    ["--replay", "2"],
  ]) {
    const result = run(...demanded);
    assert.equal(result.status, EXIT_INVALID, result.stdout + result.stderr);
    assert.match(result.stdout, /✗ replay\s+1 failure\n\s+E_REPLAY_UNAVAILABLE/);
  }
});

test("--json through a slow pipe is complete on failure, and the exit code still comes through", async () => {
  // A failing bundle whose JSON report is far larger than a pipe buffer (64 KiB): many failing claims.
  const parts = fixtureParts();
  parts.config.claims[0].threshold = 2;
  parts.config.claims = [...Array(400).fill(parts.config.claims[0]), parts.config.claims[1]];
  const big = await writeZip("big-fail.zip", buildEntries(parts));
  const bin = join(packageRoot(), "bin", "run.js");
  const child = spawn(process.execPath, [bin, "verify", big, "--json", "--no-require-trusted"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const chunks: Buffer[] = [];
  // Read slowly: a writer that exits before its output drains loses the tail here.
  child.stdout.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    child.stdout.pause();
    setTimeout(() => child.stdout.resume(), 5);
  });
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  assert.equal(status, EXIT_CLAIMS);
  assert.equal(json.exitCode, EXIT_CLAIMS);
  assert.ok(Buffer.concat(chunks).length > 65536, `${Buffer.concat(chunks).length} bytes`);
});
