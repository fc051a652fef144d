/**
 * The bundle against the verifier's policy (src/verify/policy.ts): what a producer could
 * otherwise choose after the fact to make a claim easier. Runs on the schema-valid config
 * before anything is recomputed, so a resource-bound refusal costs nothing; the interval
 * widths are judged on the recomputed summary when there is one.
 */
import type { Summary } from "../../bundle/types.js";
import type { ClaimMetric, RunConfig } from "../../config/types.js";
import { FailureCollector } from "../collect.js";
import type { EffectiveTolerances, VerifyPolicy } from "../policy.js";
import { type Finding, pass } from "../types.js";

const CHECK = "policy" as const;

/** The summary's interval field for each claim metric. */
const INTERVAL_OF: Record<ClaimMetric, keyof Summary["methods"][string]["intervals"]> = {
  compression_ratio: "compressionRatio",
  perplexity_increase_pct: "perplexityIncreasePct",
  mean_kl: "meanKl",
  top1_agreement: "top1Agreement",
  generation_agreement: "generationAgreement",
  executed_memory_ratio: "executedMemoryRatio",
  decode_speed_ratio: "decodeSpeedRatio",
};

/** Why verify will not compute this bundle's bootstrap at all (a resource bound), or undefined. */
export function bootstrapRefusal(
  config: RunConfig,
  records: number,
  policy: VerifyPolicy,
): string | undefined {
  const { resamples } = config.bootstrap;
  const { maximumResamples, maximumDraws } = policy.bootstrap;
  if (resamples > maximumResamples)
    return `bootstrap.resamples ${resamples} is above this verifier's maximum of ${maximumResamples}`;
  if (resamples * records > maximumDraws)
    return `bootstrap.resamples ${resamples} over ${records} records is ${resamples * records} draws, above this verifier's maximum of ${maximumDraws}`;
  return undefined;
}

export interface PolicyInput {
  config: RunConfig;
  records: number;
  policy: VerifyPolicy;
  tolerances: EffectiveTolerances;
  /** The recomputed summary, when it could be computed (interval widths are judged on it). */
  recomputed?: Summary;
}

export function checkPolicy(input: PolicyInput): Finding[] {
  const { config, policy, recomputed } = input;
  const failures = new FailureCollector(CHECK);
  const claimed = config.claims.length > 0;

  const refusal = bootstrapRefusal(config, input.records, policy);
  if (refusal !== undefined) failures.add("E_POLICY_RESOURCE_BOUND", `${refusal}: refused before computing`);
  if (claimed && config.dataset.samples < policy.samples.minimum) {
    failures.add(
      "E_POLICY_SAMPLES",
      `${config.dataset.samples} evaluation samples; this verifier's policy asks for at least ${policy.samples.minimum} behind a claim`,
    );
  }
  if (claimed && config.bootstrap.resamples < policy.bootstrap.minimumResamples) {
    failures.add(
      "E_POLICY_RESAMPLES",
      `bootstrap.resamples ${config.bootstrap.resamples}; this verifier's policy asks for at least ${policy.bootstrap.minimumResamples}`,
    );
  }
  const { minimumConfidence } = policy.bootstrap;
  if (claimed && minimumConfidence !== undefined && !(config.bootstrap.confidence >= minimumConfidence)) {
    // A 1% interval is a point estimate called a bound: as empty as 2 resamples.
    failures.add(
      "E_POLICY_CONFIDENCE",
      `bootstrap.confidence ${config.bootstrap.confidence}; this verifier's policy asks for at least ${minimumConfidence} behind a claim`,
    );
  }
  for (const claim of config.claims) {
    if (claim.metric !== "compression_ratio") continue;
    const bounded = config.claims.some(
      (other) => other.method === claim.method && policy.claims.ratioNeedsOneOf.includes(other.metric),
    );
    if (!bounded) {
      failures.add(
        "E_POLICY_QUALITY_BOUND",
        `method ${claim.method} claims a compression ratio with no claim on ${policy.claims.ratioNeedsOneOf.join(" or ")} beside it`,
      );
    }
  }
  if (recomputed !== undefined) {
    for (const claim of config.claims) {
      const widest = policy.claims.maximumIntervalWidth[claim.metric];
      if (widest === undefined || !Object.hasOwn(recomputed.methods, claim.method)) continue;
      const method = recomputed.methods[claim.method];
      const interval = method.intervals[INTERVAL_OF[claim.metric]];
      // An absent run-cost metric fails the claim itself (recompute refuses it).
      if (interval === undefined) continue;
      const width = interval.high - interval.low;
      if (!(width <= widest)) {
        failures.add(
          "E_POLICY_INTERVAL_WIDTH",
          `${claim.method} ${claim.metric}: the ${config.bootstrap.confidence} interval [${interval.low}, ${interval.high}] is ${width} wide, above this verifier's maximum of ${widest}`,
        );
      }
    }
  }
  if (failures.size > 0) return failures.findings();
  const notes = input.tolerances.ignored;
  return [
    pass(
      CHECK,
      `within this verifier's policy (${config.dataset.samples} samples, ${config.bootstrap.resamples} resamples` +
        `${recomputed === undefined ? "; interval widths not judged: no recomputed summary" : ""})` +
        (notes.length > 0 ? `; ${notes.join("; ")}` : ""),
      notes.length > 0 ? { ignored: notes } : undefined,
    ),
  ];
}
