/**
 * A cache laid out once the way the graph reads it ([heads, capacity, headDim] per layer),
 * with room for a number of further tokens per head, so decode steps append in place.
 * pastInputs + appendTokens build a new padded copy of the whole cache on every step, which
 * made greedy generation cost more in copies than in the model. Slots not yet written are
 * masked by the attention bias, exactly like the padding of heads that keep fewer slots.
 */
import { SpgError } from "../errors.js";
import type { ForwardOutput, GptNeoConfig, LayerPast } from "../model/types.js";
import type { KvCache } from "./cache.js";
import { AttentionBiases, packHeads, recycleFloats, sameSlots, takeLaidOut, widestHead } from "./layout.js";

interface PaddedLayer {
  /** Slots per head: the widest head's slots at creation plus the room asked for. */
  capacity: number;
  keys: Float32Array;
  values: Float32Array;
  /** Per head, true positions of the written slots (the first `filled[h]` entries). */
  positions: Int32Array[];
  filled: number[];
}

/**
 * Which layers can share an attention bias, found once: appends write the same positions to
 * every head of every layer, so heads or layers holding the same slots keep doing so, and
 * a pass need not compare slot lists again.
 */
interface BiasSharing {
  /** Per layer: every head holds the same slots (one bias row set for all heads). */
  sharedHeads: boolean[];
  /** Per layer: an earlier layer of the same kind with the same slots, or -1. */
  sameAs: number[];
}

function biasSharing(layers: PaddedLayer[], config: GptNeoConfig): BiasSharing {
  const sharedHeads = layers.map((layer) =>
    layer.positions.every((positions, h) =>
      sameSlots([layer.positions[0]], [layer.filled[0]], [positions], [layer.filled[h]]),
    ),
  );
  const sameAs = layers.map((layer, l) =>
    layers.findIndex(
      (other, earlier) =>
        earlier < l &&
        config.attentionLayers[earlier] === config.attentionLayers[l] &&
        other.capacity === layer.capacity &&
        sameSlots(other.positions, other.filled, layer.positions, layer.filled),
    ),
  );
  return { sharedHeads, sameAs };
}

export class PaddedCache {
  private readonly sharing: BiasSharing;
  private recycled = false;

  private constructor(
    private readonly config: GptNeoConfig,
    private readonly layers: PaddedLayer[],
  ) {
    this.sharing = biasSharing(layers, config);
  }

  private checkLive(): void {
    if (this.recycled) {
      throw new SpgError(
        "E_KV_LAYOUT",
        "the laid-out cache was recycled, its buffers lent to other layouts",
        {
          fix: "recycle a padded cache only once nothing reads or appends to it",
        },
      );
    }
  }

  /**
   * Lends the buffers to the next layouts (layout.ts zeroedFloats): only once nothing reads
   * this cache any more, nor the cache it was laid out from when it took that one's buffers over.
   */
  recycle(): void {
    this.checkLive();
    this.recycled = true;
    recycleFloats(this.layers.flatMap((layer) => [layer.keys, layer.values]));
  }

  /** Lays `cache` out with room for `extraTokens` more tokens in every head. */
  static from(cache: KvCache, config: GptNeoConfig, extraTokens: number): PaddedCache {
    if (!Number.isInteger(extraTokens) || extraTokens < 0) {
      throw new SpgError("E_KV_LAYOUT", `room for ${extraTokens} tokens is not a count`, {
        fix: "pass the number of tokens the decoder will append",
      });
    }
    if (cache.layers.length !== config.numLayers || cache.headDim !== config.headDim) {
      throw new SpgError(
        "E_KV_LAYOUT",
        `cache has ${cache.layers.length} layers of head size ${cache.headDim}, the config ${config.numLayers} of ${config.headDim}`,
        { fix: "build the cache from this model's forward pass" },
      );
    }
    // Buffers a decoder already wrote in this layout are taken over; otherwise each head is
    // copied once, straight into the layout the graph reads.
    const layers = cache.layers.map((layer, l): PaddedLayer => {
      const capacity = widestHead(layer) + extraTokens;
      const { keys, values } = takeLaidOut(layer, config, capacity) ?? packHeads(layer, l, config, capacity);
      return {
        capacity,
        keys,
        values,
        positions: layer.heads.map((head) => {
          const positions = new Int32Array(capacity);
          positions.set(head.positions);
          return positions;
        }),
        filled: layer.heads.map((head) => head.positions.length),
      };
    });
    return new PaddedCache(config, layers);
  }

  /**
   * Bytes of the past keys and values the graph reads: every layer's buffers, room included
   * (laid out once, so the last decode step, with the most cached slots, reads exactly these).
   */
  get readBytes(): number {
    return this.layers.reduce((total, layer) => total + layer.keys.byteLength + layer.values.byteLength, 0);
  }

  /** Graph inputs for new tokens at `queryPositions`: the buffers themselves, and the bias. */
  inputs(queryPositions: readonly number[]): { past: LayerPast[]; attentionBias: Float32Array[] } {
    this.checkLive();
    const biases = new AttentionBiases(this.config.windowSize, queryPositions);
    const past: LayerPast[] = [];
    const attentionBias: Float32Array[] = [];
    const { sharedHeads, sameAs } = this.sharing;
    this.layers.forEach((layer, l) => {
      past.push({ slots: layer.capacity, keys: layer.keys, values: layer.values });
      attentionBias.push(
        sameAs[l] >= 0
          ? attentionBias[sameAs[l]]
          : biases.build(
              this.config.attentionLayers[l],
              layer.positions,
              layer.filled,
              layer.capacity,
              sharedHeads[l],
            ),
      );
    });
    return { past, attentionBias };
  }

  /** Writes a forward pass's new keys/values (run with inputs(positions)) into the free slots. */
  append(output: ForwardOutput, positions: readonly number[]): void {
    this.checkLive();
    const q = positions.length;
    const { numHeads, headDim } = this.config;
    this.layers.forEach((layer, l) => {
      const keys = output.presentKeys[l];
      const values = output.presentValues[l];
      if (keys.length !== numHeads * q * headDim || values.length !== numHeads * q * headDim) {
        throw new SpgError(
          "E_KV_LAYOUT",
          `layer ${l}: present keys/values hold ${keys.length} values, expected heads*tokens*headDim = ${numHeads * q * headDim}`,
          { fix: "pass the output of the forward pass run on these positions" },
        );
      }
      for (let h = 0; h < numHeads; h++) {
        const at = layer.filled[h];
        if (at + q > layer.capacity) {
          throw new SpgError(
            "E_KV_LAYOUT",
            `layer ${l} head ${h}: no room for ${q} more tokens (${at} of ${layer.capacity} slots used)`,
            { fix: "create the padded cache with room for every token the decoder appends" },
          );
        }
        const source = h * q * headDim;
        const target = (h * layer.capacity + at) * headDim;
        layer.keys.set(keys.subarray(source, source + q * headDim), target);
        layer.values.set(values.subarray(source, source + q * headDim), target);
        layer.positions[h].set(positions, at);
        layer.filled[h] = at + q;
      }
    });
  }

  /**
   * Every layer's buffers, [heads, capacity, headDim], once every head's slots are all written
   * (a prefill in chunks fills exactly its context): the present keys and values of one pass
   * over those tokens, without a copy.
   */
  written(): { keys: Float32Array[]; values: Float32Array[] } {
    this.checkLive();
    this.layers.forEach((layer, l) => {
      const short = layer.filled.findIndex((filled) => filled !== layer.capacity);
      if (short >= 0) {
        throw new SpgError(
          "E_KV_LAYOUT",
          `layer ${l} head ${short}: ${layer.filled[short]} of ${layer.capacity} slots written`,
          { fix: "append every token the cache was laid out for before reading it whole" },
        );
      }
    });
    return { keys: this.layers.map((layer) => layer.keys), values: this.layers.map((layer) => layer.values) };
  }

  /** The written slots as a plain cache (what appendTokens would have built). */
  toCache(): KvCache {
    this.checkLive();
    const { headDim } = this.config;
    return {
      headDim,
      layers: this.layers.map((layer) => ({
        heads: layer.filled.map((filled, h) => {
          const start = h * layer.capacity * headDim;
          return {
            positions: layer.positions[h].slice(0, filled),
            keys: layer.keys.slice(start, start + filled * headDim),
            values: layer.values.slice(start, start + filled * headDim),
          };
        }),
      })),
    };
  }
}
