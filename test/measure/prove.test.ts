import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ephemeralKey } from "../../src/bundle/keys.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { resolveConfig } from "../../src/config/load.js";
import { prove, resolveProveConfig } from "../../src/measure/prove.js";
import { summarize } from "../../src/measure/summary.js";
import { tinyModelWorkspace } from "../helpers/random-gpt-neo.js";

const { modelDir, outDir } = await tinyModelWorkspace(7, "spg-prove-");

test("prove measures every method on the Brown eval split and writes a bundle whose summary recomputes", async () => {
  const config = resolveConfig({
    preset: "ci-smoke",
    overrides: { model: modelDir, context: 96, continuation: 12, samples: 2, calibrationSamples: 1 },
  });
  const out = join(outDir, "run.zip");
  const result = await prove({ config, out, key: ephemeralKey(), cacheDir: join(outDir, "graphs") });
  const methods = config.methods.map((m) => m.name);
  assert.equal(result.records.length, 2 * methods.length);
  assert.deepEqual(Object.keys(result.summary.methods).sort(), [...methods].sort());
  // full keeps everything at the baseline dtype: ratio exactly 1.
  assert.equal(result.summary.methods.full.compressionRatio, 1);
  assert.ok(result.summary.methods["window-trim"].compressionRatio > 1);
  for (const record of result.records) {
    assert.equal(record.scoredTokens, 11);
    assert.equal(record.contextTokens, 96);
  }

  const read = await readBundleZip(out);
  assert.ok(read.ok, JSON.stringify(read.ok ? null : read.findings));
  if (!read.ok) return;
  const names = [...read.entries.keys()];
  assert.deepEqual(names, [
    "manifest.json",
    "signature.json",
    "config.json",
    "environment.json",
    "records.jsonl",
    "fingerprints.jsonl",
    "summary.json",
    "report.md",
  ]);
  const records = readFileSync(out).length > 0 ? read.entries.get("records.jsonl")!.toString("utf8") : "";
  const parsed = records
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  const bundledConfig = JSON.parse(read.entries.get("config.json")!.toString("utf8"));
  assert.deepEqual(
    summarize(parsed, bundledConfig),
    JSON.parse(read.entries.get("summary.json")!.toString("utf8")),
  );
  const environment = JSON.parse(read.entries.get("environment.json")!.toString("utf8"));
  assert.equal(environment.evaluation.samples.length, 2);
  assert.equal(environment.calibration.samples.length, 1);
  assert.equal(environment.hardwareCheck.verdict, "pass");
});

test("two runs with the same config and seed give identical records (but timings and memory) and fingerprints", async () => {
  const config = resolveConfig({
    preset: "ci-smoke",
    overrides: { model: modelDir, context: 64, continuation: 8, samples: 1, calibrationSamples: 1 },
  });
  const runs = [];
  for (const name of ["a.zip", "b.zip"]) {
    const out = join(outDir, name);
    await prove({ config, out, key: ephemeralKey(), cacheDir: join(outDir, "graphs") });
    const read = await readBundleZip(out);
    assert.ok(read.ok);
    if (!read.ok) return;
    const lines = (entry: string) =>
      read.entries
        .get(entry)!
        .toString("utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line));
    runs.push({
      // runCost: its executed bytes and token counts are the run's; its timings and speeds are not.
      records: lines("records.jsonl").map(({ timingsMs: _t, peakRssBytes: _m, runCost, ...rest }) => {
        const { baselineTimingsMs: _b, tokensPerSecond: _s, ...counted } = runCost;
        return { ...rest, runCost: counted };
      }),
      fingerprints: lines("fingerprints.jsonl"),
    });
  }
  assert.deepEqual(runs[0].records, runs[1].records);
  assert.deepEqual(runs[0].fingerprints, runs[1].fingerprints);
});

test("resolveProveConfig: with ablations on, the sweep adds points of the preset's own methods only", () => {
  const plain = resolveProveConfig({ preset: "default" });
  const swept = resolveProveConfig({ preset: "default", ablation: true }, { sweep: 3 });
  const names = swept.methods.map((m) => m.name);
  const variants = names.filter((name) => name.includes("@"));
  assert.ok(variants.length > 0);
  const presetNames = new Set(plain.methods.map((m) => m.name));
  for (const variant of variants) assert.ok(presetNames.has(variant.split("@")[0]), variant);
  // The ablation overlays themselves are there, unswept.
  assert.ok(names.includes("spg-stage1-only"));
  assert.deepEqual(resolveProveConfig({ preset: "default" }, {}), plain);
});
