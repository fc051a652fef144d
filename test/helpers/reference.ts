/**
 * A plain-TypeScript GPT-Neo forward pass in float64, written from Hugging Face's
 * semantics (test/fixtures/gpt-neo-hf/README.md) independently of the ONNX graph. Slow and
 * readable: it exists so tests can compare the graph with a second implementation on
 * inputs the fixtures do not cover (evicted caches, per-head padding, sparse top-k).
 */
import { SpgError } from "../../src/errors.js";
import type { GraphOptions } from "../../src/model/graph.js";
import type { ForwardInput, ForwardOutput, GptNeoCheckpoint } from "../../src/model/types.js";
import { rowNorms, windowSumsFromRows } from "./statistics.js";

type Matrix = Float64Array[];

function weight(checkpoint: GptNeoCheckpoint, name: string): Float32Array {
  const tensor = checkpoint.weights.get(name);
  if (tensor === undefined) {
    throw new SpgError("E_CHECKPOINT_TENSOR_MISSING", `checkpoint has no tensor ${name}`, {
      file: checkpoint.dir,
      field: name,
      fix: "use a complete Hugging Face GPT-Neo checkpoint",
    });
  }
  return tensor.data;
}

/** y = x W^T + b for W stored [out, in] (nn.Linear). */
function linear(x: Matrix, w: Float32Array, outFeatures: number, bias?: Float32Array): Matrix {
  const inFeatures = w.length / outFeatures;
  return x.map((row) => {
    const out = new Float64Array(outFeatures);
    for (let o = 0; o < outFeatures; o++) {
      let sum = bias === undefined ? 0 : bias[o];
      const base = o * inFeatures;
      for (let i = 0; i < inFeatures; i++) sum += row[i] * w[base + i];
      out[o] = sum;
    }
    return out;
  });
}

function layerNorm(x: Matrix, gamma: Float32Array, beta: Float32Array, epsilon: number): Matrix {
  return x.map((row) => {
    const n = row.length;
    let mean = 0;
    for (const v of row) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of row) variance += (v - mean) ** 2;
    variance /= n;
    const scale = 1 / Math.sqrt(variance + epsilon);
    return row.map((v, i) => (v - mean) * scale * gamma[i] + beta[i]);
  });
}

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse for a reference; use a series/continued fraction.
  const t = Math.abs(x);
  if (t < 3) {
    let sum = 0;
    let term = t;
    for (let n = 0; n < 200; n++) {
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
      term *= (-t * t) / (n + 1);
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}

function activate(kind: string, x: number): number {
  if (kind === "gelu_new") return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  if (kind === "gelu") return 0.5 * x * (1 + erf(x / Math.SQRT2));
  throw new SpgError("E_MODEL_ACTIVATION", `activation_function ${kind} is not supported`, {
    field: "activation_function",
    fix: "use gelu_new or gelu",
  });
}

/** The same computation as the ONNX graph, in float64 loops. */
export function referenceForward(
  checkpoint: GptNeoCheckpoint,
  options: GraphOptions,
  input: ForwardInput,
): ForwardOutput {
  const config = checkpoint.config;
  const { hiddenSize: hidden, numHeads: heads, headDim, vocabSize, intermediateSize } = config;
  const q = input.inputIds.length;
  const sparseTopK = input.sparseTopK ?? 0;
  const rows = Math.min(options.observationWindow, q);
  const wte = weight(checkpoint, "transformer.wte.weight");
  const wpe = weight(checkpoint, "transformer.wpe.weight");

  let h: Matrix = input.inputIds.map((id, i) => {
    const pos = input.positionIds[i];
    const row = new Float64Array(hidden);
    for (let c = 0; c < hidden; c++) row[c] = wte[id * hidden + c] + wpe[pos * hidden + c];
    return row;
  });

  const presentKeys: Float32Array[] = [];
  const presentValues: Float32Array[] = [];
  const attentionLastRows: Float32Array[] = [];
  const attentionColumnSums: Float32Array[] = [];

  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `transformer.h.${layer}`;
    const w = (suffix: string) => weight(checkpoint, `${p}.${suffix}`);
    const x = layerNorm(h, w("ln_1.weight"), w("ln_1.bias"), config.layerNormEpsilon);
    const query = linear(x, w("attn.attention.q_proj.weight"), hidden);
    const key = linear(x, w("attn.attention.k_proj.weight"), hidden);
    const value = linear(x, w("attn.attention.v_proj.weight"), hidden);
    const { slots, keys: pastKeys, values: pastValues } = input.past[layer];
    const bias = input.attentionBias[layer];
    const biasHeads = bias.length / (q * (slots + q));
    const total = slots + q;

    const presentK = new Float32Array(heads * q * headDim);
    const presentV = new Float32Array(heads * q * headDim);
    const lastRows = new Float32Array(heads * rows * total);
    const columnSums = new Float64Array(heads * total);
    const context: Matrix = Array.from({ length: q }, () => new Float64Array(hidden));

    for (let head = 0; head < heads; head++) {
      // Keys/values this head reads: past slots then the new tokens, [total][headDim].
      const keyAt = (t: number, d: number) =>
        t < slots ? pastKeys[(head * slots + t) * headDim + d] : key[t - slots][head * headDim + d];
      const valueAt = (t: number, d: number) =>
        t < slots ? pastValues[(head * slots + t) * headDim + d] : value[t - slots][head * headDim + d];
      for (let i = 0; i < q; i++) {
        for (let d = 0; d < headDim; d++) {
          presentK[(head * q + i) * headDim + d] = key[i][head * headDim + d];
          presentV[(head * q + i) * headDim + d] = value[i][head * headDim + d];
        }
        const scores = new Float64Array(total);
        for (let t = 0; t < total; t++) {
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += query[i][head * headDim + d] * keyAt(t, d);
          // No 1/sqrt(head_dim) scaling in GPT-Neo; the caller's bias is added.
          scores[t] = dot + bias[((biasHeads === 1 ? 0 : head) * q + i) * total + t];
        }
        if (sparseTopK > 0) {
          const sorted = Array.from(scores).sort((a, b) => b - a);
          const threshold = sorted[Math.min(sparseTopK, total) - 1];
          for (let t = 0; t < total; t++) if (scores[t] < threshold) scores[t] = Number.NEGATIVE_INFINITY;
        }
        const max = Math.max(...scores);
        let norm = 0;
        const probs = scores.map((s) => {
          const e = Math.exp(s - max);
          norm += e;
          return e;
        });
        for (let t = 0; t < total; t++) {
          probs[t] /= norm;
          columnSums[head * total + t] += probs[t];
          if (i >= q - rows) lastRows[(head * rows + (i - (q - rows))) * total + t] = probs[t];
          for (let d = 0; d < headDim; d++) context[i][head * headDim + d] += probs[t] * valueAt(t, d);
        }
      }
    }
    const attended = linear(
      context,
      w("attn.attention.out_proj.weight"),
      hidden,
      w("attn.attention.out_proj.bias"),
    );
    h = h.map((row, i) => row.map((v, c) => v + attended[i][c]));
    const y = layerNorm(h, w("ln_2.weight"), w("ln_2.bias"), config.layerNormEpsilon);
    const inner = linear(y, w("mlp.c_fc.weight"), intermediateSize, w("mlp.c_fc.bias")).map((row) =>
      row.map((v) => activate(config.activation, v)),
    );
    const mlp = linear(inner, w("mlp.c_proj.weight"), hidden, w("mlp.c_proj.bias"));
    h = h.map((row, i) => row.map((v, c) => v + mlp[i][c]));

    presentKeys.push(presentK);
    presentValues.push(presentV);
    attentionLastRows.push(lastRows);
    attentionColumnSums.push(Float32Array.from(columnSums));
  }

  const final = layerNorm(
    h,
    weight(checkpoint, "transformer.ln_f.weight"),
    weight(checkpoint, "transformer.ln_f.bias"),
    config.layerNormEpsilon,
  );
  const logitRows = input.logitRows ?? q;
  const logits = new Float32Array(logitRows * vocabSize);
  const logitsLogSumExp = new Float64Array(logitRows);
  const logitsArgmax = new Int32Array(logitRows);
  // Tied head: logits = ln_f(h) @ wte^T, for the last logitRows rows.
  linear(final.slice(q - logitRows), wte, vocabSize).forEach((row, i) => {
    logits.set(row, i * vocabSize);
    let best = 0;
    for (let v = 1; v < vocabSize; v++) if (row[v] > row[best]) best = v;
    let sum = 0;
    for (let v = 0; v < vocabSize; v++) sum += Math.exp(row[v] - row[best]);
    logitsLogSumExp[i] = row[best] + Math.log(sum);
    logitsArgmax[i] = best;
  });
  // Scoring against a reference distribution, as the graph does it (first rows, float64 sum).
  const scoredTargets = input.scored?.targets ?? [];
  const scoredProbs = input.scored?.probs ?? new Float32Array(0);
  const scoredExpectedLogit = new Float64Array(scoredTargets.length);
  const scoredTargetLogit = new Float32Array(scoredTargets.length);
  scoredTargets.forEach((target, r) => {
    let dot = 0;
    for (let v = 0; v < vocabSize; v++) dot += scoredProbs[r * vocabSize + v] * logits[r * vocabSize + v];
    scoredExpectedLogit[r] = dot;
    scoredTargetLogit[r] = logits[r * vocabSize + target];
  });
  const returns = { logits: true, attention: true, statistics: true, present: true, ...input.returns };
  const none = () => presentKeys.map(() => new Float32Array(0));
  const none64 = () => presentKeys.map(() => new Float64Array(0));
  return {
    logits: returns.logits ? logits : new Float32Array(0),
    logitsLogSumExp,
    logitsArgmax,
    scoredExpectedLogit,
    scoredTargetLogit,
    presentKeys: returns.present ? presentKeys : none(),
    presentValues: returns.present ? presentValues : none(),
    attentionLastRows: returns.attention ? attentionLastRows : none(),
    attentionRows: returns.attention || returns.statistics ? rows : 0,
    attentionColumnSums: returns.statistics ? attentionColumnSums : none(),
    attentionWindowSums: returns.statistics
      ? attentionLastRows.map((lastRows) =>
          windowSumsFromRows(lastRows, heads, rows, lastRows.length / (heads * rows)),
        )
      : none(),
    keyNorms: returns.statistics ? presentKeys.map((k) => rowNorms(k, heads * q, headDim)) : none64(),
    valueNorms: returns.statistics ? presentValues.map((v) => rowNorms(v, heads * q, headDim)) : none64(),
  };
}
