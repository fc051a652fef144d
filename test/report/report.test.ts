import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import type { Summary } from "../../src/bundle/types.js";
import { isSpgError } from "../../src/errors.js";
import { summarize } from "../../src/measure/summary.js";
import { packageRoot } from "../../src/paths.js";
import { familyOf, layerCells, methodPoints, samplePoints } from "../../src/report/data.js";
import { escapeHtml, formatNumber } from "../../src/report/html.js";
import { buildReport, defaultReportPath, renderReport } from "../../src/report/render.js";
import { writeReportBundle } from "./report-bundle.js";

const work = mkdtempSync(join(tmpdir(), "spg-report-"));
after(() => rmSync(work, { recursive: true, force: true }));

const PLOTS = ["pareto", "run-cost", "layers-kept", "layers-bytes", "samples-ppl", "samples-kl"];

/** Each plot's figure holds one vega-rendered SVG. */
function plotSvgs(html: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of html.matchAll(/<figure class="plot" data-plot="([^"]+)">(<svg[\s\S]*?<\/svg>)/g)) {
    found.set(match[1], match[2]);
  }
  return found;
}

/** Every URL-ish reference left once the SVG namespace declarations (not loads) are removed. */
function networkReferences(html: string): string[] {
  const withoutNamespaces = html.replace(/\sxmlns(:\w+)?="[^"]*"/g, "");
  return [
    ...withoutNamespaces.matchAll(
      /(https?:|\/\/[a-z0-9.-]+\.[a-z]{2,}\/|<link\b|<script\b|@import|url\((?!\s*#))/gi,
    ),
  ].map((m) => m[0]);
}

test("a valid bundle: verdict pass, recomputed claims, every plot as inline SVG, nothing loaded from the network", async () => {
  const bundle = join(work, "run.zip");
  const made = await writeReportBundle(bundle);
  const { html, verdict } = await buildReport(bundle, { verify: true });
  assert.equal(verdict, "pass");
  assert.match(html, /data-verdict="pass"/);
  assert.ok(html.indexOf('id="verdict"') < html.indexOf('id="claims"'), "the verdict comes first");

  const svgs = plotSvgs(html);
  assert.deepEqual([...svgs.keys()], PLOTS);
  for (const [name, svg] of svgs) {
    assert.match(svg, /class="marks"/, name);
    assert.ok((svg.match(/<path|<text/g) ?? []).length > 5, `${name} has marks`);
  }
  assert.deepEqual(networkReferences(html), []);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);

  // Claims and methods show summarize()'s figures.
  const summary = summarize(made.records, made.config);
  for (const claim of summary.claims) assert.ok(html.includes(`<td>${formatNumber(claim.judged)}</td>`));
  for (const method of made.config.methods) {
    assert.ok(html.includes(`<td>${escapeHtml(method.name)}</td><td>${method.kind}</td>`), method.name);
    const ratio = summary.methods[method.name].compressionRatio;
    assert.ok(html.includes(`${formatNumber(ratio)}×`), `${method.name} ratio`);
    // Every method appears in the per-layer heatmap and the per-sample plots.
    assert.ok(svgs.get("layers-kept")!.includes(`method: ${escapeHtml(method.name)}`), method.name);
    assert.ok(svgs.get("samples-ppl")!.includes(escapeHtml(method.name)), method.name);
  }
  assert.equal(await renderReport(bundle, { verify: true }), html, "deterministic");
});

test("a false summary.json is not shown: figures are recomputed, and the verdict fails", async () => {
  const bundle = join(work, "false-summary.zip");
  const stated = 123456;
  const made = await writeReportBundle(bundle, { statedRatio: stated });
  const { html, verdict } = await buildReport(bundle, { verify: true });
  assert.equal(verdict, "fail");
  assert.match(html, /recompute/);
  assert.ok(!html.includes(formatNumber(stated)));
  const recomputed = summarize(made.records, made.config).methods[made.target].compressionRatio;
  assert.ok(html.includes(`${formatNumber(recomputed)}×`));
});

test("hostile text from the bundle is escaped everywhere, and the findings are listed", async () => {
  const bundle = join(work, "hostile.zip");
  const hostile = `<script>alert(1)</script>"'&`;
  await writeReportBundle(bundle, { hostileMethod: hostile, runName: "<img src=x onerror=alert(2)>" });
  const { html, verdict } = await buildReport(bundle, { verify: true });
  assert.equal(verdict, "fail");
  // Names are held to a safe pattern by the schemas, so the hostile method name is refused there.
  assert.match(html, /E_SCHEMA_[A-Z]+/);
  assert.doesNotMatch(html, /<script|<img|onerror=alert\(2\)>/i);
  assert.ok(html.includes("&lt;img src=x onerror=alert(2)&gt;"));
  // The schemas refuse such a method name (names follow a safe pattern), so no plot draws it;
  // where the verdict's findings quote it, it is escaped (no raw <script above).
  assert.deepEqual(networkReferences(html), []);
});

test("--no-verify says so on top; an unreadable zip is a failing verdict; a missing one an error", async () => {
  const bundle = join(work, "unverified.zip");
  await writeReportBundle(bundle);
  const unverified = await buildReport(bundle, { verify: false });
  assert.equal(unverified.verdict, "unverified");
  assert.match(unverified.html, /NOT VERIFIED/);
  assert.equal(plotSvgs(unverified.html).size, PLOTS.length);

  const garbage = join(work, "garbage.zip");
  writeFileSync(garbage, "not a zip at all");
  const unreadable = await buildReport(garbage, { verify: true });
  assert.equal(unreadable.verdict, "fail");
  assert.match(unreadable.html, /E_ZIP_/);

  await assert.rejects(
    buildReport(join(work, "absent.zip"), { verify: true }),
    (error: unknown) => isSpgError(error) && error.code === "E_REPORT_BUNDLE",
  );
  assert.equal(defaultReportPath("/a/b/run.zip"), "/a/b/run.html");
  assert.equal(defaultReportPath("/a/b/run.bundle"), "/a/b/run.bundle.html");
});

test("per-sample and per-layer figures: closed forms on a hand-made record and fingerprints", () => {
  const [point] = samplePoints([
    {
      sampleId: "s",
      sampleIndex: 0,
      method: "m",
      tokenHash: "0".repeat(64),
      document: "d",
      offset: 0,
      contextTokens: 8,
      continuationTokens: 5,
      scoredTokens: 4,
      nllBaseline: 4,
      nllCompressed: 4 + 4 * Math.log(1.1),
      klSum: 0.2,
      top1Matches: 3,
      generation: { compared: 2, matches: 2, firstDivergence: null },
      kvBytesBaseline: 1000,
      kvBytesCompressed: 250,
      timingsMs: { prefill: 1, compress: 1, decompress: 1, continuation: 1, generation: 1 },
      peakRssBytes: 1,
    },
  ]);
  // exp(Δnll / tokens) = 1.1 exactly: a 10% perplexity increase.
  assert.ok(Math.abs(point.pplIncreasePct - 10) < 1e-9);
  assert.equal(point.klPerToken, 0.05);
  assert.equal(point.top1Agreement, 0.75);
  assert.equal(point.ratio, 4);

  const print = (method: string, sampleId: string, layer: number, kept: number, bytes: number) => ({
    sampleId,
    method,
    layer,
    tokensKept: kept,
    tokensTotal: 8,
    headsFullPrecision: 0,
    bitsHistogram: {},
    bytes,
    sha256: "0".repeat(64),
  });
  const cells = layerCells(
    [
      print("b", "s1", 0, 2, 100),
      print("a", "s1", 1, 8, 10),
      print("b", "s2", 0, 6, 300),
      print("a", "s1", 0, 4, 20),
    ],
    ["b", "a"],
  );
  assert.deepEqual(cells, [
    { method: "b", layer: 0, samples: 2, keptFraction: 0.5, meanBytes: 200 },
    { method: "a", layer: 0, samples: 1, keptFraction: 0.5, meanBytes: 20 },
    { method: "a", layer: 1, samples: 1, keptFraction: 1, meanBytes: 10 },
  ]);
});

test("spg report writes BUNDLE.html atomically and prints the verdict; errors are SpgErrors", async () => {
  const run = promisify(execFile);
  const bin = join(packageRoot(), "bin", "run.js");
  const dir = mkdtempSync(join(work, "cli-"));
  const bundle = join(dir, "cli.zip");
  await writeReportBundle(bundle);
  const { stdout } = await run(process.execPath, [bin, "report", bundle, "--no-require-trusted"]);
  assert.match(stdout, /verdict: pass/);
  assert.match(readFileSync(join(dir, "cli.html"), "utf8"), /data-verdict="pass"/);
  assert.deepEqual(readdirSync(dir).sort(), ["cli.html", "cli.zip"], "no temporary file left behind");
  await assert.rejects(
    run(process.execPath, [bin, "report", join(dir, "absent.zip")]),
    (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr ?? "", /E_REPORT_BUNDLE/);
      return true;
    },
  );
});

test("trade-off points: sweep variants grouped under their method, overall and per-method frontiers", () => {
  const interval = { low: 0, high: 0 };
  const method = (ratio: number, ppl: number) =>
    ({
      compressionRatio: ratio,
      perplexityIncreasePct: ppl,
      intervals: { perplexityIncreasePct: { low: ppl - 1, high: ppl + 1 }, compressionRatio: interval },
    }) as unknown as Summary["methods"][string];
  const summary = {
    methods: {
      full: method(1, 0),
      "spg@ratio=2": method(2, 1),
      "spg@ratio=4": method(4, 3),
      "h2o@ratio=2": method(2, 2),
      "h2o@ratio=4": method(4, 2.5),
    },
    claims: [],
    allClaimsPass: true,
  } as unknown as Summary;
  const points = methodPoints(summary, ["full", "spg@ratio=2", "spg@ratio=4", "h2o@ratio=2", "h2o@ratio=4"]);
  assert.deepEqual(
    points.map((p) => [p.method, p.family, p.onFrontier, p.onFamilyFrontier, p.pplLow, p.pplHigh]),
    [
      ["full", "full", true, true, -1, 1],
      ["spg@ratio=2", "spg", true, true, 0, 2],
      ["spg@ratio=4", "spg", false, true, 2, 4],
      ["h2o@ratio=2", "h2o", false, true, 1, 3],
      ["h2o@ratio=4", "h2o", true, true, 1.5, 3.5],
    ],
  );
  assert.equal(familyOf("spg@ratio=8"), "spg");
  assert.equal(familyOf("@odd"), "@odd");
});

test("a swept bundle: variants verify, share their method's color and are joined along its own frontier", async () => {
  const bundle = join(work, "sweep.zip");
  const made = await writeReportBundle(bundle, { sweep: 3 });
  const variants = made.config.methods.filter((m) => m.name.includes("@"));
  assert.ok(variants.length >= 3, "the sweep added variants");
  const { html, verdict } = await buildReport(bundle, { verify: true });
  assert.equal(verdict, "pass", html.match(/<table class="failures">[\s\S]*?<\/table>/)?.[0]);
  for (const method of made.config.methods) {
    assert.ok(html.includes(`<td>${escapeHtml(method.name)}</td>`), method.name);
  }
  const pareto = plotSvgs(html).get("pareto")!;
  // One line per method family with two or more points on its own frontier, plus the overall frontier.
  const summary = summarize(made.records, made.config);
  const points = methodPoints(
    summary,
    made.config.methods.map((m) => m.name),
  );
  const familiesWithLines = new Set(
    points
      .filter((p) => p.onFamilyFrontier)
      .map((p) => p.family)
      .filter((family, _, all) => all.filter((f) => f === family).length >= 2),
  );
  assert.ok(familiesWithLines.size >= 1);
  const overall = points.filter((p) => p.onFrontier).length;
  assert.ok(overall >= 2);
  // Drawn lines: line-mark paths with at least one segment (a one-point series is just "M…Z").
  const drawn = [...pareto.matchAll(/aria-roledescription="line mark" d="([^"]*)"/g)].filter((m) =>
    m[1].includes("L"),
  ).length;
  assert.equal(drawn, familiesWithLines.size + 1);
});

test("run cost: a method that stores less but executes more is red, with its warning, beside the plot", async () => {
  const { html } = await buildReport(join(packageRoot(), "bundles", "weights.zip"), { verify: false });
  assert.ok(plotSvgs(html).has("run-cost"));
  const section = html.slice(
    html.indexOf('id="run-cost"'),
    html.indexOf("</section>", html.indexOf('id="run-cost"')),
  );
  // bundles/weights.zip: naive stores 1.8x less and executes more (README's weight table).
  assert.match(
    section,
    /<p class="bad" data-warning="executed-larger">naive stores [0-9.]+x less than the baseline but executes/,
  );
  assert.match(section, /<span class="bad">naive<\/span>/);
  assert.doesNotMatch(section, /<span class="bad">int8<\/span>/);
});
