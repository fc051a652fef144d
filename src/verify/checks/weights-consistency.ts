/**
 * Consistency of weights methods (issue 8): their records and their tensor fingerprints
 * describe the same compressed checkpoint.
 *   - a weights method's records carry `weights` and `logitCosineSum`, other records neither;
 *     the KV cache is not compressed (kvBytesCompressed = kvBytesBaseline);
 *   - every record of a method states the same weight bytes (compressed once per run);
 *   - one fingerprint per tensor the graph reads, each once; the record's bytesCompressed is
 *     the sum of their bytes, bytesBaseline the sum of their baselineBytes, parametersStored
 *     the sum of their parameters, parametersBaseline = bytesBaseline / baseline dtype width;
 *   - each tensor's encoding and bits are what the method's policy gives it, a dense tensor
 *     stores exactly its baseline bytes;
 *   - a sensitivity variant's params are the ones derived from the method it names.
 * So a ratio is always recomputed from fingerprint bytes, never from parameter counts.
 */
import { isDeepStrictEqual } from "node:util";
import type { SampleRecord, WeightFingerprintLine } from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { graphWeightNames } from "../../model/graph.js";
import type { GptNeoConfig } from "../../model/types.js";
import { dtypeBits, dtypeBytes } from "../../numeric/dtype.js";
import { sensitivityOf, type WeightsMethodParams } from "../../weights/method.js";
import { layerOfTensorName, planCompression } from "../../weights/policy.js";
import { variantParams } from "../../weights/sensitivity.js";
import { FailureCollector } from "../collect.js";

/**
 * Only the layer count and names matter to a policy's treatments and to the tensor names;
 * the verifier has no vocabulary or intermediate size, so shapes are placeholders here.
 */
function layersOnlyConfig(layers: number, hiddenSize: number): GptNeoConfig {
  return {
    vocabSize: 1,
    hiddenSize,
    numLayers: layers,
    numHeads: 1,
    headDim: hiddenSize,
    attentionLayers: Array.from({ length: layers }, () => "global" as const),
    windowSize: 1,
    maxPositions: 1,
    intermediateSize: 1,
    layerNormEpsilon: 0,
    activation: "gelu_new",
    bosTokenId: undefined,
    eosTokenId: undefined,
  };
}

/**
 * Folded one line at a time: each record's own checks at once (reported first, as a whole-file
 * pass would), the weights of a weights method's records and its tensor lines (one per tensor,
 * few) kept until finish() judges them against each other.
 */
export class WeightsConsistencyFold {
  private readonly recordFailures = new FailureCollector("consistency");
  private readonly lineFailures = new FailureCollector("consistency");
  private readonly weightsMethods: Map<string, RunConfig["methods"][number]>;
  /** Per weights method: the weights each of its records states. */
  private readonly stated = new Map<
    string,
    { sampleId: string; weights: NonNullable<SampleRecord["weights"]> }[]
  >();
  private readonly byMethod = new Map<string, WeightFingerprintLine[]>();
  private lines = 0;

  constructor(
    config: RunConfig,
    private readonly model: { layers: number; hiddenSize: number },
  ) {
    this.weightsMethods = new Map(config.methods.filter((m) => m.kind === "weights").map((m) => [m.name, m]));
  }

  record(record: SampleRecord): void {
    const failures = this.recordFailures;
    const where = `record ${record.sampleId}/${record.method}`;
    const isWeights = this.weightsMethods.has(record.method);
    if ((record.weights !== undefined) !== isWeights || (record.logitCosineSum !== undefined) !== isWeights) {
      failures.add(
        "E_CONSISTENCY_WEIGHTS",
        `${where}: ${isWeights ? "a weights method's record lacks" : "a KV method's record has"} weights / logitCosineSum`,
      );
    }
    if (isWeights && record.kvBytesCompressed !== record.kvBytesBaseline) {
      failures.add(
        "E_CONSISTENCY_WEIGHTS",
        `${where}: a weights method keeps the cache whole, but kvBytesCompressed ${record.kvBytesCompressed} != kvBytesBaseline ${record.kvBytesBaseline}`,
      );
    }
    if (record.logitCosineSum !== undefined && Math.abs(record.logitCosineSum) > record.scoredTokens) {
      failures.add(
        "E_CONSISTENCY_WEIGHTS",
        `${where}: logitCosineSum ${record.logitCosineSum} exceeds its ${record.scoredTokens} rows (a cosine is in [-1, 1])`,
      );
    }
    if (isWeights && record.weights !== undefined) {
      const list = this.stated.get(record.method) ?? [];
      list.push({ sampleId: record.sampleId, weights: record.weights });
      this.stated.set(record.method, list);
    }
  }

  line(line: WeightFingerprintLine): void {
    this.lines += 1;
    if (!this.weightsMethods.has(line.method)) {
      this.lineFailures.add(
        "E_CONSISTENCY_ORPHAN_FINGERPRINT",
        `weight fingerprint ${line.method}/${line.tensor}: "${line.method}" is not a weights method of the config`,
      );
      return;
    }
    const list = this.byMethod.get(line.method) ?? [];
    list.push(line);
    this.byMethod.set(line.method, list);
  }

  /** Adds the findings to `failures`; returns how many weight-tensor lines there were. */
  finish(failures: FailureCollector): number {
    failures.absorb(this.recordFailures);
    failures.absorb(this.lineFailures);
    checkWeightsMethods(this.model, this.weightsMethods, this.byMethod, this.stated, failures);
    return this.lines;
  }
}

function checkWeightsMethods(
  model: { layers: number; hiddenSize: number },
  weightsMethods: ReadonlyMap<string, RunConfig["methods"][number]>,
  byMethod: ReadonlyMap<string, WeightFingerprintLine[]>,
  stated: ReadonlyMap<string, { sampleId: string; weights: NonNullable<SampleRecord["weights"]> }[]>,
  failures: FailureCollector,
): void {
  const modelConfig = layersOnlyConfig(model.layers, model.hiddenSize);
  const expectedTensors = graphWeightNames(modelConfig);
  for (const [name, method] of weightsMethods) {
    const params = method.params as unknown as WeightsMethodParams;
    const tag = sensitivityOf(method);
    if (tag !== undefined) {
      const parent = weightsMethods.get(tag.of);
      if (parent === undefined || sensitivityOf(parent) !== undefined) {
        failures.add(
          "E_CONSISTENCY_SENSITIVITY",
          `${name}: sensitivity.of "${tag.of}" is not a weights method`,
        );
      } else {
        let derived: WeightsMethodParams | undefined;
        try {
          derived = variantParams(
            parent.params as unknown as WeightsMethodParams,
            tag.of,
            tag.mode,
            tag.unit,
            model.layers,
          );
        } catch (error) {
          failures.add("E_CONSISTENCY_SENSITIVITY", `${name}: ${(error as Error).message}`);
        }
        if (derived !== undefined && !isDeepStrictEqual(derived, params)) {
          failures.add(
            "E_CONSISTENCY_SENSITIVITY",
            `${name}: params are not ${tag.of}'s with ${tag.unit} ${tag.mode === "restore" ? "kept dense" : "alone compressed"}`,
          );
        }
      }
    }

    const dtype = params.baselineDtype;
    const plans = new Map(planCompression(modelConfig, params).map((plan) => [plan.name, plan]));
    const methodLines = byMethod.get(name) ?? [];
    const seen = new Set<string>();
    const sums = { bytes: 0, baselineBytes: 0, parameters: 0 };
    for (const line of methodLines) {
      const where = `weight fingerprint ${name}/${line.tensor}`;
      if (seen.has(line.tensor)) {
        failures.add("E_CONSISTENCY_DUPLICATE_FINGERPRINT", `${where} appears more than once`);
        continue;
      }
      seen.add(line.tensor);
      sums.bytes += line.bytes;
      sums.baselineBytes += line.baselineBytes;
      sums.parameters += line.parameters;
      // Layer and module are what the report groups a tensor's bytes by: both follow from its name.
      const module = plans.get(line.tensor)?.kind ?? null;
      const layer = layerOfTensorName(line.tensor);
      if (line.layer !== layer || line.module !== module) {
        failures.add(
          "E_CONSISTENCY_WEIGHTS",
          `${where}: states layer ${line.layer}, module ${line.module}; the tensor's name gives layer ${layer}, module ${module}`,
        );
      }
      const treatment = plans.get(line.tensor)?.treatment ?? { encoding: "dense" as const };
      const bits =
        treatment.encoding === "dense" || treatment.quantize === undefined
          ? dtypeBits(dtype)
          : treatment.quantize.bits;
      if (line.encoding !== treatment.encoding || line.bits !== bits) {
        failures.add(
          "E_CONSISTENCY_WEIGHTS",
          `${where}: stored as ${line.encoding} at ${line.bits} bits, the policy says ${treatment.encoding} at ${bits}`,
        );
      }
      if ((line.rank !== null) !== (line.encoding === "lowrank")) {
        failures.add("E_CONSISTENCY_WEIGHTS", `${where}: rank ${line.rank} with encoding ${line.encoding}`);
      }
      if (
        line.encoding === "dense" &&
        (line.bytes !== line.baselineBytes || line.parameters * dtypeBytes(dtype) !== line.baselineBytes)
      ) {
        failures.add(
          "E_CONSISTENCY_WEIGHTS",
          `${where}: a dense tensor stores its ${line.baselineBytes} baseline bytes, not ${line.bytes}`,
        );
      }
    }
    const missing = expectedTensors.filter((tensor) => !seen.has(tensor));
    const unknown = [...seen].filter((tensor) => !expectedTensors.includes(tensor));
    if (missing.length > 0 || unknown.length > 0) {
      failures.add(
        "E_CONSISTENCY_WEIGHTS",
        `${name}: weight fingerprints ${missing.length > 0 ? `miss ${missing.slice(0, 3).join(", ")}` : ""}${unknown.length > 0 ? ` name unknown tensors ${unknown.slice(0, 3).join(", ")}` : ""} (one per tensor of the ${model.layers}-layer model)`,
      );
    }
    for (const { sampleId, weights: w } of stated.get(name) ?? []) {
      const where = `record ${sampleId}/${name}`;
      if (w.bytesCompressed !== sums.bytes || w.bytesBaseline !== sums.baselineBytes) {
        failures.add(
          "E_CONSISTENCY_BYTES",
          `${where}: weights bytes ${w.bytesBaseline} -> ${w.bytesCompressed}, its tensor fingerprints sum to ${sums.baselineBytes} -> ${sums.bytes}`,
        );
      }
      if (
        w.parametersStored !== sums.parameters ||
        w.parametersBaseline * dtypeBytes(dtype) !== w.bytesBaseline
      ) {
        failures.add(
          "E_CONSISTENCY_WEIGHTS",
          `${where}: parameters ${w.parametersBaseline} -> ${w.parametersStored} disagree with the fingerprints (${sums.parameters} stored) or the ${dtype} baseline bytes`,
        );
      }
    }
  }
}
