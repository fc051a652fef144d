/**
 * Per-token metrics over logits rows, in float64. Rows are [vocab] slices of a [q, vocab] buffer.
 * These are the formulas records.jsonl sums; src/measure/summary.ts aggregates them.
 */

/** log-softmax of one row, computed stably (max subtracted) in float64. */
export function logSoftmax(logits: Float32Array, row: number, vocab: number): Float64Array {
  const start = row * vocab;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < vocab; i++) max = Math.max(max, logits[start + i]);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[start + i] - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) out[i] = logits[start + i] - logZ;
  return out;
}

/** log p(target) from one row of logits, without materializing the row's distribution. */
export function logProbabilityAt(logits: Float32Array, row: number, vocab: number, target: number): number {
  const offset = row * vocab;
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < vocab; v++) if (logits[offset + v] > max) max = logits[offset + v];
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - max);
  return logits[offset + target] - max - Math.log(sum);
}

export function argmax(logits: Float32Array, row: number, vocab: number): number {
  const start = row * vocab;
  let best = 0;
  for (let i = 1; i < vocab; i++) if (logits[start + i] > logits[start + best]) best = i;
  return best;
}

/** KL(p || q) in nats from two log-probability rows. */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]);
    if (p > 0) kl += p * (logP[i] - logQ[i]);
  }
  // Rounding can leave a tiny negative value for identical distributions; KL is non-negative.
  return Math.max(0, kl);
}

export interface TeacherForcedComparison {
  scoredTokens: number;
  nllBaseline: number;
  nllCompressed: number;
  klSum: number;
  top1Matches: number;
}

/**
 * Compares baseline and compressed logits over the same teacher-forced rows: row r predicts targets[r].
 * Sums, not means, so aggregates can be recomputed exactly.
 */
export function compareTeacherForced(
  baseline: Float32Array,
  compressed: Float32Array,
  targets: readonly number[],
  vocab: number,
): TeacherForcedComparison {
  let nllBaseline = 0;
  let nllCompressed = 0;
  let klSum = 0;
  let top1Matches = 0;
  for (let row = 0; row < targets.length; row++) {
    const logP = logSoftmax(baseline, row, vocab);
    const logQ = logSoftmax(compressed, row, vocab);
    nllBaseline -= logP[targets[row]];
    nllCompressed -= logQ[targets[row]];
    klSum += klDivergence(logP, logQ);
    if (argmax(baseline, row, vocab) === argmax(compressed, row, vocab)) top1Matches++;
  }
  return { scoredTokens: targets.length, nllBaseline, nllCompressed, klSum, top1Matches };
}

export interface GenerationComparison {
  compared: number;
  matches: number;
  firstDivergence: number | null;
}

/** Position-by-position agreement of two greedy generations of equal length. */
export function compareGenerations(
  baseline: readonly number[],
  compressed: readonly number[],
): GenerationComparison {
  const compared = Math.min(baseline.length, compressed.length);
  let matches = 0;
  let firstDivergence: number | null = null;
  for (let i = 0; i < compared; i++) {
    if (baseline[i] === compressed[i]) matches++;
    else if (firstDivergence === null) firstDivergence = i;
  }
  return { compared, matches, firstDivergence };
}

/** Throws when a measured number is NaN or infinite: such a run must fail, not be recorded. */
export function assertFinite(value: number, what: string): number {
  if (!Number.isFinite(value)) throw new Error(`non-finite measurement: ${what} = ${value}`);
  return value;
}
