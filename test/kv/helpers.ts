/** Small synthetic caches and prefill statistics for the KV method tests. */
import type { KvCache } from "../../src/kv/cache.js";
import type { MethodContext } from "../../src/kv/methods/types.js";
import type { GptNeoConfig } from "../../src/model/types.js";
import type { BaselineDtype } from "../../src/numeric/dtype.js";
import { cacheNorms, windowSumsFromRows } from "../helpers/statistics.js";

/** Deterministic uniform [0, 1) generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function testConfig(
  layers: ("global" | "local")[],
  numHeads: number,
  headDim: number,
  windowSize: number,
): GptNeoConfig {
  return {
    vocabSize: 50257,
    hiddenSize: numHeads * headDim,
    numLayers: layers.length,
    numHeads,
    headDim,
    attentionLayers: layers,
    windowSize,
    maxPositions: 2048,
    intermediateSize: 4 * numHeads * headDim,
    layerNormEpsilon: 1e-5,
    activation: "gelu_new",
    bosTokenId: undefined,
    eosTokenId: undefined,
  };
}

/** Cache of `slots` context positions 0..slots-1 with values uniform in [-scale, scale). */
export function randomCache(config: GptNeoConfig, slots: number, seed: number, scale = 2): KvCache {
  const next = rng(seed);
  const d = config.headDim;
  return {
    headDim: d,
    layers: config.attentionLayers.map(() => ({
      heads: Array.from({ length: config.numHeads }, () => ({
        positions: Int32Array.from({ length: slots }, (_, i) => i),
        keys: Float32Array.from({ length: slots * d }, () => (next() * 2 - 1) * scale),
        values: Float32Array.from({ length: slots * d }, () => (next() * 2 - 1) * scale),
      })),
    })),
  };
}

/**
 * Prefill statistics with designed scores: the attention of query row r (of the last `rows`)
 * is rowScore(l, h, r, s), summed into window sums as the graph does; columnSums[l][h, s] =
 * columnScore(l, h, s). Not normalized: methods only rank them. Key and value norms are the
 * cache's when one is given (spg reads them), else absent.
 */
export function designedContext(
  config: GptNeoConfig,
  slots: number,
  rows: number,
  dtype: BaselineDtype,
  rowScore: (l: number, h: number, r: number, s: number) => number,
  columnScore: (l: number, h: number, s: number) => number,
  cache?: KvCache,
): MethodContext {
  const H = config.numHeads;
  return {
    config,
    baselineDtype: dtype,
    norms: cache === undefined ? { keys: [], values: [] } : cacheNorms(cache),
    attention: {
      rows,
      windowSums: config.attentionLayers.map((_, l) => {
        const a = new Float32Array(H * rows * slots);
        for (let h = 0; h < H; h++)
          for (let r = 0; r < rows; r++)
            for (let s = 0; s < slots; s++) a[(h * rows + r) * slots + s] = rowScore(l, h, r, s);
        return windowSumsFromRows(a, H, rows, slots);
      }),
      columnSums: config.attentionLayers.map((_, l) => {
        const a = new Float32Array(H * slots);
        for (let h = 0; h < H; h++) for (let s = 0; s < slots; s++) a[h * slots + s] = columnScore(l, h, s);
        return a;
      }),
    },
  };
}

/**
 * The context the every-method tests share: scores that differ by head, row and slot, so every
 * method has something to rank, and the cache's own norms.
 */
export function everyMethodContext(config: GptNeoConfig, slots: number, cache: KvCache): MethodContext {
  return designedContext(
    config,
    slots,
    4,
    "fp16",
    (_l, h, r, s) => ((h + 1) * (r + 1) * (s + 3)) % 7,
    (_l, h, s) => (s * (h + 2)) % 5,
    cache,
  );
}

/** Row `slot` of a head's keys or values. */
export function row(matrix: Float32Array, slot: number, d: number): number[] {
  return Array.from(matrix.subarray(slot * d, (slot + 1) * d));
}

/** Params for every method kind that exercise its whole encoder (small shapes: 4 slots kept of 10). */
export const everyMethodParams: Record<string, Record<string, unknown>> = {
  full: {},
  "window-trim": {},
  streaming: { sinkTokens: 1, recentTokens: 3, localWindowTrim: true },
  h2o: { keepRatio: 0.4, recentTokens: 2, sinkTokens: 1, selection: "per-layer", localWindowTrim: true },
  snapkv: {
    keepRatio: 0.4,
    observationWindow: 2,
    poolingKernel: 3,
    pooling: "avg",
    selection: "per-head",
    localWindowTrim: true,
  },
  quant: { keyBits: 8, valueBits: 4, groupSize: 3, residualTokens: 1, localWindowTrim: true },
  spg: {
    stage1: {
      keepRatio: 0.6,
      layerKeepRatios: null,
      sinkTokens: 1,
      recentTokens: 2,
      observationWindow: 2,
      poolingKernels: [{ maxContextTokens: 16, kernel: 3 }],
      pooling: "avg",
      magnitudeWeight: 0.3,
      selection: "per-layer",
      localWindowTrim: true,
    },
    stage2: {
      reservedHeads: 1,
      magnitudeThreshold: 0.2,
      mixedPrecision: { enabled: true, highBits: 8, lowBits: 3, highFraction: 0.3, groupSize: 3 },
      lowRank: { enabled: true, energyThreshold: 0.9 },
    },
    decode: { sparseTopK: 4 },
  },
};
