/**
 * The prefill statistics scoring methods read, computed in JavaScript: the reference the
 * graph's own outputs (attn_window_sums, key_norms, value_norms in src/model/graph.ts) are
 * tested against, and what the JS reference forward (test/helpers/reference.ts) returns.
 */
import type { KvCache } from "../../src/kv/cache.js";
import type { CacheNorms } from "../../src/kv/methods/types.js";

/**
 * Reverse cumulative sums over the rows of [heads, rows, slots] attention: row i of the result
 * is rows i..rows-1 summed, i.e. the scores of an observation window of the last (rows - i)
 * queries. A float32 running sum from the last row up, the order onnxruntime's CumSum uses.
 */
export function windowSumsFromRows(
  lastRows: Float32Array,
  heads: number,
  rows: number,
  slots: number,
): Float32Array {
  const out = new Float32Array(heads * rows * slots);
  for (let h = 0; h < heads; h++) {
    for (let r = rows - 1; r >= 0; r--) {
      const base = (h * rows + r) * slots;
      if (r === rows - 1) {
        out.set(lastRows.subarray(base, base + slots), base);
        continue;
      }
      for (let s = 0; s < slots; s++) out[base + s] = lastRows[base + s] + out[base + slots + s];
    }
  }
  return out;
}

/** The L2 norm of each row of a [rows, dim] matrix, summed in float64. */
export function rowNorms(matrix: Float32Array, rows: number, dim: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < dim; c++) sum += matrix[r * dim + c] * matrix[r * dim + c];
    out[r] = Math.sqrt(sum);
  }
  return out;
}

/** The norms of a cache's rows, laid out as the graph returns them for a prefill. */
export function cacheNorms(cache: KvCache): CacheNorms {
  const perLayer = (pick: "keys" | "values") =>
    cache.layers.map((layer) => {
      const slots = layer.heads[0]?.positions.length ?? 0;
      const out = new Float64Array(layer.heads.length * slots);
      layer.heads.forEach((head, h) => {
        out.set(rowNorms(head[pick], slots, cache.headDim), h * slots);
      });
      return out;
    });
  return { keys: perLayer("keys"), values: perLayer("values") };
}
