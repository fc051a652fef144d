/**
 * The report of a bundle that `prove` really measured (a tiny random GPT-Neo, every method of
 * the ci-smoke preset): the verifier passes it and every section renders from real records
 * and fingerprints.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ephemeralKey } from "../../src/bundle/keys.js";
import { resolveConfig } from "../../src/config/load.js";
import { prove } from "../../src/measure/prove.js";
import { continuationHtml } from "../../src/report/continuations.js";
import { escapeHtml, formatNumber } from "../../src/report/html.js";
import { buildReport } from "../../src/report/render.js";
import { tinyModelWorkspace } from "../helpers/random-gpt-neo.js";

const { modelDir, outDir } = await tinyModelWorkspace(5, "spg-report-prove-");

test("the report of a measured bundle: verdict pass, every method and layer shown", async () => {
  // The preset's claims were calibrated on the bundled model; this random model's figures say
  // nothing about them, and the report of a bundle without claims is what is under test here.
  const config = {
    ...resolveConfig({
      preset: "ci-smoke",
      overrides: { model: modelDir, context: 96, continuation: 12, samples: 2, calibrationSamples: 1 },
    }),
    claims: [],
  };
  const out = join(outDir, "run.zip");
  const proved = await prove({ config, out, key: ephemeralKey(), cacheDir: join(outDir, "graphs") });
  const { html, verdict } = await buildReport(out, { verify: true });
  assert.equal(verdict, "pass", html.match(/<table class="failures">[\s\S]*?<\/table>/)?.[0]);
  for (const method of config.methods) {
    const ratio = proved.summary.methods[method.name].compressionRatio;
    assert.ok(html.includes(`<td>${escapeHtml(method.name)}</td><td>${method.kind}</td>`), method.name);
    assert.ok(html.includes(`${formatNumber(ratio)}×`), `${method.name}: ratio ${ratio}`);
  }
  const figures = [...html.matchAll(/<figure class="plot" data-plot="([^"]+)"><svg/g)].map((m) => m[1]);
  assert.deepEqual(figures, [
    "pareto",
    "run-cost",
    "layers-kept",
    "layers-bytes",
    "samples-ppl",
    "samples-kl",
  ]);
  // Generated text: the first samples' continuations, the baseline's and each method's, decoded from the records.
  const section = html.slice(html.indexOf('<section id="continuations">'));
  for (const record of proved.records.filter((r) => r.sampleIndex === 0)) {
    assert.ok(section.includes(`<td>${escapeHtml(record.method)}</td>`), record.method);
    assert.ok(
      section.includes(continuationHtml(record.generation.tokens ?? [], record.generation.firstDivergence)),
      record.method,
    );
  }
  assert.ok(section.includes(continuationHtml(proved.records[0].generation.baselineTokens ?? [], null)));
  // Both layers of the model appear in the per-layer heatmap.
  for (const layer of [0, 1]) assert.match(html, new RegExp(`aria-label="layer: ${layer}; method: spg`));
});
