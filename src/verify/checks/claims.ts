import type { Summary } from "../../bundle/types.js";
import type { ClaimMetric, RunConfig } from "../../config/types.js";
import { judgeClaim } from "../../measure/summary.js";
import { type Finding, fail, pass } from "../types.js";

const CHECK = "claims" as const;

/** The direction a claim on each metric must take to be a claim at all ("ratio <= 1000" says nothing). */
export const CLAIM_DIRECTION: Record<ClaimMetric, ">=" | "<="> = {
  compression_ratio: ">=",
  perplexity_increase_pct: "<=",
  mean_kl: "<=",
  top1_agreement: ">=",
  generation_agreement: ">=",
  executed_memory_ratio: ">=",
  decode_speed_ratio: ">=",
};

/** Metrics that measure what compression cost in output quality. */
export const QUALITY_METRICS: readonly ClaimMetric[] = [
  "perplexity_increase_pct",
  "mean_kl",
  "top1_agreement",
  "generation_agreement",
];

/**
 * The config's claims hold on the figures RECOMPUTED from the records (never summary.json's).
 * A compression-ratio claim on a method needs a quality claim on the same method too: a
 * ratio with no bound on what it cost (the "853:1, quality not measured" pattern) fails.
 * A bundle stating no claims passes with a note: it measures, and asserts nothing.
 */
export function checkClaims(config: RunConfig, recomputed: Summary): Finding[] {
  const findings: Finding[] = [];
  let passed = 0;
  for (const [index, claim] of config.claims.entries()) {
    const label = `claims[${index}] ${claim.method} ${claim.metric} ${claim.op} ${claim.threshold} (${claim.judge})`;
    if (CLAIM_DIRECTION[claim.metric] !== claim.op) {
      findings.push(
        fail(
          CHECK,
          "E_CLAIM_DIRECTION",
          `${label}: a ${claim.metric} claim must use ${CLAIM_DIRECTION[claim.metric]}`,
          {
            index,
          },
        ),
      );
      continue;
    }
    if (!Object.hasOwn(recomputed.methods, claim.method)) {
      findings.push(
        fail(CHECK, "E_CLAIM_UNKNOWN_METHOD", `${label}: no such method was measured`, { index }),
      );
      continue;
    }
    const result = judgeClaim(claim, recomputed.methods[claim.method]);
    if (!result.pass) {
      const judged =
        claim.judge === "point"
          ? `${result.value}`
          : `${result.judged} (interval end; point ${result.value})`;
      findings.push(fail(CHECK, "E_CLAIM_FAILED", `${label}: recomputed ${judged}`, { index, ...result }));
    } else {
      passed += 1;
    }
  }
  const ratioMethods = new Set(
    config.claims.filter((c) => c.metric === "compression_ratio").map((c) => c.method),
  );
  for (const method of ratioMethods) {
    const bounded = config.claims.some((c) => c.method === method && QUALITY_METRICS.includes(c.metric));
    if (!bounded) {
      findings.push(
        fail(
          CHECK,
          "E_CLAIM_NO_QUALITY_BOUND",
          `method ${method} claims a compression ratio but states no quality bound (${QUALITY_METRICS.join(", ")})`,
          { method },
        ),
      );
    }
  }
  if (findings.length === 0) {
    findings.push(
      pass(
        CHECK,
        config.claims.length === 0
          ? "no claims stated: the bundle measures and asserts nothing"
          : `${passed} claims hold on the recomputed figures`,
      ),
    );
  }
  return findings;
}
