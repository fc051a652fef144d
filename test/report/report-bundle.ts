/**
 * A signed bundle for report tests, built with the real writer (writeBundle) from the
 * hand-made fixture (test/helpers/bundle-fixture.ts) widened to every method of the default
 * preset, its windows scaled down to the fixture's 16-token context: each method keeps and
 * stores what its params give there (src/kv/stored-layout.ts, which verify's budget check
 * holds the fingerprints to) and loses a little more quality than the one before, so the
 * plots have several points and a non-trivial frontier.
 */

import { fixtureRunCost } from "../../scripts/synthetic-run.js";
import { ephemeralKey } from "../../src/bundle/keys.js";
import type { LayerFingerprint, SampleRecord } from "../../src/bundle/types.js";
import { writeBundle } from "../../src/bundle/write.js";
import { resolveConfig } from "../../src/config/load.js";
import { applySweep } from "../../src/config/sweep.js";
import type { MethodConfig, RunConfig } from "../../src/config/types.js";
import { storedLayoutOf } from "../../src/kv/stored-layout.js";
import { renderReportMarkdown } from "../../src/measure/report-md.js";
import { summarize } from "../../src/measure/summary.js";
import { fixtureParts, sha256Hex } from "../helpers/bundle-fixture.js";

/** The preset's windows (sized for a 1024-token context) scaled to the fixture's 16 tokens; ratios and bit widths kept. */
function fittedToContext(method: MethodConfig): MethodConfig {
  const fitted = structuredClone(method);
  const scale = (params: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(params)) {
      if (typeof value !== "number") continue;
      if (key === "recentTokens" || key === "observationWindow")
        params[key] = Math.max(1, Math.round(value / 32));
      if (key === "residualTokens") params[key] = Math.round(value / 16);
      if (key === "sinkTokens") params[key] = Math.min(value, 1);
    }
  };
  scale(fitted.params);
  const stage1 = fitted.params.stage1;
  if (typeof stage1 === "object" && stage1 !== null) scale(stage1 as Record<string, unknown>);
  return fitted;
}

export interface ReportBundleOptions {
  /** Rename the last method in records and fingerprints (not in the config) to this. */
  hostileMethod?: string;
  /** Replace config.name. */
  runName?: string;
  /** State this compression ratio for the claimed method in summary.json (a false summary). */
  statedRatio?: number;
  /** Add this many sweep variants per swept method (as `spg prove --sweep N`). */
  sweep?: number;
}

export interface ReportBundle {
  /** The method the claims are about (the preset's last). */
  target: string;
  config: RunConfig;
  records: SampleRecord[];
  fingerprints: LayerFingerprint[];
}

export async function writeReportBundle(
  path: string,
  options: ReportBundleOptions = {},
): Promise<ReportBundle> {
  const parts = fixtureParts({ runCost: true });
  const preset = resolveConfig();
  const methods = (
    options.sweep === undefined ? preset.methods : applySweep(preset, options.sweep).methods
  ).map(fittedToContext);
  const compressed = methods.filter((m) => m.kind !== "full").map((m) => m.name);
  const target = compressed[compressed.length - 1];
  const config: RunConfig = {
    ...parts.config,
    name: options.runName ?? parts.config.name,
    methods,
    claims: [
      { method: target, metric: "compression_ratio", op: ">=", threshold: 2, judge: "point" },
      { method: target, metric: "perplexity_increase_pct", op: "<=", threshold: 1000, judge: "bound" },
    ],
  };
  const fullRecords = parts.records.filter((r) => r.method === "full");
  const fullPrints = parts.fingerprints.filter((f) => f.method === "full");
  const records: SampleRecord[] = [...fullRecords];
  const fingerprints: LayerFingerprint[] = [...fullPrints];
  const { heads, hiddenSize } = parts.environment.model;
  compressed.forEach((method, j) => {
    const step = j + 1;
    // Every layer global: each keeps the per-head budget of the whole context.
    const layout = storedLayoutOf(methods.find((m) => m.name === method)!, {
      heads,
      headDim: hiddenSize / heads,
      contextTokens: config.dataset.contextTokens,
      dtype: config.kv.baselineDtype,
      layer: 0,
    });
    if (layout === undefined || typeof layout === "string") throw new Error(`${method}: no KV layout`);
    const perHead = layout.keptPerHead(config.dataset.contextTokens);
    const kept = heads * perHead;
    const form = layout.stored(kept);
    // spg's stage 2 stores its kept slots in fewer bits, as the scores decide: half of fp16 here.
    // The reserved heads' rows at the baseline dtype (their count is fixed), the rest at 8 bits;
    // bytes the dense form's, which holds every one of them.
    const reserved = form.bitsBounds?.atLeast ?? {};
    const elements = kept * (hiddenSize / heads) * 2;
    const rest = elements - Object.values(reserved).reduce((a, b) => a + b, 0);
    const bitsHistogram = form.bitsHistogram ?? { ...reserved, ...(rest > 0 ? { "8": rest } : {}) };
    const layerBytes = form.bytes?.max ?? elements + heads;
    for (const base of fullRecords) {
      const i = base.sampleIndex;
      const layers = fullPrints.filter((f) => f.sampleId === base.sampleId);
      // Every other method pays extra quality for its compression: off the frontier.
      const extraNll = 0.2 * step * (1 + 0.5 * i) + (step % 2 === 0 ? 0.8 : 0);
      const mismatches = Math.min(base.generation.compared, Math.floor(step / 2) + (i % 2));
      const matches = base.generation.compared - mismatches;
      records.push({
        ...base,
        method,
        nllCompressed: base.nllBaseline + extraNll,
        klSum: 0.05 * step * (1 + 0.3 * i),
        top1Matches: Math.max(0, base.scoredTokens - step),
        generation: {
          compared: base.generation.compared,
          matches,
          firstDivergence: mismatches === 0 ? null : matches,
        },
        kvBytesCompressed: layers.length * layerBytes,
        // Every head keeps the same count: the widest holds the per-head budget.
        runCost: fixtureRunCost(config, base, perHead),
      });
      for (const layer of layers) {
        fingerprints.push({
          ...layer,
          method,
          tokensKept: kept,
          headsFullPrecision: form.headsFullPrecision,
          bitsHistogram,
          bytes: layerBytes,
          slotsRead: perHead,
          sha256: sha256Hex(`${method} ${base.sampleId} ${layer.layer}`),
        });
      }
    }
  });
  // Summarized before any renaming: a renamed method is one the config does not know.
  const summary = summarize(records, config);
  if (options.statedRatio !== undefined) summary.methods[target].compressionRatio = options.statedRatio;
  if (options.hostileMethod !== undefined) {
    for (const item of [...records, ...fingerprints])
      if (item.method === target) item.method = options.hostileMethod;
  }
  await writeBundle(
    path,
    {
      config,
      environment: parts.environment,
      records,
      fingerprints,
      summary,
      // As spg prove renders it: verify regenerates report.md and compares.
      reportMd: renderReportMarkdown(config, summary, parts.environment),
    },
    ephemeralKey(),
    { name: "spg", version: "0.0.0-test", commit: null },
    { createdAt: "2026-11-23T12:00:00.000Z" },
  );
  return { target, config, records, fingerprints };
}
