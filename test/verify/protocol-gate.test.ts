/**
 * Protocol before the verifier's own work: a bundle whose run-level facts are wrong (the hardware
 * check failed, the draw rule is not the source's, the model hash is not its files') is refused
 * before the verifier's checkpoint is read, its dataset redrawn or its samples replayed, so a
 * dishonest producer cannot spend the verifier's time, nor have replay's verdict printed as if
 * the run stood. Each lie is made again into summary.json and report.md and re-signed with a
 * trusted key (test/helpers/remade-default.ts).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { drawCheck, modelCheck } from "../../src/verify/checks/index.js";
import { EXIT_INVALID } from "../../src/verify/runner.js";
import { replayCheck, verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { remadeDefaultBundles } from "../helpers/remade-default.js";

const lies = remadeDefaultBundles("spg-protocol-gate-", 31);

test("replay, the model check and the draw require protocol to have passed", () => {
  for (const unit of [replayCheck, modelCheck, drawCheck]) {
    assert.ok(unit.requires.includes("protocol"), unit.name);
  }
});

test("a failed hardware check, replay asked: protocol refuses it and replay is never run (E_CHECK_SKIPPED)", async () => {
  const path = await lies.write("hardware-check-failed", ({ environment }) => {
    environment.hardwareCheck.verdict = "fail";
  });
  const result = await verifyBundleFile(path, {
    trustedKeysFile: lies.keysFile,
    requireTrusted: true,
    replay: { samples: 1, seed: "5eed", required: true },
  });
  const byCheck = new Map(result.findings.map((finding) => [finding.check, finding]));
  assert.equal(byCheck.get("protocol")?.code, "E_PROTOCOL_HARDWARE_CHECK");
  for (const check of ["model", "draw", "replay"] as const) {
    assert.equal(byCheck.get(check)?.code, "E_CHECK_SKIPPED", check);
    assert.match(byCheck.get(check)?.message ?? "", /protocol/, check);
  }
  assert.deepEqual(lies.failingCodes(result), [
    "protocol:E_PROTOCOL_HARDWARE_CHECK",
    "model:E_CHECK_SKIPPED",
    "draw:E_CHECK_SKIPPED",
    "replay:E_CHECK_SKIPPED",
  ]);
  assert.equal(result.exitCode, EXIT_INVALID);
});
