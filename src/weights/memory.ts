/**
 * What weights methods add to a run's memory (src/hardware/requirement.ts adds it), from the
 * model's config and the run config alone, before any weight is read:
 *
 *   runtime     = max over weights methods of runtimeParameters(method) * 4
 *                 (one compressed runtime is open at a time, beside the dense one)
 *   compression = 2 * parameters * 4   (the decoded float32 weights and the serialized bytes,
 *                                       at most float32-sized, while a method is compressed)
 *   baselines   = samples * (continuationTokens - 1) * vocab * 4   (baseline logits kept per sample;
 *                 the prepared baseline in use is counted by requirement.ts's logits term)
 *
 * runtimeParameters counts float32 values the factorised graph holds: a low-rank matrix as
 * r * (rows + cols) with r its fixed rank, ceil(fraction * min) for a rank fraction, and the
 * full min(rows, cols) (or maxRank) for an energy threshold (its rank is only known after the
 * SVD, so the bound); every other tensor dense.
 */
import type { RunConfig } from "../config/types.js";
import type { GptNeoConfig } from "../model/types.js";
import type { WeightsMethodParams } from "./method.js";
import { type MatrixPlan, planCompression } from "./policy.js";

const FLOAT32_BYTES = 4;

/**
 * The rank a low-rank plan gives its matrix: exact for a fixed rank or a rank fraction, an
 * upper bound (min(rows, cols), or maxRank) for an energy threshold, known only after the SVD.
 */
export function plannedRank(plan: MatrixPlan): { rank: number; exact: boolean } {
  const full = Math.min(plan.rows, plan.cols);
  if (plan.treatment.encoding !== "lowrank") return { rank: full, exact: false };
  const s = plan.treatment.selection;
  if (s.kind === "rank") return { rank: Math.min(s.rank, full), exact: true };
  if (s.kind === "fraction") return { rank: Math.min(full, Math.ceil(s.fraction * full)), exact: true };
  return { rank: Math.min(full, s.maxRank ?? full), exact: false };
}

/** Upper bound on the float32 values a compressed runtime holds (`parameters`: the dense model's). */
export function runtimeParameters(
  model: GptNeoConfig,
  params: WeightsMethodParams,
  parameters: number,
): number {
  let total = parameters;
  for (const plan of planCompression(model, params)) {
    if (plan.treatment.encoding !== "lowrank") continue;
    total += plannedRank(plan).rank * (plan.rows + plan.cols) - plan.rows * plan.cols;
  }
  return total;
}

/** Extra bytes a run's weights methods hold (0 when it has none); formula in the module comment. */
export function weightsMethodsBytes(model: GptNeoConfig, config: RunConfig, parameters: number): number {
  const methods = config.methods.filter((m) => m.kind === "weights");
  if (methods.length === 0) return 0;
  const runtime = Math.max(
    ...methods.map((m) => runtimeParameters(model, m.params as unknown as WeightsMethodParams, parameters)),
  );
  const rows = Math.max(0, config.dataset.continuationTokens - 1) * model.vocabSize;
  return (
    runtime * FLOAT32_BYTES + 2 * parameters * FLOAT32_BYTES + config.dataset.samples * rows * FLOAT32_BYTES
  );
}
