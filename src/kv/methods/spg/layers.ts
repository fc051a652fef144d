/**
 * spg's stage-2 layer bytes: per head the kept-slot subset and a mode byte; reserved heads
 * (the most important by stage 1) at the baseline dtype, the others compressed block by block
 * (keys, then values), each block low-rank or element-wise, whichever is smaller.
 */
import { ByteReader, ByteWriter } from "../../../numeric/bytes.js";
import { type BaselineDtype, dtypeBits } from "../../../numeric/dtype.js";
import type { HeadCache, LayerCache } from "../../cache.js";
import {
  countBits,
  type EncodedLayer,
  headFromRows,
  readRows,
  readSubset,
  writeRows,
  writeSubset,
} from "../../compressed.js";
import { topMembers } from "../../select.js";
import { gatherRows } from "../shared.js";
import { type BlockPlan, decodeElementwise, ElementwiseChoice, writeElementwise } from "./elementwise.js";
import { lowRankChoice, readFactors, writeFactors } from "./factors.js";
import { reservedHeadCount, type Stage2Params } from "./params.js";
import type { LayerPlan } from "./stage1.js";

const MODE_BASELINE = 0;
const MODE_COMPRESSED = 1;
const BLOCK_ELEMENTWISE = 0;
const BLOCK_LOWRANK = 1;

function encodeBlock(
  writer: ByteWriter,
  block: Float32Array,
  plan: BlockPlan,
  stage2: Stage2Params,
  dtype: BaselineDtype,
  histogram: Record<string, number>,
): void {
  const elementwise = new ElementwiseChoice(block, plan, stage2, dtype);
  if (stage2.lowRank.enabled) {
    const lowRank = lowRankChoice(block, plan, stage2, elementwise);
    writer.u8(lowRank === null ? BLOCK_ELEMENTWISE : BLOCK_LOWRANK);
    if (lowRank !== null) {
      writeFactors(writer, lowRank.factors, lowRank.rank, plan, stage2, histogram);
      return;
    }
  }
  writeElementwise(writer, block, elementwise.best(), plan, stage2, dtype, histogram);
}

function decodeBlock(
  reader: ByteReader,
  plan: BlockPlan,
  stage2: Stage2Params,
  dtype: BaselineDtype,
): Float32Array {
  const kind = stage2.lowRank.enabled ? reader.u8() : BLOCK_ELEMENTWISE;
  if (kind === BLOCK_ELEMENTWISE) return decodeElementwise(reader, plan, stage2, dtype);
  return readFactors(reader, plan, stage2);
}

/**
 * Indices (into the kept list, ascending) of the tokens stored at high precision: the top
 * `fraction` by (protected first, stage-1 score, earlier token).
 */
function highTokens(keptScores: Float32Array, protectedKept: Uint8Array, fraction: number): Int32Array {
  const take = Math.round(fraction * keptScores.length);
  const isProtected: number[] = [];
  const others: number[] = [];
  for (let t = 0; t < keptScores.length; t++) (protectedKept[t] ? isProtected : others).push(t);
  if (take <= isProtected.length) return topMembers(keptScores, Int32Array.from(isProtected), take);
  const rest = topMembers(keptScores, Int32Array.from(others), take - isProtected.length);
  return Int32Array.from([...isProtected, ...rest]).sort();
}

export function encodeLayer(
  layer: LayerCache,
  plan: LayerPlan,
  dim: number,
  stage2: Stage2Params,
  dtype: BaselineDtype,
): EncodedLayer {
  const writer = new ByteWriter();
  const histogram: Record<string, number> = {};
  const heads = layer.heads.length;
  const ranked = Array.from({ length: heads }, (_, h) => h).sort(
    (a, b) => plan.importance[b] - plan.importance[a] || a - b,
  );
  const reserved = new Set(ranked.slice(0, reservedHeadCount(stage2, heads)));
  let tokensKept = 0;
  layer.heads.forEach((head, h) => {
    const kept = plan.kept[h];
    const slots = head.positions.length;
    tokensKept += kept.length;
    writeSubset(writer, kept, slots);
    if (reserved.has(h)) {
      writer.u8(MODE_BASELINE);
      writeRows(writer, head.keys, kept, dim, dtype);
      writeRows(writer, head.values, kept, dim, dtype);
      countBits(histogram, dtypeBits(dtype), 2 * kept.length * dim);
      return;
    }
    writer.u8(MODE_COMPRESSED);
    const isHigh = new Uint8Array(kept.length);
    if (stage2.mixedPrecision.enabled) {
      const keptScores = Float32Array.from(kept, (s) => plan.scores[h][s]);
      const protectedKept = Uint8Array.from(kept, (s) => plan.protectedMask[s]);
      const high = highTokens(keptScores, protectedKept, stage2.mixedPrecision.highFraction);
      writeSubset(writer, high, kept.length);
      for (const t of high) isHigh[t] = 1;
    }
    const blockPlan = { tokens: kept.length, dim, isHigh };
    encodeBlock(writer, gatherRows(head.keys, kept, dim), blockPlan, stage2, dtype, histogram);
    encodeBlock(writer, gatherRows(head.values, kept, dim), blockPlan, stage2, dtype, histogram);
  });
  return {
    serialized: writer.finish(),
    tokensKept,
    headsFullPrecision: reserved.size,
    bitsHistogram: histogram,
  };
}

export function decodeLayer(
  bytes: Uint8Array,
  positions: Int32Array,
  heads: number,
  dim: number,
  stage2: Stage2Params,
  dtype: BaselineDtype,
): LayerCache {
  const reader = new ByteReader(bytes);
  const out: HeadCache[] = [];
  for (let h = 0; h < heads; h++) {
    const kept = readSubset(reader, positions.length);
    const mode = reader.u8();
    if (mode === MODE_BASELINE) {
      const keys = readRows(reader, kept.length, dim, dtype);
      const values = readRows(reader, kept.length, dim, dtype);
      out.push(headFromRows(positions, kept, keys, values));
      continue;
    }
    const isHigh = new Uint8Array(kept.length);
    if (stage2.mixedPrecision.enabled) for (const t of readSubset(reader, kept.length)) isHigh[t] = 1;
    const blockPlan = { tokens: kept.length, dim, isHigh };
    const keys = decodeBlock(reader, blockPlan, stage2, dtype);
    const values = decodeBlock(reader, blockPlan, stage2, dtype);
    out.push(headFromRows(positions, kept, keys, values));
  }
  reader.end();
  return { heads: out };
}
