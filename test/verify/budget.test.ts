/**
 * The budget check against a dishonest producer holding a trusted key, on the committed
 * default bundle (every KV method of the default preset, measured on the bundled model): each
 * lie edits the config or the fingerprints, makes summary.json and report.md again
 * (scripts/adversarial-bundles.ts remadeRun) and re-signs, so only the rule named refuses it,
 * without replay.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { RunParts } from "../../scripts/adversarial-bundles.js";
import type { LayerFingerprint } from "../../src/bundle/types.js";
import { bundledModelDir } from "../../src/paths.js";
import { EXIT_INVALID, EXIT_PASS } from "../../src/verify/runner.js";
import { remadeDefaultBundles } from "../helpers/remade-default.js";

const lies = remadeDefaultBundles("spg-budget-", 21);

async function verifyLie(name: string, change: (parts: RunParts) => void) {
  const result = await lies.verifyNoReplay(name, change);
  return { result, codes: lies.failingCodes(result) };
}

const method = (parts: RunParts, name: string) => {
  const found = parts.config.methods.find((m) => m.name === name);
  if (found === undefined) throw new Error(`the default bundle has no method ${name}`);
  return found.params as Record<string, unknown>;
};
const layersOf = (parts: RunParts, name: string) =>
  parts.fingerprints.filter((f): f is LayerFingerprint => f.method === name && !("kind" in f));

test("the default bundle re-signed unchanged passes, the budget check included", async () => {
  const { result, codes } = await verifyLie("honest", () => {});
  assert.deepEqual(codes, []);
  assert.equal(result.exitCode, EXIT_PASS);
  // The local layers as the bundled checkpoint's own config.json lists them (HF's attention_layers).
  const { attention_layers: layers } = JSON.parse(
    readFileSync(join(bundledModelDir(), "config.json"), "utf8"),
  ) as { attention_layers: string[] };
  const local = layers.flatMap((kind, index) => (kind === "local" ? [index] : []));
  assert.ok(local.length > 0, "the bundled model has local layers");
  assert.ok(
    (result.findings.find((f) => f.check === "budget")?.message ?? "").includes(
      `layers ${local.join(", ")} read as local`,
    ),
  );
});

for (const [name, change, code] of [
  [
    "quant's parameters lowered to 2 bits after the run",
    (parts: RunParts) => {
      method(parts, "quant").keyBits = 2;
      method(parts, "quant").valueBits = 2;
    },
    "budget:E_BUDGET_BYTES",
  ],
  [
    "quant's stored bytes and bit histogram shrunk as if 2-bit (a higher ratio)",
    (parts: RunParts) => {
      const cut = new Map<string, number>();
      for (const line of layersOf(parts, "quant")) {
        const codes = line.bitsHistogram["4"] ?? 0;
        delete line.bitsHistogram["4"];
        line.bitsHistogram["2"] = codes;
        line.bytes -= codes / 4;
        cut.set(line.sampleId, (cut.get(line.sampleId) ?? 0) + codes / 4);
      }
      for (const record of parts.records)
        if (record.method === "quant") record.kvBytesCompressed -= cut.get(record.sampleId) ?? 0;
    },
    "budget:E_BUDGET_BYTES",
  ],
  [
    "spg's reserved full-precision heads edited",
    (parts: RunParts) => {
      (method(parts, "spg").stage2 as Record<string, unknown>).reservedHeads = 0;
    },
    "budget:E_BUDGET_BYTES",
  ],
  [
    "spg's stored bytes and bit histogram halved (a higher ratio; stage 2's per-head forms follow the scores)",
    (parts: RunParts) => {
      const cut = new Map<string, number>();
      for (const line of layersOf(parts, "spg")) {
        for (const width of Object.keys(line.bitsHistogram))
          line.bitsHistogram[width] = Math.floor(line.bitsHistogram[width] / 2);
        const half = Math.floor(line.bytes / 2);
        cut.set(line.sampleId, (cut.get(line.sampleId) ?? 0) + line.bytes - half);
        line.bytes = half;
      }
      for (const record of parts.records)
        if (record.method === "spg") record.kvBytesCompressed -= cut.get(record.sampleId) ?? 0;
    },
    "budget:E_BUDGET_BYTES",
  ],
  [
    "streaming's recent window halved after the run",
    (parts: RunParts) => {
      method(parts, "streaming").recentTokens = 124;
    },
    "budget:E_BUDGET_KEPT",
  ],
  [
    "h2o's keep ratio lowered after the run",
    (parts: RunParts) => {
      method(parts, "h2o").keepRatio = 0.125;
    },
    "budget:E_BUDGET_KEPT",
  ],
  [
    "one sample's h2o keeps fewer slots (kept, bytes and histogram made to agree; slots read still within its bound)",
    (parts: RunParts) => {
      const sample = parts.records[0].sampleId;
      let cut = 0;
      for (const line of layersOf(parts, "h2o")) {
        if (line.sampleId !== sample) continue;
        // 4 heads × 8 slots fewer: rows of 32 fp16 keys and values, and each head's kept set.
        line.tokensKept -= 32;
        line.bitsHistogram["16"] -= 32 * 64;
        line.bytes -= 32 * 128;
        cut += 32 * 128;
      }
      for (const record of parts.records)
        if (record.method === "h2o" && record.sampleId === sample) record.kvBytesCompressed -= cut;
    },
    "budget:E_BUDGET_KEPT",
  ],
] as const) {
  test(`${name}: refused without replay (${code})`, async () => {
    const { result, codes } = await verifyLie(name.replaceAll(/\W+/g, "-"), change);
    assert.ok(codes.includes(code), codes.join());
    assert.equal(result.exitCode, EXIT_INVALID);
  });
}

test("a global layer made to read as local for every method (one model, one window): refused", async () => {
  // Layer 0 is global: every method keeps its whole-context budget there. Shrink window-trim
  // and quant (which keep the readable window) to a window no local layer has.
  const { codes } = await verifyLie("layer-0-local", (parts) => {
    for (const name of ["window-trim", "quant"]) {
      for (const line of layersOf(parts, name)) {
        if (line.layer === 0) line.tokensKept -= 4 * 100;
      }
    }
  });
  assert.ok(codes.includes("budget:E_BUDGET_KEPT"), codes.join());
});
