/**
 * What a session executes, accounted exactly from the graph it was created from (issue 21):
 * the weights as the session holds them after loading, and the KV cache as the graph reads it.
 *
 * Weights: every initializer of the ONNX model, at the dtype the graph computes with. At load
 * onnxruntime folds nodes whose inputs are all constant; spg's graph has two such kinds, a
 * Cast of a stored F16/BF16 weight to float32 and the Transpose of a head's matrix (a
 * factorised head's factors, or the whole head in the "transposed" layout of format version 3
 * and before; the "in-place" head reads its matrix as stored). A folded
 * output is a tensor the session holds; an initializer (or folded value) that only folded
 * nodes read is released. So the held tensors are the constants some unfolded node (or a
 * graph output) reads, each counted at product(dims) * its dtype's width. Other all-constant
 * nodes would be folded too, so one is refused (E_GRAPH_EXECUTED), never silently
 * miscounted. Kernel pre-packing (an execution provider's private layout of a MatMul's
 * constant input) is not in the graph and is not counted.
 *
 * KV cache: the per-layer past keys and values the graph reads as float32 [heads, slots,
 * headDim], slots = the widest head's kept slots plus the decode room; the buffers are laid
 * out once, so the step with the most cached slots reads exactly these bytes.
 */
import { SpgError } from "../errors.js";
import { expectedWeightShapes } from "./checkpoint.js";
import { type GraphOptions, gptNeoModelProto, type InitializerPlacement } from "./graph.js";
import { OnnxDataType, type OnnxModel, type OnnxNode, type OnnxTensor } from "./onnx-proto.js";
import type { GptNeoCheckpoint, GptNeoConfig, LowRankFactors, WeightTensor } from "./types.js";

/** Bytes per element of the ONNX data types spg's graphs hold as constants. */
const DATA_TYPE_BYTES: Readonly<Record<number, number>> = {
  [OnnxDataType.FLOAT]: 4,
  [OnnxDataType.INT32]: 4,
  [OnnxDataType.INT64]: 8,
  [OnnxDataType.BOOL]: 1,
  [OnnxDataType.FLOAT16]: 2,
  [OnnxDataType.DOUBLE]: 8,
  [OnnxDataType.BFLOAT16]: 2,
};

/** The bytes per element the graph reads its past keys and values in (float32 inputs). */
export const EXECUTED_KV_ELEMENT_BYTES = DATA_TYPE_BYTES[OnnxDataType.FLOAT];

/** Ops onnxruntime folds when every input is constant, as they occur in spg's graph. */
const FOLDED_OPS = new Set(["Cast", "Transpose"]);

interface ConstantTensor {
  elements: number;
  dataType: number;
}

function graphError(message: string): SpgError {
  return new SpgError("E_GRAPH_EXECUTED", message, {
    fix: "report this as a bug in spg's graph builder: src/model/executed.ts must account for every constant it folds",
  });
}

function widthOf(dataType: number, name: string): number {
  const width = DATA_TYPE_BYTES[dataType];
  if (width === undefined) throw graphError(`constant ${name} has ONNX data type ${dataType}, not accounted`);
  return width;
}

function castTarget(node: OnnxNode): number {
  const to = node.attribute?.find((attribute) => attribute.name === "to")?.i;
  if (to === undefined) throw graphError(`Cast ${node.name} has no "to" attribute`);
  return Number(to);
}

/** Bytes of the constants the session holds once loaded (see the module comment). */
export function executedInitializerBytes(model: OnnxModel): number {
  const constants = new Map<string, ConstantTensor>();
  const elementsOf = (tensor: OnnxTensor) => tensor.dims.reduce((a, b) => a * Number(b), 1);
  for (const tensor of model.graph.initializer)
    constants.set(tensor.name, { elements: elementsOf(tensor), dataType: tensor.data_type });
  // Folding, in node order (a graph is topologically sorted): outputs of all-constant nodes.
  const folded = new Set<OnnxNode>();
  for (const node of model.graph.node) {
    if (node.input.length === 0 || !node.input.every((name) => constants.has(name))) continue;
    if (!FOLDED_OPS.has(node.op_type)) {
      throw graphError(`node ${node.name} (${node.op_type}) reads only constants and is not accounted`);
    }
    const input = constants.get(node.input[0]) as ConstantTensor;
    const dataType = node.op_type === "Cast" ? castTarget(node) : input.dataType;
    constants.set(node.output[0], { elements: input.elements, dataType });
    folded.add(node);
  }
  // Held: constants read by an unfolded node (subgraphs read outer values by name) or an output.
  const held = new Set<string>(model.graph.output.map((output) => output.name));
  const readers = (nodes: readonly OnnxNode[]) => {
    for (const node of nodes) {
      if (folded.has(node)) continue;
      for (const name of node.input) held.add(name);
      for (const attribute of node.attribute ?? []) if (attribute.g !== undefined) readers(attribute.g.node);
    }
  };
  readers(model.graph.node);
  let total = 0;
  for (const [name, tensor] of constants) {
    if (held.has(name)) total += tensor.elements * widthOf(tensor.dataType, name);
  }
  return total;
}

/** Shape-only placement: each weight as a float32 initializer of its shape, no bytes read. */
export const shapeOnlyPlacement: InitializerPlacement = (name, weight) => ({
  name,
  dims: weight().shape,
  data_type: OnnxDataType.FLOAT,
});

/** Weight bytes the session over `checkpoint` holds, from the graph built with `placement`. */
export function executedWeightBytes(
  checkpoint: GptNeoCheckpoint,
  options: GraphOptions,
  placement: InitializerPlacement = shapeOnlyPlacement,
): number {
  return executedInitializerBytes(gptNeoModelProto(checkpoint, options, placement));
}

/** A factor's or weight's shape, with no values (what the verifier knows of a tensor). */
function shapeOnly(shape: number[]): WeightTensor {
  return { shape, data: new Float32Array(0) };
}

/**
 * The executed weight bytes of a model known only by its config and, for a compressed model,
 * the rank of each factorised weight (rank 0 stores nothing: the dense zero matrix stands in,
 * as src/weights/runtime.ts does): what a verifier derives from environment.json and the
 * weight fingerprints.
 */
export function executedWeightBytesOfShapes(
  config: GptNeoConfig,
  options: GraphOptions,
  ranks: ReadonlyMap<string, number> = new Map(),
): number {
  const shapes = expectedWeightShapes(config);
  const weights = new Map<string, WeightTensor>();
  for (const [name, shape] of shapes) weights.set(name, shapeOnly(shape));
  const factors = new Map<string, LowRankFactors>();
  for (const [name, rank] of ranks) {
    const shape = shapes.get(name);
    if (shape === undefined || shape.length !== 2 || rank === 0) continue;
    factors.set(name, { left: shapeOnly([shape[0], rank]), right: shapeOnly([rank, shape[1]]) });
  }
  return executedWeightBytes(
    { dir: "(shapes only)", config, weights, files: [], sha256: "", factors },
    options,
  );
}

/** KV bytes the graph reads for per-layer slot counts (each layer's widest head plus the decode room). */
export function executedKvBytes(config: GptNeoConfig, slotsPerLayer: readonly number[]): number {
  let total = 0;
  for (const slots of slotsPerLayer)
    total += 2 * config.numHeads * slots * config.headDim * EXECUTED_KV_ELEMENT_BYTES;
  return total;
}
