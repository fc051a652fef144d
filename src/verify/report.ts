/**
 * How a verification result is shown: a human report (one line per check, details under
 * failures), JSON for machines, and under GitHub Actions an ::error annotation per failure
 * plus a Markdown table appended to $GITHUB_STEP_SUMMARY.
 */
import { appendFileSync } from "node:fs";
import { jsonTerminalSafe, terminalSafe } from "../terminal-safe.js";
import type { Thresholds, VerifyResult } from "./runner.js";
import { CHECK_ORDER, type CheckName, type Finding } from "./types.js";

/** Examples listed under a failing finding in the human report. */
const EXAMPLES_SHOWN = 5;

function byCheck(findings: readonly Finding[]): Map<CheckName, Finding[]> {
  const grouped = new Map<CheckName, Finding[]>(CHECK_ORDER.map((check) => [check, []]));
  for (const finding of findings) grouped.get(finding.check)?.push(finding);
  return grouped;
}

/** The thresholds verify judged with, one line (human report). */
export function thresholdsLine(thresholds: Thresholds): string {
  const { policy, replay } = thresholds;
  const t = replay.tolerances;
  const widths = Object.entries(policy.claims.maximumIntervalWidth)
    .map(([metric, width]) => `${metric} ${width}`)
    .join(", ");
  return (
    `  thresholds: replay NLL ${t.nllPerToken}/token, KL ${t.klPerToken}/token, agreement ${t.agreementFraction}, logit cosine ${t.logitCosinePerToken}/token; ` +
    `samples >= ${policy.samples.minimum}; bootstrap resamples ${policy.bootstrap.minimumResamples}-${policy.bootstrap.maximumResamples} ` +
    `(draws <= ${policy.bootstrap.maximumDraws}); ratio claims need ${policy.claims.ratioNeedsOneOf.join(" or ")}; ` +
    `widest interval: ${widths === "" ? "not bounded" : widths}`
  );
}

function verdictLine(bundle: string, result: VerifyResult): string {
  const failed = result.findings.filter((finding) => !finding.ok).length;
  const warnings = result.findings.filter((finding) => finding.warning).length;
  if (result.passed && warnings > 0)
    return `PASS ${bundle}: every check run holds; ${warnings} not checked here (warning${warnings === 1 ? "" : "s"} above)`;
  return result.passed
    ? `PASS ${bundle}: every check holds`
    : `FAIL ${bundle}: ${failed} failing finding${failed === 1 ? "" : "s"} (exit ${result.exitCode})`;
}

/** One line per check (✓ or ✗), then each failure's code, message and examples. */
export function renderText(bundle: string, result: VerifyResult): string {
  const lines: string[] = [`spg verify ${terminalSafe(bundle)}`];
  for (const [check, findings] of byCheck(result.findings)) {
    if (findings.length === 0) continue;
    const failures = findings.filter((finding) => !finding.ok);
    if (failures.length === 0) {
      const mark = findings.some((finding) => finding.warning) ? "!" : "✓";
      lines.push(
        `  ${mark} ${check.padEnd(11)} ${terminalSafe(findings.map((finding) => finding.message).join("; "))}`,
      );
      continue;
    }
    lines.push(`  ✗ ${check.padEnd(11)} ${failures.length} failure${failures.length === 1 ? "" : "s"}`);
    for (const failure of failures) {
      lines.push(`      ${terminalSafe(failure.code)}: ${terminalSafe(failure.message)}`);
      const examples = failure.details?.examples;
      if (Array.isArray(examples) && examples.length > 1) {
        for (const example of examples.slice(1, EXAMPLES_SHOWN)) {
          lines.push(`        - ${terminalSafe(String(example))}`);
        }
      }
    }
  }
  if (result.thresholds !== undefined) lines.push(thresholdsLine(result.thresholds));
  lines.push(verdictLine(terminalSafe(bundle), result));
  return `${lines.join("\n")}\n`;
}

/**
 * The same as JSON: {bundle, passed, exitCode, findings, thresholds?, recomputed?} (thresholds:
 * the policy and replay tolerances judged with; recomputed: the summary verify computed itself).
 */
export function renderJson(bundle: string, result: VerifyResult): string {
  const { passed, exitCode, findings, recomputed, thresholds } = result;
  const text = JSON.stringify(
    {
      bundle,
      passed,
      exitCode,
      findings,
      ...(thresholds === undefined ? {} : { thresholds }),
      ...(recomputed === undefined ? {} : { recomputed }),
    },
    null,
    2,
  );
  // JSON.stringify escapes C0 controls only; escaping the rest as \uXXXX gives the same JSON value.
  return `${jsonTerminalSafe(text)}\n`;
}

/** Workflow-command escaping (data): %, CR and LF (GitHub's documented %25, %0D, %0A); other controls made inert. */
function escapeData(text: string): string {
  return terminalSafe(text.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A"));
}

/** Workflow-command escaping (properties): also ':' and ','. */
function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

/** One `::error` workflow command per failing finding, one `::warning` per thing not checked. */
export function githubAnnotations(bundle: string, result: VerifyResult): string[] {
  return result.findings
    .filter((finding) => !finding.ok || finding.warning)
    .map(
      (finding) =>
        `::${finding.ok ? "warning" : "error"} file=${escapeProperty(bundle)},title=${escapeProperty("spg verify")}::${escapeData(`${finding.code} [${finding.check}] ${finding.message}`)}`,
    );
}

/**
 * Bundle text as inert Markdown in a table cell: no HTML (&, <, > as entities), every
 * Markdown punctuation mark backslash-escaped (no links, images, emphasis or code spans
 * a bundle could forge), newlines as spaces, and controls made inert.
 */
function cell(text: string): string {
  return terminalSafe(
    text
      .replace(/\r?\n/g, " ")
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/[\\`*_{}[\]()#+!|~]/g, "\\$&"),
  );
}

/** A Markdown section for the job summary: the verdict and a table of every finding. */
export function githubSummaryMarkdown(bundle: string, result: VerifyResult): string {
  const lines = [
    `### spg verify ${cell(bundle)}: ${result.passed ? "✅ pass" : `❌ fail (exit ${result.exitCode})`}`,
    "",
    "| check | result | code | message |",
    "|---|---|---|---|",
  ];
  for (const [check, findings] of byCheck(result.findings)) {
    for (const finding of findings) {
      lines.push(
        `| ${check} | ${finding.warning ? "⚠️" : finding.ok ? "✅" : "❌"} | ${finding.ok && !finding.warning ? "" : `\`${finding.code.replace(/[^A-Z0-9_]/g, "?")}\``} | ${cell(finding.message)} |`,
      );
    }
  }
  return `${lines.join("\n")}\n\n`;
}

/**
 * Under GitHub Actions (GITHUB_ACTIONS=true): print the annotations with `print` and append
 * the table to the file named by GITHUB_STEP_SUMMARY (appended, never overwritten).
 * Returns whether it did anything.
 */
export function reportToGitHub(
  bundle: string,
  result: VerifyResult,
  env: NodeJS.ProcessEnv = process.env,
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): boolean {
  if (env.GITHUB_ACTIONS !== "true") return false;
  for (const line of githubAnnotations(bundle, result)) print(line);
  if (env.GITHUB_STEP_SUMMARY) appendFileSync(env.GITHUB_STEP_SUMMARY, githubSummaryMarkdown(bundle, result));
  return true;
}
