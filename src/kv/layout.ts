/**
 * Cache layout helpers: turn the per-layer, per-head slot lists of a KvCache into the
 * graph's inputs (past keys/values padded per layer, additive attention bias), and fold
 * a forward pass's new keys/values back into a cache. Pure functions, no I/O.
 *
 * The bias encodes, by TRUE positions: causality (key pos <= query pos), GPT-Neo's local
 * window on local layers (0 <= pos_q - pos_k < windowSize), and padding of heads that keep
 * fewer slots than the layer's widest head. A query always sees itself, so no row is ever
 * fully masked.
 */
import { SpgError } from "../errors.js";
import type { ForwardOutput, GptNeoConfig, LayerPast } from "../model/types.js";
import type { HeadCache, KvCache, LaidOutBuffers, LayerCache } from "./cache.js";

/**
 * The additive bias for a key a query must not read. Finite (not -inf, not float32's
 * lowest) so that adding a score can neither overflow to -inf nor give NaN, and large
 * enough that exp(score + bias - max) is exactly 0 in float32 for any real score.
 */
export const MASKED_ATTENTION_BIAS = -1e9;

/** The layer's keys/values of one head [q, headDim] cut out of a [heads, q, headDim] tensor. */
/**
 * One head's rows of a [heads, rows, headDim] output, as a view: the output's buffer is the
 * forward pass's own (onnxruntime's copy, or a chunked prefill's laid-out cache) and nothing
 * else writes it, so the cache need not hold a second copy (125m shape, 320 tokens: 24.8 MiB
 * for a whole prefill).
 */
function headRows(tensor: Float32Array, head: number, rows: number, headDim: number): Float32Array {
  const size = rows * headDim;
  return tensor.subarray(head * size, (head + 1) * size);
}

function checkOutputShape(
  shape: { numLayers: number; numHeads: number; headDim: number },
  output: ForwardOutput,
  tokens: number,
): void {
  const expected = shape.numHeads * tokens * shape.headDim;
  if (output.presentKeys.length !== shape.numLayers || output.presentValues.length !== shape.numLayers) {
    throw new SpgError(
      "E_KV_LAYOUT",
      `forward output has ${output.presentKeys.length} layers of keys, the cache has ${shape.numLayers}`,
      { fix: "pass the output of a forward pass over this model" },
    );
  }
  for (let layer = 0; layer < shape.numLayers; layer++) {
    if (output.presentKeys[layer].length !== expected || output.presentValues[layer].length !== expected) {
      throw new SpgError(
        "E_KV_LAYOUT",
        `layer ${layer}: present keys/values hold ${output.presentKeys[layer].length} values, expected heads*tokens*headDim = ${expected}`,
        { fix: "pass one position per token of the forward pass" },
      );
    }
  }
}

/** The full (uncompressed) cache after a prefill over tokens at `positions`. */
export function cacheFromPrefill(
  config: GptNeoConfig,
  output: ForwardOutput,
  positions: readonly number[],
): KvCache {
  const tokens = positions.length;
  checkOutputShape(config, output, tokens);
  const layers = output.presentKeys.map((keys, layer) => ({
    heads: Array.from({ length: config.numHeads }, (_, head) => ({
      positions: Int32Array.from(positions),
      keys: headRows(keys, head, tokens, config.headDim),
      values: headRows(output.presentValues[layer], head, tokens, config.headDim),
    })),
  }));
  return { headDim: config.headDim, layers };
}

function concat<T extends Float32Array | Int32Array>(a: T, b: T): T {
  const out = new (a.constructor as new (length: number) => T)(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** A new cache with the forward pass's new tokens appended, uncompressed, to every head. */
export function appendTokens(cache: KvCache, output: ForwardOutput, positions: readonly number[]): KvCache {
  const tokens = positions.length;
  const headDim = cache.headDim;
  const heads = cache.layers[0]?.heads.length ?? 0;
  checkOutputShape({ numLayers: cache.layers.length, numHeads: heads, headDim }, output, tokens);
  const newPositions = Int32Array.from(positions);
  const layers = cache.layers.map((layer, l) => ({
    heads: layer.heads.map(
      (head, h): HeadCache => ({
        positions: concat(head.positions, newPositions),
        keys: concat(head.keys, headRows(output.presentKeys[l], h, tokens, headDim)),
        values: concat(head.values, headRows(output.presentValues[l], h, tokens, headDim)),
      }),
    ),
  }));
  return { headDim, layers };
}

/** Whether a query at `queryPos` may read a key at `keyPos` on a layer of this kind. */
export function keyVisible(
  kind: "global" | "local",
  windowSize: number,
  queryPos: number,
  keyPos: number,
): boolean {
  const distance = queryPos - keyPos;
  if (distance < 0) return false;
  return kind === "global" || distance < windowSize;
}

/**
 * Sets bias[row + s] = 0 for each of the first `count` key positions a query at `queryPos`
 * may read (keyVisible, inlined: this runs for every query row, head and slot of a pass).
 */
export function openVisibleKeys(
  bias: Float32Array,
  row: number,
  kind: "global" | "local",
  windowSize: number,
  queryPos: number,
  keyPositions: ArrayLike<number>,
  count: number,
): void {
  const limit = kind === "global" ? Number.POSITIVE_INFINITY : windowSize;
  for (let s = 0; s < count; s++) {
    const distance = queryPos - keyPositions[s];
    if (distance >= 0 && distance < limit) bias[row + s] = 0;
  }
}

/** Whether two sets of heads hold the same slots (counts, then positions, head by head). */
export function sameSlots(
  a: readonly ArrayLike<number>[],
  aCounts: readonly number[],
  b: readonly ArrayLike<number>[],
  bCounts: readonly number[],
): boolean {
  if (a.length !== b.length) return false;
  for (let h = 0; h < a.length; h++) {
    if (aCounts[h] !== bCounts[h]) return false;
    if (a[h] === b[h]) continue;
    for (let s = 0; s < aCounts[h]; s++) if (a[h][s] !== b[h][s]) return false;
  }
  return true;
}

/**
 * Builds the attention bias of one forward pass, layer by layer, sharing what can be shared:
 * when every head of a layer reads the same slots the bias is one head's [1, q, slots + q]
 * (the graph broadcasts it), and layers of the same kind over the same slots get the same
 * array. A 1024-token prefill otherwise writes heads x layers x 1024^2 floats of bias.
 */
export class AttentionBiases {
  private readonly built: {
    kind: "global" | "local";
    positions: readonly ArrayLike<number>[];
    counts: readonly number[];
    slots: number;
    bias: Float32Array;
  }[] = [];

  /** One instance per forward pass: every bias it builds is for these query positions. */
  constructor(
    private readonly windowSize: number,
    private readonly queryPositions: readonly number[],
  ) {}

  /** Bias for heads whose first counts[h] slots hold keys at positions[h], padded to `slots`. */
  get(
    kind: "global" | "local",
    positions: readonly ArrayLike<number>[],
    counts: readonly number[],
    slots: number,
  ): Float32Array {
    const reusable = this.built.find(
      (entry) =>
        entry.kind === kind &&
        entry.slots === slots &&
        sameSlots(entry.positions, entry.counts, positions, counts),
    );
    if (reusable) return reusable.bias;
    const shared = positions.every((_, h) =>
      sameSlots([positions[0]], [counts[0]], [positions[h]], [counts[h]]),
    );
    const bias = this.build(kind, positions, counts, slots, shared);
    this.built.push({ kind, positions, counts, slots, bias });
    return bias;
  }

  /**
   * The bias itself, for a caller that already knows whether every head holds the same slots
   * (`shared`: one [1, q, slots + q] bias) and keeps its own reuse across layers.
   */
  build(
    kind: "global" | "local",
    positions: readonly ArrayLike<number>[],
    counts: readonly number[],
    slots: number,
    shared: boolean,
  ): Float32Array {
    const queryPositions = this.queryPositions;
    const biasHeads = shared ? 1 : positions.length;
    const q = queryPositions.length;
    const total = slots + q;
    const bias = new Float32Array(biasHeads * q * total).fill(MASKED_ATTENTION_BIAS);
    for (let h = 0; h < biasHeads; h++) {
      for (let i = 0; i < q; i++) {
        const row = (h * q + i) * total;
        openVisibleKeys(bias, row, kind, this.windowSize, queryPositions[i], positions[h], counts[h]);
        openVisibleKeys(bias, row + slots, kind, this.windowSize, queryPositions[i], queryPositions, i + 1);
      }
    }
    return bias;
  }
}

/** A bias as [heads, q, total]: a shared [1, q, total] bias repeated per head, or a copy of a per-head one. */
export function perHeadBias(bias: Float32Array, heads: number, q: number, total: number): Float32Array {
  const out = new Float32Array(heads * q * total);
  if (bias.length === out.length) {
    out.set(bias);
    return out;
  }
  if (bias.length !== q * total) {
    throw new SpgError(
      "E_KV_LAYOUT",
      `a bias of ${bias.length} values is neither [heads, q, total] nor [1, q, total]`,
      {
        fix: "pass a bias built by pastInputs for these q and total",
      },
    );
  }
  for (let h = 0; h < heads; h++) out.set(bias, h * q * total);
  return out;
}

/** Slots of the layer's widest head. */
export function widestHead(layer: LayerCache): number {
  return Math.max(0, ...layer.heads.map((head) => head.positions.length));
}

/**
 * The buffers of the last laid-out cache its user declared done (PaddedCache.recycle), lent
 * to the next layouts (laidOutLayer, packHeads) zeroed instead of fresh: at the 125m shape a
 * fresh layout cost about twice the fp16 decoding written into it (page faults on new pages,
 * and the collection of the old ones). Only the last release is kept, so no more is held than
 * the cache that was live until then.
 */
const recycled: ArrayBuffer[] = [];

/** A zeroed Float32Array of `length`: a view at the start of the smallest recycled buffer that holds it, else new. */
export function zeroedFloats(length: number): Float32Array {
  const bytes = length * Float32Array.BYTES_PER_ELEMENT;
  let best = -1;
  for (let i = 0; i < recycled.length; i++) {
    const size = recycled[i].byteLength;
    if (size >= bytes && (best < 0 || size < recycled[best].byteLength)) best = i;
  }
  if (best < 0) return new Float32Array(length);
  const [buffer] = recycled.splice(best, 1);
  const out = new Float32Array(buffer, 0, length);
  out.fill(0);
  return out;
}

/** Lends these buffers (nothing may read or write them any more) to the next layouts, in place of the last ones lent. */
export function recycleFloats(buffers: readonly Float32Array[]): void {
  recycled.length = 0;
  for (const buffer of buffers) if (buffer.byteLength > 0) recycled.push(buffer.buffer as ArrayBuffer);
}

/**
 * Empty buffers for a layer whose heads keep `counts[h]` slots, laid out as the graph reads
 * them with room for `room` more tokens per head, and per head the views at the start of its
 * block: a decoder writes the rows there, and the padded cache takes the buffers over instead
 * of copying every head into a layout of its own.
 */
export function laidOutLayer(
  counts: readonly number[],
  headDim: number,
  room: number,
): { buffers: LaidOutBuffers; keys: Float32Array[]; values: Float32Array[] } {
  const capacity = Math.max(0, ...counts) + room;
  const block = capacity * headDim;
  const keys = zeroedFloats(counts.length * block);
  const values = zeroedFloats(counts.length * block);
  const views = (buffer: Float32Array) =>
    counts.map((count, h) => buffer.subarray(h * block, h * block + count * headDim));
  return { buffers: { capacity, keys, values }, keys: views(keys), values: views(values) };
}

/**
 * The layer's laid-out buffers (LayerCache.laidOut) when they hold exactly its heads at this
 * capacity (each head's keys and values a view at the start of its block), taken from the
 * layer so that a second layout copies instead of sharing buffers a decoder appends to; else
 * null.
 */
export function takeLaidOut(
  layer: LayerCache,
  config: Pick<GptNeoConfig, "numHeads" | "headDim">,
  capacity: number,
): LaidOutBuffers | null {
  const buffers = layer.laidOut;
  if (buffers === undefined || buffers.capacity !== capacity || layer.heads.length !== config.numHeads) {
    return null;
  }
  const block = capacity * config.headDim;
  const size = config.numHeads * block;
  const startsBlock = (view: Float32Array, buffer: Float32Array, h: number, rows: number) =>
    view.buffer === buffer.buffer &&
    view.byteOffset === buffer.byteOffset + h * block * Float32Array.BYTES_PER_ELEMENT &&
    view.length === rows * config.headDim;
  const exact =
    buffers.keys.length === size &&
    buffers.values.length === size &&
    layer.heads.every(
      (head, h) =>
        head.positions.length <= capacity &&
        startsBlock(head.keys, buffers.keys, h, head.positions.length) &&
        startsBlock(head.values, buffers.values, h, head.positions.length),
    );
  if (!exact) return null;
  layer.laidOut = undefined;
  return buffers;
}

/**
 * A layer's heads packed as the graph reads them: keys and values [heads, capacity, headDim],
 * each head's slots first, the rest zero (the bias masks them). capacity >= widestHead(layer).
 */
export function packHeads(
  layer: LayerCache,
  l: number,
  config: Pick<GptNeoConfig, "numHeads" | "headDim">,
  capacity: number,
): LayerPast {
  const { numHeads: heads, headDim } = config;
  if (layer.heads.length !== heads) {
    throw new SpgError("E_KV_LAYOUT", `layer ${l} has ${layer.heads.length} heads, config has ${heads}`, {
      fix: "build the cache from this model's forward pass",
    });
  }
  const keys = zeroedFloats(heads * capacity * headDim);
  const values = zeroedFloats(heads * capacity * headDim);
  layer.heads.forEach((head, h) => {
    const kept = head.positions.length;
    if (head.keys.length !== kept * headDim || head.values.length !== kept * headDim) {
      throw new SpgError(
        "E_KV_LAYOUT",
        `layer ${l} head ${h}: ${kept} positions but ${head.keys.length / headDim} key rows`,
        { fix: "keep positions, keys and values of a head the same length" },
      );
    }
    keys.set(head.keys, h * capacity * headDim);
    values.set(head.values, h * capacity * headDim);
  });
  return { slots: capacity, keys, values };
}

/**
 * Graph inputs for a forward pass over new tokens at `queryPositions` reading `cache`:
 * per layer, keys/values [heads, slots, headDim] padded to the layer's widest head, and the
 * bias [heads, q, slots + q] ([1, q, slots + q] when every head reads the same slots).
 */
export function pastInputs(
  cache: KvCache,
  config: GptNeoConfig,
  queryPositions: readonly number[],
): { past: LayerPast[]; attentionBias: Float32Array[] } {
  if (cache.layers.length !== config.numLayers) {
    throw new SpgError(
      "E_KV_LAYOUT",
      `cache has ${cache.layers.length} layers, config has ${config.numLayers}`,
      {
        fix: "build the cache from this model's forward pass",
      },
    );
  }
  for (let i = 1; i < queryPositions.length; i++) {
    if (queryPositions[i] <= queryPositions[i - 1]) {
      throw new SpgError(
        "E_KV_LAYOUT",
        `query positions must increase strictly, got ${queryPositions.join(",")}`,
        {
          fix: "pass the new tokens' true positions in order",
        },
      );
    }
  }
  const past: LayerPast[] = [];
  const attentionBias: Float32Array[] = [];
  const biases = new AttentionBiases(config.windowSize, queryPositions);
  cache.layers.forEach((layer, l) => {
    const kind = config.attentionLayers[l];
    const slots = widestHead(layer);
    past.push(packHeads(layer, l, config, slots));
    const positions = layer.heads.map((head) => head.positions);
    const counts = positions.map((p) => p.length);
    attentionBias.push(biases.get(kind, positions, counts, slots));
  });
  return { past, attentionBias };
}

/** An empty cache (no slots) for a model: the past of a prefill. */
export function emptyCache(config: GptNeoConfig): KvCache {
  return {
    headDim: config.headDim,
    layers: Array.from({ length: config.numLayers }, () => ({
      heads: Array.from({ length: config.numHeads }, () => ({
        positions: new Int32Array(0),
        keys: new Float32Array(0),
        values: new Float32Array(0),
      })),
    })),
  };
}
