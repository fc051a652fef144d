/**
 * `quant` (KIVI-style): keys quantized per channel (groups of `groupSize` consecutive
 * tokens share a scale and zero point per channel, because key outliers live in fixed
 * channels), values per token (groups of `groupSize` consecutive channels), asymmetric,
 * at keyBits/valueBits; the last `residualTokens` slots stay at the baseline dtype.
 * Per head: key group metadata and codes, value group metadata and codes, then residual
 * key and value rows. Which slots are kept follows from params, so nothing is indexed.
 */

import { ByteReader, ByteWriter } from "../../numeric/bytes.js";
import { type BaselineDtype, dtypeBits, dtypeBytes } from "../../numeric/dtype.js";
import {
  channelGroups,
  decodeGroups,
  encodeGroups,
  encodeTransposedGroups,
  groupsBytes,
  type QuantGroups,
  tokenGroups,
} from "../../numeric/group-quant.js";
import type { HeadCache, KvCache } from "../cache.js";
import {
  assembleCompressed,
  type CacheShape,
  type CompressedCache,
  countBits,
  type EncodedLayer,
  headFromRows,
  readRowsInto,
  writeRows,
} from "../compressed.js";
import { laidOutLayer } from "../layout.js";
import { defineMethod } from "./define.js";
import { eligibleSlots, gatherRows, maskIndices, schemaParts } from "./shared.js";
import type { MethodContext } from "./types.js";

export interface QuantParams {
  keyBits: number;
  valueBits: number;
  groupSize: number;
  residualTokens: number;
  localWindowTrim: boolean;
}

export const paramsSchema = {
  type: "object",
  additionalProperties: false,
  required: ["keyBits", "valueBits", "groupSize", "residualTokens", "localWindowTrim"],
  properties: {
    keyBits: { enum: [2, 4, 8] },
    valueBits: { enum: [2, 4, 8] },
    groupSize: {
      type: "integer",
      minimum: 1,
      description: "Elements sharing one fp16 scale and zero point.",
    },
    residualTokens: { ...schemaParts.tokens, description: "Most recent slots left at the baseline dtype." },
    localWindowTrim: schemaParts.localWindowTrim,
  },
} as const;

function split(kept: Int32Array, residual: number): { quantized: Int32Array; recent: Int32Array } {
  const cut = Math.max(0, kept.length - residual);
  return { quantized: kept.subarray(0, cut), recent: kept.subarray(cut) };
}

interface HeadGroups {
  /** Key groups over the transposed [dim, tokens] block, where the encoder reads them. */
  keys: QuantGroups;
  /** The same key groups over the [tokens, dim] block, where the decoder writes them. */
  keysByToken: QuantGroups;
  values: QuantGroups;
}

/**
 * Key and value groups by params, head size and quantized token count: the same for every head
 * of a layer and for every sample of a run, so built once per run (building them, three
 * member lists of the cache's size, cost as much as a third of the encoder). A run has a few
 * distinct keys (one token count per layer kind); past MAX_GROUP_LAYOUTS the oldest go.
 */
const MAX_GROUP_LAYOUTS = 16;
const builtGroups = new Map<string, HeadGroups>();

function groupLayouts(p: QuantParams, dim: number): (tokens: number) => HeadGroups {
  return (tokens) => {
    const key = `${p.keyBits} ${p.valueBits} ${p.groupSize} ${dim} ${tokens}`;
    let groups = builtGroups.get(key);
    if (groups === undefined) {
      groups = {
        // KIVI's per-channel key groups (channelGroups over [tokens, dim]) are runs of tokens in
        // the transposed [dim, tokens] block: the same groups, members and code order, read
        // contiguously instead of a stride of dim apart
        keys: tokenGroups(dim, tokens, p.groupSize, () => p.keyBits),
        keysByToken: channelGroups(tokens, dim, p.groupSize, p.keyBits),
        values: tokenGroups(tokens, dim, p.groupSize, () => p.valueBits),
      };
      if (builtGroups.size >= MAX_GROUP_LAYOUTS) {
        const oldest = builtGroups.keys().next();
        if (!oldest.done) builtGroups.delete(oldest.value);
      }
      builtGroups.set(key, groups);
    }
    return groups;
  };
}

function encodeHead(
  writer: ByteWriter,
  head: HeadCache,
  kept: Int32Array,
  dim: number,
  p: QuantParams,
  dtype: BaselineDtype,
  histogram: Record<string, number>,
  groupsFor: (tokens: number) => HeadGroups,
): void {
  const { quantized, recent } = split(kept, p.residualTokens);
  const tokens = quantized.length;
  const groups = groupsFor(tokens);
  encodeTransposedGroups(writer, head.keys, quantized, dim, groups.keys);
  encodeGroups(writer, gatherRows(head.values, quantized, dim), groups.values);
  writeRows(writer, head.keys, recent, dim, dtype);
  writeRows(writer, head.values, recent, dim, dtype);
  countBits(histogram, p.keyBits, tokens * dim);
  countBits(histogram, p.valueBits, tokens * dim);
  countBits(histogram, dtypeBits(dtype), 2 * recent.length * dim);
}

function decodeHead(
  reader: ByteReader,
  positions: Int32Array,
  kept: Int32Array,
  dim: number,
  p: QuantParams,
  dtype: BaselineDtype,
  groupsFor: (tokens: number) => HeadGroups,
  into: { keys: Float32Array; values: Float32Array } | null,
): HeadCache {
  const { quantized, recent } = split(kept, p.residualTokens);
  const tokens = quantized.length;
  const keys = into?.keys ?? new Float32Array(kept.length * dim);
  const values = into?.values ?? new Float32Array(kept.length * dim);
  const groups = groupsFor(tokens);
  decodeGroups(reader, keys, groups.keysByToken);
  decodeGroups(reader, values, groups.values);
  readRowsInto(reader, keys, tokens * dim, recent.length * dim, dtype);
  readRowsInto(reader, values, tokens * dim, recent.length * dim, dtype);
  return headFromRows(positions, kept, keys, values);
}

export const quantMethod = defineMethod<QuantParams>({
  kind: "quant",
  paramsSchema,
  compress: compressQuant,
});

function compressQuant(
  cache: KvCache,
  context: MethodContext,
  p: QuantParams,
  shape: CacheShape,
): CompressedCache {
  const dtype = context.baselineDtype;
  const kept = eligibleSlots(shape, context, p.localWindowTrim).map(maskIndices);
  const groupsFor = groupLayouts(p, shape.headDim);
  const encoded: EncodedLayer[] = cache.layers.map((layer, l) => {
    const { quantized, recent } = split(kept[l], p.residualTokens);
    const groups = groupsFor(quantized.length);
    const headBytes =
      groupsBytes(groups.keys) +
      groupsBytes(groups.values) +
      2 * recent.length * shape.headDim * dtypeBytes(dtype);
    const writer = new ByteWriter(layer.heads.length * headBytes);
    const histogram: Record<string, number> = {};
    for (const head of layer.heads)
      encodeHead(writer, head, kept[l], shape.headDim, p, dtype, histogram, groupsFor);
    const quantizedSlots = quantized.length;
    return {
      serialized: writer.finish(),
      tokensKept: kept[l].length * layer.heads.length,
      headsFullPrecision: quantizedSlots === 0 ? layer.heads.length : 0,
      bitsHistogram: histogram,
    };
  });
  return assembleCompressed("quant", shape, encoded, (bytes, l, s, room) => {
    const reader = new ByteReader(bytes);
    const numHeads = s.layers[l].numHeads;
    // every head keeps the same slots: with the decoder's room, rows go straight into the
    // graph's layout (LayerCache.laidOut)
    const laid =
      room === undefined
        ? null
        : laidOutLayer(new Array<number>(numHeads).fill(kept[l].length), s.headDim, room);
    const heads = Array.from({ length: numHeads }, (_, h) =>
      decodeHead(
        reader,
        s.layers[l].positions,
        kept[l],
        s.headDim,
        p,
        dtype,
        groupsFor,
        laid === null ? null : { keys: laid.keys[h], values: laid.values[h] },
      ),
    );
    reader.end();
    return laid === null ? { heads } : { heads, laidOut: laid.buffers };
  });
}
