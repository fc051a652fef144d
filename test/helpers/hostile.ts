/**
 * What every hostile bundle's verification must show (the adversarial corpus, a dishonest
 * merger's edits): refused by the check and code the case names, with its exit status, no check
 * crashed, and every failing code one a check unit declares.
 */
import assert from "node:assert/strict";
import { RUNNER_CODES } from "../../src/verify/checks/index.js";
import type { VerifyResult } from "../../src/verify/runner.js";
import { CHECK_UNITS } from "../../src/verify/verify-bundle.js";

export interface ExpectedRefusal {
  name: string;
  check: string;
  code: string;
  exitCode: number;
}

const byCheck = new Map<string, Set<string>>(
  CHECK_UNITS.map((unit) => [unit.name, new Set([...unit.codes, ...RUNNER_CODES])]),
);
const byAnyCheck = new Set<string>([...CHECK_UNITS.flatMap((unit) => unit.codes), ...RUNNER_CODES]);

/**
 * `declaredBy`: "its check" (the finding's own check declares its code) or "any check" (a
 * merge: a rebuilt shard's failures are the shards unit's codes, filed under integrity,
 * signature or trust).
 */
export function assertRefused(
  result: VerifyResult,
  expected: ExpectedRefusal,
  declaredBy: "its check" | "any check" = "its check",
): void {
  const failing = result.findings.filter((finding) => !finding.ok);
  assert.ok(
    failing.some((finding) => finding.check === expected.check && finding.code === expected.code),
    `${expected.name}: ${failing.map((f) => `${f.check}:${f.code}`).join(", ")}`,
  );
  assert.equal(result.exitCode, expected.exitCode, expected.name);
  for (const finding of failing) {
    assert.notEqual(finding.code, "E_CHECK_CRASHED", `${expected.name}: ${finding.message}`);
    const declared = declaredBy === "its check" ? byCheck.get(finding.check) : byAnyCheck;
    assert.ok(
      declared?.has(finding.code),
      `${expected.name}: ${finding.check} reports ${finding.code}, declared by no check`,
    );
  }
}
