/**
 * What the checks need from the caller, and the verifier's settings derived from it (policy,
 * tolerances, schemas), in one place for the check units and the line folds.
 */

import type { TrustedKeys } from "../../bundle/sign.js";
import type { RunConfig } from "../../config/types.js";
import type { BundleContext } from "../context.js";
import {
  type EffectiveTolerances,
  effectiveTolerances,
  loadVerifyPolicy,
  type VerifyPolicy,
} from "../policy.js";
import type { SchemaValidators } from "../schemas.js";
import { loadSchemaValidators } from "../schemas.js";
import type { VerifierDataset } from "./draw.js";
import type { VerifierModel } from "./model.js";
import type { SignedMessage } from "./signature.js";

/** What the in-memory checks need from the caller (the runner's VerifyOptions extend it). */
export interface CheckOptions {
  /** The message a signature covers (default: the bundle format's pre-authentication encoding). */
  signedMessage?: SignedMessage;
  /** Key ids the verifier trusts (with their roles, from readTrustedKeys; a plain set: every role); undefined = no trust policy. */
  trustedKeyIds?: ReadonlySet<string> | TrustedKeys;
  /** Fail unless the signer is trusted (on by default when CI=true; the command decides). */
  requireTrusted: boolean;
  /** Compiled schemas; default: the package's schemas/. */
  validators?: SchemaValidators;
  /** Relative tolerance of the recompute check (default RECOMPUTE_RELATIVE_TOLERANCE). */
  relativeTolerance?: number;
  /** Most bootstrap draws verify makes (default MAX_BOOTSTRAP_DRAWS). */
  maxBootstrapDraws?: number;
  /** The verifier's policy (default: configs/verify/policy.yaml). */
  policy?: VerifyPolicy;
  /** Dataset files the verifier names for bundles not measured on the bundled corpus. */
  dataset?: VerifierDataset;
  /** Fail, not warn, when the bundle's model shapes cannot be checked here (--require-model; or the policy's model.required). */
  requireModel?: boolean;
  /** The verifier's checkpoint (read once, on first call); default: the bundled model's, scanned. */
  verifierModel?: () => Promise<VerifierModel | undefined>;
}

export function validatorsOf(options: CheckOptions): SchemaValidators {
  return options.validators ?? loadSchemaValidators();
}

let defaultPolicy: VerifyPolicy | undefined;

/** The verifier's policy: the options' or the default file's (read once). */
export function policyOf(options: CheckOptions): VerifyPolicy {
  if (options.policy !== undefined) return options.policy;
  defaultPolicy ??= loadVerifyPolicy();
  return defaultPolicy;
}

/** Replay tolerances verify judges with: the policy's, tightened (never loosened) by the bundle's. */
export function tolerancesOf(context: BundleContext, options: CheckOptions): EffectiveTolerances {
  const config = context.valid.get("config.json") as RunConfig | undefined;
  return effectiveTolerances(policyOf(options).replay.tolerances, config?.tolerances);
}

/** The thresholds a walk judged with (printed beside its findings). */
export function thresholdsOf(context: BundleContext, options: CheckOptions) {
  return { policy: policyOf(options), replay: tolerancesOf(context, options) };
}
