/**
 * The logit cosine weight-compression reports quote ("cosine 0.10"): per row, the cosine
 * between the baseline and compressed logits vectors, in float64. Records keep the sum over
 * rows so the mean can be recomputed; it is reported next to KL and agreement, which say
 * more about what a reader of the model sees.
 */

/** Σ over rows r of cos(a[r], b[r]); rows are [vocab] slices of [rows, vocab] buffers. */
export function logitCosineSum(a: Float32Array, b: Float32Array, rows: number, vocab: number): number {
  let sum = 0;
  for (let row = 0; row < rows; row++) {
    const offset = row * vocab;
    let dot = 0;
    let normA = 0;
    let normB = 0;
    for (let i = 0; i < vocab; i++) {
      const x = a[offset + i];
      const y = b[offset + i];
      dot += x * y;
      normA += x * x;
      normB += y * y;
    }
    // A zero row has no direction; count it as orthogonal rather than divide by zero.
    sum += normA > 0 && normB > 0 ? dot / Math.sqrt(normA * normB) : 0;
  }
  return sum;
}
