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
 *   5  invalid: schemas, consistency, recompute, protocol, draw, report-md or replay failed
 *   6  claims not met, or the verifier's policy (everything else held)
 * When several kinds fail, the lowest code wins.
 */
import { manifestSignedMessage } from "../bundle/sign.js";
import type { FingerprintLine, SampleRecord, Summary } from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
import type { Sample } from "../data/types.js";
import { CHECK_EXIT_CODE, EXIT_PASS } from "../error-codes.js";
import { checkClaims } from "./checks/claims.js";
import { checkConsistency } from "./checks/consistency.js";
import { checkDraw, type VerifierDataset } from "./checks/draw.js";
import { checkIntegrity } from "./checks/integrity.js";
import { bootstrapRefusal, checkPolicy } from "./checks/policy.js";
import { checkProtocol } from "./checks/protocol.js";
import { checkRecompute, recomputeSummary } from "./checks/recompute.js";
import { checkReportMarkdown } from "./checks/report-md.js";
import { validateEntries } from "./checks/schemas.js";
import { checkShards, claimsOnShard, shardMarkerOf } from "./checks/shards.js";
import { checkSignature, type SignedMessage } from "./checks/signature.js";
import { checkTrust } from "./checks/trust.js";
import {
  type EffectiveTolerances,
  effectiveTolerances,
  loadVerifyPolicy,
  type VerifyPolicy,
} from "./policy.js";
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
  /** The verifier's policy (default: configs/verify/policy.yaml). */
  policy?: VerifyPolicy;
  /** Dataset files the verifier names for bundles not measured on the bundled corpus. */
  dataset?: VerifierDataset;
}

/** The thresholds verify judged with, printed next to its findings. */
export interface Thresholds {
  policy: VerifyPolicy;
  /** Replay tolerances after the bundle's tightening (and the looser values it ignored). */
  replay: EffectiveTolerances;
}

/** What replay needs from a bundle that passed the checks before it (see verify-bundle.ts). */
export interface ReplayMaterial {
  config: RunConfig;
  environment: EnvironmentFile;
  records: SampleRecord[];
  fingerprints: FingerprintLine[];
  evaluation: Sample[];
}

/** What the draw check reads (see checkDrawStage). */
export interface DrawMaterial {
  config: RunConfig;
  environment: EnvironmentFile;
  records: SampleRecord[];
  fingerprints: FingerprintLine[] | undefined;
  dataset: VerifierDataset | undefined;
  /** A shard's own samples: only these must have records, and replay re-runs only these. */
  recordedSampleIds: readonly string[] | undefined;
}

/** Every check, the draw included; `replayMaterial` is set when replay may run. */
export async function runAllChecks(
  contents: BundleContents,
  options: VerifyOptions,
): Promise<VerifyResult & { replayMaterial?: ReplayMaterial }> {
  const result = runChecks(contents, options);
  const replayMaterial = await checkDrawStage(result);
  return replayMaterial === undefined ? result : { ...result, replayMaterial };
}

/** Checks whose failure stops replay: nothing on the bundle's word runs after them. */
const REPLAY_BLOCKING = new Set(["integrity", "signature", "trust", "schemas", "consistency"]);

/**
 * The draw re-derived from the verifier's dataset (async: a dataset may be streamed), appended
 * to the runner's findings; returns what replay needs when every check it depends on held.
 */
export async function checkDrawStage(result: VerifyResult): Promise<ReplayMaterial | undefined> {
  const material = result.drawMaterial;
  if (material === undefined) return undefined;
  let draw: Awaited<ReturnType<typeof checkDraw>>;
  try {
    draw = await checkDraw(material);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    result.findings.push(fail("draw", "E_CHECK_CRASHED", `the draw check could not finish: ${message}`));
    return undefined;
  }
  result.findings.push(...draw.findings);
  result.exitCode = exitCodeFor(result.findings);
  result.passed = result.exitCode === EXIT_PASS;
  const { config, environment, records, fingerprints, recordedSampleIds } = material;
  if (
    draw.evaluation === undefined ||
    fingerprints === undefined ||
    !draw.findings.every((f) => f.ok) ||
    result.findings.some((f) => !f.ok && REPLAY_BLOCKING.has(f.check))
  ) {
    return undefined;
  }
  // A shard replays its own part of the draw.
  const evaluation = draw.evaluation.filter(
    (s) => recordedSampleIds === undefined || recordedSampleIds.includes(s.sampleId),
  );
  return { config, environment, records, fingerprints, evaluation };
}

export interface VerifyResult {
  findings: Finding[];
  passed: boolean;
  exitCode: number;
  /** summarize(records, config) when it could be computed: the figures verify stands behind. */
  recomputed?: Summary;
  thresholds?: Thresholds;
  /** What the draw check (checkDrawStage) needs, when the entries it reads are valid. */
  drawMaterial?: DrawMaterial;
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
  const policy = options.policy ?? loadVerifyPolicy();
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
  const environment = valid.get("environment.json") as EnvironmentFile;
  const tolerances = effectiveTolerances(policy.replay.tolerances, config?.tolerances);
  // Judged with the verifier's tolerances, never the bundle's looser ones.
  const judgedConfig: RunConfig | undefined = config && { ...config, tolerances: tolerances.tolerances };
  const refusal = config && records ? bootstrapRefusal(config, records.length, policy) : undefined;
  const shard = shardMarkerOf(contents, validators);

  findings.push(
    ...(skipped(
      "consistency",
      ["config.json", "environment.json", "records.jsonl", "fingerprints.jsonl"],
      valid,
    ) ??
      guarded("consistency", () =>
        checkConsistency({
          config: judgedConfig as RunConfig,
          environment,
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
  } else if (refusal !== undefined) {
    findings.push(fail("recompute", "E_CHECK_SKIPPED", `not run: ${refusal} (see the policy check)`));
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
  } else if (refusal !== undefined) {
    findings.push(fail("claims", "E_CHECK_SKIPPED", `not run: ${refusal} (see the policy check)`));
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
    ...(skipped("policy", ["config.json", "records.jsonl"], valid) ??
      guarded("policy", () =>
        // A shard's claims are judged on the merged bundle (see claimsOnShard), so is the policy on them.
        checkPolicy({
          config: shard === undefined ? config : { ...config, claims: [] },
          records: records.length,
          policy,
          tolerances,
          recomputed,
        }),
      )),
  );

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

  // The draw is re-derived (asynchronously, the dataset may be streamed) by checkDrawStage in
  // verify-bundle.ts: here only what it needs is kept.
  const drawSkip = skipped("draw", ["config.json", "environment.json", "records.jsonl"], valid);
  if (drawSkip !== undefined) findings.push(...drawSkip);

  const reportSkip = skipped("report-md", ["config.json", "environment.json"], valid);
  findings.push(
    ...(reportSkip ??
      (recomputed === undefined
        ? [fail("report-md", "E_CHECK_SKIPPED", "not run: the summary could not be recomputed")]
        : guarded("report-md", () =>
            checkReportMarkdown({
              config,
              environment,
              recomputed: recomputed as Summary,
              stated: contents.entries.get("report.md"),
            }),
          ))),
  );

  const exitCode = exitCodeFor(findings);
  const result: VerifyResult = {
    findings,
    passed: exitCode === EXIT_PASS,
    exitCode,
    thresholds: { policy, replay: tolerances },
  };
  if (recomputed !== undefined) result.recomputed = recomputed;
  const fingerprints = valid.get("fingerprints.jsonl") as FingerprintLine[] | undefined;
  if (drawSkip === undefined) {
    result.drawMaterial = {
      config,
      environment,
      records,
      fingerprints,
      dataset: options.dataset,
      recordedSampleIds: shard?.sampleIds,
    };
  }
  return result;
}
