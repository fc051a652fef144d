/**
 * The config-rules check against a dishonest producer holding a trusted key: the committed
 * default bundle's config.json edited after the run into one spg prove would refuse, summary
 * and report made again and re-signed (scripts/adversarial-bundles.ts remadeRun); refused
 * without replay.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RunParts } from "../../scripts/adversarial-bundles.js";
import { EXIT_INVALID } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { remadeDefaultBundles } from "../helpers/remade-default.js";

const lies = remadeDefaultBundles("spg-config-rules-", 22);

const params = (parts: RunParts, name: string) =>
  parts.config.methods.find((m) => m.name === name)?.params as Record<string, unknown>;

for (const [name, change, message] of [
  [
    "snapkv's observation window wider than the attention rows the graph returned",
    (parts: RunParts) => {
      params(parts, "snapkv").observationWindow = 64;
    },
    /methods\[4\]\.params\.observationWindow is 64 but the graph returns attention for kv\.observationWindow = 32 rows/,
  ],
  [
    "an even pooling kernel",
    (parts: RunParts) => {
      params(parts, "snapkv").poolingKernel = 6;
    },
    /poolingKernel must be odd/,
  ],
  [
    "kv.observationWindow lowered below a method's window",
    (parts: RunParts) => {
      parts.config.kv.observationWindow = 16;
    },
    /kv\.observationWindow = 16 rows/,
  ],
  [
    "a claim on the uncompressed baseline",
    (parts: RunParts) => {
      parts.config.claims.push({
        method: "full",
        metric: "mean_kl",
        op: "<=",
        threshold: 0.5,
        judge: "point",
      });
    },
    /claims\[3\]\.method names the uncompressed baseline/,
  ],
  [
    "two methods whose names are equal up to case",
    (parts: RunParts) => {
      const h2o = parts.config.methods.find((m) => m.name === "h2o")!;
      parts.config.methods.push({ ...structuredClone(h2o), name: "H2O" });
      for (const record of parts.records.filter((r) => r.method === "h2o"))
        parts.records.push({ ...structuredClone(record), method: "H2O" });
      for (const line of parts.fingerprints.filter((f) => f.method === "h2o"))
        parts.fingerprints.push({ ...structuredClone(line), method: "H2O" });
    },
    /methods\[7\]\.name duplicates the name of methods\[3\] \("h2o", up to case\)/,
  ],
] as const) {
  test(`${name}: refused without replay (config-rules:E_CONFIG_RULE)`, async () => {
    const path = await lies.write(name, change);
    const result = await verifyBundleFile(path, {
      trustedKeysFile: lies.keysFile,
      requireTrusted: true,
      replay: false,
    });
    const refused = result.findings.find((f) => f.code === "E_CONFIG_RULE");
    assert.equal(refused?.check, "config-rules", result.findings.map((f) => `${f.check}:${f.code}`).join());
    assert.match(refused.message, message);
    assert.equal(result.exitCode, EXIT_INVALID);
  });
}

test("with replay asked, a config prove would refuse is never run: replay is skipped, not crashed", async () => {
  const path = await lies.write("even-kernel-replayed", (parts) => {
    params(parts, "snapkv").poolingKernel = 6;
  });
  const result = await verifyBundleFile(path, {
    trustedKeysFile: lies.keysFile,
    requireTrusted: true,
    replay: { samples: "all", required: true },
  });
  const codes = result.findings.filter((f) => !f.ok).map((f) => `${f.check}:${f.code}`);
  assert.ok(!codes.some((code) => code.endsWith("E_CHECK_CRASHED")), codes.join());
  assert.deepEqual(codes, ["config-rules:E_CONFIG_RULE", "replay:E_CHECK_SKIPPED"]);
  assert.match(result.findings.find((f) => f.check === "replay")?.message ?? "", /config-rules/);
});
