import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { packageRoot } from "../../src/paths.js";
import { EXIT_PASS } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";

const bundles = join(packageRoot(), "bundles");

test("every reference bundle in bundles/ passes verify under the project's trusted key", async () => {
  const zips = readdirSync(bundles).filter((name) => name.endsWith(".zip"));
  assert.ok(zips.length > 0, "bundles/ holds no reference bundle");
  for (const zip of zips) {
    const result = await verifyBundleFile(join(bundles, zip), {
      trustedKeysFile: join(bundles, "trusted-keys.txt"),
      requireTrusted: true,
    });
    assert.deepEqual(
      result.findings.filter((f) => !f.ok),
      [],
      zip,
    );
    assert.equal(result.exitCode, EXIT_PASS, zip);
  }
});
