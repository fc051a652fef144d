/**
 * The MLP activations spg implements: transformers' ACT2FN names (activations.py, v4.36), each
 * with Hugging Face's formula and constants, written as ONNX opset-17 ops. The one list both
 * config validation and the graph read, so a name is accepted exactly when it can be built.
 */
import { SpgError } from "../errors.js";
import { type OnnxAttribute, OnnxAttributeType } from "./onnx-proto.js";

/** What an activation needs from the graph writer: ops, and float constants (made once each). */
export interface ActivationOps {
  op(opType: string, inputs: string[], attributes?: OnnxAttribute[]): string;
  constant(value: number): string;
}

type Activation = (ops: ActivationOps, x: string) => string;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** 0.5 x (1 + erf(x / sqrt 2)): nn.functional.gelu and GELUActivation._gelu_python. */
const erfGelu: Activation = (o, x) => {
  const erf = o.op("Erf", [o.op("Mul", [x, o.constant(Math.SQRT1_2)])]);
  return o.op("Mul", [o.op("Mul", [x, o.constant(0.5)]), o.op("Add", [erf, o.constant(1)])]);
};

/** 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): NewGELU, AccurateGELU, gelu(approximate="tanh"). */
const tanhGelu: Activation = (o, x) => {
  const cube = o.op("Mul", [o.op("Mul", [x, x]), x]);
  const inner = o.op("Add", [x, o.op("Mul", [cube, o.constant(0.044715)])]);
  const tanh = o.op("Tanh", [o.op("Mul", [inner, o.constant(SQRT_2_OVER_PI)])]);
  return o.op("Mul", [o.op("Mul", [x, o.constant(0.5)]), o.op("Add", [tanh, o.constant(1)])]);
};

/** x * sigmoid(x): nn.SiLU. */
const silu: Activation = (o, x) => o.op("Mul", [x, o.op("Sigmoid", [x])]);

const clip = (o: ActivationOps, x: string, min: number, max: number) =>
  o.op("Clip", [x, o.constant(min), o.constant(max)]);

/** transformers' ACT2FN, name by name (activations.py ACT2CLS). */
const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  gelu: erfGelu,
  gelu_python: erfGelu,
  // ClippedGELUActivation(-10, 10): clip(gelu(x), -10, 10) with the exact (erf) GELU.
  gelu_10: (o, x) => clip(o, erfGelu(o, x), -10, 10),
  gelu_new: tanhGelu,
  gelu_accurate: tanhGelu,
  gelu_pytorch_tanh: tanhGelu,
  // FastGELUActivation: 0.5 x (1 + tanh(x * 0.7978845608 * (1 + 0.044715 x^2))).
  gelu_fast: (o, x) => {
    const square = o.op("Mul", [x, x]);
    const factor = o.op("Add", [o.constant(1), o.op("Mul", [square, o.constant(0.044715)])]);
    const tanh = o.op("Tanh", [o.op("Mul", [o.op("Mul", [x, o.constant(0.7978845608)]), factor])]);
    return o.op("Mul", [o.op("Mul", [x, o.constant(0.5)]), o.op("Add", [tanh, o.constant(1)])]);
  },
  // QuickGELUActivation: x * sigmoid(1.702 x).
  quick_gelu: (o, x) => o.op("Mul", [x, o.op("Sigmoid", [o.op("Mul", [x, o.constant(1.702)])])]),
  // LaplaceActivation (mu 0.707107, sigma 0.282095): 0.5 (1 + erf((x - mu) / (sigma sqrt 2))).
  laplace: (o, x) => {
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: HF's mu is this rounded literal, not sqrt(1/2)
    const shifted = o.op("Sub", [x, o.constant(0.707107)]);
    const erf = o.op("Erf", [o.op("Div", [shifted, o.constant(0.282095 * Math.SQRT2)])]);
    return o.op("Mul", [o.op("Add", [erf, o.constant(1)]), o.constant(0.5)]);
  },
  // nn.LeakyReLU() with its default negative_slope 0.01.
  leaky_relu: (o, x) => o.op("LeakyRelu", [x], [{ name: "alpha", type: OnnxAttributeType.FLOAT, f: 0.01 }]),
  linear: (_o, x) => x,
  // MishActivation: x * tanh(softplus(x)) (opset 17 has no Mish op).
  mish: (o, x) => o.op("Mul", [x, o.op("Tanh", [o.op("Softplus", [x])])]),
  relu: (o, x) => o.op("Relu", [x]),
  // ReLUSquaredActivation: relu(x)^2.
  relu2: (o, x) => {
    const relu = o.op("Relu", [x]);
    return o.op("Mul", [relu, relu]);
  },
  // nn.ReLU6: min(max(0, x), 6).
  relu6: (o, x) => clip(o, x, 0, 6),
  sigmoid: (o, x) => o.op("Sigmoid", [x]),
  silu,
  swish: silu,
  tanh: (o, x) => o.op("Tanh", [x]),
};

/** The activation_function names spg runs, sorted. */
export const SUPPORTED_ACTIVATIONS: readonly string[] = Object.keys(ACTIVATIONS).sort();

function isSupported(name: unknown): name is string {
  return typeof name === "string" && Object.hasOwn(ACTIVATIONS, name);
}

/** Throws E_MODEL_ACTIVATION unless `name` is an activation spg implements. */
export function checkActivation(name: unknown, file: string | undefined): string {
  if (isSupported(name)) return name;
  throw new SpgError(
    "E_MODEL_ACTIVATION",
    `activation_function ${JSON.stringify(name)} is not one spg implements; it runs ${SUPPORTED_ACTIVATIONS.join(", ")}`,
    {
      file,
      field: "activation_function",
      fix: `use a checkpoint whose activation_function is one of ${SUPPORTED_ACTIVATIONS.join(", ")} (transformers' ACT2FN names)`,
    },
  );
}

/** Writes activation `name` applied to `x`; returns the output's name. */
export function applyActivation(name: string, ops: ActivationOps, x: string, file?: string): string {
  return ACTIVATIONS[checkActivation(name, file)](ops, x);
}
