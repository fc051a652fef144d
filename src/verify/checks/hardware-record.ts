/**
 * environment.json's hardwareCheck, recomputed: the memory requirement a run states is
 * arithmetic on the config's hardware knobs and the model's stated shapes
 * (src/hardware/requirement.ts), so verify computes it again and holds every stated part, the
 * total with its margin and the verdict to it. Only the machine's own figures (the process's
 * resident bytes, the available memory and where it was read) are the signer's word.
 *
 * Format version 3 on (run cost) records every input; an input the recomputation needs that is
 * missing fails (a producer could otherwise delete the one that shows its run did not fit).
 */
import { RUN_COST_FORMAT_VERSION } from "../../bundle/format.js";
import type { RunConfig } from "../../config/types.js";
import { memoryRequirement } from "../../hardware/requirement.js";
import type { GptNeoConfig } from "../../model/types.js";
import { isRecord } from "../parse.js";

/** The stated parts recomputed from the config and the model's shapes, exactly. */
const RECOMPUTED_PARTS = [
  "tokens",
  "parameters",
  "weightBytes",
  "loadBytes",
  "passRows",
  "kvBytes",
  "logitsBytes",
  "attentionBytes",
  "activationBytes",
  "weightsMethodBytes",
  "activationFactor",
  "logitsCopies",
  "kvCopies",
  "attentionCopies",
  "loadOverheadFraction",
  "fixedOverheadBytes",
] as const;

/** The machine's figure the recomputation starts from (the signer's word, but needed). */
const MEASURED_INPUTS = ["processBytes", "subtotalBytes"] as const;

/**
 * A term older producers counted that today's formula does not (the LM head's float32 copy,
 * before the head read the tied embedding in place): added to the subtotal when stated.
 */
const LEGACY_TERMS = ["headCopyBytes"] as const;

/** Float sums may differ in their last bits with the order of addition: a few ulps, not a tolerance. */
function closeAsFloats(a: number, b: number): boolean {
  return Math.abs(a - b) <= 8 * Number.EPSILON * Math.max(Math.abs(a), Math.abs(b));
}

/** The model config the requirement formula reads, from environment.json's stated shapes. */
function statedModel(model: Record<string, unknown>, tied: boolean): GptNeoConfig | undefined {
  const architecture = model.architecture;
  const { layers, heads, hiddenSize } = model;
  if (!isRecord(architecture)) return undefined;
  const { vocabSize, maxPositions, intermediateSize, activation } = architecture;
  if (
    typeof layers !== "number" ||
    typeof heads !== "number" ||
    typeof hiddenSize !== "number" ||
    typeof vocabSize !== "number" ||
    typeof maxPositions !== "number" ||
    typeof intermediateSize !== "number" ||
    typeof activation !== "string" ||
    heads <= 0
  )
    return undefined;
  return {
    vocabSize,
    hiddenSize,
    numLayers: layers,
    numHeads: heads,
    headDim: hiddenSize / heads,
    // Not read by the requirement: which layers are local changes no term of it.
    attentionLayers: Array.from({ length: layers }, () => "global" as const),
    windowSize: 0,
    maxPositions,
    intermediateSize,
    layerNormEpsilon: 0,
    activation,
    bosTokenId: undefined,
    eosTokenId: undefined,
    tieWordEmbeddings: tied,
  };
}

/**
 * What is wrong with environment.json's hardwareCheck against the requirement recomputed from
 * config.json and environment.json's model; empty when it holds. Bundles before format version 3
 * recorded other inputs: only their verdict and device are judged (by protocol).
 */
export function hardwareRecordProblems(
  hardwareCheck: unknown,
  config: unknown,
  model: unknown,
  version: unknown,
): string[] {
  if (typeof version !== "number" || version < RUN_COST_FORMAT_VERSION) return [];
  if (!isRecord(hardwareCheck) || !isRecord(hardwareCheck.inputs))
    return ["environment.json hardwareCheck.inputs is missing: the memory requirement cannot be recomputed"];
  const inputs = hardwareCheck.inputs;
  const missing = [...RECOMPUTED_PARTS, ...MEASURED_INPUTS].filter(
    (name) => typeof inputs[name] !== "number" || !Number.isFinite(inputs[name]),
  );
  if (missing.length > 0)
    return [
      `environment.json hardwareCheck.inputs lacks ${missing.join(", ")}: the memory requirement cannot be recomputed without them`,
    ];
  if (!isRecord(config) || !isRecord(model)) return [];
  const problems: string[] = [];
  const stated = inputs as Record<string, number>;
  // The LM head's tie is not stated: the parameter count says which one was counted.
  let recomputed: ReturnType<typeof memoryRequirement> | undefined;
  for (const tied of [true, false]) {
    const shapes = statedModel(model, tied);
    if (shapes === undefined) return problems; // schemas and consistency name the shapes
    try {
      const candidate = memoryRequirement(shapes, config as unknown as RunConfig, stated.processBytes);
      if (recomputed === undefined || candidate.parameters === stated.parameters) recomputed = candidate;
    } catch (error) {
      return [`the memory requirement cannot be recomputed from config.json: ${(error as Error).message}`];
    }
  }
  if (recomputed === undefined) return problems;
  for (const part of RECOMPUTED_PARTS) {
    if (!closeAsFloats(stated[part], recomputed[part]))
      problems.push(
        `hardwareCheck.inputs.${part} is ${stated[part]}; config.json and the model's shapes give ${recomputed[part]}`,
      );
  }
  const legacy = LEGACY_TERMS.reduce(
    (sum, name) => sum + (typeof inputs[name] === "number" ? (inputs[name] as number) : 0),
    0,
  );
  const subtotal = recomputed.subtotalBytes + legacy;
  if (!closeAsFloats(stated.subtotalBytes, subtotal))
    problems.push(
      `hardwareCheck.inputs.subtotalBytes is ${stated.subtotalBytes}; its parts add up to ${subtotal}`,
    );
  const margin = (config.hardware as { marginFraction?: unknown } | undefined)?.marginFraction;
  if (hardwareCheck.marginFraction !== margin)
    problems.push(
      `hardwareCheck.marginFraction is ${String(hardwareCheck.marginFraction)}; config.json hardware.marginFraction is ${String(margin)}`,
    );
  const required = Math.ceil(stated.subtotalBytes * (1 + (typeof margin === "number" ? margin : Number.NaN)));
  if (hardwareCheck.requiredBytes !== required)
    problems.push(
      `hardwareCheck.requiredBytes is ${String(hardwareCheck.requiredBytes)}; subtotal × (1 + margin) is ${required}`,
    );
  const available = hardwareCheck.availableBytes;
  if (hardwareCheck.verdict === "pass" && !(typeof available === "number" && available >= required))
    problems.push(
      `hardwareCheck.verdict is pass, but ${String(available)} bytes available is less than the ${required} required`,
    );
  return problems;
}
