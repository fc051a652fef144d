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
 * Teacher-forced rows as the graph returns them: logits [rows, vocab] with each row's
 * log-sum-exp (float64) and argmax, so no metric needs its own pass of exp over a row.
 */
export interface LogitRows {
  logits: Float32Array;
  logSumExp: Float64Array;
  argmax: Int32Array;
}

/** LogitRows computed here from raw logits (for logits that did not come from the graph). */
export function logitRows(logits: Float32Array, vocab: number): LogitRows {
  const rows = logits.length / vocab;
  const logSumExp = new Float64Array(rows);
  const best = new Int32Array(rows);
  for (let row = 0; row < rows; row++) {
    best[row] = argmax(logits, row, vocab);
    const max = logits[row * vocab + best[row]];
    let sum = 0;
    for (let i = row * vocab; i < (row + 1) * vocab; i++) sum += Math.exp(logits[i] - max);
    logSumExp[row] = max + Math.log(sum);
  }
  return { logits, logSumExp, argmax: best };
}

/** The baseline side of a teacher-forced comparison, computed once per sample and shared by every method. */
export interface PreparedBaseline {
  /**
   * Per row, the baseline probabilities rounded to float32 (half the memory traffic of the
   * per-method dot products). KL is then computed exactly for these p~ with their own mass
   * (below), which differs from KL for p by at most 2^-24 * sum_i p_i |log p_i - log q_i|.
   */
  probs: Float32Array[];
  /** The same p~ rows as one [rows, vocab] array (the graph's scored_probs input). */
  probRows: Float32Array;
  /** Per row, sum_i p~_i log p_i. */
  negEntropy: number[];
  /** Per row, sum_i p~_i (1 up to float32 rounding). */
  mass: number[];
  argmax: number[];
  nll: number;
}

export function prepareBaseline(
  baseline: LogitRows,
  targets: readonly number[],
  vocab: number,
): PreparedBaseline {
  const probRows = new Float32Array(targets.length * vocab);
  const probs: Float32Array[] = [];
  const negEntropy: number[] = [];
  const mass: number[] = [];
  let nll = 0;
  targets.forEach((target, row) => {
    const offset = row * vocab;
    const logZ = baseline.logSumExp[row];
    const p = probRows.subarray(offset, offset + vocab);
    let sum = 0;
    let total = 0;
    for (let i = 0; i < vocab; i++) {
      const logP = baseline.logits[offset + i] - logZ;
      p[i] = Math.exp(logP);
      sum += p[i] * logP;
      total += p[i];
    }
    probs.push(p);
    negEntropy.push(sum);
    mass.push(total);
    nll -= baseline.logits[offset + target] - logZ;
  });
  return { probs, probRows, negEntropy, mass, argmax: targets.map((_, row) => baseline.argmax[row]), nll };
}

/** sum_i p[i] x[offset + i] over p's length, in float64 with four independent partial sums. */
function dotRow(p: Float32Array, x: Float32Array, offset: number): number {
  let dot0 = 0;
  let dot1 = 0;
  let dot2 = 0;
  let dot3 = 0;
  const n = p.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    dot0 += p[i] * x[offset + i];
    dot1 += p[i + 1] * x[offset + i + 1];
    dot2 += p[i + 2] * x[offset + i + 2];
    dot3 += p[i + 3] * x[offset + i + 3];
  }
  for (; i < n; i++) dot0 += p[i] * x[offset + i];
  return dot0 + dot1 + dot2 + dot3;
}

/**
 * prepareBaseline with the distributions computed elsewhere (the graph of
 * src/model/distribution.ts): the same p~, mass and sum p~ log p, the NLL and argmax from the rows.
 */
export function preparedFromDistributions(
  baseline: LogitRows,
  distributions: {
    probs: Float32Array[];
    matrix: Float32Array;
    mass: ArrayLike<number>;
    negEntropy: ArrayLike<number>;
  },
  targets: readonly number[],
  vocab: number,
): PreparedBaseline {
  let nll = 0;
  targets.forEach((target, row) => {
    nll -= baseline.logits[row * vocab + target] - baseline.logSumExp[row];
  });
  return {
    probs: distributions.probs.slice(0, targets.length),
    probRows: distributions.matrix.subarray(0, targets.length * vocab),
    mass: Array.from(distributions.mass).slice(0, targets.length),
    negEntropy: Array.from(distributions.negEntropy).slice(0, targets.length),
    argmax: targets.map((_, row) => baseline.argmax[row]),
    nll,
  };
}

/**
 * Compares compressed logits with the prepared baseline over the same teacher-forced rows:
 * row r predicts targets[r]. Sums, not means, so aggregates can be recomputed exactly.
 */
export function compareWithBaseline(
  baseline: PreparedBaseline,
  compressed: LogitRows,
  targets: readonly number[],
  vocab: number,
): TeacherForcedComparison {
  let nllCompressed = 0;
  let klSum = 0;
  let top1Matches = 0;
  const x = compressed.logits;
  for (let row = 0; row < targets.length; row++) {
    // With log q_i = x_i - log Z: KL(p~||q) = sum p~ log p - sum p~ x + (sum p~) log Z: one
    // dot product per row, the log-sum-exp coming with the rows.
    const offset = row * vocab;
    const p = baseline.probs[row];
    const dot = dotRow(p, x, offset);
    const logZ = compressed.logSumExp[row];
    nllCompressed -= x[offset + targets[row]] - logZ;
    // Rounding can leave a tiny negative value for identical distributions; KL is non-negative.
    klSum += Math.max(0, baseline.negEntropy[row] - dot + baseline.mass[row] * logZ);
    if (baseline.argmax[row] === compressed.argmax[row]) top1Matches++;
  }
  return { scoredTokens: targets.length, nllBaseline: baseline.nll, nllCompressed, klSum, top1Matches };
}

/** A teacher-forced pass scored in the graph against the baseline's p~ (graphNames.scored*). */
export interface ScoredRows {
  /** Per row, sum_i p~_i x_i in float64. */
  expectedLogit: Float64Array;
  /** Per row, x[target]. */
  targetLogit: Float32Array;
  logSumExp: Float64Array;
  argmax: Int32Array;
}

/**
 * compareWithBaseline from rows the graph scored: the same formulas, with the dot product and
 * the target's logit computed next to the logits instead of over copied-out rows.
 */
export function compareScored(
  baseline: PreparedBaseline,
  scored: ScoredRows,
  targets: readonly number[],
): TeacherForcedComparison {
  if (scored.expectedLogit.length !== targets.length || scored.targetLogit.length !== targets.length) {
    throw new Error(`scored ${scored.expectedLogit.length} rows for ${targets.length} targets`);
  }
  let nllCompressed = 0;
  let klSum = 0;
  let top1Matches = 0;
  for (let row = 0; row < targets.length; row++) {
    const logZ = scored.logSumExp[row];
    nllCompressed -= scored.targetLogit[row] - logZ;
    klSum += Math.max(0, baseline.negEntropy[row] - scored.expectedLogit[row] + baseline.mass[row] * logZ);
    if (baseline.argmax[row] === scored.argmax[row]) top1Matches++;
  }
  return { scoredTokens: targets.length, nllBaseline: baseline.nll, nllCompressed, klSum, top1Matches };
}

/** One-off comparison of two raw logits buffers (prepareBaseline + compareWithBaseline). */
export function compareTeacherForced(
  baseline: Float32Array,
  compressed: Float32Array,
  targets: readonly number[],
  vocab: number,
): TeacherForcedComparison {
  return compareWithBaseline(
    prepareBaseline(logitRows(baseline, vocab), targets, vocab),
    logitRows(compressed, vocab),
    targets,
    vocab,
  );
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

/** A record's generation field: the comparison and the token ids compared. */
export function generationRecord(
  baseline: readonly number[],
  compressed: readonly number[],
): GenerationComparison & { baselineTokens: number[]; tokens: number[] } {
  return {
    ...compareGenerations(baseline, compressed),
    baselineTokens: [...baseline],
    tokens: [...compressed],
  };
}

/** Throws when a measured number is NaN or infinite: such a run must fail, not be recorded. */
export function assertFinite(value: number, what: string): number {
  if (!Number.isFinite(value)) throw new Error(`non-finite measurement: ${what} = ${value}`);
  return value;
}
