import type { FindingCode } from "../error-codes.js";

/**
 * What the verifier works on and what it reports. Checks take plain inputs (the zip's
 * entries as bytes, or files already parsed and schema-validated) and return findings;
 * the runner (runner.ts) strings them together and reports every finding, not the first.
 */

/**
 * The verification steps in report order. "zip-safety" is the safe reader's
 * (src/bundle/read.ts) and runs before the runner; the runner runs the rest, in order.
 */
export type CheckName =
  | "zip-safety"
  | "integrity"
  | "signature"
  | "trust"
  | "schemas"
  | "config-rules"
  | "consistency"
  | "budget"
  | "executed-cost"
  | "recompute"
  | "claims"
  | "policy"
  | "protocol"
  | "shards"
  | "draw"
  | "report-md"
  | "model"
  | "replay";

export const CHECK_ORDER: readonly CheckName[] = [
  "zip-safety",
  "integrity",
  "signature",
  "trust",
  "schemas",
  "config-rules",
  "consistency",
  "budget",
  "executed-cost",
  "recompute",
  "claims",
  "policy",
  "protocol",
  "shards",
  "report-md",
  // The verifier's checkpoint and the draw are read after the synchronous checks (runAllChecks), replay last.
  "model",
  "draw",
  "replay",
];

/**
 * What this verifier could not check here (a warning finding): never a failure of the
 * bundle, never a pass. Listed in verify/README.md.
 */
export type WarningCode =
  | "W_DRAW_NOT_CHECKED"
  | "W_EXECUTED_COST_ABSENT"
  | "W_MODEL_NOT_CHECKED"
  | "W_REPLAY_NOT_CHECKED"
  | "W_REPLAY_OFF"
  | "W_SHARD_CLAIMS_NOT_JUDGED";

/**
 * One result of one check. Failing findings carry a registered E_... code (src/error-codes.ts);
 * passing ones "OK". A warning (ok, `warning: true`, a W_... code) is something this verifier
 * could not check here, e.g. replay without the model.
 */
export interface Finding {
  check: CheckName;
  code: FindingCode | WarningCode | "OK";
  ok: boolean;
  warning?: true;
  message: string;
  details?: Record<string, unknown>;
}

export function pass(check: CheckName, message: string, details?: Record<string, unknown>): Finding {
  return details === undefined
    ? { check, code: "OK", ok: true, message }
    : { check, code: "OK", ok: true, message, details };
}

/** "not checked: ...": not a failure of the bundle, never a pass (see Finding). */
export function warn(
  check: CheckName,
  code: WarningCode,
  message: string,
  details?: Record<string, unknown>,
): Finding {
  return details === undefined
    ? { check, code, ok: true, warning: true, message }
    : { check, code, ok: true, warning: true, message, details };
}

export function fail(
  check: CheckName,
  code: FindingCode,
  message: string,
  details?: Record<string, unknown>,
): Finding {
  return details === undefined
    ? { check, code, ok: false, message }
    : { check, code, ok: false, message, details };
}
