/**
 * Every verification step as a named unit: its name, the codes its failing findings carry,
 * the checks that must have passed before it runs, and what it does with the context. The
 * runner (../runner.ts) walks them in CHECK_ORDER; a unit whose required check failed (or
 * was itself skipped) reports E_CHECK_SKIPPED "skipped because X failed", which fails:
 * nothing unverified passes, and nothing runs on bytes an earlier check refused.
 */

import { manifestSignedMessage } from "../../bundle/sign.js";
import type { EnvironmentFile } from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import type { BundleContext } from "../context.js";
import { ENTRY_PARSE_CODE_LIST } from "../parse.js";
import { runChecks } from "../runner.js";
import { ENTRY_SCHEMAS } from "../schemas.js";
import type { CheckName, Finding } from "../types.js";
import { fail } from "../types.js";
import { checkClaims } from "./claims.js";
import { checkConfigRules } from "./config-rules.js";
import { checkDraw } from "./draw.js";
import { checkIntegrity } from "./integrity.js";
import { lineFoldsOf } from "./lines.js";
import { checkModel, scannedVerifierModel } from "./model.js";
import { type CheckOptions, policyOf, tolerancesOf, validatorsOf } from "./options.js";
import { bootstrapRefusal, checkPolicy } from "./policy.js";
import { checkProtocol } from "./protocol.js";
import { checkRecompute, recomputeSummary } from "./recompute.js";
import { checkReportMarkdown } from "./report-md.js";
import { schemaCode, validateEntries } from "./schemas.js";
import { checkShards, claimsOnShard, SHARD_CODES, shardMarkerOf } from "./shards.js";
import { checkSignature, SIGNATURE_CHECK_CODES } from "./signature.js";
import { checkTrust } from "./trust.js";

export { type CheckOptions, policyOf, thresholdsOf, tolerancesOf } from "./options.js";

/** The runner's own codes, which any unit may end with. */
export const RUNNER_CODES = ["E_CHECK_SKIPPED", "E_CHECK_CRASHED"] as const;

export interface CheckUnit<Options = CheckOptions> {
  name: CheckName;
  /** Every code its failing findings carry (besides RUNNER_CODES). */
  codes: readonly string[];
  /** Checks that must have passed first. */
  requires: readonly CheckName[];
  run(context: BundleContext, options: Options): Finding[] | Promise<Finding[]>;
}

const INTEGRITY_CODES = [
  "E_INTEGRITY_MANIFEST",
  "E_INTEGRITY_MISSING",
  "E_INTEGRITY_DUPLICATE",
  "E_INTEGRITY_UNEXPECTED",
  "E_INTEGRITY_SIZE",
  "E_INTEGRITY_HASH",
  "E_INTEGRITY_UNLISTED",
  // manifest.json is parsed here, strictly.
  ...ENTRY_PARSE_CODE_LIST,
];

const SIGNED_AND_TRUSTED: readonly CheckName[] = ["integrity", "signature", "trust"];

export const integrityCheck: CheckUnit = {
  name: "integrity",
  codes: INTEGRITY_CODES,
  requires: ["zip-safety"],
  run: (context) => checkIntegrity(context),
};

export const signatureCheck: CheckUnit = {
  name: "signature",
  codes: [...SIGNATURE_CHECK_CODES, ...ENTRY_PARSE_CODE_LIST],
  requires: ["zip-safety"],
  run: (context, options) =>
    checkSignature(context, { signedMessage: options.signedMessage ?? manifestSignedMessage }),
};

export const trustCheck: CheckUnit = {
  name: "trust",
  codes: ["E_UNTRUSTED_KEY", "E_NO_TRUSTED_KEYS", "E_EPHEMERAL_KEY", "E_KEY_ROLE"],
  requires: ["signature"],
  run: (context, options) =>
    checkTrust(context, { trustedKeyIds: options.trustedKeyIds, requireTrusted: options.requireTrusted }),
};

export const schemasCheck: CheckUnit = {
  name: "schemas",
  codes: [...Object.keys(ENTRY_SCHEMAS).map(schemaCode), "E_SCHEMA_UNAVAILABLE", ...ENTRY_PARSE_CODE_LIST],
  requires: SIGNED_AND_TRUSTED,
  run: (context, options) => validateEntries(context, validatorsOf(options), options).findings,
};

/** Schema-valid config.json and environment.json (present once schemas passed); records and fingerprints are folded (lines.ts). */
function validInputs(context: BundleContext) {
  return {
    config: context.valid.get("config.json") as RunConfig,
    environment: context.valid.get("environment.json") as EnvironmentFile,
  };
}

/** A fold that schemas' passing guarantees (config.json and environment.json valid). */
function required<T>(fold: T | undefined, what: string): T {
  if (fold === undefined) throw new Error(`${what} was not folded although the schemas passed`);
  return fold;
}

export const configRulesCheck: CheckUnit = {
  name: "config-rules",
  codes: ["E_CONFIG_RULE"],
  requires: ["schemas"],
  run: (context) => {
    const { config, environment } = validInputs(context);
    return checkConfigRules(config, environment);
  },
};

export const consistencyCheck: CheckUnit = {
  name: "consistency",
  codes: [
    "E_CONSISTENCY_BASELINE_BYTES",
    "E_CONSISTENCY_BASELINE_NLL",
    "E_CONSISTENCY_BYTES",
    "E_CONSISTENCY_DUPLICATE_FINGERPRINT",
    "E_CONSISTENCY_DUPLICATE_METHOD",
    "E_CONSISTENCY_DUPLICATE_RECORD",
    "E_CONSISTENCY_FINGERPRINT",
    "E_CONSISTENCY_FULL_METHOD",
    "E_CONSISTENCY_GENERATION",
    "E_CONSISTENCY_LAYERS",
    "E_CONSISTENCY_MISSING_RECORD",
    "E_CONSISTENCY_NO_BASELINE",
    "E_CONSISTENCY_ORPHAN_FINGERPRINT",
    "E_CONSISTENCY_SAMPLE_COUNT",
    "E_CONSISTENCY_SAMPLE_IDENTITY",
    "E_CONSISTENCY_SENSITIVITY",
    "E_CONSISTENCY_TOKENS",
    "E_CONSISTENCY_UNKNOWN_METHOD",
    "E_CONSISTENCY_WEIGHTS",
  ],
  requires: ["schemas"],
  run: (context, options) =>
    required(lineFoldsOf(context, options).consistency, "consistency").findings(
      // A shard holds the samples its marker lists, not the whole run's count.
      shardMarkerOf(context, validatorsOf(options))?.sampleIds.length,
    ),
};

export const budgetCheck: CheckUnit = {
  name: "budget",
  codes: ["E_BUDGET_KEPT", "E_BUDGET_BYTES"],
  // Reads fingerprints by method and layer: only once consistency has tied them to the records and the model.
  requires: ["schemas", "consistency"],
  run: (context, options) => required(lineFoldsOf(context, options).budget, "budget").findings(),
};

export const executedCostCheck: CheckUnit = {
  name: "executed-cost",
  codes: ["E_EXECUTED_BYTES", "E_EXECUTED_SPEED"],
  // Reads fingerprints by (sample, method): only once consistency has tied them to the records.
  requires: ["schemas", "consistency"],
  run: (context, options) => required(lineFoldsOf(context, options).executedCost, "executed-cost").findings(),
};

export const recomputeCheck: CheckUnit = {
  name: "recompute",
  codes: ["E_RECOMPUTE_FAILED", "E_RECOMPUTE_LIMIT", "E_RECOMPUTE_MISMATCH"],
  // Bootstrapping records that disagree with their config would only spend time (the
  // most a bundle can make verify spend): inconsistent records are not summarized.
  requires: ["schemas", "consistency"],
  run: (context, options) => {
    const { config } = validInputs(context);
    const records = required(lineFoldsOf(context, options).summary, "recompute");
    // A resource bound of the verifier's policy: refused before anything is computed.
    const refusal = bootstrapRefusal(config, records.count, policyOf(options));
    if (refusal !== undefined) {
      return [fail("recompute", "E_RECOMPUTE_LIMIT", `${refusal}: refused before computing`)];
    }
    const result = recomputeSummary(records, config, options.maxBootstrapDraws);
    if (!result.ok) return [result.finding];
    context.recomputed = result.summary;
    return checkRecompute({
      config,
      summary: context.valid.get("summary.json"),
      recomputed: result.summary,
      relativeTolerance: options.relativeTolerance,
    });
  },
};

export const claimsCheck: CheckUnit = {
  name: "claims",
  codes: ["E_CLAIM_DIRECTION", "E_CLAIM_FAILED", "E_CLAIM_NO_QUALITY_BOUND", "E_CLAIM_UNKNOWN_METHOD"],
  requires: ["schemas"],
  run: (context, options) => {
    // A shard's claims are judged on the merged bundle, never on a part of the run.
    const shardClaims = claimsOnShard(context, validatorsOf(options));
    if (shardClaims !== undefined) return [shardClaims];
    // Judged on the recomputed figures only; summary.json's are never read here.
    if (context.recomputed === undefined) {
      return [
        fail(
          "claims",
          "E_CHECK_SKIPPED",
          "skipped because recompute failed: no recomputed summary to judge",
          {
            because: ["recompute"],
          },
        ),
      ];
    }
    return checkClaims(validInputs(context).config, context.recomputed);
  },
};

export const protocolCheck: CheckUnit = {
  name: "protocol",
  codes: [
    "E_PROTOCOL_DATASET_HASH",
    "E_PROTOCOL_DATASET_IDENTITY",
    "E_PROTOCOL_DEVICE",
    "E_PROTOCOL_DRAW_RULE",
    "E_PROTOCOL_DUPLICATE_SAMPLE",
    "E_PROTOCOL_HARDWARE_CHECK",
    "E_PROTOCOL_HARDWARE_INPUTS",
    "E_PROTOCOL_LEAK",
    "E_PROTOCOL_MODEL_HASH",
    "E_PROTOCOL_NO_ENVIRONMENT",
    "E_PROTOCOL_SAME_SPLIT",
    "E_PROTOCOL_SAMPLES",
    "E_PROTOCOL_SAMPLE_COUNT",
    "E_PROTOCOL_SAMPLE_INDEX",
    "E_PROTOCOL_UNKNOWN_SAMPLE",
  ],
  // Reads the parsed files defensively, so it still speaks when one is schema-invalid.
  requires: SIGNED_AND_TRUSTED,
  run: (context, options) => {
    const folds = lineFoldsOf(context, options);
    return checkProtocol({
      config: context.value("config.json"),
      environment: context.value("environment.json"),
      // The records are judged only when the whole file parsed.
      records: folds.verdict("records.jsonl").parse.ok ? folds.protocol : undefined,
      version: (context.value("manifest.json") as { version?: unknown } | undefined)?.version,
    });
  },
};

export const shardsCheck: CheckUnit = {
  name: "shards",
  codes: Object.values(SHARD_CODES),
  requires: SIGNED_AND_TRUSTED,
  run: (context, options) =>
    checkShards(context, {
      validators: validatorsOf(options),
      verifyShard: (shardContents) => runChecks(shardContents, options),
    }),
};

export const policyCheck: CheckUnit = {
  name: "policy",
  codes: [
    "E_POLICY_SAMPLES",
    "E_POLICY_RESAMPLES",
    "E_POLICY_CONFIDENCE",
    "E_POLICY_RESOURCE_BOUND",
    "E_POLICY_QUALITY_BOUND",
    "E_POLICY_INTERVAL_WIDTH",
  ],
  // Reads config.json and records.jsonl once they are schema-valid, whatever the other entries:
  // a resource bound must be named even when summary.json is broken too.
  requires: SIGNED_AND_TRUSTED,
  run: (context, options) => {
    const { config } = validInputs(context);
    const records = lineFoldsOf(context, options).validLines("records.jsonl");
    if (config === undefined || records === undefined) {
      return [
        fail("policy", "E_CHECK_SKIPPED", "skipped because config.json or records.jsonl failed its schema", {
          because: ["schemas"],
        }),
      ];
    }
    // A shard's claims are judged on the merged bundle (see claimsOnShard), so is the policy on them.
    const shard = shardMarkerOf(context, validatorsOf(options));
    return checkPolicy({
      config: shard === undefined ? config : { ...config, claims: [] },
      records,
      policy: policyOf(options),
      tolerances: tolerancesOf(context, options),
      recomputed: context.recomputed,
    });
  },
};

export const reportMdCheck: CheckUnit = {
  name: "report-md",
  codes: ["E_REPORT_MD_MISMATCH"],
  // Renders the recomputed summary, which exists even when summary.json disagrees with it.
  requires: ["schemas"],
  run: (context) => {
    const { config, environment } = validInputs(context);
    if (context.recomputed === undefined) {
      return [fail("report-md", "E_CHECK_SKIPPED", "skipped because recompute failed: nothing to render")];
    }
    return checkReportMarkdown({
      config,
      environment,
      recomputed: context.recomputed,
      stated: context.entries.get("report.md"),
    });
  },
};

/**
 * The draw re-derived from the verifier's own dataset (asynchronous: a dataset may be
 * streamed), run after the entry checks (runner.ts runAllChecks, verify-bundle.ts). It keeps
 * the evaluation samples for replay: a shard's own part of the draw.
 */
export const drawCheck: CheckUnit = {
  name: "draw",
  codes: ["E_DRAW_MISMATCH", "E_DRAW_RECORD", "E_DRAW_DATASET_MISMATCH", "E_DRAW_DATASET", "E_DRAW_FAILED"],
  // The draw trusts protocol-level facts: the stated draw rule, the dataset hashes, the sample
  // lists' shape. A dataset is not streamed for a bundle whose protocol is wrong.
  requires: ["integrity", "signature", "trust", "schemas", "protocol"],
  run: async (context, options) => {
    const { config, environment } = validInputs(context);
    const shard = shardMarkerOf(context, validatorsOf(options));
    const draw = await checkDraw({
      config,
      environment,
      records: lineFoldsOf(context, options).identities,
      dataset: options.dataset,
      recordedSampleIds: shard?.sampleIds,
    });
    if (draw.evaluation !== undefined && draw.findings.every((finding) => finding.ok)) {
      context.evaluation = draw.evaluation.filter(
        (sample) => shard === undefined || shard.sampleIds.includes(sample.sampleId),
      );
    }
    return draw.findings;
  },
};

/**
 * The bundle's stated model shapes and the attention layout its kept slots imply, against the
 * verifier's own checkpoint (asynchronous: the checkpoint's files are hashed), run after the
 * entry checks and before the draw and replay, with or without replay.
 */
export const modelCheck: CheckUnit = {
  name: "model",
  codes: ["E_MODEL_SHAPES", "E_MODEL_LAYOUT", "E_MODEL_FILES", "E_MODEL_NOT_CHECKED"],
  // It matches the checkpoint by the stated model hash, which protocol holds to the listed files.
  requires: ["integrity", "signature", "trust", "schemas", "protocol"],
  run: async (context, options) => {
    const { config, environment } = validInputs(context);
    const budget = lineFoldsOf(context, options).budget;
    return checkModel({
      environment,
      contextTokens: config.dataset.contextTokens,
      windows: budget?.readableWindows().windows ?? new Map(),
      model: await (options.verifierModel ?? (() => scannedVerifierModel(undefined)))(),
      required: options.requireModel === true || policyOf(options).model?.required === true,
    });
  },
};

/** The checks over a bundle's entries in memory, in order (zip-safety before, replay after: ../verify-bundle.ts). */
export const ENTRY_CHECKS: readonly CheckUnit[] = [
  integrityCheck,
  signatureCheck,
  trustCheck,
  schemasCheck,
  configRulesCheck,
  consistencyCheck,
  budgetCheck,
  executedCostCheck,
  recomputeCheck,
  claimsCheck,
  policyCheck,
  protocolCheck,
  shardsCheck,
  reportMdCheck,
];
