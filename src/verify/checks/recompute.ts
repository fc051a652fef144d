import type { SampleRecord, Summary } from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { isSpgError } from "../../errors.js";
import { SummaryFold, summarize } from "../../measure/summary.js";
import { FailureCollector } from "../collect.js";
import { isRecord } from "../parse.js";
import { type Finding, fail, pass } from "../types.js";

const CHECK = "recompute" as const;

/**
 * Default relative tolerance between a stated and a recomputed figure. summarize() is
 * deterministic, so spg's own bundles match exactly; the slack only admits another
 * implementation's last-bit rounding.
 */
export const RECOMPUTE_RELATIVE_TOLERANCE = 1e-9;

/**
 * Default bound on bootstrap draws (resamples × records, all methods) verify will make: a
 * resource limit like the zip reader's, so a bundle cannot make verify spin for hours by
 * stating a huge bootstrap.resamples. Generous: 1000 resamples of 200k samples × 5 methods.
 */
export const MAX_BOOTSTRAP_DRAWS = 1e9;

/** summarize() as a value: the summary, or the error that stopped it. */
export function recomputeSummary(
  records: readonly SampleRecord[] | SummaryFold,
  config: RunConfig,
  maxBootstrapDraws: number = MAX_BOOTSTRAP_DRAWS,
): { ok: true; summary: Summary } | { ok: false; finding: Finding } {
  const count = records instanceof SummaryFold ? records.count : records.length;
  const draws = config.bootstrap.resamples * count;
  if (draws > maxBootstrapDraws) {
    return {
      ok: false,
      finding: fail(
        CHECK,
        "E_RECOMPUTE_LIMIT",
        `bootstrap.resamples ${config.bootstrap.resamples} over ${count} records is ${draws} draws, above this verifier's limit of ${maxBootstrapDraws}`,
        { draws, limit: maxBootstrapDraws },
      ),
    };
  }
  try {
    const summary = records instanceof SummaryFold ? records.finish() : summarize(records, config);
    return { ok: true, summary };
  } catch (error) {
    const code = isSpgError(error) ? error.code : "E_RECOMPUTE_FAILED";
    return {
      ok: false,
      finding: fail(
        CHECK,
        "E_RECOMPUTE_FAILED",
        `the summary cannot be recomputed from the records: ${(error as Error).message}`,
        {
          cause: code,
        },
      ),
    };
  }
}

/**
 * Whether two figures agree within `relativeTolerance`, relative to the larger magnitude or to
 * `scaleFloor`, whichever is larger. A percent change 100 (a/b - 1) carries the last-bit error
 * of a/b times 100 however small the change is, so its scale is at least 100: another
 * implementation's exp() must not fail a perplexity increase of 3e-6 %.
 */
export function numbersAgree(
  stated: number,
  recomputed: number,
  relativeTolerance: number,
  scaleFloor = 0,
): boolean {
  if (stated === recomputed) return true;
  return (
    Math.abs(stated - recomputed) <=
    relativeTolerance * Math.max(Math.abs(stated), Math.abs(recomputed), scaleFloor)
  );
}

/** Figures that are percent changes of a ratio (see numbersAgree). */
const PERCENT_CHANGE_SCALE = 100;

function scaleFloorOf(path: string): number {
  return /Pct(\b|\[|\.|$)/.test(path) ? PERCENT_CHANGE_SCALE : 0;
}

/** Walk both values; every difference is reported with its field path. */
function compare(
  stated: unknown,
  recomputed: unknown,
  path: string,
  tolerance: number,
  out: FailureCollector,
): void {
  if (typeof recomputed === "number") {
    if (typeof stated !== "number" || !numbersAgree(stated, recomputed, tolerance, scaleFloorOf(path))) {
      out.add(
        "E_RECOMPUTE_MISMATCH",
        `${path}: summary.json says ${JSON.stringify(stated)}, recomputed ${recomputed}`,
      );
    }
    return;
  }
  if (Array.isArray(recomputed)) {
    if (!Array.isArray(stated) || stated.length !== recomputed.length) {
      out.add(
        "E_RECOMPUTE_MISMATCH",
        `${path}: summary.json has ${Array.isArray(stated) ? stated.length : "no"} items, recomputed ${recomputed.length}`,
      );
      return;
    }
    for (const [index, item] of recomputed.entries())
      compare(stated[index], item, `${path}[${index}]`, tolerance, out);
    return;
  }
  if (isRecord(recomputed)) {
    if (!isRecord(stated)) {
      out.add(
        "E_RECOMPUTE_MISMATCH",
        `${path}: summary.json has ${JSON.stringify(stated)}, recomputed an object`,
      );
      return;
    }
    for (const key of Object.keys(recomputed)) {
      if (!Object.hasOwn(stated, key))
        out.add("E_RECOMPUTE_MISMATCH", `${path}.${key}: missing in summary.json`);
      else compare(stated[key], recomputed[key], `${path}.${key}`, tolerance, out);
    }
    for (const key of Object.keys(stated)) {
      if (!Object.hasOwn(recomputed, key))
        out.add("E_RECOMPUTE_MISMATCH", `${path}.${key}: in summary.json but not recomputed`);
    }
    return;
  }
  if (stated !== recomputed) {
    out.add(
      "E_RECOMPUTE_MISMATCH",
      `${path}: summary.json says ${JSON.stringify(stated)}, recomputed ${JSON.stringify(recomputed)}`,
    );
  }
}

export interface RecomputeInput {
  config: RunConfig;
  /** The records, or their fold; needed only when `recomputed` is not given. */
  records?: readonly SampleRecord[] | SummaryFold;
  /** summary.json as parsed. */
  summary: unknown;
  /** summarize(records, config), when the caller already has it. */
  recomputed?: Summary;
  relativeTolerance?: number;
  maxBootstrapDraws?: number;
}

/** Every figure in summary.json equals summarize(records, config) (src/measure/summary.ts). */
export function checkRecompute(input: RecomputeInput): Finding[] {
  let recomputed = input.recomputed;
  if (recomputed === undefined) {
    const result = recomputeSummary(input.records ?? [], input.config, input.maxBootstrapDraws);
    if (!result.ok) return [result.finding];
    recomputed = result.summary;
  }
  const failures = new FailureCollector(CHECK);
  compare(
    input.summary,
    recomputed,
    "summary",
    input.relativeTolerance ?? RECOMPUTE_RELATIVE_TOLERANCE,
    failures,
  );
  if (failures.size > 0) return failures.findings();
  const methods = Object.keys(recomputed.methods).length;
  return [
    pass(
      CHECK,
      `summary.json matches the figures recomputed from the records (${methods} methods, ${recomputed.claims.length} claims)`,
    ),
  ];
}
