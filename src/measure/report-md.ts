/** report.md: a human rendering of the summary (hashed in the bundle, never trusted by verify). */

import type { Summary } from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
import { executedLargerMethods, executedLargerWarning, executedMiBPerSample } from "./run-cost.js";

function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}

/** Weights methods: the bytes their ratio counts, parameters beside them, and the logit cosine. */
function weightsSection(summary: Summary): string[] {
  const rows = Object.entries(summary.methods).filter(([, m]) => m.weights !== undefined);
  if (rows.length === 0) return [];
  const lines = [
    "",
    "## Weight compression",
    "",
    "Ratios count serialized weight bytes (every tensor, dense ones included) against the checkpoint at the",
    "policy's baseline dtype; parameter counts are shown beside them, never used for the ratio.",
    "",
    "| method | weight bytes base | weight bytes comp | ratio (bytes) | params base | params stored | params ratio | logit cosine |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [name, m] of rows) {
    const w = m.weights!;
    const perSample = (bytes: number) => Math.round(bytes / m.samples);
    lines.push(
      `| ${name} | ${perSample(w.bytesBaseline)} | ${perSample(w.bytesCompressed)} | ${fixed(m.compressionRatio, 3)}x | ` +
        `${Math.round(w.parametersBaseline / m.samples)} | ${Math.round(w.parametersStored / m.samples)} | ` +
        `${fixed(w.parameterRatio, 3)}x | ${fixed(w.meanLogitCosine, 4)} |`,
    );
  }
  for (const [method, s] of Object.entries(summary.sensitivity ?? {})) {
    lines.push(
      "",
      `### Sensitivity of ${method} (perplexity +${fixed(s.perplexityIncreasePct, 2)}% with everything compressed)`,
      "",
      "| unit | ppl +% restored to dense | recovered (points) | ppl +% only this unit compressed |",
      "|---|---:|---:|---:|",
    );
    for (const unit of s.ranking) {
      const restore = s.restore.find((e) => e.unit === unit)!;
      const only = s.only.find((e) => e.unit === unit);
      lines.push(
        `| ${unit} | ${fixed(restore.perplexityIncreasePct, 2)} | ${fixed(restore.recoveredPct, 2)} | ${only === undefined ? "-" : fixed(only.perplexityIncreasePct, 2)} |`,
      );
    }
    lines.push("", `Ranking (restoring recovers most first): ${s.ranking.join(", ")}.`);
  }
  return lines;
}

/** Run cost (format version 3): executed memory and speed beside the stored ratio. */
function runCostSection(summary: Summary): string[] {
  const rows = Object.entries(summary.methods).filter(([, m]) => m.runCost !== undefined);
  if (rows.length === 0) return [];
  const lines = [
    "",
    "## Run cost",
    "",
    "Executed memory is what the session holds while the method runs: weights as executed (every constant",
    "of the graph at the dtype it computes with) plus the KV cache as the graph reads it, per sample; the",
    "stored ratio counts the bytes the compressed form stores. Speeds are tokens per second of this run's",
    "timings (not re-measured by verify without replay).",
    "",
    "| method | stored ratio | executed MiB base | executed MiB comp | executed memory ratio (CI) | decode tok/s base | decode tok/s comp | decode speed ratio (CI) | teacher-forced tok/s base | teacher-forced tok/s comp |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const ratio = (value: number | undefined, ci: { low: number; high: number } | undefined) =>
    value === undefined || ci === undefined
      ? "-"
      : `${fixed(value, 3)}x [${fixed(ci.low, 3)}, ${fixed(ci.high, 3)}]`;
  const speed = (value: number | undefined) => (value === undefined ? "-" : fixed(value, 1));
  for (const [name, m] of rows) {
    const c = m.runCost!;
    lines.push(
      `| ${name} | ${fixed(m.compressionRatio, 3)}x | ${fixed(executedMiBPerSample(c.executedBytesBaseline, m.samples), 2)} | ` +
        `${fixed(executedMiBPerSample(c.executedBytes, m.samples), 2)} | ` +
        `${ratio(m.executedMemoryRatio, m.intervals.executedMemoryRatio)} | ${speed(c.baselineDecodeTokensPerSecond)} | ` +
        `${speed(c.decodeTokensPerSecond)} | ${ratio(m.decodeSpeedRatio, m.intervals.decodeSpeedRatio)} | ` +
        `${speed(c.baselineTeacherForcedTokensPerSecond)} | ${speed(c.teacherForcedTokensPerSecond)} |`,
    );
  }
  const flagged = executedLargerMethods(summary);
  if (flagged.length > 0) {
    lines.push("");
    for (const name of flagged)
      lines.push(`- WARNING: ${executedLargerWarning(name, summary.methods[name])}.`);
  }
  return lines;
}

export function renderReportMarkdown(
  config: RunConfig,
  summary: Summary,
  environment: { model: { sha256: string } },
): string {
  const lines: string[] = [];
  // A shard's records cover a part of the run's samples: say so rather than the run's count.
  const measured = summary.methods[config.methods[0]?.name ?? ""]?.samples ?? config.dataset.samples;
  const samples =
    measured === config.dataset.samples
      ? `${config.dataset.samples}`
      : `${measured} of the run's ${config.dataset.samples}`;
  lines.push(`# spg proof bundle: ${config.name}`, "");
  lines.push(
    `Model \`${config.model.path}\` (sha256 ${environment.model.sha256.slice(0, 16)}…), ` +
      `${samples} samples of ${config.dataset.contextTokens} context + ` +
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
  lines.push(...weightsSection(summary));
  lines.push(...runCostSection(summary));
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
