/**
 * report.md is derived, not trusted: it is rendered again here from the summary verify
 * recomputed (src/measure/report-md.ts) and must equal the bundle's byte for byte, so a
 * signed report cannot say what the records do not ("450x, verified").
 */
import type { EnvironmentFile, Summary } from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { renderReportMarkdown } from "../../measure/report-md.js";
import { type Finding, fail, pass } from "../types.js";

const CHECK = "report-md" as const;

export interface ReportMarkdownInput {
  config: RunConfig;
  environment: EnvironmentFile;
  recomputed: Summary;
  /** report.md's bytes as the bundle holds them. */
  stated: Buffer | undefined;
}

/** The first line (1-based) where two texts differ, for the message. */
function firstDifferentLine(a: string, b: string): number {
  const left = a.split("\n");
  const right = b.split("\n");
  let line = 0;
  while (line < left.length && line < right.length && left[line] === right[line]) line++;
  return line + 1;
}

export function checkReportMarkdown(input: ReportMarkdownInput): Finding[] {
  const expected = Buffer.from(
    renderReportMarkdown(input.config, input.recomputed, input.environment),
    "utf8",
  );
  if (input.stated === undefined) return [fail(CHECK, "E_REPORT_MD_MISMATCH", "report.md is missing")];
  if (!expected.equals(input.stated)) {
    return [
      fail(
        CHECK,
        "E_REPORT_MD_MISMATCH",
        `report.md is not the report of the recomputed summary (first difference on line ${firstDifferentLine(expected.toString("utf8"), input.stated.toString("utf8"))})`,
        { expectedBytes: expected.length, statedBytes: input.stated.length },
      ),
    ];
  }
  return [
    pass(
      CHECK,
      `report.md is the report of the recomputed summary, byte for byte (${expected.length} bytes)`,
    ),
  ];
}
