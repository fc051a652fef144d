/**
 * The README's tables in Markdown, from a bundle's recomputed summary: the methods (ablation)
 * table and the Pareto frontier. Text from the bundle is escaped for Markdown.
 */
import type { Summary } from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
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
    `| method | kind | compression ratio | perplexity +% (${confidence} CI) | mean KL (nats/token) | top-1 agreement | generation agreement | frontier |`,
    "|---|---|---:|---:|---:|---:|---:|:---:|",
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
