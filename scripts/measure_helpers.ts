/** Pure helpers of scripts/measure_bundled_model.ts (no I/O), tested in test/data. */
import { keyVisible } from "../src/kv/layout.js";

/** log p(target) from one row of logits, in float64 (log-sum-exp with the row max). */
export function logProbabilityAt(logits: Float32Array, row: number, vocab: number, target: number): number {
  const offset = row * vocab;
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < vocab; v++) if (logits[offset + v] > max) max = logits[offset + v];
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - max);
  return logits[offset + target] - max - Math.log(sum);
}

export interface EntropyTotals {
  /** Summed entropy (nats) of the attention rows. */
  entropy: number;
  /** Summed entropy of uniform attention over the same visible keys: ln(visible keys). */
  uniform: number;
  rows: number;
}

/**
 * Entropy of each attention row of one layer from a prefill without past ([heads, rows, q]
 * probabilities of the last `rows` queries), with the uniform-attention entropy over the keys
 * that query may see (causal, and the window on local layers).
 */
export function attentionEntropy(
  probabilities: Float32Array,
  heads: number,
  rows: number,
  positions: readonly number[],
  kind: "global" | "local",
  windowSize: number,
): EntropyTotals {
  const q = positions.length;
  const totals: EntropyTotals = { entropy: 0, uniform: 0, rows: 0 };
  for (let h = 0; h < heads; h++) {
    for (let r = 0; r < rows; r++) {
      const query = q - rows + r;
      const base = (h * rows + r) * q;
      let entropy = 0;
      let visible = 0;
      for (let k = 0; k < q; k++) {
        const p = probabilities[base + k];
        if (p > 0) entropy -= p * Math.log(p);
        if (keyVisible(kind, windowSize, positions[query], positions[k])) visible++;
      }
      totals.entropy += entropy;
      totals.uniform += Math.log(visible);
      totals.rows += 1;
    }
  }
  return totals;
}
