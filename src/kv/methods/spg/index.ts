/**
 * `spg`: two-stage KV compression. Every component is switched by params, so ablations are
 * config overlays, not code branches.
 *
 * Stage 1, permanent eviction (SnapKV++): per head, the attention the last
 * `observationWindow` context queries give each slot, pooled with a kernel chosen by
 * context length (`poolingKernels` table), each normalized by its head maximum and mixed
 * with the key/value L2 magnitude (||k|| + ||v||) by `magnitudeWeight`; sinks and the
 * recent window are protected; `keepRatio` (or `layerKeepRatios[l]`) of the slots kept.
 *
 * Stage 2, per kept head (skipped, bytes identical to plain eviction, when every stage-2
 * component is off):
 *  - heads ranked by importance = Σ over kept slots of observation attention × ||v||
 *    (how much the head's output draws on its values); the top `reservedHeads` per layer
 *    stay at the baseline dtype;
 *  - magnitude threshold: in each remaining head's K and V blocks, elements with
 *    |x| < magnitudeThreshold · max|x| are dropped; survivors are indexed by a bitmask or
 *    an index list, whichever is smaller; a block keeps all its elements instead when that
 *    is smaller than the sparse form (the mask alone costs a bit per element);
 *  - mixed precision: the top `highFraction` of kept tokens by stage-1 score (protected
 *    first) at `highBits`, the rest at the `lowBits` floor; per token, groups of
 *    `groupSize` channels share an fp16 scale and zero point;
 *  - adaptive low-rank: each K/V block's truncated SVD at `energyThreshold` is stored as
 *    factors when that is smaller than the element-wise encoding (the rank comes from the
 *    Gram matrix's eigenvalues; only the kept singular vectors are computed); with mixed precision on,
 *    the factors are held to the same tiers (each left-factor row at its token's bits, the
 *    right factor at `highBits`, groups of `groupSize`), otherwise fp16.
 * Hybrid sparse attention (`sparseTopK`) is a decode-time setting: it changes the graph's
 * attention, not the stored bytes.
 *
 * Files: params.ts (type, schema, rules), stage1.ts (scores and plans), layers.ts (layer
 * bytes), elementwise.ts and factors.ts (the two forms of a compressed block).
 *
 * Layer bytes, stage 2 on, per head: kept-slot subset; u8 head mode (0 = baseline dtype,
 * 1 = compressed). Mode 0: K rows, V rows. Mode 1: [high-precision token subset if mixed
 * precision]; for K then V: [u8 block kind if low-rank on: 0 element-wise, 1 low-rank];
 * low-rank: u16 rank, left [kept, rank] then right [rank, headDim] (quantization groups as
 * element-wise blocks with mixed precision on, else fp16); element-wise:
 * [surviving-element subset if threshold > 0], then codes (mixed precision) or values at
 * the baseline dtype.
 */

import { assembleCompressed } from "../../compressed.js";
import { defineMethod } from "../define.js";
import { decodeKeptLayer, encodeKeptLayer } from "../shared.js";
import { decodeLayer, encodeLayer } from "./layers.js";
import {
  decodeTopK,
  modelProblems,
  paramsSchema,
  runProblems,
  type SpgParams,
  stage2Enabled,
} from "./params.js";
import { planLayers } from "./stage1.js";

export { type BlockPlan, ElementwiseChoice, elementwiseBytes, sparseFloorBytes } from "./elementwise.js";
export { decodeTopK, kernelFor, paramsSchema, type SpgParams, type Stage2Params } from "./params.js";

export const spgMethod = defineMethod<SpgParams>({
  kind: "spg",
  paramsSchema,
  needs: ["windowSums", "keyNorms", "valueNorms"],
  runProblems,
  modelProblems,
  decodeTopK,
  compress(cache, context, p, shape) {
    const dtype = context.baselineDtype;
    const plans = planLayers(shape, context, p);
    const decode = p.decode.sparseTopK > 0 ? { sparseTopK: p.decode.sparseTopK } : {};
    if (!stage2Enabled(p.stage2)) {
      // bytes identical to plain eviction
      const encoded = cache.layers.map((layer, l) =>
        encodeKeptLayer(layer, plans[l].kept, shape.headDim, dtype, true),
      );
      return assembleCompressed(
        "spg",
        shape,
        encoded,
        (bytes, l, s, room) =>
          decodeKeptLayer(bytes, s.layers[l].positions, s.layers[l].numHeads, s.headDim, dtype, null, room),
        decode,
      );
    }
    const encoded = cache.layers.map((layer, l) =>
      encodeLayer(layer, plans[l], shape.headDim, p.stage2, dtype),
    );
    return assembleCompressed(
      "spg",
      shape,
      encoded,
      (bytes, l, s) =>
        decodeLayer(bytes, s.layers[l].positions, s.layers[l].numHeads, s.headDim, p.stage2, dtype),
      decode,
    );
  },
});
