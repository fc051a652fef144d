import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ephemeralKey } from "../../src/bundle/keys.js";
import { resolveConfig } from "../../src/config/load.js";
import { prove } from "../../src/measure/prove.js";
import { EXIT_PASS, EXIT_TAMPERED } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { tinyModelWorkspace } from "../helpers/random-gpt-neo.js";

const { modelDir, outDir } = await tinyModelWorkspace(11, "spg-verify-e2e-");

test("a bundle written by spg prove (every ci-smoke method) passes every check; damaged, it does not", async () => {
  const config = resolveConfig({
    preset: "ci-smoke",
    overrides: { model: modelDir, context: 48, continuation: 8, samples: 2, calibrationSamples: 1 },
  });
  // A random model at this size does not reach the preset's SPG targets; keep the lossless claim.
  config.claims = config.claims.filter((claim) => claim.method === "window-trim");
  const out = join(outDir, "run.zip");
  await prove({ config, out, key: ephemeralKey(), cacheDir: join(outDir, "graphs") });

  const result = await verifyBundleFile(out, { requireTrusted: false });
  assert.deepEqual(
    result.findings.filter((finding) => !finding.ok),
    [],
  );
  assert.equal(result.exitCode, EXIT_PASS);
  // Every method of the preset (lossless and lossy) passes consistency as prove writes it.
  assert.deepEqual(
    Object.keys(result.recomputed?.methods ?? {}),
    config.methods.map((method) => method.name),
  );

  // An ephemeral signer under a trust policy is refused.
  const trusted = await verifyBundleFile(out, { requireTrusted: true });
  assert.equal(trusted.exitCode, EXIT_TAMPERED);

  // Stored (deflated) bytes changed in the middle of the archive: unreadable or tampered, never a pass.
  const bytes = readFileSync(out);
  bytes[Math.floor(bytes.length / 2)] ^= 0x40;
  const damaged = join(outDir, "damaged.zip");
  writeFileSync(damaged, bytes);
  const broken = await verifyBundleFile(damaged, { requireTrusted: false });
  assert.notEqual(broken.exitCode, EXIT_PASS);
  assert.ok(broken.findings.some((finding) => !finding.ok && finding.code !== "E_CHECK_CRASHED"));
});
