/**
 * The verifier's policy: the thresholds `spg verify` judges with, its own and never the
 * bundle's. configs/verify/policy.yaml by default (its comments give the measurements behind
 * each default), or `--policy FILE`; validated by schemas/verify-policy.schema.json. A bundle's
 * config.tolerances may only tighten the replay tolerances (effectiveTolerances).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { INPUT_FILE_LIMITS, type RefuseFile, readBoundedFileSync } from "../bounded-read.js";
import type { ClaimMetric, Tolerances } from "../config/types.js";
import { SpgError } from "../errors.js";
import { configsDir, schemasDir } from "../paths.js";

/**
 * The verifier's replay tolerances: a bundle's (config.tolerances) and, the verifier's alone,
 * how far a weights method's logit cosine may move per scored token.
 */
export interface ReplayTolerances extends Tolerances {
  logitCosinePerToken: number;
}

export interface VerifyPolicy {
  replay: { tolerances: ReplayTolerances };
  samples: { minimum: number };
  bootstrap: {
    minimumResamples: number;
    /** Lowest bootstrap confidence behind a claim (absent: not judged). */
    minimumConfidence?: number;
    maximumResamples: number;
    maximumDraws: number;
  };
  /** required: a bundle whose model shapes cannot be checked here fails (E_MODEL_NOT_CHECKED). */
  model?: { required?: boolean };
  /** Resource bounds on reading the bundle. */
  bundle?: { maxHeldEntryBytes?: number };
  claims: {
    ratioNeedsOneOf: ClaimMetric[];
    maximumIntervalWidth: Partial<Record<ClaimMetric, number>>;
  };
}

/** The policy file `spg verify` reads when no --policy is given. */
export function defaultPolicyPath(): string {
  return join(configsDir(), "verify", "policy.yaml");
}

let validator: ValidateFunction | undefined;

function policyValidator(): ValidateFunction {
  if (validator === undefined) {
    const schema = JSON.parse(readFileSync(join(schemasDir(), "verify-policy.schema.json"), "utf8"));
    validator = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
  }
  return validator;
}

/** Read and validate a policy file. Bad file: SpgError E_VERIFY_POLICY (exit 2, the verifier's own input). */
export function loadVerifyPolicy(path: string = defaultPolicyPath()): VerifyPolicy {
  const refuse: RefuseFile = (reason, cause) =>
    new SpgError("E_VERIFY_POLICY", `cannot read the verify policy: ${reason}`, {
      file: path,
      fix: "give --policy a regular YAML file shaped like configs/verify/policy.yaml",
      cause,
    });
  const text = readBoundedFileSync(path, INPUT_FILE_LIMITS.policyBytes, refuse).toString("utf8");
  let value: unknown;
  try {
    value = parse(text, { uniqueKeys: true });
  } catch (error) {
    throw new SpgError("E_VERIFY_POLICY", `cannot read the verify policy: ${(error as Error).message}`, {
      file: path,
      fix: "give --policy a YAML file shaped like configs/verify/policy.yaml",
      cause: error,
    });
  }
  const validate = policyValidator();
  if (!validate(value)) {
    const first = validate.errors?.[0];
    throw new SpgError(
      "E_VERIFY_POLICY",
      `the verify policy is invalid: ${first?.instancePath || "(top)"} ${first?.message ?? ""}`.trim(),
      {
        file: path,
        field: first?.instancePath.replace(/^\//, "").replaceAll("/", ".") || undefined,
        fix: "see schemas/verify-policy.schema.json and configs/verify/policy.yaml",
      },
    );
  }
  const policy = value as VerifyPolicy;
  if (policy.bootstrap.minimumResamples > policy.bootstrap.maximumResamples) {
    throw new SpgError("E_VERIFY_POLICY", "bootstrap.minimumResamples is above bootstrap.maximumResamples", {
      file: path,
      field: "bootstrap",
      fix: "make the minimum at most the maximum",
    });
  }
  return policy;
}

export interface EffectiveTolerances {
  tolerances: ReplayTolerances;
  /** One line per bundle tolerance that was looser than the policy's and so ignored. */
  ignored: string[];
}

/**
 * The replay tolerances verify judges with: the policy's, each tightened by the bundle's
 * value when that is smaller. A looser bundle value is ignored and named.
 */
export function effectiveTolerances(
  policy: ReplayTolerances,
  bundle: Tolerances | undefined,
): EffectiveTolerances {
  const tolerances = { ...policy };
  const ignored: string[] = [];
  for (const key of Object.keys(policy) as (keyof ReplayTolerances)[]) {
    const stated = (bundle as Partial<ReplayTolerances> | undefined)?.[key];
    if (typeof stated !== "number" || !Number.isFinite(stated)) continue;
    if (stated < policy[key]) tolerances[key] = stated;
    else if (stated > policy[key])
      ignored.push(
        `config.tolerances.${key} ${stated} is looser than this verifier's ${policy[key]}: ignored`,
      );
  }
  return { tolerances, ignored };
}
