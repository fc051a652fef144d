/**
 * The baseline's next-token distributions, computed by onnxruntime on the run's device: a
 * small graph turns logit rows and their log-sum-exp into probabilities rounded to float32,
 * with, per row, the mass of those rounded probabilities and sum p~ log p, all in float64.
 * This is the one pass of exp per vocabulary entry that KL needs (once per sample, shared by
 * every method); in JS it cost more than the model's forward pass on small models.
 */
import ort from "onnxruntime-node";
import { SpgError } from "../errors.js";
import { attrInt, OnnxGraphWriter, spgModel, tensorValue } from "./graph.js";
import { encodeModel, OnnxDataType } from "./onnx-proto.js";
import { createSession, graphOutput } from "./session.js";
import type { RuntimeOptions } from "./types.js";

const names = {
  logits: "logits",
  logSumExp: "log_sum_exp",
  probs: "probs",
  mass: "mass",
  negEntropy: "neg_entropy",
};

/** Rows [rows, vocab] -> p~ = float32(exp(x - log Z)), mass = sum p~, negEntropy = sum p~ (x - log Z). */
export function distributionGraph(vocab: number): Uint8Array {
  const g = new OnnxGraphWriter();
  const lastAxis = g.int64Const("last_axis", [-1]);
  const logP = g.op("Sub", [
    g.op("Cast", [names.logits], [attrInt("to", OnnxDataType.DOUBLE)]),
    g.op("Unsqueeze", [names.logSumExp, lastAxis]),
  ]);
  const rounded = g.op("Cast", [g.op("Exp", [logP])], [attrInt("to", OnnxDataType.FLOAT)], names.probs);
  // Sums over the float32-rounded probabilities, so KL is exact for the p~ the dot products use.
  const p = g.op("Cast", [rounded], [attrInt("to", OnnxDataType.DOUBLE)]);
  g.op("ReduceSum", [p, lastAxis], [attrInt("keepdims", 0)], names.mass);
  g.op("ReduceSum", [g.op("Mul", [p, logP]), lastAxis], [attrInt("keepdims", 0)], names.negEntropy);
  return encodeModel(
    spgModel({
      name: "baseline_distribution",
      node: g.nodes,
      initializer: g.initializers,
      input: [
        tensorValue(names.logits, OnnxDataType.FLOAT, ["rows", vocab]),
        tensorValue(names.logSumExp, OnnxDataType.DOUBLE, ["rows"]),
      ],
      output: [
        tensorValue(names.probs, OnnxDataType.FLOAT, ["rows", vocab]),
        tensorValue(names.mass, OnnxDataType.DOUBLE, ["rows"]),
        tensorValue(names.negEntropy, OnnxDataType.DOUBLE, ["rows"]),
      ],
    }),
  );
}

export interface RowDistributions {
  /** Per row, p~ over the vocabulary (views into `matrix`). */
  probs: Float32Array[];
  /** Every row's p~, [rows, vocab]. */
  matrix: Float32Array;
  mass: Float64Array;
  negEntropy: Float64Array;
}

export interface DistributionSession {
  distributions(logits: Float32Array, logSumExp: Float64Array): Promise<RowDistributions>;
  close(): Promise<void>;
}

function output<T>(outputs: ort.InferenceSession.OnnxValueMapType, name: string, type: new () => T): T {
  return graphOutput(outputs, name, type, "the distribution graph");
}

export async function loadDistributionSession(
  vocab: number,
  device: RuntimeOptions["device"],
  intraOpThreads = 0,
): Promise<DistributionSession> {
  const session = await createSession(
    { kind: "bytes", bytes: distributionGraph(vocab) },
    device,
    intraOpThreads,
  );
  return {
    async distributions(logits, logSumExp) {
      const rows = logSumExp.length;
      if (rows === 0 && logits.length === 0) {
        return {
          probs: [],
          matrix: new Float32Array(0),
          mass: new Float64Array(0),
          negEntropy: new Float64Array(0),
        };
      }
      if (logits.length !== rows * vocab) {
        throw new SpgError("E_FORWARD_INPUT", `${logits.length} logits are not ${rows} rows of ${vocab}`, {
          fix: "pass the logit rows and the log-sum-exp of the same forward pass",
        });
      }
      const outputs = await session.run({
        [names.logits]: new ort.Tensor("float32", logits, [rows, vocab]),
        [names.logSumExp]: new ort.Tensor("float64", logSumExp, [rows]),
      });
      const probs = output(outputs, names.probs, Float32Array);
      return {
        probs: Array.from({ length: rows }, (_, r) => probs.subarray(r * vocab, (r + 1) * vocab)),
        matrix: probs,
        mass: output(outputs, names.mass, Float64Array),
        negEntropy: output(outputs, names.negEntropy, Float64Array),
      };
    },
    async close() {
      await session.release();
    },
  };
}
