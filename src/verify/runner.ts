/**
 * The verifier: walks the check units (checks/index.ts; zip-safety and replay in
 * verify-bundle.ts) in order over one BundleContext and collects every finding. A unit
 * whose required check failed reports E_CHECK_SKIPPED ("skipped because X failed"), which
 * fails: nothing unverified passes and nothing runs on what an earlier check refused. A
 * unit that throws becomes a finding (an SpgError keeps its code; anything else is
 * E_CHECK_CRASHED), never a crash, and the findings before it are kept.
 *
 * Exit codes (also in README):
 *   0  every check passed
 *   3  unreadable or unsafe zip (reported by the safe reader before these checks run)
 *   4  tampered or untrusted: integrity, signature or trust failed
 *   5  invalid: schemas, consistency, recompute, protocol, shards, draw, report-md or replay failed
 *   6  claims not met, or the verifier's policy (everything else held)
 * When several kinds fail, the lowest code wins.
 */

import type { BundleEntries } from "../bundle/read.js";
import type { Summary } from "../bundle/types.js";
import { CHECK_EXIT_CODE, EXIT_PASS } from "../error-codes.js";
import { isSpgError } from "../errors.js";
import {
  type CheckOptions,
  type CheckUnit,
  drawCheck,
  ENTRY_CHECKS,
  modelCheck,
  thresholdsOf,
} from "./checks/index.js";
import { type BundleContext, bundleContext } from "./context.js";
import type { EffectiveTolerances, VerifyPolicy } from "./policy.js";
import { type CheckName, type Finding, fail } from "./types.js";

// The exit codes are the error registry's (src/error-codes.ts); re-exported as part of the verifier's API.
export {
  CHECK_EXIT_CODE,
  EXIT_CLAIMS,
  EXIT_INVALID,
  EXIT_PASS,
  EXIT_TAMPERED,
  EXIT_UNREADABLE,
} from "../error-codes.js";

export type VerifyOptions = CheckOptions;

/** The thresholds verify judged with, printed next to its findings. */
export interface Thresholds {
  policy: VerifyPolicy;
  /** Replay tolerances after the bundle's tightening (and the looser values it ignored). */
  replay: EffectiveTolerances;
}

export interface VerifyResult {
  findings: Finding[];
  passed: boolean;
  exitCode: number;
  /** summarize(records, config) when it could be computed: the figures verify stands behind. */
  recomputed?: Summary;
  thresholds?: Thresholds;
}

/** Pass/fail of each check walked so far (a skipped check counts as failed). */
export type CheckOutcomes = Map<CheckName, boolean>;

/** The skipped finding when a check this one requires failed or was skipped; else undefined. */
function skippedBecause(unit: CheckUnit<never>, outcomes: CheckOutcomes): Finding[] | undefined {
  const failed = unit.requires.filter((check) => outcomes.get(check) === false);
  if (failed.length === 0) return undefined;
  return [
    fail(unit.name, "E_CHECK_SKIPPED", `skipped because ${failed.join(", ")} failed`, { because: failed }),
  ];
}

/** A check that throws becomes a finding: an SpgError keeps its code, anything else is E_CHECK_CRASHED. */
function crashed(unit: CheckUnit<never>, error: unknown): Finding[] {
  const message = error instanceof Error ? error.message : String(error);
  // An SpgError names what it met in the bundle or here; its code goes with the finding.
  const cause = isSpgError(error) ? { cause: error.code } : undefined;
  return [fail(unit.name, "E_CHECK_CRASHED", `the ${unit.name} check could not finish: ${message}`, cause)];
}

function settle(unit: CheckUnit<never>, findings: Finding[], outcomes: CheckOutcomes): Finding[] {
  outcomes.set(
    unit.name,
    findings.every((finding) => finding.ok),
  );
  return findings;
}

/** Run one unit whose work is synchronous (throws if it returns a promise). */
export function runUnitSync<Options>(
  unit: CheckUnit<Options>,
  context: BundleContext,
  options: Options,
  outcomes: CheckOutcomes,
): Finding[] {
  const skipped = skippedBecause(unit as CheckUnit<never>, outcomes);
  if (skipped !== undefined) return settle(unit as CheckUnit<never>, skipped, outcomes);
  let findings: Finding[];
  try {
    const result = unit.run(context, options);
    if (!Array.isArray(result)) throw new Error(`the ${unit.name} check is asynchronous`);
    findings = result;
  } catch (error) {
    findings = crashed(unit as CheckUnit<never>, error);
  }
  return settle(unit as CheckUnit<never>, findings, outcomes);
}

/** Run one unit, awaiting it. */
export async function runUnit<Options>(
  unit: CheckUnit<Options>,
  context: BundleContext,
  options: Options,
  outcomes: CheckOutcomes,
): Promise<Finding[]> {
  const skipped = skippedBecause(unit as CheckUnit<never>, outcomes);
  if (skipped !== undefined) return settle(unit as CheckUnit<never>, skipped, outcomes);
  let findings: Finding[];
  try {
    findings = await unit.run(context, options);
  } catch (error) {
    findings = crashed(unit as CheckUnit<never>, error);
  }
  return settle(unit as CheckUnit<never>, findings, outcomes);
}

/** The exit code for these findings (see the header). */
export function exitCodeFor(findings: readonly Finding[]): number {
  let code = EXIT_PASS;
  for (const finding of findings) {
    if (finding.ok) continue;
    const candidate = CHECK_EXIT_CODE[finding.check];
    if (code === EXIT_PASS || candidate < code) code = candidate;
  }
  return code;
}

/** The result of a walk: its findings, the exit code they give, and the recomputed summary if any. */
export function verifyResult(
  findings: Finding[],
  recomputed: Summary | undefined,
  thresholds?: Thresholds,
): VerifyResult {
  const exitCode = exitCodeFor(findings);
  const result: VerifyResult = { findings, passed: exitCode === EXIT_PASS, exitCode };
  if (recomputed !== undefined) result.recomputed = recomputed;
  if (thresholds !== undefined) result.thresholds = thresholds;
  return result;
}

/**
 * Walk every check over the bundle's entries (already read: zip-safety is the file
 * reader's, ../verify-bundle.ts) and collect every finding.
 */
export function runChecks(
  contents: BundleEntries,
  options: VerifyOptions,
  outcomes: CheckOutcomes = new Map(),
): VerifyResult {
  const context = bundleContext(contents);
  const findings: Finding[] = [];
  for (const unit of ENTRY_CHECKS) findings.push(...runUnitSync(unit, context, options, outcomes));
  return verifyResult(findings, context.recomputed, thresholdsOf(context, options));
}

/**
 * The entry checks, then the stated model against the verifier's checkpoint and the draw
 * re-derived from the verifier's dataset (asynchronous: files are hashed, a dataset may be streamed). Everything `spg verify` checks short of reading the zip and replay.
 */
export async function runAllChecks(
  contents: BundleEntries,
  options: VerifyOptions,
  outcomes: CheckOutcomes = new Map(),
): Promise<VerifyResult> {
  const context = bundleContext(contents);
  const findings: Finding[] = [];
  for (const unit of ENTRY_CHECKS) findings.push(...runUnitSync(unit, context, options, outcomes));
  findings.push(...(await runUnit(modelCheck, context, options, outcomes)));
  findings.push(...(await runUnit(drawCheck, context, options, outcomes)));
  return verifyResult(findings, context.recomputed, thresholdsOf(context, options));
}
