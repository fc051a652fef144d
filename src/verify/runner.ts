/**
 * The verifier: every check in order over a bundle's entries, every finding collected.
 * A check that throws becomes an E_CHECK_CRASHED finding, never a crash; a check whose
 * inputs are missing or schema-invalid reports E_CHECK_SKIPPED (which fails: nothing
 * unverified passes).
 *
 * Exit codes (also in README):
 *   0  every check passed
 *   3  unreadable or unsafe zip (reported by the safe reader before these checks run)
 *   4  tampered or untrusted: integrity, signature or trust failed
 *   5  invalid: schemas, consistency, recompute or protocol failed
 *   6  claims not met (everything else held)
 * When several kinds fail, the lowest code wins.
 */
import { manifestSignedMessage } from "../bundle/sign.js";
import type { FingerprintLine, SampleRecord, Summary } from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
import { CHECK_EXIT_CODE, EXIT_PASS } from "../error-codes.js";
import { checkClaims } from "./checks/claims.js";
import { checkConsistency } from "./checks/consistency.js";
import { checkIntegrity } from "./checks/integrity.js";
import { checkProtocol } from "./checks/protocol.js";
import { checkRecompute, recomputeSummary } from "./checks/recompute.js";
import { validateEntries } from "./checks/schemas.js";
import { checkShards, claimsOnShard, shardMarkerOf } from "./checks/shards.js";
import { checkSignature, type SignedMessage } from "./checks/signature.js";
import { checkTrust } from "./checks/trust.js";
import { loadSchemaValidators, type SchemaValidators } from "./schemas.js";
import { type BundleContents, type CheckName, type EnvironmentFile, type Finding, fail } from "./types.js";

// The exit codes are the error registry's (src/error-codes.ts); re-exported as part of the verifier's API.
export {
  CHECK_EXIT_CODE,
  EXIT_CLAIMS,
  EXIT_INVALID,
  EXIT_PASS,
  EXIT_TAMPERED,
  EXIT_UNREADABLE,
} from "../error-codes.js";

export interface VerifyOptions {
  /** The message a signature covers (default: the bundle format's pre-authentication encoding). */
  signedMessage?: SignedMessage;
  /** Key ids the verifier trusts; undefined = no trust policy. */
  trustedKeyIds?: ReadonlySet<string>;
  /** Fail unless the signer is trusted (on by default when CI=true; the command decides). */
  requireTrusted: boolean;
  /** Compiled schemas; default: the package's schemas/. */
  validators?: SchemaValidators;
  /** Relative tolerance of the recompute check (default RECOMPUTE_RELATIVE_TOLERANCE). */
  relativeTolerance?: number;
  /** Most bootstrap draws verify makes (default MAX_BOOTSTRAP_DRAWS). */
  maxBootstrapDraws?: number;
}

export interface VerifyResult {
  findings: Finding[];
  passed: boolean;
  exitCode: number;
  /** summarize(records, config) when it could be computed: the figures verify stands behind. */
  recomputed?: Summary;
}

function guarded(check: CheckName, run: () => Finding[]): Finding[] {
  try {
    return run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return [fail(check, "E_CHECK_CRASHED", `the ${check} check could not finish: ${message}`)];
  }
}

function skipped(check: CheckName, needs: string[], have: Map<string, unknown>): Finding[] | undefined {
  const missing = needs.filter((entry) => !have.has(entry));
  if (missing.length === 0) return undefined;
  return [
    fail(
      check,
      "E_CHECK_SKIPPED",
      `not run: ${missing.join(", ")} missing or invalid (see the schemas check)`,
      {
        needs: missing,
      },
    ),
  ];
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

/** Run every check over the bundle's entries and collect every finding. */
export function runChecks(contents: BundleContents, options: VerifyOptions): VerifyResult {
  const findings: Finding[] = [];
  findings.push(...guarded("integrity", () => checkIntegrity(contents)));
  findings.push(
    ...guarded("signature", () =>
      checkSignature(contents, { signedMessage: options.signedMessage ?? manifestSignedMessage }),
    ),
  );
  findings.push(
    ...guarded("trust", () =>
      checkTrust(contents, { trustedKeyIds: options.trustedKeyIds, requireTrusted: options.requireTrusted }),
    ),
  );

  const validators = options.validators ?? loadSchemaValidators();
  let valid = new Map<string, unknown>();
  let parsed = new Map<string, unknown>();
  findings.push(
    ...guarded("schemas", () => {
      const validation = validateEntries(contents, validators);
      valid = validation.valid;
      parsed = validation.parsed;
      return validation.findings;
    }),
  );
  const config = valid.get("config.json") as RunConfig;
  const records = valid.get("records.jsonl") as SampleRecord[];
  const shard = shardMarkerOf(contents, validators);

  findings.push(
    ...(skipped(
      "consistency",
      ["config.json", "environment.json", "records.jsonl", "fingerprints.jsonl"],
      valid,
    ) ??
      guarded("consistency", () =>
        checkConsistency({
          config,
          environment: valid.get("environment.json") as EnvironmentFile,
          records,
          fingerprints: valid.get("fingerprints.jsonl") as FingerprintLine[],
          expectedSamples: shard?.sampleIds.length,
        }),
      )),
  );

  let recomputed: Summary | undefined;
  const recomputeSkip = skipped("recompute", ["config.json", "records.jsonl", "summary.json"], valid);
  if (recomputeSkip !== undefined) {
    findings.push(...recomputeSkip);
  } else {
    findings.push(
      ...guarded("recompute", () => {
        const result = recomputeSummary(records, config, options.maxBootstrapDraws);
        if (!result.ok) return [result.finding];
        recomputed = result.summary;
        return checkRecompute({
          config,
          records,
          summary: valid.get("summary.json"),
          recomputed,
          relativeTolerance: options.relativeTolerance,
        });
      }),
    );
  }

  const claimsSkip = skipped("claims", ["config.json", "records.jsonl"], valid);
  const shardClaims = claimsOnShard(contents, validators);
  if (shardClaims !== undefined) {
    findings.push(shardClaims);
  } else if (claimsSkip !== undefined) {
    findings.push(...claimsSkip);
  } else {
    findings.push(
      ...guarded("claims", () => {
        if (recomputed === undefined) {
          const result = recomputeSummary(records, config, options.maxBootstrapDraws);
          if (!result.ok) {
            return [fail("claims", "E_CHECK_SKIPPED", `not run: ${result.finding.message}`)];
          }
          recomputed = result.summary;
        }
        return checkClaims(config, recomputed);
      }),
    );
  }

  findings.push(
    ...guarded("protocol", () =>
      checkProtocol({
        config: parsed.get("config.json"),
        environment: parsed.get("environment.json"),
        records: parsed.get("records.jsonl"),
      }),
    ),
  );

  findings.push(
    ...guarded("shards", () =>
      checkShards(contents, {
        validators,
        verifyShard: (shardContents) => runChecks(shardContents, options),
      }),
    ),
  );

  const exitCode = exitCodeFor(findings);
  const result: VerifyResult = { findings, passed: exitCode === EXIT_PASS, exitCode };
  if (recomputed !== undefined) result.recomputed = recomputed;
  return result;
}
