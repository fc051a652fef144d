/**
 * Synthetic GPT-Neo checkpoints for benchmarks: a known shape with seeded random weights
 * (timings only; their outputs mean nothing).
 */
import { mulberry32 } from "../src/measure/prng.js";
import { graphWeightNames } from "../src/model/graph.js";
import type { GptNeoCheckpoint, GptNeoConfig, WeightTensor } from "../src/model/types.js";

/** Benchmark shapes (not model defaults: only what a synthetic checkpoint looks like). */
export const SYNTHETIC_SHAPES: Record<
  string,
  Omit<GptNeoConfig, "headDim" | "intermediateSize" | "attentionLayers">
> = {
  bundled: {
    vocabSize: 50257,
    hiddenSize: 128,
    numLayers: 4,
    numHeads: 4,
    windowSize: 256,
    maxPositions: 2048,
    layerNormEpsilon: 1e-5,
    activation: "gelu_new",
    bosTokenId: 50256,
    eosTokenId: 50256,
  },
  "125m": {
    vocabSize: 50257,
    hiddenSize: 768,
    numLayers: 12,
    numHeads: 12,
    windowSize: 256,
    maxPositions: 2048,
    layerNormEpsilon: 1e-5,
    activation: "gelu_new",
    bosTokenId: 50256,
    eosTokenId: 50256,
  },
};

export function syntheticCheckpoint(name: string): GptNeoCheckpoint {
  const shape = SYNTHETIC_SHAPES[name];
  const config: GptNeoConfig = {
    ...shape,
    headDim: shape.hiddenSize / shape.numHeads,
    intermediateSize: 4 * shape.hiddenSize,
    attentionLayers: Array.from({ length: shape.numLayers }, (_, i) => (i % 2 === 0 ? "global" : "local")),
  };
  const random = mulberry32(42);
  const { hiddenSize: d, intermediateSize: inner } = config;
  const shapes: Record<string, number[]> = {
    "transformer.wte.weight": [config.vocabSize, d],
    "transformer.wpe.weight": [config.maxPositions, d],
    "transformer.ln_f.weight": [d],
    "transformer.ln_f.bias": [d],
  };
  for (let l = 0; l < config.numLayers; l++) {
    const p = `transformer.h.${l}`;
    for (const n of ["ln_1", "ln_2"]) {
      shapes[`${p}.${n}.weight`] = [d];
      shapes[`${p}.${n}.bias`] = [d];
    }
    for (const n of ["q_proj", "k_proj", "v_proj", "out_proj"])
      shapes[`${p}.attn.attention.${n}.weight`] = [d, d];
    shapes[`${p}.attn.attention.out_proj.bias`] = [d];
    shapes[`${p}.mlp.c_fc.weight`] = [inner, d];
    shapes[`${p}.mlp.c_fc.bias`] = [inner];
    shapes[`${p}.mlp.c_proj.weight`] = [d, inner];
    shapes[`${p}.mlp.c_proj.bias`] = [d];
  }
  const weights = new Map<string, WeightTensor>();
  for (const name of graphWeightNames(config)) {
    const dims = shapes[name];
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    const isNormWeight =
      name.endsWith("ln_1.weight") || name.endsWith("ln_2.weight") || name.endsWith("ln_f.weight");
    for (let i = 0; i < data.length; i++) data[i] = (isNormWeight ? 1 : 0) + (random() - 0.5) * 0.04;
    weights.set(name, { shape: dims, data });
  }
  return { dir: `synthetic:${name}`, config, weights, files: [], sha256: `synthetic-${name}` };
}
