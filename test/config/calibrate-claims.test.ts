import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import {
  CALIBRATION_COMMENT_MARKER,
  calibrateClaims,
  calibrationComment,
  calibrationPlan,
  checkClaimMarginsUsed,
  deriveThreshold,
  marginFor,
  parseMargins,
  roundOutward,
  updatePresetClaims,
} from "../../src/config/calibrate-claims.js";
import { presetPath } from "../../src/config/files.js";
import { resolveConfig } from "../../src/config/load.js";
import { packageRoot } from "../../src/paths.js";
import { spgError } from "../helpers/spg-error.js";

const margins = parseMargins("compression_ratio=10%,perplexity_increase_pct=2,top1_agreement=0.02");
const splits = { split: "calibration", calibrationSplit: "train" };

test("parseMargins: VALUE% is relative, a plain VALUE absolute; bad entries are E_CALIBRATE_MARGIN", () => {
  assert.deepEqual(margins.byMetric, {
    compression_ratio: { kind: "relative", value: 0.1 },
    perplexity_increase_pct: { kind: "absolute", value: 2 },
    top1_agreement: { kind: "absolute", value: 0.02 },
  });
  assert.equal(margins.byClaim.size, 0);
  // METHOD:METRIC wins over METRIC for that method's claim only.
  const both = parseMargins("perplexity_increase_pct=2,window-trim:perplexity_increase_pct=0.01");
  assert.deepEqual(marginFor(both, { method: "window-trim", metric: "perplexity_increase_pct" }), {
    kind: "absolute",
    value: 0.01,
  });
  assert.deepEqual(marginFor(both, { method: "spg", metric: "perplexity_increase_pct" }), {
    kind: "absolute",
    value: 2,
  });
  assert.equal(marginFor(both, { method: "spg", metric: "compression_ratio" }), undefined);
  checkClaimMarginsUsed(both, [{ method: "window-trim", metric: "perplexity_increase_pct" }]);
  assert.equal(
    spgError(() => checkClaimMarginsUsed(both, [{ method: "spg", metric: "perplexity_increase_pct" }])).code,
    "E_CALIBRATE_MARGIN",
  );
  for (const bad of [
    "",
    "compression_ratio",
    "ratio=10%",
    "compression_ratio=-1",
    "compression_ratio=100%",
    "mean_kl=1,mean_kl=2",
    "spg:top1=1",
  ]) {
    assert.equal(spgError(() => parseMargins(bad)).code, "E_CALIBRATE_MARGIN", bad);
  }
});

test("deriveThreshold: the figure loosened by the margin, rounded outward (hand-computed)", () => {
  const rel = (value: number) => ({ kind: "relative" as const, value });
  const abs = (value: number) => ({ kind: "absolute" as const, value });
  // 5.4321 - 0.54321 = 4.88889 -> 2 significant digits, down: 4.8
  assert.deepEqual(deriveThreshold(">=", 5.4321, rel(0.1), 2), {
    figure: 5.4321,
    loosened: 5.4321 - 0.54321,
    threshold: 4.8,
  });
  // 3 digits: 4.88
  assert.equal(deriveThreshold(">=", 5.4321, rel(0.1), 3).threshold, 4.88);
  // 12.34 + 2 = 14.34 -> up: 15
  assert.equal(deriveThreshold("<=", 12.34, abs(2), 2).threshold, 15);
  // -3.456 + 1 = -2.456 -> up (towards +inf): -2.4
  assert.equal(deriveThreshold("<=", -3.456, abs(1), 2).threshold, -2.4);
  // 0.9632 - 0.02 = 0.9432 -> down: 0.94
  assert.equal(deriveThreshold(">=", 0.9632, abs(0.02), 2).threshold, 0.94);
  // a lossless method's 0 + 0.01 = 0.01, already readable
  assert.equal(deriveThreshold("<=", 0, abs(0.01), 2).threshold, 0.01);
  // 123.4 * 1.05 = 129.57 -> up: 130
  assert.equal(deriveThreshold("<=", 123.4, rel(0.05), 2).threshold, 130);
  // a relative margin on a negative figure loosens too: -10 - 10% of 10 = -11 for ">="
  assert.equal(deriveThreshold(">=", -10, rel(0.1), 2).threshold, -11);
  // on the grid already: unchanged (4.7 is not read as 46.999... and floored to 4.6)
  assert.equal(deriveThreshold(">=", 4.7, abs(0), 2).threshold, 4.7);
  assert.equal(roundOutward(0.0123, "<=", 2), 0.013);
  assert.equal(roundOutward(0.0123, ">=", 2), 0.012);
  assert.equal(roundOutward(45678, ">=", 2), 45000);
  assert.throws(() => deriveThreshold(">=", Number.NaN, abs(1), 2), RangeError);
});

test("calibrateClaims reads each claim's judged figure (bound or point) in the config's order", () => {
  const { claims } = resolveConfig({ preset: "default" });
  const judged = [
    { method: "window-trim", metric: "perplexity_increase_pct", judged: 0 },
    { method: "spg", metric: "perplexity_increase_pct", judged: 12.34 },
    { method: "spg", metric: "compression_ratio", judged: 5.4321 },
  ];
  const rows = calibrateClaims(claims, judged, margins, 2);
  assert.deepEqual(
    rows.map((r) => [r.claim.method, r.claim.metric, r.figure, r.threshold, r.current]),
    claims.map((c) => {
      const figure = judged.find((j) => j.method === c.method && j.metric === c.metric)!.judged;
      const threshold = { compression_ratio: 4.8, perplexity_increase_pct: figure === 0 ? 2 : 15 }[
        c.metric as "compression_ratio" | "perplexity_increase_pct"
      ];
      return [c.method, c.metric, figure, threshold, c.threshold];
    }),
  );
  assert.equal(
    spgError(() => calibrateClaims(claims, judged.slice(1), margins, 2)).code,
    "E_CALIBRATE_PRESET",
  );
});

test("the split a preset judges its claims on is refused, as evaluation and as calibration split", () => {
  for (const bad of [
    { split: "eval", calibrationSplit: "train" },
    { split: "calibration", calibrationSplit: "eval" },
  ]) {
    const error = spgError(() => calibrationPlan("default", bad, margins));
    assert.equal(error.code, "E_CALIBRATE_EVAL_SPLIT");
    assert.match(error.message, /"eval"/);
  }
  assert.equal(spgError(() => calibrationPlan("450x", splits, margins)).code, "E_CALIBRATE_PRESET");
  // ci-smoke inherits default's claims: they are calibrated in default.
  assert.equal(spgError(() => calibrationPlan("ci-smoke", splits, margins)).code, "E_CALIBRATE_PRESET");
  assert.equal(
    spgError(() => calibrationPlan("conservative", splits, parseMargins("compression_ratio=10%"))).code,
    "E_CALIBRATE_MARGIN",
  );
});

test("the script refuses the eval split before running anything (exit 2, E_CALIBRATE_EVAL_SPLIT)", () => {
  const script = join(packageRoot(), "dist", "scripts", "calibrate-claims.js");
  const run = spawnSync(
    process.execPath,
    [
      script,
      "--presets",
      "default",
      "--margin",
      "compression_ratio=10%,perplexity_increase_pct=2",
      "--split",
      "eval",
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /^E_CALIBRATE_EVAL_SPLIT: /m);
  assert.equal(run.stdout, "");
});

test("a calibration plan proves the claimed methods on the calibration split with the preset's claims", () => {
  const plan = calibrationPlan("default", splits, margins);
  const c = plan.calibrationConfig;
  assert.equal(c.dataset.split, "calibration");
  assert.equal(c.dataset.calibrationSplit, "train");
  assert.deepEqual(
    c.methods.map((m) => m.name),
    ["full", ...new Set(plan.config.claims.map((claim) => claim.method))],
  );
  assert.deepEqual(c.claims, plan.config.claims);
  // The rest of the preset is unchanged: same samples count, context, bootstrap.
  assert.deepEqual(
    [c.dataset.samples, c.dataset.contextTokens, c.bootstrap],
    [plan.config.dataset.samples, plan.config.dataset.contextTokens, plan.config.bootstrap],
  );
});

test("updatePresetClaims sets thresholds and one comment line per claim, keeps every other line, and is idempotent", () => {
  const file = presetPath("default");
  const text = readFileSync(file, "utf8");
  const { claims } = resolveConfig({ preset: "default" });
  const rows = claims.map((claim, index) => ({ index, claim, threshold: 100 + index, comment: "" }));
  const provenance = {
    date: "2026-12-07",
    split: "calibration",
    calibrationSplit: "train",
    modelSha256: "ab".repeat(32),
  };
  for (const row of rows) {
    row.comment = calibrationComment(
      {
        ...row,
        figure: 1.5,
        loosened: 2,
        current: row.claim.threshold,
        margin: { kind: "relative" as const, value: 0.1 },
      },
      provenance,
    );
  }
  const updated = updatePresetClaims(text, file, rows);
  const before = parse(text);
  const after = parse(updated);
  assert.deepEqual(
    after.claims.map((c: { threshold: number }) => c.threshold),
    rows.map((r) => r.threshold),
  );
  after.claims.forEach((c: { threshold: number }, i: number) => {
    c.threshold = before.claims[i].threshold;
  });
  assert.deepEqual(after, before);
  // Only threshold lines changed, and one marker line was added above each claim.
  const added = updated.split("\n").filter((line) => !text.split("\n").includes(line));
  assert.equal(
    added.filter((line) => line.trim().startsWith(`#${CALIBRATION_COMMENT_MARKER}`)).length,
    claims.length,
  );
  assert.equal(added.filter((line) => /^\s+threshold: /.test(line)).length, claims.length);
  assert.equal(added.length, 2 * claims.length);
  const markerLines = updated
    .split("\n")
    .map((line, i) => [line, i] as const)
    .filter(([line]) => line.includes(CALIBRATION_COMMENT_MARKER));
  for (const [, i] of markerLines) assert.match(updated.split("\n")[i + 1], /^\s+- method: /);
  assert.ok(updated.includes(`model sha256 ${"ab".repeat(32)}`));
  // The existing comments stay.
  for (const line of text.split("\n").filter((l) => l.trim().startsWith("#")))
    assert.ok(updated.includes(line), line);
  // A rerun replaces the marker lines rather than stacking them.
  assert.equal(updatePresetClaims(updated, file, rows), updated);
  // A claim that moved in the file is refused rather than overwritten.
  const swapped = rows.map((r, i) => ({ ...r, claim: rows[(i + 1) % rows.length].claim }));
  assert.equal(spgError(() => updatePresetClaims(text, file, swapped)).code, "E_CALIBRATE_PRESET");
});
