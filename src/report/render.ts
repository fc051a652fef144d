/**
 * `spg report`: one self-contained HTML page for a bundle. The zip is read safely, the
 * verifier runs over it (unless told not to), and every figure shown is recomputed from
 * records.jsonl with summarize(); summary.json and report.md are never shown as facts.
 * Only schema-valid entries are rendered, all their text escaped; plots are vega-lite
 * specs rendered to SVG here and inlined, so the page loads nothing at view time (its
 * Content-Security-Policy forbids it too).
 */
import type { Stats } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { writeFileAtomic } from "../bundle/atomic.js";
import type { Manifest } from "../bundle/manifest.js";
import { readBundleZip, type ZipSafetyFinding } from "../bundle/read.js";
import type { TrustedKeys } from "../bundle/sign.js";
import {
  type EnvironmentFile,
  type FingerprintLine,
  isWeightFingerprint,
  type LayerFingerprint,
  type SampleRecord,
  type Summary,
} from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
import { isSpgError, SpgError } from "../errors.js";
import {
  executedLargerWarning,
  executedMiBPerSample,
  storedSmallerExecutedLarger,
} from "../measure/run-cost.js";
import { summarize } from "../measure/summary.js";
import { policyOf } from "../verify/checks/options.js";
import { bootstrapRefusal } from "../verify/checks/policy.js";
import { validateEntries } from "../verify/checks/schemas.js";
import { BundleContext } from "../verify/context.js";
import { runAllChecks, type VerifyResult } from "../verify/runner.js";
import { loadSchemaValidators } from "../verify/schemas.js";
import { type Finding, pass } from "../verify/types.js";
import { continuationsSection } from "./continuations.js";
import { layerCells, methodOrderOf, methodPoints, samplePoints } from "./data.js";
import { escapeHtml, formatNumber, formatPercent, table } from "./html.js";
import {
  distributionSpec,
  heatmapSpec,
  paretoSpec,
  renderSvg,
  runCostSpec,
  SvgIdRenumbering,
} from "./plots.js";

export interface ReportOptions {
  /** Run the verifier and show its verdict (false: the page says it is unverified). */
  verify: boolean;
  /** Key ids the verifier trusts (a trust policy); none = signer shown, not judged. */
  trustedKeyIds?: ReadonlySet<string> | TrustedKeys;
  /** Fail the verdict unless the signer is trusted. */
  requireTrusted?: boolean;
  /** Samples whose greedy continuations are shown as text (default: DEFAULT_CONTINUATION_SAMPLES). */
  continuationSamples?: number;
}

/** How many samples' continuations the report shows unless told otherwise: enough to read, short enough to scan. */
export const DEFAULT_CONTINUATION_SAMPLES = 3;

export type ReportVerdict = "pass" | "fail" | "unverified";

export interface BuiltReport {
  html: string;
  /** The verdict on top of the page. */
  verdict: ReportVerdict;
}

/** Read the bundle at `bundlePath` and render its report. */
export async function renderReport(bundlePath: string, options: ReportOptions): Promise<string> {
  return (await buildReport(bundlePath, options)).html;
}

/** renderReport, with the verdict the page shows (for the command's summary line). */
export async function buildReport(bundlePath: string, options: ReportOptions): Promise<BuiltReport> {
  let stats: Stats;
  try {
    stats = await stat(bundlePath);
  } catch (cause) {
    throw new SpgError("E_REPORT_BUNDLE", `bundle not found (${(cause as NodeJS.ErrnoException).code})`, {
      file: bundlePath,
      fix: "pass the path of a bundle zip written by `spg prove`",
      cause,
    });
  }
  if (!stats.isFile()) {
    throw new SpgError("E_REPORT_BUNDLE", "not a file", {
      file: bundlePath,
      fix: "pass the path of a bundle zip written by `spg prove`",
    });
  }
  const read = await readBundleZip(bundlePath);
  const title = basename(bundlePath);
  if (!read.ok) return { html: page(title, unreadableSection(read.findings)), verdict: "fail" };
  return buildReportFromEntries(read.entries, title, options, read.inflatedBytes);
}

interface Parts {
  manifest?: Manifest;
  config?: RunConfig;
  environment?: EnvironmentFile;
  records?: SampleRecord[];
  fingerprints?: LayerFingerprint[];
}

/** Render from a bundle's entries already read by the safe reader. */
export async function buildReportFromEntries(
  entries: Map<string, Buffer>,
  title: string,
  options: ReportOptions,
  inflatedBytes?: number,
): Promise<BuiltReport> {
  const contents = new BundleContext(entries);
  const validation = validateEntries(contents, loadSchemaValidators());
  const valid = validation.valid;
  // The report draws every record and fingerprint, so it holds them (verify folds them instead).
  const lines = (name: string) => (validation.validLines.has(name) ? contents.value(name) : undefined);
  const parts: Parts = {
    manifest: valid.get("manifest.json") as Manifest | undefined,
    config: valid.get("config.json") as RunConfig | undefined,
    environment: valid.get("environment.json") as EnvironmentFile | undefined,
    records: lines("records.jsonl") as SampleRecord[] | undefined,
    // Per-layer KV figures only; weights methods' tensor lines are in the summary's weights section.
    fingerprints: (lines("fingerprints.jsonl") as FingerprintLine[] | undefined)?.filter(
      (f): f is LayerFingerprint => !isWeightFingerprint(f),
    ),
  };
  let verification: VerifyResult | undefined;
  if (options.verify) {
    // Every check `spg verify` makes short of replay: the draw is re-derived too, so the page
    // never says PASS where verify would fail.
    const result = await runAllChecks(contents, {
      trustedKeyIds: options.trustedKeyIds,
      requireTrusted: options.requireTrusted ?? false,
    });
    // As spg verify reports it (src/verify/verify-bundle.ts): the safe read is a check too.
    const bytes = inflatedBytes === undefined ? "" : ` (${inflatedBytes} bytes inflated)`;
    const safe = pass("zip-safety", `${entries.size} entries read within limits${bytes}`);
    verification = { ...result, findings: [safe, ...result.findings] };
  }

  let summary: Summary | undefined = verification?.recomputed;
  let summaryProblem: string | undefined;
  if (summary === undefined) {
    if (parts.config === undefined || parts.records === undefined) {
      summaryProblem = "config.json or records.jsonl is missing or fails its schema: nothing to recompute.";
    } else {
      // The verifier's bootstrap bound holds here too: a bundle stating a huge bootstrap.resamples
      // must not make the report spin (or run out of memory) where verify refuses it.
      const refusal = bootstrapRefusal(
        parts.config,
        parts.records.length,
        policyOf({ requireTrusted: false }),
      );
      if (refusal !== undefined) {
        summaryProblem = `E_RECOMPUTE_LIMIT: ${refusal}: not recomputed`;
      } else {
        try {
          summary = summarize(parts.records, parts.config);
        } catch (error) {
          summaryProblem = isSpgError(error) ? error.describe() : String(error);
        }
      }
    }
  }

  const ids = new SvgIdRenumbering();
  const methodOrder = methodOrderOf(parts.config?.methods.map((m) => m.name) ?? [], parts.records ?? []);
  const sections = [
    verdictSection(verification, validation.findings),
    runSection(parts),
    summary === undefined
      ? `<section><h2>Claims and methods</h2><p class="problem">Not shown: ${escapeHtml(summaryProblem ?? "no summary")}</p></section>`
      : [
          claimsSection(summary),
          await paretoSection(summary, methodOrder, ids),
          methodsSection(summary, parts, methodOrder),
          await runCostSection(summary, methodOrder, ids),
        ].join("\n"),
    await layersSection(parts.fingerprints, methodOrder, ids),
    await samplesSection(parts.records, methodOrder, ids),
    continuationsSection(
      parts.records,
      methodOrder,
      options.continuationSamples ?? DEFAULT_CONTINUATION_SAMPLES,
    ),
  ];
  const verdict: ReportVerdict =
    verification === undefined ? "unverified" : verification.passed ? "pass" : "fail";
  return { html: page(title, sections.join("\n")), verdict };
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; word-break: break-all; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td { overflow-wrap: anywhere; }
td:nth-child(-n+2) { white-space: nowrap; }
.verdict { padding: .8rem 1rem; border-radius: 6px; font-size: 1.15rem; font-weight: 600; }
.verdict.pass { background: #e5f6e8; border: 1px solid #3c9a4d; color: #17632a; }
.verdict.fail { background: #fde8e8; border: 1px solid #c43d3d; color: #8e1c1c; }
.verdict.unverified { background: #fff5dc; border: 1px solid #c99a2e; color: #6f5100; }
.ok { color: #17632a; font-weight: 600; }
.bad { color: #8e1c1c; font-weight: 600; }
.problem { color: #8e1c1c; }
.note { color: #555; font-size: .9rem; }
figure { margin: .5rem 0 1.2rem; }
figcaption { color: #555; font-size: .9rem; margin-top: .2rem; }
figure svg { max-width: 100%; height: auto; }
code { font-size: .92em; }
h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
.generated { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: .9em; }
mark { background: #ffe08a; }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spg report: ${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>spg report: ${escapeHtml(title)}</h1>
${body}
<p class="note">Every figure on this page was recomputed from the bundle's raw records (records.jsonl, fingerprints.jsonl); the bundle's own summary.json and report.md are not shown. Generated by <code>spg report</code>.</p>
</body>
</html>
`;
}

function findingRows(findings: readonly (Finding | ZipSafetyFinding)[]): string[][] {
  return findings.map((f) => [
    escapeHtml(f.check),
    f.ok ? '<span class="ok">ok</span>' : `<span class="bad">${escapeHtml(f.code)}</span>`,
    escapeHtml(f.message),
  ]);
}

function unreadableSection(findings: readonly ZipSafetyFinding[]): string {
  return `<section id="verdict"><h2>Verification</h2>
<div class="verdict fail" data-verdict="fail">FAIL: the zip is unreadable or unsafe; nothing in it was opened</div>
${table(["check", "code", "message"], findingRows(findings))}</section>`;
}

function verdictSection(result: VerifyResult | undefined, schemaFindings: readonly Finding[]): string {
  if (result === undefined) {
    const failing = schemaFindings.filter((f) => !f.ok);
    return `<section id="verdict"><h2>Verification</h2>
<div class="verdict unverified" data-verdict="unverified">NOT VERIFIED: rendered with verification off; signature, integrity and claims were not checked</div>
${failing.length > 0 ? `<p>Entries that fail their schema are not shown:</p>${table(["check", "code", "message"], findingRows(failing))}` : ""}</section>`;
  }
  const failing = result.findings.filter((f) => !f.ok);
  const verdict = result.passed
    ? `<div class="verdict pass" data-verdict="pass">PASS: every check holds (exit code ${result.exitCode}); the samples were not replayed here: \`spg verify\` also re-measures them on your machine</div>`
    : `<div class="verdict fail" data-verdict="fail">FAIL: ${failing.length} failing finding${failing.length === 1 ? "" : "s"} (exit code ${result.exitCode})</div>`;
  return `<section id="verdict"><h2>Verification</h2>
${verdict}
${failing.length > 0 ? table(["check", "code", "message"], findingRows(failing), "failures") : ""}
<details><summary>All ${result.findings.length} findings</summary>
${table(["check", "code", "message"], findingRows(result.findings))}
</details></section>`;
}

function runSection(parts: Parts): string {
  const rows: string[][] = [];
  const add = (label: string, value: unknown) => {
    if (value !== undefined && value !== null) rows.push([escapeHtml(label), escapeHtml(value)]);
  };
  add("run", parts.config?.name);
  if (parts.manifest) {
    const tool = parts.manifest.tool;
    add("tool", `${tool.name} ${tool.version}${tool.commit ? ` (${tool.commit})` : ""}`);
    add("created", parts.manifest.createdAt);
  }
  if (parts.environment) {
    const env = parts.environment;
    add(
      "model",
      `${env.model.path} (${env.model.layers} layers, ${env.model.heads} heads, hidden ${env.model.hiddenSize})`,
    );
    add("model sha256", env.model.sha256);
    add(
      "dataset",
      `${env.dataset.source}: ${env.dataset.split} (calibration: ${env.dataset.calibrationSplit})`,
    );
    add("dataset sha256", env.dataset.sha256);
    add("execution provider", env.executionProvider);
  }
  if (parts.config) {
    const d = parts.config.dataset;
    add(
      "samples",
      `${d.samples} × (${d.contextTokens} context + ${d.continuationTokens} continuation tokens), seed ${d.seed}`,
    );
    add("baseline KV dtype", parts.config.kv.baselineDtype);
  }
  return `<section id="run"><h2>Run</h2>${rows.length > 0 ? table(["", ""], rows) : '<p class="problem">No schema-valid run description.</p>'}</section>`;
}

function claimsSection(summary: Summary): string {
  if (summary.claims.length === 0)
    return `<section id="claims"><h2>Claims</h2><p>The bundle states no claims.</p></section>`;
  const rows = summary.claims.map((c) => [
    escapeHtml(c.method),
    escapeHtml(c.metric),
    `${escapeHtml(c.op)} ${escapeHtml(formatNumber(c.threshold))}`,
    escapeHtml(c.judge),
    escapeHtml(formatNumber(c.value)),
    escapeHtml(formatNumber(c.judged)),
    c.pass ? '<span class="ok">holds</span>' : '<span class="bad">fails</span>',
  ]);
  return `<section id="claims"><h2>Claims</h2>
${table(["method", "metric", "target", "judged on", "value", "judged value", "verdict"], rows, "claims")}
<p class="note">Values recomputed from the records; "bound" judges the conservative end of the bootstrap interval.</p></section>`;
}

function figure(id: string, svg: string, caption: string): string {
  return `<figure class="plot" data-plot="${escapeHtml(id)}">${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

async function paretoSection(
  summary: Summary,
  methodOrder: readonly string[],
  ids: SvgIdRenumbering,
): Promise<string> {
  const points = methodPoints(summary, methodOrder);
  if (points.length === 0)
    return `<section id="pareto"><h2>Trade-off</h2><p>No method to plot.</p></section>`;
  const svg = await renderSvg(paretoSpec(points), ids);
  return `<section id="pareto"><h2>Trade-off: compression against perplexity</h2>
${figure("pareto", svg, "Each method's compression ratio and perplexity increase, with its bootstrap interval; diamonds and the dashed line mark the Pareto frontier of all methods (no other method compresses at least as much at no higher perplexity increase); sweep variants of one method share its color, joined along their own frontier.")}</section>`;
}

/**
 * Run cost (format version 3): stored ratio against executed memory ratio, plotted and tabled;
 * a method that stores less but executes more is red with a warning. Older bundles: a note.
 */
async function runCostSection(
  summary: Summary,
  methodOrder: readonly string[],
  ids: SvgIdRenumbering,
): Promise<string> {
  const measured = methodOrder.filter(
    (method) =>
      Object.hasOwn(summary.methods, method) && summary.methods[method].executedMemoryRatio !== undefined,
  );
  if (measured.length === 0) {
    return `<section id="run-cost"><h2>Run cost</h2><p class="note">This bundle's format records no run cost (executed memory, speed): only stored bytes.</p></section>`;
  }
  const points = measured.map((method) => {
    const m = summary.methods[method];
    return {
      method,
      storedRatio: m.compressionRatio,
      executedMemoryRatio: m.executedMemoryRatio as number,
      executedLarger: storedSmallerExecutedLarger(m),
    };
  });
  const svg = await renderSvg(runCostSpec(points), ids);
  const ratio = (value: number | undefined, interval: { low: number; high: number } | undefined) =>
    value === undefined || interval === undefined
      ? "-"
      : withInterval(value, interval, (n) => `${formatNumber(n)}×`);
  const rows = measured.map((method) => {
    const m = summary.methods[method];
    const c = m.runCost;
    const flagged = storedSmallerExecutedLarger(m);
    const speed = (n: number | undefined) => (n === undefined ? "-" : escapeHtml(formatNumber(n)));
    return [
      flagged ? `<span class="bad">${escapeHtml(method)}</span>` : escapeHtml(method),
      escapeHtml(`${formatNumber(m.compressionRatio)}×`),
      c === undefined
        ? "-"
        : escapeHtml(
            `${formatNumber(executedMiBPerSample(c.executedBytesBaseline, m.samples))} → ${formatNumber(executedMiBPerSample(c.executedBytes, m.samples))}`,
          ),
      flagged
        ? `<span class="bad">${ratio(m.executedMemoryRatio, m.intervals.executedMemoryRatio)}</span>`
        : ratio(m.executedMemoryRatio, m.intervals.executedMemoryRatio),
      `${speed(c?.baselineDecodeTokensPerSecond)} → ${speed(c?.decodeTokensPerSecond)}`,
      ratio(m.decodeSpeedRatio, m.intervals.decodeSpeedRatio),
    ];
  });
  const warnings = measured
    .filter((method) => storedSmallerExecutedLarger(summary.methods[method]))
    .map(
      (method) =>
        `<p class="bad" data-warning="executed-larger">${escapeHtml(executedLargerWarning(method, summary.methods[method]))}</p>`,
    );
  return `<section id="run-cost"><h2>Run cost: stored against executed memory</h2>
${warnings.join("\n")}
${figure("run-cost", svg, "Each method's stored ratio against its executed memory ratio (what the session holds while it runs: weights as executed plus the KV cache as the graph reads it); red: stores less than the baseline but executes more.")}
${table(["method", "stored ratio", "executed MiB per sample (baseline → method)", "executed memory ratio", "decode tokens/s (baseline → method)", "decode speed ratio"], rows)}
<p class="note">Speeds are the producer's timings (re-measured only by replay).</p></section>`;
}

function withInterval(
  value: number,
  interval: { low: number; high: number },
  format: (n: number) => string,
): string {
  return `${escapeHtml(format(value))} <span class="note">[${escapeHtml(format(interval.low))}, ${escapeHtml(format(interval.high))}]</span>`;
}

function methodsSection(summary: Summary, parts: Parts, methodOrder: readonly string[]): string {
  const kinds = new Map((parts.config?.methods ?? []).map((m) => [m.name, m.kind]));
  const frontier = new Set(
    methodPoints(summary, methodOrder)
      .filter((p) => p.onFrontier)
      .map((p) => p.method),
  );
  const rows = methodOrder
    .filter((m) => Object.hasOwn(summary.methods, m))
    .map((method) => {
      const s = summary.methods[method];
      const i = s.intervals;
      return [
        escapeHtml(method),
        escapeHtml(kinds.get(method) ?? "?"),
        escapeHtml(s.samples),
        withInterval(s.compressionRatio, i.compressionRatio, (n) => `${formatNumber(n)}×`),
        escapeHtml(formatNumber(s.perplexityCompressed)),
        withInterval(s.perplexityIncreasePct, i.perplexityIncreasePct, (n) => `${formatNumber(n)}%`),
        withInterval(s.meanKl, i.meanKl, (n) => formatNumber(n)),
        withInterval(s.top1Agreement, i.top1Agreement, (n) => formatPercent(n)),
        withInterval(s.generationAgreement, i.generationAgreement, (n) => formatPercent(n)),
        frontier.has(method) ? "◆" : "",
      ];
    });
  return `<section id="methods"><h2>Methods and ablations</h2>
${table(
  [
    "method",
    "kind",
    "samples",
    "compression ratio",
    "perplexity",
    "perplexity +%",
    "mean KL (nats/token)",
    "top-1 agreement",
    "generation agreement",
    "frontier",
  ],
  rows,
  "methods",
)}
<p class="note">Brackets: bootstrap ${escapeHtml(parts.config ? `${formatNumber(parts.config.bootstrap.confidence * 100)}%` : "")} intervals over samples. Baseline perplexity (uncompressed): ${escapeHtml(formatNumber(Object.values(summary.methods)[0]?.perplexityBaseline ?? Number.NaN))}.</p></section>`;
}

async function layersSection(
  fingerprints: LayerFingerprint[] | undefined,
  methodOrder: readonly string[],
  ids: SvgIdRenumbering,
): Promise<string> {
  if (fingerprints === undefined || fingerprints.length === 0) {
    return `<section id="layers"><h2>Per layer</h2><p class="problem">fingerprints.jsonl is missing, empty or fails its schema.</p></section>`;
  }
  const cells = layerCells(fingerprints, methodOrder);
  const kept = await renderSvg(heatmapSpec(cells, methodOrder, "keptFraction", "tokens kept", ".2f"), ids);
  const bytes = await renderSvg(heatmapSpec(cells, methodOrder, "meanBytes", "bytes", ".3s"), ids);
  return `<section id="layers"><h2>Per layer</h2>
${figure("layers-kept", kept, "Mean fraction of cache slots kept (tokens kept / tokens in the full cache, summed over heads), per layer and method, over samples.")}
${figure("layers-bytes", bytes, "Mean bytes each layer's compressed cache occupies, per layer and method, over samples.")}</section>`;
}

async function samplesSection(
  records: SampleRecord[] | undefined,
  methodOrder: readonly string[],
  ids: SvgIdRenumbering,
): Promise<string> {
  if (records === undefined || records.length === 0) {
    return `<section id="samples"><h2>Per sample</h2><p class="problem">records.jsonl is missing, empty or fails its schema.</p></section>`;
  }
  const samples = samplePoints(records);
  const ppl = await renderSvg(
    distributionSpec(samples, methodOrder, "pplIncreasePct", "perplexity increase (%) per sample"),
    ids,
  );
  const kl = await renderSvg(
    distributionSpec(samples, methodOrder, "klPerToken", "KL(baseline ‖ compressed), nats per token"),
    ids,
  );
  return `<section id="samples"><h2>Per sample</h2>
${figure("samples-ppl", ppl, "Each sample's perplexity increase (ticks) and their spread (box: quartiles, whiskers: min–max).")}
${figure("samples-kl", kl, "Each sample's mean KL divergence per scored token.")}</section>`;
}

/** The bundle's path with .html instead of .zip (or .html appended). */
export function defaultReportPath(bundlePath: string): string {
  return bundlePath.toLowerCase().endsWith(".zip")
    ? `${bundlePath.slice(0, -".zip".length)}.html`
    : `${bundlePath}.html`;
}

/** Write the page atomically (temp file, then rename over any earlier report). */
export async function writeReportFile(out: string, html: string): Promise<void> {
  try {
    await writeFileAtomic(out, html, { overwrite: true });
  } catch (cause) {
    if (isSpgError(cause)) throw cause;
    throw new SpgError(
      "E_REPORT_WRITE",
      `cannot write the report (${(cause as NodeJS.ErrnoException).code})`,
      {
        file: out,
        fix: "choose an --out path in an existing, writable directory",
        cause,
      },
    );
  }
}
