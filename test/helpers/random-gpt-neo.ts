/**
 * A small GPT-Neo checkpoint with the GPT-2 vocabulary and seeded random weights, written to a
 * temp directory: lets end-to-end tests run `prove` on the real tokenizer and corpus in seconds.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { vocabularySize } from "../../src/data/tokenizer.js";
import { writeSafetensors } from "../../src/model/safetensors.js";

export interface RandomModelShape {
  hidden: number;
  layers: number;
  heads: number;
  window: number;
  maxPositions: number;
  seed: number;
}

function gaussians(count: number, scale: number, state: { s: number }): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    // mulberry32 + Box-Muller: deterministic across machines.
    const next = () => {
      state.s = (state.s + 0x6d2b79f5) | 0;
      let t = Math.imul(state.s ^ (state.s >>> 15), 1 | state.s);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const u = Math.max(next(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  return out;
}

export async function writeRandomGptNeo(shape: RandomModelShape): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "spg-random-neo-"));
  const h = shape.hidden;
  const inner = 4 * h;
  const state = { s: shape.seed };
  const tensors: { name: string; dtype: "F32"; shape: number[]; data: Float32Array }[] = [];
  const add = (name: string, dims: number[], scale: number, offset = 0) => {
    const data = gaussians(
      dims.reduce((a, b) => a * b, 1),
      scale,
      state,
    );
    if (offset !== 0) for (let i = 0; i < data.length; i++) data[i] += offset;
    tensors.push({ name, dtype: "F32", shape: dims, data });
  };
  add("transformer.wte.weight", [vocabularySize, h], 0.2);
  add("transformer.wpe.weight", [shape.maxPositions, h], 0.2);
  for (let l = 0; l < shape.layers; l++) {
    const p = `transformer.h.${l}`;
    add(`${p}.ln_1.weight`, [h], 0.1, 1);
    add(`${p}.ln_1.bias`, [h], 0.1);
    for (const proj of ["q", "k", "v"]) add(`${p}.attn.attention.${proj}_proj.weight`, [h, h], 0.2);
    add(`${p}.attn.attention.out_proj.weight`, [h, h], 0.2);
    add(`${p}.attn.attention.out_proj.bias`, [h], 0.1);
    add(`${p}.ln_2.weight`, [h], 0.1, 1);
    add(`${p}.ln_2.bias`, [h], 0.1);
    add(`${p}.mlp.c_fc.weight`, [inner, h], 0.2);
    add(`${p}.mlp.c_fc.bias`, [inner], 0.1);
    add(`${p}.mlp.c_proj.weight`, [h, inner], 0.2);
    add(`${p}.mlp.c_proj.bias`, [h], 0.1);
  }
  add("transformer.ln_f.weight", [h], 0.1, 1);
  add("transformer.ln_f.bias", [h], 0.1);
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  const pairs = shape.layers / 2;
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      activation_function: "gelu_new",
      architectures: ["GPTNeoForCausalLM"],
      attention_types: [[["global", "local"], pairs]],
      bos_token_id: vocabularySize - 1,
      eos_token_id: vocabularySize - 1,
      hidden_size: h,
      intermediate_size: null,
      layer_norm_epsilon: 1e-5,
      max_position_embeddings: shape.maxPositions,
      model_type: "gpt_neo",
      num_heads: shape.heads,
      num_layers: shape.layers,
      vocab_size: vocabularySize,
      window_size: shape.window,
    }),
  );
  return dir;
}

/**
 * The small GPT-2-vocabulary model end-to-end tests prove on, and a temp directory for their
 * bundles and graphs; both are removed after the calling test file's tests.
 */
export async function tinyModelWorkspace(
  seed: number,
  prefix: string,
): Promise<{ modelDir: string; outDir: string }> {
  const modelDir = await writeRandomGptNeo({
    hidden: 16,
    layers: 2,
    heads: 2,
    window: 16,
    maxPositions: 128,
    seed,
  });
  const outDir = mkdtempSync(join(tmpdir(), prefix));
  after(() => {
    rmSync(modelDir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  });
  return { modelDir, outDir };
}
