/**
 * The README's tables in Markdown, from a bundle's recomputed summary: the methods (ablation)
 * table and the Pareto frontier, the run-cost table, the weights table, and the readings that
 * follow from their numbers. Text from the bundle is escaped for Markdown.
 */
import type { Interval, MethodSummary, Summary } from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
import { executedMiBPerSample, storedSmallerExecutedLarger } from "../measure/run-cost.js";
import { methodPoints } from "./data.js";
import { formatNumber, formatPercent } from "./html.js";

/** Escape text for a Markdown table cell: no emphasis, code, links or HTML, no cell breaks, one line. */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/\r?\n|\r/g, " ")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`);
}

function interval(low: number, high: number, format: (n: number) => string): string {
  return `[${format(low)}, ${format(high)}]`;
}

/** A run-cost ratio, or "-" for a bundle of an older format (not measured). */
function optionalRatio(value: number | undefined): string {
  return value === undefined ? "-" : `${formatNumber(value)}×`;
}

function ratioWithInterval(value: number | undefined, ci: Interval | undefined): string {
  if (value === undefined || ci === undefined) return "-";
  return `${formatNumber(value)}× ${interval(ci.low, ci.high, (n) => formatNumber(n))}`;
}

function mib(bytes: number, samples: number): string {
  return formatNumber(executedMiBPerSample(bytes, samples));
}

/** baseline → method, e.g. tokens per second of both sides. */
function sides(baseline: number | undefined, method: number | undefined): string {
  const f = (n: number | undefined) => (n === undefined ? "-" : formatNumber(n));
  return `${f(baseline)} → ${f(method)}`;
}

/**
 * Run cost per method (format version 3): stored ratio beside executed memory (MiB per sample,
 * baseline → method) and its ratio, and decode and teacher-forced tokens per second. A method
 * that stores less but executes more is marked ⚠.
 */
export function runCostMarkdown(summary: Summary, config: RunConfig, methodOrder: readonly string[]): string {
  const confidence = `${formatNumber(config.bootstrap.confidence * 100)}%`;
  const lines = [
    `| method | stored ratio | executed MiB per sample | executed memory ratio (${confidence} CI) | decode tokens/s | decode speed ratio (${confidence} CI) | teacher-forced tokens/s |`,
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const method of methodOrder) {
    if (!Object.hasOwn(summary.methods, method)) continue;
    const s = summary.methods[method];
    const c = s.runCost;
    if (c === undefined) continue;
    lines.push(
      `| ${escapeMarkdown(method)}${storedSmallerExecutedLarger(s) ? " ⚠" : ""} | ${formatNumber(s.compressionRatio)}× | ` +
        `${mib(c.executedBytesBaseline, s.samples)} → ${mib(c.executedBytes, s.samples)} | ` +
        `${ratioWithInterval(s.executedMemoryRatio, s.intervals.executedMemoryRatio)} | ` +
        `${sides(c.baselineDecodeTokensPerSecond, c.decodeTokensPerSecond)} | ` +
        `${ratioWithInterval(s.decodeSpeedRatio, s.intervals.decodeSpeedRatio)} | ` +
        `${sides(c.baselineTeacherForcedTokensPerSecond, c.teacherForcedTokensPerSecond)} |`,
    );
  }
  return lines.join("\n");
}

/**
 * Weights methods (sensitivity variants left out): the bytes ratio, parameters, quality, logit
 * cosine and run cost; `describe` names a method's policy (README: configs/weights/ descriptions).
 */
export function weightsMarkdown(
  summary: Summary,
  methodOrder: readonly string[],
  describe: (method: string) => string,
): string {
  const lines = [
    "| method | policy (`configs/weights/`) | ratio (bytes) | parameters ratio | perplexity +% (95% CI) | mean KL | top-1 | generation | mean logit cosine | executed MiB per sample | executed memory ratio | decode speed ratio |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const method of methodOrder) {
    if (!Object.hasOwn(summary.methods, method) || method.includes("@")) continue;
    const s = summary.methods[method];
    if (s.weights === undefined) continue;
    const ppl = s.intervals.perplexityIncreasePct;
    const c = s.runCost;
    lines.push(
      `| ${escapeMarkdown(method)}${storedSmallerExecutedLarger(s) ? " ⚠" : ""} | ${escapeMarkdown(describe(method))} | ` +
        `${formatNumber(s.compressionRatio)}× | ${s.weights.parameterRatio.toFixed(3)}× | ` +
        `${formatNumber(s.perplexityIncreasePct)} ${interval(ppl.low, ppl.high, (n) => formatNumber(n))} | ` +
        `${formatNumber(s.meanKl)} | ${formatPercent(s.top1Agreement)} | ${formatPercent(s.generationAgreement)} | ` +
        `${s.weights.meanLogitCosine.toFixed(5)} | ` +
        `${c === undefined ? "-" : `${mib(c.executedBytesBaseline, s.samples)} → ${mib(c.executedBytes, s.samples)}`} | ` +
        `${optionalRatio(s.executedMemoryRatio)} | ${optionalRatio(s.decodeSpeedRatio)} |`,
    );
  }
  return lines.join("\n");
}

/** What a user should read from a weights method's stored and executed ratios, from its numbers. */
export function weightsReading(method: string, s: MethodSummary): string | undefined {
  if (s.executedMemoryRatio === undefined || s.runCost === undefined) return undefined;
  const executed = `${mib(s.runCost.executedBytes, s.samples)} MiB against the checkpoint's ${mib(s.runCost.executedBytesBaseline, s.samples)} MiB`;
  const verdict =
    s.executedMemoryRatio < 1
      ? `so its stored ${formatNumber(s.compressionRatio)}× is a storage figure only: run as spg runs it, it costs ${formatNumber(1 / s.executedMemoryRatio)}× the baseline's memory`
      : `so it is smaller at run time too, by ${formatNumber(s.executedMemoryRatio)}× against ${formatNumber(s.compressionRatio)}× stored`;
  return `\`${escapeMarkdown(method)}\` stores ${formatNumber(s.compressionRatio)}× fewer bytes than the checkpoint, but this runtime runs it in float32 (its INT-k values and factors decoded once when the model loads) and holds ${executed} (weights as executed plus the KV cache read), ${verdict}.`;
}

/**
 * Why quantizing the cache does not shrink what this runtime executes, with the bundle's numbers:
 * the graph reads a decoded float32 cache; only a kernel reading the packed form would.
 */
export function kvReading(summary: Summary, methodOrder: readonly string[]): string | undefined {
  const kv = methodOrder.filter(
    (m) => Object.hasOwn(summary.methods, m) && summary.methods[m].weights === undefined,
  );
  const measured = kv.filter((m) => summary.methods[m].executedMemoryRatio !== undefined);
  if (measured.length === 0) return undefined;
  const ratios = measured.map((m) => summary.methods[m].executedMemoryRatio as number);
  const quant = measured.find((m) => m === "quant");
  const quantText =
    quant === undefined
      ? ""
      : ` (\`quant\` stores ${formatNumber(summary.methods[quant].compressionRatio)}× less and executes ${formatNumber(summary.methods[quant].executedMemoryRatio as number)}× less)`;
  return (
    `Every KV method's executed memory ratio lies between ${formatNumber(Math.min(...ratios))}× and ${formatNumber(Math.max(...ratios))}×${quantText}: ` +
    "this runtime decodes the stored bytes into the float32 cache the graph reads ([heads, slots, headDim] per layer, padded to the widest head), " +
    "so quantizing the cache shrinks only what is stored, evicting slots shrinks only the cache's share of what is executed, and the weights are the same session's for every KV method; " +
    "what would make the executed cache as small as the stored one is an attention kernel that reads the packed form (INT-k values with their scales and zero points) directly, which spg's ONNX graph does not have."
  );
}

/** One row per method in `methodOrder`: ratio, perplexity increase with its interval, KL, agreements. */
export function methodsMarkdown(summary: Summary, config: RunConfig, methodOrder: readonly string[]): string {
  const kinds = new Map(config.methods.map((m) => [m.name, m.kind]));
  const frontier = new Set(
    methodPoints(summary, methodOrder)
      .filter((p) => p.onFrontier)
      .map((p) => p.method),
  );
  const confidence = `${formatNumber(config.bootstrap.confidence * 100)}%`;
  const lines = [
    `| method | kind | compression ratio | perplexity +% (${confidence} CI) | mean KL (nats/token) | top-1 agreement | generation agreement | executed memory ratio | decode speed ratio | frontier |`,
    "|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
  ];
  for (const method of methodOrder) {
    if (!Object.hasOwn(summary.methods, method)) continue;
    const s = summary.methods[method];
    const ppl = s.intervals.perplexityIncreasePct;
    lines.push(
      [
        "",
        ` ${escapeMarkdown(method)} `,
        ` ${escapeMarkdown(kinds.get(method) ?? "?")} `,
        ` ${formatNumber(s.compressionRatio)}× `,
        ` ${formatNumber(s.perplexityIncreasePct)} ${interval(ppl.low, ppl.high, (n) => formatNumber(n))} `,
        ` ${formatNumber(s.meanKl)} `,
        ` ${formatPercent(s.top1Agreement)} `,
        ` ${formatPercent(s.generationAgreement)} `,
        ` ${optionalRatio(s.executedMemoryRatio)} `,
        ` ${optionalRatio(s.decodeSpeedRatio)} `,
        ` ${frontier.has(method) ? "◆" : ""} `,
        "",
      ].join("|"),
    );
  }
  return lines.join("\n");
}

/** The frontier, most compressed last: ratio and perplexity increase per method on it. */
export function frontierMarkdown(summary: Summary, methodOrder: readonly string[]): string {
  const points = methodPoints(summary, methodOrder)
    .filter((p) => p.onFrontier)
    .sort((a, b) => a.ratio - b.ratio);
  const lines = ["| method | compression ratio | perplexity +% |", "|---|---:|---:|"];
  for (const p of points) {
    lines.push(
      `| ${escapeMarkdown(p.method)} | ${formatNumber(p.ratio)}× | ${formatNumber(p.pplIncreasePct)} |`,
    );
  }
  return lines.join("\n");
}

/**
 * What the decode speed ratios can be compared with, from the bundle's numbers: `full` decodes
 * the same cache as the baseline, so its ratio is the bias of timing order and machine load.
 */
export function speedReading(summary: Summary): string | undefined {
  const full = Object.hasOwn(summary.methods, "full") ? summary.methods.full : undefined;
  if (full?.decodeSpeedRatio === undefined) return undefined;
  const ci = full.intervals.decodeSpeedRatio;
  return (
    `\`full\` decodes the same cache as the baseline; its decode speed ratio is ${formatNumber(full.decodeSpeedRatio)}×` +
    (ci === undefined ? "" : ` ${interval(ci.low, ci.high, (n) => formatNumber(n))}`) +
    ": the baseline's passes are timed first after each prefill, on a machine shared with other work, " +
    "so read a method's decode speed ratio against `full`'s, not against 1 (the timings are the producer's; replay re-times them)."
  );
}
