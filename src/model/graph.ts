/**
 * GPT-Neo's forward pass as an ONNX model, built here so the graph exposes what KV-cache
 * compression needs: explicit position ids (evicted caches keep true positions), a
 * caller-built additive attention bias per layer (causal, local window, padding, evictions),
 * past keys/values as inputs and only the new tokens' keys/values as outputs, plus the
 * attention probabilities of the last `observationWindow` query rows and the attention
 * column sums per layer.
 *
 * Semantics follow Hugging Face's modeling_gpt_neo.py (see test/fixtures/gpt-neo-hf):
 * no 1/sqrt(head_dim) scaling, q/k/v without bias, out_proj with bias, pre-LayerNorm
 * blocks, MLP with the config's ACT2FN activation (activations.ts), logits = ln_f(h) @ wte^T (tied head: the file stores wte once;
 * with tie_word_embeddings false, @ lm_head^T, lm_head.weight an initializer of its own). The
 * head reads its matrix as stored (`headLayout`), so the session holds wte once.
 *
 * Hybrid sparse attention is an input of the one graph (sparse_top_k = k, fed per call): with
 * k > 0, after the bias is added each query row keeps only the scores >= its k-th largest
 * score (TopK gives the threshold; ties at the threshold are all kept), the rest are set to
 * the masked bias before the softmax; with k >= slots + q this is exactly dense attention.
 * k = 0 takes the dense branch of an If, which runs no TopK at all. One graph, so one
 * session and one copy of the weights serve the baseline and every KV method.
 */
import { endianness } from "node:os";
import { SpgError } from "../errors.js";
import { MASKED_ATTENTION_BIAS } from "../kv/layout.js";
import { type ActivationOps, applyActivation, checkActivation } from "./activations.js";
import { expectedWeightShapes, LM_HEAD, WTE } from "./checkpoint.js";
import {
  encodeModel,
  ONNX_DATA_LOCATION_EXTERNAL,
  type OnnxAttribute,
  OnnxAttributeType,
  OnnxDataType,
  type OnnxDimension,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from "./onnx-proto.js";
import {
  type GptNeoCheckpoint,
  type GptNeoConfig,
  type HeadLayout,
  headIsTied,
  type WeightTensor,
} from "./types.js";

/** Bump when the graph's structure or semantics change: part of the graph-cache key. */
export const GRAPH_BUILDER_VERSION = "spg-gpt-neo-graph-6";
export const ONNX_OPSET = 17;
/** IR version 8 is the one that goes with opset 17. */
export const ONNX_IR_VERSION = 8;
/** protobuf messages cannot exceed 2 GiB; leave room for the graph structure itself. */
export const PROTOBUF_INLINE_LIMIT_BYTES = 2 ** 31 - 64 * 2 ** 20;

export interface GraphOptions {
  /** Query rows whose attention probabilities are returned (>= 1). */
  observationWindow: number;
  /** How the head reads its matrix (types.ts); default "in-place". */
  headLayout?: HeadLayout;
}

/** Names of the graph's inputs and outputs, per layer. */
export const graphNames = {
  inputIds: "input_ids",
  positionIds: "position_ids",
  /** How many trailing query rows get logits: a prefill needs only its last row's. */
  logitRows: "logit_rows",
  /** [1] int64: keys each query keeps (hybrid sparse attention); 0 is dense attention. */
  sparseTopK: "sparse_top_k",
  logits: "logits",
  /** Per query row, log sum_v exp(logits[v]): NLL and KL then need one logit or one dot product, not a pass of exp. */
  logitsLogSumExp: "logits_logsumexp",
  /** Per query row, the first index of the largest logit (greedy decoding, top-1 agreement). */
  logitsArgmax: "logits_argmax",
  /**
   * Scoring against a reference distribution without returning the logits: p~ [scored, vocab]
   * and targets [scored] for the first `scored` logit rows (0 rows: nothing scored) give, per
   * row, sum_v p~[v] logits[v] in float64 (KL's one dot product) and logits[target].
   */
  scoredProbs: "scored_probs",
  scoredTargets: "scored_targets",
  scoredExpectedLogit: "scored_expected_logit",
  scoredTargetLogit: "scored_target_logit",
  pastKey: (layer: number) => `past_key_${layer}`,
  pastValue: (layer: number) => `past_value_${layer}`,
  attentionBias: (layer: number) => `attention_bias_${layer}`,
  presentKey: (layer: number) => `present_key_${layer}`,
  presentValue: (layer: number) => `present_value_${layer}`,
  attentionLastRows: (layer: number) => `attn_last_rows_${layer}`,
  attentionColumnSums: (layer: number) => `attn_col_sums_${layer}`,
  /**
   * Per layer [1, heads, rows, total]: row i is the attention of the last (rows - i) query rows,
   * summed (reverse cumulative sum of attn_last_rows): the observation scores of every window
   * up to `rows`, one row each.
   */
  attentionWindowSums: (layer: number) => `attn_window_sums_${layer}`,
  /** Per layer [1, heads, q]: the L2 norm of each new token's key (value), in float64. */
  keyNorms: (layer: number) => `key_norms_${layer}`,
  valueNorms: (layer: number) => `value_norms_${layer}`,
};

/**
 * Decides, per weight, whether it is stored inline or as external data (and where). `weight`
 * reads the values (a placement that points at the checkpoint's own file never calls it). A
 * placed tensor of another name than the weight's holds it in another dtype: the graph casts
 * it to float32 under the weight's name (onnxruntime folds the Cast once, at load).
 */
export type InitializerPlacement = (name: string, weight: () => WeightTensor) => OnnxTensor;

/** Stores every weight inline as raw little-endian float32 bytes. */
export const inlinePlacement: InitializerPlacement = (name, weight) => {
  const tensor = weight();
  return { name, dims: tensor.shape, data_type: OnnxDataType.FLOAT, raw_data: float32Bytes(tensor.data) };
};

/** An initializer whose bytes are at [offset, offset+length) of `location` (relative to the model file). */
export function externalTensor(
  name: string,
  shape: number[],
  location: string,
  offset: number,
  length: number,
  dataType: number = OnnxDataType.FLOAT,
) {
  return {
    name,
    dims: shape,
    data_type: dataType,
    data_location: ONNX_DATA_LOCATION_EXTERNAL,
    external_data: [
      { key: "location", value: location },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(length) },
    ],
  } satisfies OnnxTensor;
}

export function float32Bytes(data: Float32Array): Uint8Array {
  if (endianness() !== "LE") {
    throw new SpgError(
      "E_PLATFORM_ENDIANNESS",
      "ONNX raw tensor data is little-endian; this machine is not",
      {
        fix: "run spg on a little-endian machine (x86-64, arm64)",
      },
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Total bytes of the float32 initializers the graph embeds (a tied wte is shared by embedding and head). */
export function initializerBytes(checkpoint: GptNeoCheckpoint): number {
  let total = 0;
  const shapes = expectedWeightShapes(checkpoint.config);
  for (const name of graphWeightNames(checkpoint.config)) {
    const factors = checkpoint.factors?.get(name);
    total +=
      factors === undefined
        ? (shapes.get(name) ?? []).reduce((a, b) => a * b, 1) * 4
        : factors.left.data.byteLength + factors.right.data.byteLength;
  }
  return total;
}

/** Initializer names of a factorised weight W = left @ right. */
export const factorNames = (name: string) => ({ left: `${name}:left`, right: `${name}:right` });

/** Hugging Face weight names the graph reads, in a fixed order. */
export function graphWeightNames(config: GptNeoConfig): string[] {
  const names = ["transformer.wte.weight", "transformer.wpe.weight"];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `transformer.h.${layer}`;
    names.push(
      `${p}.ln_1.weight`,
      `${p}.ln_1.bias`,
      `${p}.attn.attention.q_proj.weight`,
      `${p}.attn.attention.k_proj.weight`,
      `${p}.attn.attention.v_proj.weight`,
      `${p}.attn.attention.out_proj.weight`,
      `${p}.attn.attention.out_proj.bias`,
      `${p}.ln_2.weight`,
      `${p}.ln_2.bias`,
      `${p}.mlp.c_fc.weight`,
      `${p}.mlp.c_fc.bias`,
      `${p}.mlp.c_proj.weight`,
      `${p}.mlp.c_proj.bias`,
    );
  }
  names.push("transformer.ln_f.weight", "transformer.ln_f.bias");
  if (!headIsTied(config)) names.push(LM_HEAD);
  return names;
}

function requireWeight(checkpoint: GptNeoCheckpoint, name: string): WeightTensor {
  const tensor = checkpoint.weights.get(name);
  if (tensor === undefined) {
    throw new SpgError("E_CHECKPOINT_TENSOR_MISSING", `checkpoint has no tensor ${name}`, {
      file: checkpoint.dir,
      field: name,
      fix: "use a complete Hugging Face GPT-Neo checkpoint (model.safetensors with all transformer.* weights)",
    });
  }
  return tensor;
}

export function validateGraphOptions(options: GraphOptions): void {
  if (!Number.isInteger(options.observationWindow) || options.observationWindow < 1) {
    throw new SpgError(
      "E_RUNTIME_OPTION",
      `observationWindow must be a positive integer, got ${options.observationWindow}`,
      {
        field: "observationWindow",
        fix: "set the observation window to 1 or more query rows",
      },
    );
  }
  const layout = options.headLayout;
  if (layout !== undefined && layout !== "in-place" && layout !== "transposed") {
    throw new SpgError(
      "E_RUNTIME_OPTION",
      `headLayout must be "in-place" or "transposed", got ${String(layout)}`,
      {
        field: "headLayout",
        fix: 'use "in-place" (what spg proves with) or "transposed" (format version 3 bundles)',
      },
    );
  }
}

/** Small helper that names every intermediate value uniquely and collects nodes and initializers. */
export class OnnxGraphWriter {
  /** Nodes of the graph being written (a subgraph's while `subgraph` builds one). */
  nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private counter = 0;
  private nodeCount = 0;

  /**
   * A subgraph (an If branch) whose nodes `build` writes; it reads outer values by name and
   * returns its one float output. Names stay unique across the whole model.
   */
  subgraph(name: string, build: () => string): OnnxGraph {
    const outer = this.nodes;
    this.nodes = [];
    try {
      const output = build();
      return {
        name,
        node: this.nodes,
        initializer: [],
        input: [],
        output: [{ name: output, type: { tensor_type: { elem_type: OnnxDataType.FLOAT } } }],
      };
    } finally {
      this.nodes = outer;
    }
  }

  fresh(hint: string): string {
    this.counter += 1;
    return `${hint}__${this.counter}`;
  }

  op(opType: string, inputs: string[], attributes: OnnxAttribute[] = [], output?: string): string {
    const out = output ?? this.fresh(opType.toLowerCase());
    this.nodes.push({
      name: `${opType}_${this.nodeCount++}`,
      op_type: opType,
      input: inputs,
      output: [out],
      attribute: attributes,
    });
    return out;
  }

  opMulti(opType: string, inputs: string[], outputs: string[], attributes: OnnxAttribute[] = []): string[] {
    this.nodes.push({
      name: `${opType}_${this.nodeCount++}`,
      op_type: opType,
      input: inputs,
      output: outputs,
      attribute: attributes,
    });
    return outputs;
  }

  int64Const(hint: string, values: number[]): string {
    const name = this.fresh(hint);
    const bytes = new Uint8Array(values.length * 8);
    const view = new DataView(bytes.buffer);
    for (const [i, v] of values.entries()) view.setBigInt64(i * 8, BigInt(v), true);
    this.initializers.push({ name, dims: [values.length], data_type: OnnxDataType.INT64, raw_data: bytes });
    return name;
  }

  int64Scalar(hint: string, value: number): string {
    const name = this.fresh(hint);
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigInt64(0, BigInt(value), true);
    this.initializers.push({ name, dims: [], data_type: OnnxDataType.INT64, raw_data: bytes });
    return name;
  }

  floatScalar(hint: string, value: number): string {
    const name = this.fresh(hint);
    this.initializers.push({
      name,
      dims: [],
      data_type: OnnxDataType.FLOAT,
      raw_data: float32Bytes(new Float32Array([value])),
    });
    return name;
  }
}

export const attrInt = (name: string, i: number): OnnxAttribute => ({ name, type: OnnxAttributeType.INT, i });
const attrFloat = (name: string, f: number): OnnxAttribute => ({ name, type: OnnxAttributeType.FLOAT, f });
const attrGraph = (name: string, graph: OnnxGraph): OnnxAttribute => ({
  name,
  type: OnnxAttributeType.GRAPH,
  g: graph,
});
const attrInts = (name: string, ints: number[]): OnnxAttribute => ({
  name,
  type: OnnxAttributeType.INTS,
  ints,
});

export function tensorValue(name: string, elemType: number, dims: (number | string)[]): OnnxValueInfo {
  const dim: OnnxDimension[] = dims.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim } } } };
}

/** The ModelProto as plain objects, weights placed by `placement`. */
export function gptNeoModelProto(
  checkpoint: GptNeoCheckpoint,
  options: GraphOptions,
  placement: InitializerPlacement,
): OnnxModel {
  validateGraphOptions(options);
  const config = checkpoint.config;
  checkActivation(config.activation, checkpoint.dir);
  const { numHeads: heads, headDim, hiddenSize: hidden, numLayers } = config;
  const g = new OnnxGraphWriter();
  const weightNames = graphWeightNames(config);
  const factors = checkpoint.factors ?? new Map();
  const place = (name: string, weight: () => WeightTensor) => {
    const tensor = placement(name, weight);
    g.initializers.push(tensor);
    if (tensor.name !== name) g.op("Cast", [tensor.name], [attrInt("to", OnnxDataType.FLOAT)], name);
  };
  for (const name of weightNames) {
    const pair = factors.get(name);
    if (pair === undefined) {
      if (!checkpoint.weights.has(name)) requireWeight(checkpoint, name);
      place(name, () => requireWeight(checkpoint, name));
    } else {
      const names = factorNames(name);
      place(names.left, () => pair.left);
      place(names.right, () => pair.right);
    }
  }

  const axes0 = g.int64Const("axes0", [0]);
  const headShape = g.int64Const("head_shape", [1, -1, heads, headDim]);
  const flatShape = g.int64Const("flat_shape", [-1, hidden]);
  const epsilon = config.layerNormEpsilon;

  const layerNorm = (x: string, prefix: string) =>
    g.op(
      "LayerNormalization",
      [x, `${prefix}.weight`, `${prefix}.bias`],
      [attrInt("axis", -1), attrFloat("epsilon", epsilon)],
    );
  /**
   * nn.Linear: y = x @ W^T + b, with W stored [out, in] as Hugging Face keeps it; a factorised
   * W = L R runs as two products, y = (x @ R^T) @ L^T + b, never forming W.
   */
  const linear = (x: string, weight: string, bias?: string) => {
    const pair = factors.has(weight) ? factorNames(weight) : undefined;
    const input = pair === undefined ? x : g.op("Gemm", [x, pair.right], [attrInt("transB", 1)]);
    const matrix = pair === undefined ? weight : pair.left;
    return g.op("Gemm", bias === undefined ? [input, matrix] : [input, matrix, bias], [attrInt("transB", 1)]);
  };
  /** Rows of an embedding table: Gather(W), or Gather(L) @ R when factorised. */
  const embed = (table: string, indices: string) => {
    if (!factors.has(table)) return g.op("Gather", [table, indices], [attrInt("axis", 0)]);
    const pair = factorNames(table);
    return g.op("MatMul", [g.op("Gather", [pair.left, indices], [attrInt("axis", 0)]), pair.right]);
  };
  const splitHeads = (x2d: string, output?: string) =>
    g.op("Transpose", [g.op("Reshape", [x2d, headShape])], [attrInts("perm", [0, 2, 1, 3])], output);

  // One initializer per distinct constant, shared by every layer's MLP.
  const activationConstants = new Map<number, string>();
  const activationOps: ActivationOps = {
    op: (opType, inputs, attributes) => g.op(opType, inputs, attributes),
    constant: (value) => {
      let name = activationConstants.get(value);
      if (name === undefined) {
        name = g.floatScalar("activation_constant", value);
        activationConstants.set(value, name);
      }
      return name;
    },
  };
  const activation = (x: string) => applyActivation(config.activation, activationOps, x, checkpoint.dir);

  const topK = graphNames.sparseTopK;
  const oneIndex = g.int64Const("one_index", [1]);
  const maskedBias = g.floatScalar("masked_bias", MASKED_ATTENTION_BIAS);
  const sparse = g.op("Greater", [topK, g.int64Const("dense_top_k", [0])]);
  const windowStart = g.int64Const("window_start", [-options.observationWindow]);
  const sliceEnd = g.int64Const("slice_end", [Number.MAX_SAFE_INTEGER]);
  const axes2 = g.int64Const("axes2", [2]);
  const axes3 = g.int64Const("axes3", [3]);
  const queryRowAxis = g.int64Scalar("query_row_axis", 2);
  const norms = (x: string, name: string) => {
    const wide = g.op("Cast", [x], [attrInt("to", OnnxDataType.DOUBLE)]);
    const squares = g.op("ReduceSum", [g.op("Mul", [wide, wide]), axes3], [attrInt("keepdims", 0)]);
    return g.op("Sqrt", [squares], [], name);
  };

  const inputs: OnnxValueInfo[] = [
    tensorValue(graphNames.inputIds, OnnxDataType.INT64, [1, "q"]),
    tensorValue(graphNames.positionIds, OnnxDataType.INT64, [1, "q"]),
    tensorValue(graphNames.logitRows, OnnxDataType.INT64, [1]),
    tensorValue(graphNames.sparseTopK, OnnxDataType.INT64, [1]),
    tensorValue(graphNames.scoredProbs, OnnxDataType.FLOAT, ["scored_rows", config.vocabSize]),
    tensorValue(graphNames.scoredTargets, OnnxDataType.INT64, ["scored_rows"]),
  ];
  const outputs: OnnxValueInfo[] = [
    tensorValue(graphNames.logits, OnnxDataType.FLOAT, [1, "logit_rows", config.vocabSize]),
    tensorValue(graphNames.logitsLogSumExp, OnnxDataType.DOUBLE, [1, "logit_rows"]),
    tensorValue(graphNames.logitsArgmax, OnnxDataType.INT64, [1, "logit_rows"]),
    tensorValue(graphNames.scoredExpectedLogit, OnnxDataType.DOUBLE, ["scored_rows"]),
    tensorValue(graphNames.scoredTargetLogit, OnnxDataType.FLOAT, ["scored_rows"]),
  ];

  const ids = g.op("Squeeze", [graphNames.inputIds, axes0]);
  const positions = g.op("Squeeze", [graphNames.positionIds, axes0]);
  let h = g.op("Add", [embed("transformer.wte.weight", ids), embed("transformer.wpe.weight", positions)]);

  for (let layer = 0; layer < numLayers; layer++) {
    const p = `transformer.h.${layer}`;
    const past = `past_${layer}`;
    const total = `total_${layer}`;
    inputs.push(
      tensorValue(graphNames.pastKey(layer), OnnxDataType.FLOAT, [1, heads, past, headDim]),
      tensorValue(graphNames.pastValue(layer), OnnxDataType.FLOAT, [1, heads, past, headDim]),
      // bias_heads is 1 when every head reads the same slots (one bias broadcast to all heads).
      tensorValue(graphNames.attentionBias(layer), OnnxDataType.FLOAT, [1, "bias_heads", "q", total]),
    );
    outputs.push(
      tensorValue(graphNames.presentKey(layer), OnnxDataType.FLOAT, [1, heads, "q", headDim]),
      tensorValue(graphNames.presentValue(layer), OnnxDataType.FLOAT, [1, heads, "q", headDim]),
      tensorValue(graphNames.attentionLastRows(layer), OnnxDataType.FLOAT, [1, heads, "rows", total]),
      tensorValue(graphNames.attentionColumnSums(layer), OnnxDataType.FLOAT, [1, heads, total]),
      tensorValue(graphNames.attentionWindowSums(layer), OnnxDataType.FLOAT, [1, heads, "rows", total]),
      tensorValue(graphNames.keyNorms(layer), OnnxDataType.DOUBLE, [1, heads, "q"]),
      tensorValue(graphNames.valueNorms(layer), OnnxDataType.DOUBLE, [1, heads, "q"]),
    );

    const x = layerNorm(h, `${p}.ln_1`);
    const query = splitHeads(linear(x, `${p}.attn.attention.q_proj.weight`));
    const key = splitHeads(linear(x, `${p}.attn.attention.k_proj.weight`), graphNames.presentKey(layer));
    const value = splitHeads(linear(x, `${p}.attn.attention.v_proj.weight`), graphNames.presentValue(layer));
    // Scoring statistics next to the attention that makes them: methods read a row per head
    // instead of summing rows and norms over the whole cache in JS.
    norms(key, graphNames.keyNorms(layer));
    norms(value, graphNames.valueNorms(layer));
    const allKeys = g.op("Concat", [graphNames.pastKey(layer), key], [attrInt("axis", 2)]);
    const allValues = g.op("Concat", [graphNames.pastValue(layer), value], [attrInt("axis", 2)]);
    // GPT-Neo does not scale scores by 1/sqrt(head_dim).
    const scores = g.op("MatMul", [query, g.op("Transpose", [allKeys], [attrInts("perm", [0, 1, 3, 2])])]);
    const biased = g.op("Add", [scores, graphNames.attentionBias(layer)]);
    const sparseProbs = g.subgraph(`sparse_attention_${layer}`, () => {
      const keyCount = g.op("Shape", [biased], [attrInt("start", 3)]);
      const k = g.op("Min", [keyCount, topK]);
      const [sortedScores] = g.opMulti(
        "TopK",
        [biased, k],
        [g.fresh("topk_values"), g.fresh("topk_indices")],
        [attrInt("axis", -1), attrInt("largest", 1), attrInt("sorted", 1)],
      );
      const threshold = g.op("Gather", [sortedScores, g.op("Sub", [k, oneIndex])], [attrInt("axis", 3)]);
      const dropped = g.op("Less", [biased, threshold]);
      return g.op("Softmax", [g.op("Where", [dropped, maskedBias, biased])], [attrInt("axis", -1)]);
    });
    const denseProbs = g.subgraph(`dense_attention_${layer}`, () =>
      g.op("Softmax", [biased], [attrInt("axis", -1)]),
    );
    const probs = g.op(
      "If",
      [sparse],
      [attrGraph("then_branch", sparseProbs), attrGraph("else_branch", denseProbs)],
    );
    const windowRows = g.op(
      "Slice",
      [probs, windowStart, sliceEnd, axes2],
      [],
      graphNames.attentionLastRows(layer),
    );
    g.op(
      "CumSum",
      [windowRows, queryRowAxis],
      [attrInt("reverse", 1)],
      graphNames.attentionWindowSums(layer),
    );
    g.op("ReduceSum", [probs, axes2], [attrInt("keepdims", 0)], graphNames.attentionColumnSums(layer));
    const context = g.op("MatMul", [probs, allValues]);
    const merged = g.op("Reshape", [
      g.op("Transpose", [context], [attrInts("perm", [0, 2, 1, 3])]),
      flatShape,
    ]);
    h = g.op("Add", [
      h,
      linear(merged, `${p}.attn.attention.out_proj.weight`, `${p}.attn.attention.out_proj.bias`),
    ]);
    const y = layerNorm(h, `${p}.ln_2`);
    const inner = activation(linear(y, `${p}.mlp.c_fc.weight`, `${p}.mlp.c_fc.bias`));
    h = g.op("Add", [h, linear(inner, `${p}.mlp.c_proj.weight`, `${p}.mlp.c_proj.bias`)]);
  }
  const final = layerNorm(h, "transformer.ln_f");
  // Tied head: logits = ln_f(h) @ wte^T (untied: lm_head^T).
  const transposed = (name: string) => g.op("Transpose", [name], [attrInts("perm", [1, 0])]);
  // In place, W [vocab, hidden] is the MatMul's first operand, which onnxruntime neither folds nor
  // pre-packs (pre-packing copies a constant second operand, and wte stays for the embedding).
  // h^T goes through a Reshape to [hidden, rows]: a Transpose straight into the MatMul is fused
  // into FusedMatMul(transB), which misses MLAS's matrix-vector path for one row (125m shape,
  // one decode row: 25.6 ms against 15.6 ms of CPU, and 14.3 ms transposed).
  const inPlace = (rows: string, matrix: string) => {
    const columns = g.op("Reshape", [transposed(rows), g.int64Const("head_columns", [hidden, -1])]);
    return g.op("Transpose", [g.op("MatMul", [matrix, columns])], [attrInts("perm", [1, 0])]);
  };
  const project =
    (options.headLayout ?? "in-place") === "in-place"
      ? inPlace
      : (rows: string, matrix: string) => g.op("MatMul", [rows, transposed(matrix)]);
  // Only the trailing logit_rows rows reach the vocabulary projection (a 1024-token prefill
  // would otherwise spend more on logits nobody reads than on the transformer).
  const lastRows = g.op("Slice", [final, g.op("Neg", [graphNames.logitRows]), sliceEnd, axes0]);
  // A factorised head H = L R gives logits = (h @ R^T) @ L^T.
  const headName = headIsTied(config) ? WTE : LM_HEAD;
  const head = factors.has(headName) ? factorNames(headName) : undefined;
  const logits =
    head === undefined
      ? project(lastRows, headName)
      : g.op("MatMul", [g.op("MatMul", [lastRows, transposed(head.right)]), transposed(head.left)]);
  g.op("Unsqueeze", [logits, axes0], [], graphNames.logits);
  // Reductions over the vocabulary run here, next to the MatMul, instead of as JS passes over
  // every row. The log-sum-exp is taken in float64: KL is a difference of terms near log Z,
  // and a float32 sum over the vocabulary would leave errors larger than small KLs.
  // ArgMax returns the first maximum, as a JS scan would.
  const logits64 = g.op("Cast", [logits], [attrInt("to", OnnxDataType.DOUBLE)]);
  g.op(
    "Unsqueeze",
    [g.op("ReduceLogSumExp", [logits64], [attrInts("axes", [-1]), attrInt("keepdims", 0)]), axes0],
    [],
    graphNames.logitsLogSumExp,
  );
  g.op(
    "Unsqueeze",
    [g.op("ArgMax", [logits], [attrInt("axis", -1), attrInt("keepdims", 0)]), axes0],
    [],
    graphNames.logitsArgmax,
  );
  // Scoring (KL's dot product, the target's logit) next to the logits too: a caller that
  // scores need not copy [rows, vocab] logits out and pass over them again in JS.
  const scoredStart = g.int64Const("scored_start", [0]);
  const scoredEnd = g.op("Shape", [graphNames.scoredTargets]);
  const scoredLogits = g.op("Slice", [logits64, scoredStart, scoredEnd, axes0]);
  // Per row p~ · x as a batched [1, vocab] x [vocab, 1] MatMul in float64 (ReduceSum over a
  // zero-row input returns the unreduced shape in onnxruntime, and decode steps score no rows).
  const rowAxis = g.int64Const("scored_row_axis", [1]);
  const columnAxis = g.int64Const("scored_column_axis", [2]);
  const probs64 = g.op("Cast", [graphNames.scoredProbs], [attrInt("to", OnnxDataType.DOUBLE)]);
  const dots = g.op("MatMul", [
    g.op("Unsqueeze", [probs64, rowAxis]),
    g.op("Unsqueeze", [scoredLogits, columnAxis]),
  ]);
  g.op("Squeeze", [dots, g.int64Const("scored_dot_axes", [1, 2])], [], graphNames.scoredExpectedLogit);
  const targetAxis = g.int64Const("scored_target_axis", [1]);
  g.op(
    "Squeeze",
    [
      g.op(
        "GatherElements",
        [
          g.op("Slice", [logits, scoredStart, scoredEnd, axes0]),
          g.op("Unsqueeze", [graphNames.scoredTargets, targetAxis]),
        ],
        [attrInt("axis", 1)],
      ),
      targetAxis,
    ],
    [],
    graphNames.scoredTargetLogit,
  );

  return spgModel(
    { name: "gpt_neo", node: g.nodes, initializer: g.initializers, input: inputs, output: outputs },
    `GPT-Neo forward (${numLayers} layers, ${heads} heads), observation window ${options.observationWindow}`,
  );
}

/** A ModelProto of spg's: the IR version and opset every graph here is built for, spg as producer. */
export function spgModel(graph: OnnxGraph, docString?: string): OnnxModel {
  return {
    ir_version: ONNX_IR_VERSION,
    producer_name: "spg",
    producer_version: GRAPH_BUILDER_VERSION,
    ...(docString === undefined ? {} : { doc_string: docString }),
    opset_import: [{ domain: "", version: ONNX_OPSET }],
    graph,
  };
}

/** The whole graph with weights inline, as ONNX bytes (checkpoints under protobuf's 2 GiB limit). */
export function buildGptNeoGraph(checkpoint: GptNeoCheckpoint, options: GraphOptions): Uint8Array {
  const bytes = initializerBytes(checkpoint);
  if (bytes > PROTOBUF_INLINE_LIMIT_BYTES) {
    throw new SpgError(
      "E_GRAPH_TOO_LARGE",
      `the checkpoint's weights (${bytes} bytes) exceed protobuf's 2 GiB limit for an inline ONNX graph`,
      {
        file: checkpoint.dir,
        fix: "load it through loadRuntime, which writes ONNX external data to the graph cache",
      },
    );
  }
  return encodeModel(gptNeoModelProto(checkpoint, options, inlinePlacement));
}
