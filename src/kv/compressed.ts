/**
 * The compressed cache: what a method stores, byte for byte, and the way back.
 *
 * Each layer is one `serialized` byte string; its length IS the layer's byte count, and
 * `materialize()` rebuilds the cache the model reads by decoding those bytes (the floats
 * are not kept), so the reported bytes cannot leave anything out.
 *
 * What a decoder may know without storing it ("side information", free):
 *  - the model config (layers, heads, headDim, local/global layers, window size);
 *  - the method's params (they are in the run's config.json);
 *  - the uncompressed cache's layout: per layer the true positions of its slots (the
 *    context positions, identical for every head after a prefill).
 * Everything that depends on the data (kept slots, scales, zero points, codes, masks,
 * per-head choices, ranks) is in the bytes.
 */
import { SpgError } from "../errors.js";
import { indexBits, packBits, packedLength, unpackBits } from "../numeric/bitpack.js";
import { type ByteReader, type ByteWriter, fp16RangeError } from "../numeric/bytes.js";
import { type BaselineDtype, dtypeBytes } from "../numeric/dtype.js";
import { roundHalfInto } from "../numeric/fp16.js";
import type { HeadCache, KvCache, LayerCache } from "./cache.js";
import { laidOutLayer } from "./layout.js";

export interface CompressedLayer {
  /** == serialized.length */
  bytes: number;
  /** Slots kept, summed over heads. */
  tokensKept: number;
  /** Slots of the uncompressed layer, summed over heads. */
  tokensTotal: number;
  /** Heads whose kept keys and values are all stored at the baseline dtype. */
  headsFullPrecision: number;
  /**
   * Stored key/value numbers per bit width ("16", "4", ...). Low-rank factor entries count
   * as the numbers they are; scales, zero points, indices and masks are metadata, not counted.
   */
  bitsHistogram: Record<string, number>;
  /** The exact stored bytes of this layer. */
  serialized: Uint8Array;
}

export interface CompressedCache {
  /** Method kind that produced it. */
  method: string;
  layers: CompressedLayer[];
  /** Sum of layer bytes. */
  bytes: number;
  /** Decode-time behaviour that does not change stored bytes. */
  decode: { sparseTopK?: number };
  /**
   * Rebuilds the cache the model reads from the serialized bytes. `layoutRoom`: the tokens the
   * decoder will append; a method that can writes the rows straight into the graph's layout
   * with that room (LayerCache.laidOut), so laying the cache out copies nothing.
   */
  materialize(layoutRoom?: number): KvCache;
}

/** Layout of the uncompressed cache that a decoder knows for free. */
export interface CacheShape {
  headDim: number;
  layers: { numHeads: number; positions: Int32Array }[];
}

/** Every slot of every head, keys and values, at the baseline width. */
export function baselineBytes(cache: KvCache, dtype: BaselineDtype): number {
  let elements = 0;
  for (const layer of cache.layers) {
    for (const head of layer.heads) elements += 2 * head.positions.length * cache.headDim;
  }
  return elements * dtypeBytes(dtype);
}

/**
 * The cache as the baseline counts it: every value rounded to the baseline dtype (fp16 fails
 * on values it cannot hold, as the encoders do). Equal to what `full` stores and decodes,
 * without writing and hashing the bytes.
 */
export function atBaselineDtype(cache: KvCache, dtype: BaselineDtype, layoutRoom?: number): KvCache {
  const round = (src: Float32Array, out: Float32Array): Float32Array => {
    if (dtype === "fp32") {
      out.set(src);
      return out;
    }
    const unfit = roundHalfInto(src, out);
    if (unfit >= 0) throw fp16RangeError(src[unfit]);
    return out;
  };
  return {
    headDim: cache.headDim,
    layers: cache.layers.map((layer) => {
      // with layoutRoom, rounded straight into the graph's layout (LayerCache.laidOut)
      const rowsMatch = layer.heads.every(
        (head) =>
          head.keys.length === head.positions.length * cache.headDim &&
          head.values.length === head.keys.length,
      );
      const laid =
        layoutRoom === undefined || !rowsMatch
          ? null
          : laidOutLayer(
              layer.heads.map((head) => head.positions.length),
              cache.headDim,
              layoutRoom,
            );
      const heads = layer.heads.map((head, h) => ({
        positions: Int32Array.from(head.positions),
        keys: round(head.keys, laid === null ? new Float32Array(head.keys.length) : laid.keys[h]),
        values: round(head.values, laid === null ? new Float32Array(head.values.length) : laid.values[h]),
      }));
      return laid === null ? { heads } : { heads, laidOut: laid.buffers };
    }),
  };
}

/**
 * The free layout of a prefill cache. Fails when heads of a layer disagree on positions or
 * arrays have the wrong size: methods compress the cache a prefill left, nothing else.
 */
function samePositions(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function ascending(positions: ArrayLike<number>): boolean {
  for (let i = 1; i < positions.length; i++) if (positions[i] <= positions[i - 1]) return false;
  return true;
}

export function cacheShape(cache: KvCache): CacheShape {
  const { headDim } = cache;
  if (!Number.isInteger(headDim) || headDim < 1) {
    throw new SpgError("E_KV_CACHE", `cache headDim ${headDim} is not a positive integer`);
  }
  return {
    headDim,
    layers: cache.layers.map((layer, l) => {
      if (layer.heads.length === 0) throw new SpgError("E_KV_CACHE", `layer ${l} has no heads`);
      const positions = layer.heads[0].positions;
      layer.heads.forEach((head, h) => {
        if (!samePositions(head.positions, positions)) {
          throw new SpgError("E_KV_CACHE", `layer ${l} head ${h}: positions differ from head 0`, {
            fix: "compress the cache a prefill produced (every head holds the same positions)",
          });
        }
        const size = positions.length * headDim;
        if (head.keys.length !== size || head.values.length !== size) {
          throw new SpgError("E_KV_CACHE", `layer ${l} head ${h}: keys/values are not [slots, headDim]`);
        }
        // the other heads hold head 0's positions, so only head 0's order needs reading
        if (h === 0 && !ascending(positions)) {
          throw new SpgError("E_KV_CACHE", `layer ${l} head ${h}: positions are not ascending`);
        }
      });
      return { numHeads: layer.heads.length, positions: Int32Array.from(positions) };
    }),
  };
}

/** Writes the given rows of a [slots, headDim] matrix at the dtype. */
export function writeRows(
  writer: ByteWriter,
  matrix: Float32Array,
  rows: ArrayLike<number>,
  headDim: number,
  dtype: BaselineDtype,
): void {
  if (dtype === "fp16") {
    writer.halfRows(matrix, rows, headDim);
    return;
  }
  for (let i = 0; i < rows.length; i++) writer.floats(matrix, rows[i] * headDim, headDim);
}

/** Reads count rows of headDim elements at the dtype. */
export function readRows(
  reader: ByteReader,
  count: number,
  headDim: number,
  dtype: BaselineDtype,
): Float32Array {
  const out = new Float32Array(count * headDim);
  readRowsInto(reader, out, 0, out.length, dtype);
  return out;
}

/** Reads `elements` values at the dtype into out from `at` (no copy through a row array). */
export function readRowsInto(
  reader: ByteReader,
  out: Float32Array,
  at: number,
  elements: number,
  dtype: BaselineDtype,
): void {
  if (dtype === "fp16") reader.halves(elements, out, at);
  else reader.floats(elements, out, at);
}

/** Per-layer result of a method's encoder, before accounting. */
export interface EncodedLayer {
  serialized: Uint8Array;
  tokensKept: number;
  headsFullPrecision: number;
  bitsHistogram: Record<string, number>;
}

/** Adds n to histogram[bits]. */
export function countBits(histogram: Record<string, number>, bits: number, n: number): void {
  if (n === 0) return;
  const key = String(bits);
  histogram[key] = (histogram[key] ?? 0) + n;
}

/**
 * Wraps encoded layers into a CompressedCache whose materialize() decodes the bytes with
 * the method's own layer decoder.
 */
export function assembleCompressed(
  method: string,
  shape: CacheShape,
  encoded: EncodedLayer[],
  decodeLayer: (bytes: Uint8Array, layer: number, shape: CacheShape, layoutRoom?: number) => LayerCache,
  decode: { sparseTopK?: number } = {},
): CompressedCache {
  const layers: CompressedLayer[] = encoded.map((e, l) => ({
    bytes: e.serialized.length,
    tokensKept: e.tokensKept,
    tokensTotal: shape.layers[l].numHeads * shape.layers[l].positions.length,
    headsFullPrecision: e.headsFullPrecision,
    bitsHistogram: e.bitsHistogram,
    serialized: e.serialized,
  }));
  return {
    method,
    layers,
    bytes: layers.reduce((sum, layer) => sum + layer.bytes, 0),
    decode,
    materialize(layoutRoom?: number): KvCache {
      return {
        headDim: shape.headDim,
        layers: layers.map((layer, l) => {
          const decoded = decodeLayer(layer.serialized, l, shape, layoutRoom);
          if (decoded.heads.length !== shape.layers[l].numHeads) {
            throw new SpgError("E_KV_DECODE", `layer ${l}: decoded ${decoded.heads.length} heads`);
          }
          return decoded;
        }),
      };
    },
  };
}

/** A head holding the given rows of the original positions. */
export function headFromRows(
  positions: Int32Array,
  kept: ArrayLike<number>,
  keys: Float32Array,
  values: Float32Array,
): HeadCache {
  const pos = new Int32Array(kept.length);
  for (let i = 0; i < kept.length; i++) pos[i] = positions[kept[i]];
  return { positions: pos, keys, values };
}

/**
 * A subset of [0, total) (kept slots, surviving elements) stored the cheapest way:
 * tag 0 = all (1 byte), tag 1 = bitmask (1 + ceil(total/8) bytes), tag 2 = index list
 * (1 + 4-byte count + count indices at ceil(log2 total) bits, packed). Ties prefer the bitmask.
 */
export const SUBSET_ALL = 0;
export const SUBSET_BITMASK = 1;
export const SUBSET_INDICES = 2;

export function subsetEncodingBytes(count: number, total: number): { tag: number; bytes: number } {
  if (count === total) return { tag: SUBSET_ALL, bytes: 1 };
  const bitmask = 1 + Math.ceil(total / 8);
  const indices = 1 + 4 + packedLength(count, indexBits(total));
  return bitmask <= indices
    ? { tag: SUBSET_BITMASK, bytes: bitmask }
    : { tag: SUBSET_INDICES, bytes: indices };
}

/** Writes ascending, distinct members of [0, total). */
export function writeSubset(writer: ByteWriter, members: ArrayLike<number>, total: number): void {
  const { tag } = subsetEncodingBytes(members.length, total);
  writer.u8(tag);
  if (tag === SUBSET_ALL) return;
  if (tag === SUBSET_BITMASK) {
    const mask = new Uint8Array(Math.ceil(total / 8));
    for (let i = 0; i < members.length; i++) mask[members[i] >> 3] |= 1 << (members[i] & 7);
    writer.bytes(mask);
    return;
  }
  writer.u32(members.length);
  writer.bytes(packBits(members, indexBits(total)));
}

export function readSubset(reader: ByteReader, total: number): Int32Array {
  const members = readSubsetUnlessAll(reader, total);
  if (members !== null) return members;
  const all = new Int32Array(total);
  for (let i = 0; i < total; i++) all[i] = i;
  return all;
}

/** readSubset, but null for the "all" tag (a caller that needs no list of every index). */
export function readSubsetUnlessAll(reader: ByteReader, total: number): Int32Array | null {
  const tag = reader.u8();
  if (tag === SUBSET_ALL) return null;
  if (tag === SUBSET_BITMASK) {
    const mask = reader.bytes(Math.ceil(total / 8));
    const members: number[] = [];
    for (let i = 0; i < total; i++) if (mask[i >> 3] & (1 << (i & 7))) members.push(i);
    return Int32Array.from(members);
  }
  if (tag === SUBSET_INDICES) {
    const count = reader.u32();
    const bits = indexBits(total);
    const members = Int32Array.from(unpackBits(reader.bytes(packedLength(count, bits)), count, bits));
    for (let i = 0; i < count; i++) {
      if (members[i] >= total || (i > 0 && members[i] <= members[i - 1])) {
        throw new SpgError("E_KV_DECODE", "subset indices out of range or not ascending");
      }
    }
    return members;
  }
  throw new SpgError("E_KV_DECODE", `unknown subset encoding tag ${tag}`);
}
