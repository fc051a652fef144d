/**
 * The KV cache as compression methods see it: per layer, per head, a list of slots.
 * Each slot keeps the token's true position, so an evicted cache still tells the model
 * where every remaining token sits (GPT-Neo's positions come from wpe, its local window
 * from true positions).
 */
export interface HeadCache {
  /** True token positions, one per slot, ascending. */
  positions: Int32Array;
  /** [slots, headDim] row-major. */
  keys: Float32Array;
  /** [slots, headDim] row-major. */
  values: Float32Array;
}

export interface LayerCache {
  heads: HeadCache[];
}

export interface KvCache {
  headDim: number;
  layers: LayerCache[];
}
