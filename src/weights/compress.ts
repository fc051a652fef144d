/**
 * Applies a weight policy to a GPT-Neo checkpoint. Every tensor is serialized to the bytes
 * it would need to be stored and run (dense tensors at the baseline dtype; quantized codes
 * with their fp16 scales and zero points; low-rank factors, quantized or at the baseline
 * dtype, after a u32 rank), fingerprinted, and decoded back from those bytes: the decoded
 * weights form a checkpoint the existing dense runtime can run. Byte totals are sums of
 * serialized lengths, against every tensor at the baseline dtype.
 *
 * A tied wte is also the LM head, so compressing wte also changes the output projection (an untied
 * head is lm_head.weight, a matrix of its own: module kind lm_head).
 */
import { createHash } from "node:crypto";
import type { WeightFingerprintLine } from "../bundle/types.js";
import { SpgError } from "../errors.js";
import type { GptNeoCheckpoint, WeightTensor } from "../model/types.js";
import { ByteReader, ByteWriter } from "../numeric/bytes.js";
import { type BaselineDtype, dtypeBits, dtypeBytes } from "../numeric/dtype.js";
import { multiplyFactors } from "../numeric/lowrank.js";
import { sha256Hex } from "../numeric/sha256.js";
import { type MatrixPlan, type MatrixTreatment, planCompression, type WeightPolicy } from "./policy.js";
import { decodeQuantized, encodeQuantized } from "./quantize.js";
import { randomizedSvd } from "./randomized-svd.js";
import { truncatedSvd } from "./svd.js";

/**
 * One tensor's identity in a weight bundle: the fingerprints.jsonl line's stored fields
 * (src/bundle/types.ts, the schema's mirror), named by the tensor before the run adds where
 * it sits (method, module, layer).
 */
export type WeightFingerprint = { name: string } & Omit<
  WeightFingerprintLine,
  "kind" | "method" | "tensor" | "module" | "layer"
>;

export interface CompressedTensor {
  name: string;
  shape: number[];
  /** The plan for policy-addressable matrices; undefined for vectors (biases, layer norms). */
  plan: MatrixPlan | undefined;
  serialized: Uint8Array;
  fingerprint: WeightFingerprint;
  /** Decoded from `serialized`. */
  reconstructed: Float32Array;
  /** Share of ‖W‖²_F the kept rank holds (low-rank tensors only). */
  energyKept?: number;
}

export interface CompressedWeights {
  policy: string;
  baselineDtype: BaselineDtype;
  tensors: CompressedTensor[];
  baselineBytes: number;
  compressedBytes: number;
  baselineParameters: number;
  storedParameters: number;
  /** The input checkpoint with every weight replaced by its reconstruction and a new identity. */
  checkpoint: GptNeoCheckpoint;
}

function writeDense(writer: ByteWriter, data: Float32Array, dtype: BaselineDtype): void {
  if (dtype === "fp16") writer.halves(data, 0, data.length);
  else writer.floats(data, 0, data.length);
}

function readDense(reader: ByteReader, count: number, dtype: BaselineDtype): Float32Array {
  const out = new Float32Array(count);
  if (dtype === "fp16") reader.halves(count, out, 0);
  else reader.floats(count, out, 0);
  return out;
}

/** Serializes one tensor [rows, cols] under a treatment. */
export function encodeTensor(
  data: Float32Array,
  rows: number,
  cols: number,
  treatment: MatrixTreatment,
  dtype: BaselineDtype,
): { serialized: Uint8Array; rank: number | null; parameters: number; energyKept?: number } {
  const writer = new ByteWriter();
  if (treatment.encoding === "dense") {
    writeDense(writer, data, dtype);
    return { serialized: writer.finish(), rank: null, parameters: data.length };
  }
  if (treatment.encoding === "quantized") {
    encodeQuantized(writer, data, rows, cols, treatment.quantize);
    return { serialized: writer.finish(), rank: null, parameters: data.length };
  }
  const svd =
    treatment.randomized === undefined
      ? truncatedSvd(data, rows, cols, treatment.selection)
      : randomizedSvd(data, rows, cols, treatment.selection, treatment.randomized);
  const left = Float32Array.from(svd.left);
  const right = Float32Array.from(svd.right);
  writer.u32(svd.rank);
  if (svd.rank > 0) {
    if (treatment.quantize === undefined) {
      writeDense(writer, left, dtype);
      writeDense(writer, right, dtype);
    } else {
      encodeQuantized(writer, left, rows, svd.rank, treatment.quantize);
      encodeQuantized(writer, right, svd.rank, cols, treatment.quantize);
    }
  }
  return {
    serialized: writer.finish(),
    rank: svd.rank,
    parameters: svd.rank * (rows + cols),
    energyKept: svd.energyKept,
  };
}

/** Inverse of encodeTensor: the dense [rows, cols] weights the bytes stand for. */
export function decodeTensor(
  serialized: Uint8Array,
  rows: number,
  cols: number,
  treatment: MatrixTreatment,
  dtype: BaselineDtype,
): Float32Array {
  const reader = new ByteReader(serialized);
  let out: Float32Array;
  if (treatment.encoding === "dense") out = readDense(reader, rows * cols, dtype);
  else if (treatment.encoding === "quantized") out = decodeQuantized(reader, rows, cols, treatment.quantize);
  else {
    const { rank, left, right } = readFactors(reader, rows, cols, treatment, dtype);
    out =
      rank === 0
        ? new Float32Array(rows * cols)
        : multiplyFactors(left, right, rows, rank, cols, new Float32Array(rows * cols));
  }
  reader.end();
  return out;
}

function readFactors(
  reader: ByteReader,
  rows: number,
  cols: number,
  treatment: Extract<MatrixTreatment, { encoding: "lowrank" }>,
  dtype: BaselineDtype,
): LowRankDecoded {
  const rank = reader.u32();
  if (rank > Math.min(rows, cols)) {
    throw new SpgError("E_WEIGHTS_DECODE", `rank ${rank} exceeds min(${rows}, ${cols})`, {
      fix: "the serialized factors are corrupt or belong to another matrix",
    });
  }
  if (rank === 0) return { rank, left: new Float32Array(0), right: new Float32Array(0) };
  const q = treatment.quantize;
  const left =
    q === undefined ? readDense(reader, rows * rank, dtype) : decodeQuantized(reader, rows, rank, q);
  const right =
    q === undefined ? readDense(reader, rank * cols, dtype) : decodeQuantized(reader, rank, cols, q);
  return { rank, left, right };
}

export interface LowRankDecoded {
  rank: number;
  /** [rows, rank] */
  left: Float32Array;
  /** [rank, cols] */
  right: Float32Array;
}

/** The factors a low-rank tensor's bytes decode to (what the factorised graph runs). */
export function decodeFactors(
  serialized: Uint8Array,
  rows: number,
  cols: number,
  treatment: Extract<MatrixTreatment, { encoding: "lowrank" }>,
  dtype: BaselineDtype,
): LowRankDecoded {
  const reader = new ByteReader(serialized);
  const decoded = readFactors(reader, rows, cols, treatment, dtype);
  reader.end();
  return decoded;
}

function bitsOf(treatment: MatrixTreatment, dtype: BaselineDtype): number {
  return treatment.encoding === "dense" || treatment.quantize === undefined
    ? dtypeBits(dtype)
    : treatment.quantize.bits;
}

function checkShape(name: string, tensor: WeightTensor, rows: number, cols: number, file: string): void {
  if (tensor.data.length !== rows * cols) {
    throw new SpgError(
      "E_WEIGHTS_SHAPE",
      `${name} has ${tensor.data.length} values, config implies [${rows}, ${cols}]`,
      {
        file,
        field: name,
        fix: "use the config.json saved with these weights",
      },
    );
  }
}

/** Compresses every tensor of the checkpoint under the policy and decodes it back. */
export function compressCheckpoint(checkpoint: GptNeoCheckpoint, policy: WeightPolicy): CompressedWeights {
  const dtype = policy.params.baselineDtype;
  const plans = new Map(planCompression(checkpoint.config, policy.params).map((plan) => [plan.name, plan]));
  for (const name of plans.keys()) {
    if (!checkpoint.weights.has(name)) {
      throw new SpgError("E_CHECKPOINT_TENSOR_MISSING", `checkpoint has no tensor ${name}`, {
        file: checkpoint.dir,
        field: name,
        fix: "use a complete Hugging Face GPT-Neo checkpoint",
      });
    }
  }
  const tensors: CompressedTensor[] = [];
  const weights = new Map<string, WeightTensor>();
  const identity = createHash("sha256").update(`spg-weights\n${checkpoint.sha256}\n`);
  for (const [name, tensor] of checkpoint.weights) {
    const plan = plans.get(name);
    const rows = plan?.rows ?? 1;
    const cols = plan?.cols ?? tensor.data.length;
    checkShape(name, tensor, rows, cols, checkpoint.dir);
    const treatment: MatrixTreatment = plan?.treatment ?? { encoding: "dense" };
    const encoded = encodeTensor(tensor.data, rows, cols, treatment, dtype);
    const reconstructed = decodeTensor(encoded.serialized, rows, cols, treatment, dtype);
    const fingerprint: WeightFingerprint = {
      name,
      encoding: treatment.encoding,
      rank: encoded.rank,
      bits: bitsOf(treatment, dtype),
      bytes: encoded.serialized.length,
      baselineBytes: tensor.data.length * dtypeBytes(dtype),
      parameters: encoded.parameters,
      sha256: sha256Hex(encoded.serialized),
    };
    identity.update(`${name}\n${fingerprint.sha256}\n`);
    tensors.push({
      name,
      shape: [...tensor.shape],
      plan,
      serialized: encoded.serialized,
      fingerprint,
      reconstructed,
      ...(encoded.energyKept === undefined ? {} : { energyKept: encoded.energyKept }),
    });
    weights.set(name, { shape: [...tensor.shape], data: reconstructed });
  }
  const sum = (pick: (t: CompressedTensor) => number) => tensors.reduce((acc, t) => acc + pick(t), 0);
  return {
    policy: policy.name,
    baselineDtype: dtype,
    tensors,
    baselineBytes: sum((t) => t.fingerprint.baselineBytes),
    compressedBytes: sum((t) => t.fingerprint.bytes),
    baselineParameters: sum((t) => t.reconstructed.length),
    storedParameters: sum((t) => t.fingerprint.parameters),
    // A new identity, so graph caches keyed by the checkpoint's sha256 never reuse the dense graph.
    checkpoint: { ...checkpoint, weights, sha256: identity.digest("hex") },
  };
}

/**
 * Rebuilds the weights from serialized tensors alone (what a verifier holds): the plan comes
 * from the config and the policy, so a tensor's bytes decode only under the treatment the
 * policy gives it. Every tensor of `shapes` must be present.
 */
export function decodeWeights(
  config: GptNeoCheckpoint["config"],
  policy: WeightPolicy,
  shapes: ReadonlyMap<string, readonly number[]>,
  serialized: ReadonlyMap<string, Uint8Array>,
): Map<string, WeightTensor> {
  const dtype = policy.params.baselineDtype;
  const plans = new Map(planCompression(config, policy.params).map((plan) => [plan.name, plan]));
  const weights = new Map<string, WeightTensor>();
  for (const [name, shape] of shapes) {
    const bytes = serialized.get(name);
    if (bytes === undefined) {
      throw new SpgError("E_WEIGHTS_DECODE", `no serialized bytes for tensor ${name}`, {
        field: name,
        fix: "every tensor of the checkpoint must be stored, dense ones included",
      });
    }
    const plan = plans.get(name);
    const count = shape.reduce((a, b) => a * b, 1);
    const rows = plan?.rows ?? 1;
    const cols = plan?.cols ?? count;
    weights.set(name, {
      shape: [...shape],
      data: decodeTensor(bytes, rows, cols, plan?.treatment ?? { encoding: "dense" }, dtype),
    });
  }
  return weights;
}
