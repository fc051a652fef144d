/**
 * The checkpoint the runtime opens for a compressed model: low-rank matrices as their two
 * factors (decoded from the stored bytes, so quantization error is included), which the graph
 * runs as two MatMuls (src/model/graph.ts); everything else as decoded dense weights.
 */
import { createHash } from "node:crypto";
import type { GptNeoCheckpoint, LowRankFactors } from "../model/types.js";
import { type CompressedWeights, decodeFactors } from "./compress.js";

export function factorisedCheckpoint(compressed: CompressedWeights): GptNeoCheckpoint {
  const factors = new Map<string, LowRankFactors>();
  for (const tensor of compressed.tensors) {
    const plan = tensor.plan;
    if (plan === undefined || plan.treatment.encoding !== "lowrank") continue;
    const { rank, left, right } = decodeFactors(
      tensor.serialized,
      plan.rows,
      plan.cols,
      plan.treatment,
      compressed.baselineDtype,
    );
    // Rank 0 stores nothing: the decoded dense (zero) matrix stands in.
    if (rank === 0) continue;
    factors.set(tensor.name, {
      left: { shape: [plan.rows, rank], data: left },
      right: { shape: [rank, plan.cols], data: right },
    });
  }
  const base = compressed.checkpoint;
  return {
    ...base,
    factors,
    // Another graph than the dense reconstruction: another graph-cache identity.
    sha256: createHash("sha256").update(`spg-factorised\n${base.sha256}\n`).digest("hex"),
  };
}
