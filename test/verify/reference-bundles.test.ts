import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { packageRoot } from "../../src/paths.js";
import { EXIT_PASS } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";

const bundles = join(packageRoot(), "bundles");
const trustedKeysFile = join(bundles, "trusted-keys.txt");

// Replaying every sample of every bundle takes minutes on a 2-core CPU (`spg verify` does it
// by default, and CI does it through the action); here every check but replay runs on each
// bundle, and one sample of default.zip is replayed on the bundled model under the default
// policy's tolerances.
test("every reference bundle in bundles/ passes verify under the project's trusted key", async () => {
  const zips = readdirSync(bundles).filter((name) => name.endsWith(".zip"));
  assert.ok(zips.length > 0, "bundles/ holds no reference bundle");
  for (const zip of zips) {
    const result = await verifyBundleFile(join(bundles, zip), {
      trustedKeysFile,
      requireTrusted: true,
      replay: false,
    });
    assert.deepEqual(
      result.findings.filter((f) => !f.ok),
      [],
      zip,
    );
    assert.deepEqual(
      result.findings.filter((f) => f.warning).map((f) => f.code),
      ["W_REPLAY_OFF"],
      zip,
    );
    assert.equal(result.exitCode, EXIT_PASS, zip);
  }
});

test("a sample of bundles/default.zip replays on the bundled model within the default policy", async () => {
  const result = await verifyBundleFile(join(bundles, "default.zip"), {
    trustedKeysFile,
    requireTrusted: true,
    replay: { samples: 1, seed: "5eed" },
  });
  assert.deepEqual(
    result.findings.filter((f) => !f.ok || f.warning),
    [],
  );
  const replay = result.findings.find((f) => f.check === "replay");
  assert.match(replay?.message ?? "", /seed 5eed: 1 of 8 samples re-run here: 7 records within tolerance/);
});
