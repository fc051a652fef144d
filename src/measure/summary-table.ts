/** The short human table `spg prove` prints at the end. */
import type { Summary } from "../bundle/types.js";

export function summaryTable(summary: Summary): string {
  const header = ["method", "ratio", "ppl +%", "95% CI", "mean KL", "top-1", "gen", "exec mem", "decode"];
  const optionalRatio = (value: number | undefined) => (value === undefined ? "-" : `${value.toFixed(3)}x`);
  const rows = Object.entries(summary.methods).map(([name, m]) => [
    name,
    `${m.compressionRatio.toFixed(2)}x`,
    m.perplexityIncreasePct.toFixed(2),
    `[${m.intervals.perplexityIncreasePct.low.toFixed(2)}, ${m.intervals.perplexityIncreasePct.high.toFixed(2)}]`,
    m.meanKl.toExponential(2),
    `${(100 * m.top1Agreement).toFixed(1)}%`,
    `${(100 * m.generationAgreement).toFixed(1)}%`,
    optionalRatio(m.executedMemoryRatio),
    optionalRatio(m.decodeSpeedRatio),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const claims = summary.claims.map(
    (c) =>
      `${c.pass ? "PASS" : "FAIL"}  ${c.method} ${c.metric} ${c.op} ${c.threshold}  (${c.judge}: ${c.judged.toPrecision(4)})`,
  );
  return [line(header), ...rows.map(line), "", ...(claims.length ? claims : ["no claims configured"])].join(
    "\n",
  );
}
