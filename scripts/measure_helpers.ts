/** Pure helpers of scripts/measure_bundled_model.ts (no I/O), tested in test/data. */
import { keyVisible } from "../src/kv/layout.js";

export { logProbabilityAt } from "../src/measure/metrics.js";

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
