/**
 * Plumbing every method shares: params validation against the method's schema, checks that
 * the cache and attention statistics match the model config, and the storage of a cache
 * whose kept slots stay at the baseline dtype.
 */
import type { ErrorObject } from "ajv";
import { SpgError } from "../../errors.js";
import { ByteReader, ByteWriter } from "../../numeric/bytes.js";
import { type BaselineDtype, dtypeBits, dtypeBytes } from "../../numeric/dtype.js";
import type { KvCache, LayerCache } from "../cache.js";
import {
  assembleCompressed,
  type CacheShape,
  type CompressedCache,
  cacheShape,
  countBits,
  type EncodedLayer,
  headFromRows,
  readRowsInto,
  readSubset,
  subsetEncodingBytes,
  writeRows,
  writeSubset,
} from "../compressed.js";
import { laidOutLayer } from "../layout.js";
import { readableMask } from "../select.js";
import { paramsValidators } from "./params-validators.js";
import type { MethodContext } from "./types.js";

/** Precompiled at build where the schema is the one compiled (params-validators.ts), else compiled once. */
const validatorFor = paramsValidators();

function describeError(error: ErrorObject): { field: string; message: string } {
  const path = error.instancePath.replace(/^\//, "").replaceAll("/", ".");
  if (error.keyword === "required") {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    const field = path === "" ? missing : `${path}.${missing}`;
    return { field, message: `is required` };
  }
  if (error.keyword === "additionalProperties") {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return { field: path === "" ? extra : `${path}.${extra}`, message: "is not a known parameter" };
  }
  return { field: path, message: error.message ?? error.keyword };
}

/** Validates params against the schema; fails naming the method and the field. */
export function validateParams<T>(kind: string, schema: Record<string, unknown>, params: unknown): T {
  const { validate } = validatorFor(kind, schema);
  if (!validate(params)) {
    const { field, message } = describeError(validate.errors![0]);
    throw paramError(kind, field, `${message}`);
  }
  // a private copy: decoders close over params, and a caller may reuse its object
  return structuredClone(params) as T;
}

/** The fix for a params field with no more specific advice. */
export function paramFix(kind: string, field: string): string {
  return `set params.${field} in the method's config (see configs/methods/${kind}.yaml)`;
}

export function paramError(kind: string, field: string, message: string, fix?: string): SpgError {
  return new SpgError("E_METHOD_PARAM", `method ${kind}: params.${field} ${message}`, {
    field: `params.${field}`,
    fix: fix ?? paramFix(kind, field),
  });
}

/** The cache's free layout, checked against the model config. */
export function checkedShape(kind: string, cache: KvCache, context: MethodContext): CacheShape {
  const { config } = context;
  const shape = cacheShape(cache);
  const fail = (what: string) =>
    new SpgError("E_METHOD_INPUT", `method ${kind}: ${what}`, {
      fix: "pass the cache and attention of this model's prefill",
    });
  if (shape.layers.length !== config.numLayers) {
    throw fail(`cache has ${shape.layers.length} layers, model ${config.numLayers}`);
  }
  if (shape.headDim !== config.headDim) throw fail(`cache headDim ${shape.headDim}, model ${config.headDim}`);
  if (config.attentionLayers.length !== config.numLayers)
    throw fail("config attentionLayers length != numLayers");
  shape.layers.forEach((layer, l) => {
    if (layer.numHeads !== config.numHeads) throw fail(`layer ${l} has ${layer.numHeads} heads`);
  });
  return shape;
}

/** Checks the prefill statistics a scoring method reads: one [heads, rows, slots] array per layer. */
export function checkStatistics(
  kind: string,
  shape: CacheShape,
  context: MethodContext,
  need: "windowSums" | "columnSums" | "keyNorms" | "valueNorms",
): void {
  const { attention, norms } = context;
  const sources: Record<typeof need, [ArrayLike<number>[], number]> = {
    windowSums: [attention.windowSums, attention.rows],
    columnSums: [attention.columnSums, 1],
    keyNorms: [norms.keys, 1],
    valueNorms: [norms.values, 1],
  };
  const [arrays, rows] = sources[need];
  const fail = (what: string) =>
    new SpgError("E_METHOD_INPUT", `method ${kind}: prefill statistics ${need}: ${what}`, {
      fix: "run the prefill with its statistics outputs over the context tokens",
    });
  if (!Array.isArray(arrays) || arrays.length !== shape.layers.length)
    throw fail("one array per layer expected");
  shape.layers.forEach((layer, l) => {
    const expected = layer.numHeads * rows * layer.positions.length;
    if (arrays[l].length !== expected)
      throw fail(`layer ${l} has ${arrays[l].length} values, expected ${expected}`);
  });
}

/** Per layer: slots any future query can read (all on global layers, or when trimming is off). */
export function eligibleSlots(shape: CacheShape, context: MethodContext, trimLocal: boolean): Uint8Array[] {
  return shape.layers.map((layer, l) =>
    readableMask(
      layer.positions,
      trimLocal && context.config.attentionLayers[l] === "local",
      context.config.windowSize,
    ),
  );
}

/** Rows (of `dim` values) of a [slots, dim] matrix, gathered contiguously in the order given. */
export function gatherRows(matrix: Float32Array, rows: Int32Array, dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  // runs of consecutive rows (a window trim keeps one run) are one copy each; elsewhere an
  // element loop, as a subarray view per row was one allocation per row
  for (let i = 0, o = 0; i < rows.length; ) {
    let end = i + 1;
    while (end < rows.length && rows[end] === rows[end - 1] + 1) end++;
    const from = rows[i] * dim;
    const count = (end - i) * dim;
    if (end - i > 1) out.set(matrix.subarray(from, from + count), o);
    else for (let c = 0; c < dim; c++) out[o + c] = matrix[from + c];
    o += count;
    i = end;
  }
  return out;
}

/** Indices where mask is 1. */
export function maskIndices(mask: Uint8Array): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) out.push(i);
  return Int32Array.from(out);
}

/**
 * One layer whose kept slots are stored at the baseline dtype: per head, the kept set
 * (unless the decoder derives it from params: `storeKept` false), keys rows, values rows.
 */
export function encodeKeptLayer(
  layer: LayerCache,
  kept: Int32Array[],
  headDim: number,
  dtype: BaselineDtype,
  storeKept: boolean,
): EncodedLayer {
  let size = 0;
  layer.heads.forEach((head, h) => {
    if (storeKept) size += subsetEncodingBytes(kept[h].length, head.positions.length).bytes;
    size += 2 * kept[h].length * headDim * dtypeBytes(dtype);
  });
  const writer = new ByteWriter(size);
  const histogram: Record<string, number> = {};
  let tokensKept = 0;
  layer.heads.forEach((head, h) => {
    if (storeKept) writeSubset(writer, kept[h], head.positions.length);
    writeRows(writer, head.keys, kept[h], headDim, dtype);
    writeRows(writer, head.values, kept[h], headDim, dtype);
    tokensKept += kept[h].length;
    countBits(histogram, dtypeBits(dtype), 2 * kept[h].length * headDim);
  });
  return {
    serialized: writer.finish(),
    tokensKept,
    headsFullPrecision: layer.heads.length,
    bitsHistogram: histogram,
  };
}

/**
 * Inverse of encodeKeptLayer; `derivedKept` is given when the kept set was not stored. With
 * `layoutRoom`, the rows are decoded straight into the graph's layout (LayerCache.laidOut):
 * the kept sets are read first, as the widest head sizes the buffers.
 */
export function decodeKeptLayer(
  bytes: Uint8Array,
  positions: Int32Array,
  numHeads: number,
  headDim: number,
  dtype: BaselineDtype,
  derivedKept: Int32Array[] | null,
  layoutRoom?: number,
): LayerCache {
  const reader = new ByteReader(bytes);
  const kept: Int32Array[] = [];
  const rows: Uint8Array[] = [];
  const rowBytes = headDim * dtypeBytes(dtype);
  for (let h = 0; h < numHeads; h++) {
    kept.push(derivedKept === null ? readSubset(reader, positions.length) : derivedKept[h]);
    rows.push(reader.bytes(2 * kept[h].length * rowBytes));
  }
  reader.end();
  const laid =
    layoutRoom === undefined
      ? null
      : laidOutLayer(
          kept.map((k) => k.length),
          headDim,
          layoutRoom,
        );
  const heads = kept.map((slots, h) => {
    const headReader = new ByteReader(rows[h]);
    const elements = slots.length * headDim;
    const keys = laid === null ? new Float32Array(elements) : laid.keys[h];
    const values = laid === null ? new Float32Array(elements) : laid.values[h];
    readRowsInto(headReader, keys, 0, elements, dtype);
    readRowsInto(headReader, values, 0, elements, dtype);
    headReader.end();
    return headFromRows(positions, slots, keys, values);
  });
  return laid === null ? { heads } : { heads, laidOut: laid.buffers };
}

/** A cache evicted to the given kept slots (stored in the bytes), kept slots at the baseline dtype. */
export function storeEvicted(
  kind: string,
  cache: KvCache,
  shape: CacheShape,
  dtype: BaselineDtype,
  kept: Int32Array[][],
  decode: { sparseTopK?: number } = {},
): CompressedCache {
  const encoded = cache.layers.map((layer, l) => encodeKeptLayer(layer, kept[l], shape.headDim, dtype, true));
  return assembleCompressed(
    kind,
    shape,
    encoded,
    (bytes, l, s, room) =>
      decodeKeptLayer(bytes, s.layers[l].positions, s.layers[l].numHeads, s.headDim, dtype, null, room),
    decode,
  );
}

/**
 * A cache whose kept slots the decoder derives from params and the free layout
 * (`keptFor(layer)`), so no indices are stored: full, window-trim, streaming.
 */
export function storeDerived(
  kind: string,
  cache: KvCache,
  shape: CacheShape,
  dtype: BaselineDtype,
  keptFor: (layer: number, shape: CacheShape) => Int32Array,
): CompressedCache {
  const perHead = (l: number, s: CacheShape) => {
    const kept = keptFor(l, s);
    return Array.from({ length: s.layers[l].numHeads }, () => kept);
  };
  const encoded = cache.layers.map((layer, l) =>
    encodeKeptLayer(layer, perHead(l, shape), shape.headDim, dtype, false),
  );
  return assembleCompressed(kind, shape, encoded, (bytes, l, s, room) =>
    decodeKeptLayer(
      bytes,
      s.layers[l].positions,
      s.layers[l].numHeads,
      s.headDim,
      dtype,
      perHead(l, s),
      room,
    ),
  );
}

/** The params schema of a method without params. */
export const noParamsSchema = {
  type: "object",
  additionalProperties: false,
  properties: {},
} as const;

/** JSON Schema pieces shared by method schemas. */
export const schemaParts = {
  keepRatio: {
    type: "number",
    exclusiveMinimum: 0,
    maximum: 1,
    description: "Fraction of each head's context slots kept (protected slots included).",
  },
  tokens: { type: "integer", minimum: 0 },
  localWindowTrim: {
    type: "boolean",
    description:
      "Drop, on local layers, the slots no future query can read (lossless) before the budget applies.",
  },
  selection: {
    enum: ["per-head", "per-layer"],
    description: "Top-k per head, or over all heads of a layer (per-head counts then vary).",
  },
} as const;
