/**
 * spg's stage 1, permanent eviction (SnapKV++): per head, the pooled attention of the last
 * `observationWindow` context queries, normalized by its head maximum and mixed with the
 * key/value magnitude (||k|| + ||v||) by `magnitudeWeight`. Selection, sinks and the recent
 * window are the shared scorer's (../scorer.ts). Each head's importance for stage 2 is the
 * observation attention of its kept slots weighted by ||v||.
 */
import type { CacheShape } from "../../compressed.js";
import { pool1d } from "../../select.js";
import { headRows, type LayerSelection, observationScores, selectByScore } from "../scorer.js";
import type { MethodContext } from "../types.js";
import { kernelFor, type SpgParams } from "./params.js";

type Stage1Params = SpgParams["stage1"];

export interface LayerPlan extends LayerSelection {
  /** Per head: Σ over kept slots of observation attention × ||v||. */
  importance: Float64Array;
}

function maxOf(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > m) m = values[i];
  return m;
}

/** Stage-1 scores of one head: pooled observation attention mixed with K/V magnitude. */
function stage1Scores(
  attention: Float32Array,
  keyNorms: Float64Array,
  valueNorms: Float64Array,
  kernel: number,
  stage1: Stage1Params,
): Float32Array {
  const pooled = pool1d(attention, kernel, stage1.pooling);
  const slots = pooled.length;
  const magnitude = new Float64Array(slots);
  for (let s = 0; s < slots; s++) magnitude[s] = keyNorms[s] + valueNorms[s];
  const maxA = maxOf(pooled);
  const maxM = maxOf(magnitude);
  const w = stage1.magnitudeWeight;
  const out = new Float32Array(slots);
  for (let s = 0; s < slots; s++) {
    out[s] = (1 - w) * (maxA > 0 ? pooled[s] / maxA : 0) + w * (maxM > 0 ? magnitude[s] / maxM : 0);
  }
  return out;
}

/** Every layer's kept slots, stage-1 scores, protected mask and head importance. */
export function planLayers(shape: CacheShape, context: MethodContext, p: SpgParams): LayerPlan[] {
  const { stage1 } = p;
  const { attention, norms } = context;
  const observed = (l: number, heads: number, slots: number) =>
    observationScores(attention, l, heads, slots, stage1.observationWindow);
  const rules = {
    ...stage1,
    keepRatio: (l: number) =>
      stage1.layerKeepRatios === null ? stage1.keepRatio : stage1.layerKeepRatios[l],
  };
  const selections = selectByScore(shape, context, rules, (l, heads, slots) => {
    const kernel = kernelFor(stage1, slots);
    const keyNorms = headRows(norms.keys[l], heads, slots);
    const valueNorms = headRows(norms.values[l], heads, slots);
    return observed(l, heads, slots).map((o, h) =>
      stage1Scores(o, keyNorms[h], valueNorms[h], kernel, stage1),
    );
  });
  return selections.map((selection, l) => {
    const { numHeads, positions } = shape.layers[l];
    const attended = observed(l, numHeads, positions.length);
    const valueNorms = headRows(norms.values[l], numHeads, positions.length);
    const importance = new Float64Array(numHeads);
    selection.kept.forEach((slotsKept, h) => {
      for (let i = 0; i < slotsKept.length; i++)
        importance[h] += attended[h][slotsKept[i]] * valueNorms[h][slotsKept[i]];
    });
    return { ...selection, importance };
  });
}
