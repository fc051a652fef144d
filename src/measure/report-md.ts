/** report.md: a human rendering of the summary (hashed in the bundle, never trusted by verify). */

import type { Summary } from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";

function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}

export function renderReportMarkdown(
  config: RunConfig,
  summary: Summary,
  environment: { model: { sha256: string } },
): string {
  const lines: string[] = [];
  lines.push(`# spg proof bundle: ${config.name}`, "");
  lines.push(
    `Model \`${config.model.path}\` (sha256 ${environment.model.sha256.slice(0, 16)}…), ` +
      `${config.dataset.samples} samples of ${config.dataset.contextTokens} context + ` +
      `${config.dataset.continuationTokens} continuation tokens from ${config.dataset.source}/${config.dataset.split}, ` +
      `baseline cache counted in ${config.kv.baselineDtype}.`,
    "",
  );
  lines.push(
    "| method | ratio | ppl base | ppl comp | ppl +% (CI) | mean KL | top-1 | gen agree |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const [name, m] of Object.entries(summary.methods)) {
    const ci = m.intervals.perplexityIncreasePct;
    lines.push(
      `| ${name} | ${fixed(m.compressionRatio, 2)}x | ${fixed(m.perplexityBaseline, 3)} | ${fixed(m.perplexityCompressed, 3)} | ` +
        `${fixed(m.perplexityIncreasePct, 2)} [${fixed(ci.low, 2)}, ${fixed(ci.high, 2)}] | ${m.meanKl.toExponential(2)} | ` +
        `${fixed(100 * m.top1Agreement, 1)}% | ${fixed(100 * m.generationAgreement, 1)}% |`,
    );
  }
  lines.push("", "## Claims", "");
  if (summary.claims.length === 0) lines.push("No claims configured.");
  for (const claim of summary.claims) {
    lines.push(
      `- ${claim.pass ? "PASS" : "FAIL"} ${claim.method} ${claim.metric} ${claim.op} ${claim.threshold} ` +
        `(${claim.judge}: ${claim.judged}; point ${claim.value})`,
    );
  }
  lines.push("", "Recompute everything with `spg verify <bundle.zip>`.", "");
  return lines.join("\n");
}
