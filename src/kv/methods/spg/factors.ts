/**
 * Low-rank storage of one compressed K or V block: the rank from the Gram matrix's
 * eigenvalues at the energy threshold, chosen only when its factors are smaller than the
 * block's element-wise form; factors held to the mixed-precision tiers, else fp16.
 */
import { SpgError } from "../../../errors.js";
import { packedLength } from "../../../numeric/bitpack.js";
import type { ByteReader, ByteWriter } from "../../../numeric/bytes.js";
import { FP16_MAX, halfBitsToFloat } from "../../../numeric/fp16.js";
import {
  decodeGroups,
  encodeGroups,
  GROUP_META_BYTES,
  type QuantGroups,
  tokenGroups,
} from "../../../numeric/group-quant.js";
import {
  factorsFor,
  gramMatrix,
  lowRankBytes,
  multiplyFactors,
  rankForEnergy,
  smallestEigenvalueSumBound,
  symmetricTopEigen,
  topEigenvalueSumBound,
} from "../../../numeric/lowrank.js";
import { countBits } from "../../compressed.js";
import { paramError } from "../shared.js";
import { type BlockPlan, type ElementwiseChoice, highCount } from "./elementwise.js";
import type { Stage2Params } from "./params.js";

/**
 * How a compressed head's low-rank factors are stored. With mixed precision on, they are held
 * to the same tiers as element-wise blocks (a compressed head is never stored above them): each
 * left-factor row (one per token) at its token's tier, the right factor at highBits, in groups
 * of groupSize. With it off, fp16. null = fp16.
 */
function factorGroups(
  plan: BlockPlan,
  rank: number,
  stage2: Stage2Params,
): { left: QuantGroups; right: QuantGroups } | null {
  const mixed = stage2.mixedPrecision;
  if (!mixed.enabled) return null;
  const bitsOf = (t: number) => (plan.isHigh[t] ? mixed.highBits : mixed.lowBits);
  return {
    left: tokenGroups(plan.tokens, rank, mixed.groupSize, bitsOf),
    right: tokenGroups(rank, plan.dim, mixed.groupSize, () => mixed.highBits),
  };
}

/**
 * Exact bytes of a low-rank block's body at this rank: u16 rank + factors. Closed form of what
 * writeFactors writes (it checks the two agree): per group an fp16 scale and zero point, then
 * one bit-packed stream per distinct width of each factor.
 */
export function factorBytes(plan: BlockPlan, rank: number, stage2: Stage2Params, highTokens: number): number {
  const mixed = stage2.mixedPrecision;
  if (!mixed.enabled) return lowRankBytes(plan.tokens, plan.dim, rank);
  if (rank === 0) return 2;
  const { highBits, lowBits, groupSize } = mixed;
  const lowTokens = plan.tokens - highTokens;
  const leftCodes =
    highBits === lowBits
      ? packedLength(plan.tokens * rank, highBits)
      : packedLength(highTokens * rank, highBits) + packedLength(lowTokens * rank, lowBits);
  const left = GROUP_META_BYTES * plan.tokens * Math.ceil(rank / groupSize) + leftCodes;
  const right =
    GROUP_META_BYTES * rank * Math.ceil(plan.dim / groupSize) + packedLength(rank * plan.dim, highBits);
  return 2 + left + right;
}

export function writeFactors(
  writer: ByteWriter,
  factors: { left: Float64Array; right: Float64Array },
  rank: number,
  plan: BlockPlan,
  stage2: Stage2Params,
  histogram: Record<string, number>,
): void {
  const start = writer.size();
  writer.u16(rank);
  const groups = factorGroups(plan, rank, stage2);
  if (groups === null) {
    for (const x of factors.left) writer.half(checkedHalf(x));
    for (const x of factors.right) writer.half(checkedHalf(x));
    countBits(histogram, 16, factors.left.length + factors.right.length);
  } else {
    const { highBits, lowBits } = stage2.mixedPrecision;
    encodeGroups(writer, Float32Array.from(factors.left), groups.left);
    encodeGroups(writer, Float32Array.from(factors.right), groups.right);
    let high = 0;
    for (let t = 0; t < plan.tokens; t++) high += plan.isHigh[t];
    countBits(histogram, highBits, high * rank + factors.right.length);
    countBits(histogram, lowBits, (plan.tokens - high) * rank);
  }
  const planned = factorBytes(plan, rank, stage2, highCount(plan));
  if (writer.size() - start !== planned) {
    throw new SpgError(
      "E_KV_ENCODE",
      `spg low-rank block wrote ${writer.size() - start} bytes, planned ${planned}`,
    );
  }
}

/**
 * The low-rank form of a block when it is smaller than the element-wise form, else null. The
 * rank is the fewest components that reach the energy threshold. Ranks from `ceiling` up
 * cannot beat even the dense element-wise bytes, so when even the best `ceiling - 1`
 * components cannot hold the threshold's energy (an upper bound from the Gram matrix alone),
 * the eigen-decomposition is skipped: the choice is the same as with it. Otherwise the
 * eigenvalues decide, and only the vectors the factors use are computed.
 */
export function lowRankChoice(
  block: Float32Array,
  plan: BlockPlan,
  stage2: Stage2Params,
  elementwise: ElementwiseChoice,
): { rank: number; factors: { left: Float64Array; right: Float64Array } } | null {
  const high = highCount(plan);
  const maxRank = Math.min(plan.tokens, plan.dim);
  let ceiling = 0;
  while (ceiling <= maxRank && factorBytes(plan, ceiling, stage2, high) < elementwise.upper) ceiling++;
  if (ceiling === 0) return null;
  const gram = gramMatrix(block, plan.tokens, plan.dim);
  const threshold = stage2.lowRank.energyThreshold;
  const { bound, trace } = topEigenvalueSumBound(gram, plan.dim, ceiling - 1);
  // The margin is far above float64 rounding of eigenvalue sums: only clear cases skip.
  if (trace > 0 && bound < threshold * trace * (1 - 1e-9)) return null;
  // The same question from the other end: when the dim - ceiling + 1 smallest eigenvalues
  // surely hold more than the 1 - threshold of the energy the rank may leave out, the top
  // ceiling - 1 cannot reach the threshold (random-weight K/V blocks: every block so far).
  const leftOut = (1 - threshold) * trace;
  const smallest = plan.dim - (ceiling - 1);
  if (smallest > 0 && leftOut >= 1e-8 * smallest * trace && trace > 0) {
    const held = smallestEigenvalueSumBound(gram, plan.dim, smallest, leftOut / smallest);
    // The margins are far above the bound's rounding (see smallestEigenvalueSumBound) and the
    // eigen-decomposition's (about n·eps of the trace): only clear cases skip.
    if (held > leftOut * (1 + 1e-6) + 1e-9 * trace) return null;
  }
  let rank = 0;
  let won = false;
  const { vectors } = symmetricTopEigen(gram, plan.dim, (values) => {
    rank = rankForEnergy(values, maxRank, threshold).rank;
    won = elementwise.isBeatenBy(factorBytes(plan, rank, stage2, high));
    return won ? rank : 0;
  });
  if (!won) return null;
  return { rank, factors: factorsFor(block, plan.tokens, plan.dim, vectors ?? new Float64Array(0), rank) };
}

function checkedHalf(x: number): number {
  if (!Number.isFinite(x) || Math.abs(x) > FP16_MAX) {
    throw paramError(
      "spg",
      "stage2.lowRank",
      `produced a factor ${x} outside fp16 range`,
      "disable lowRank for this model",
    );
  }
  return x;
}

/** Inverse of writeFactors: the rank, the factors, and the block they multiply back to. */
export function readFactors(reader: ByteReader, plan: BlockPlan, stage2: Stage2Params): Float32Array {
  const rank = reader.u16();
  const groups = factorGroups(plan, rank, stage2);
  let left: Float32Array | Float64Array;
  let right: Float32Array | Float64Array;
  if (groups === null) {
    left = Float64Array.from({ length: plan.tokens * rank }, () => halfBitsToFloat(reader.u16()));
    right = Float64Array.from({ length: rank * plan.dim }, () => halfBitsToFloat(reader.u16()));
  } else {
    left = new Float32Array(plan.tokens * rank);
    right = new Float32Array(rank * plan.dim);
    decodeGroups(reader, left, groups.left);
    decodeGroups(reader, right, groups.right);
  }
  return multiplyFactors(left, right, plan.tokens, rank, plan.dim, new Float32Array(plan.tokens * plan.dim));
}
