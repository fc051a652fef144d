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
  /**
   * Set when the heads' keys and values are views into buffers already laid out the way the
   * graph reads them ([heads, capacity, headDim], head h's slots first in its block): the
   * padded cache takes these buffers over instead of copying every head (once; see
   * src/kv/padded-cache.ts).
   */
  laidOut?: LaidOutBuffers;
}

/** A layer's keys and values as the graph reads them, [heads, capacity, headDim] each. */
export interface LaidOutBuffers {
  capacity: number;
  keys: Float32Array;
  values: Float32Array;
}

export interface KvCache {
  headDim: number;
  layers: LayerCache[];
}
