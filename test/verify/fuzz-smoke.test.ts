/**
 * A few iterations of the verify fuzzer (scripts/fuzz-verify.ts; `npm run fuzz` runs it at
 * length): every level makes mutants verify handles with a documented exit and code, and the
 * fuzzer's judge flags what the project standard forbids.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { FUZZ_LEVELS, fuzzVerify, verifyMutant } from "../../scripts/fuzz-verify.js";
import { packageRoot } from "../../src/paths.js";

test("a few seeded mutants of each level: none crashes, hangs or leaves the exit table", async () => {
  const report = await fuzzVerify({
    seed: 3,
    iterations: 4,
    levels: FUZZ_LEVELS,
    replayRuns: 0,
    timeoutSeconds: 120,
    maxRssMiB: 1024,
    heapMiB: 2048,
  });
  assert.equal(report.iterations, 4);
  assert.deepEqual(report.flagged, []);
  for (const code of report.exitCodes.keys()) assert.ok([0, 2, 3, 4, 5, 6].includes(code), `exit ${code}`);
});

test("the judge flags an input error thrown for a bundle mutant (exit 2 belongs to the verifier's inputs)", async () => {
  const outcome = await verifyMutant({
    index: 0,
    level: "zip",
    bundlePath: join(packageRoot(), "bundles", "default.zip"),
    trustedKeysFile: join(packageRoot(), "bundles", "no-such-trusted-keys.txt"),
    replay: false,
  });
  assert.equal(outcome.exitCode, 2);
  assert.match(outcome.problems.join("\n"), /SpgError E_\w+ \(exit 2\) for a zip mutant/);
});
