/**
 * Run cost (issue 21): every number a record's runCost states is recomputed here from data
 * the other checks verify, or bounded, never taken on the producer's word.
 *   - executed weight bytes: the session's constants as src/model/executed.ts accounts them,
 *     rebuilt from the model's shapes (environment.json model: layers, heads, hidden size and
 *     model.architecture) and, for a weights method, the rank of each factorised tensor in its
 *     fingerprints; every KV method runs on the dense session, so it states the dense bytes;
 *   - executed KV bytes: the float32 past keys and values the graph read at the step with the
 *     most cached slots, 2 · heads · (slots + decode room) · headDim · 4 summed over layers,
 *     slots = the context for the baseline and a weights method, each layer fingerprint's
 *     slotsRead for a KV method; slotsRead is bounded by the layer's kept slots
 *     (ceil(tokensKept / heads) <= slotsRead <= min(tokensKept, tokensTotal / heads)) and
 *     replay re-derives it exactly with the other fingerprint fields;
 *   - token counts from the config (teacher-forced: continuationTokens − 1; decode steps:
 *     generation.tokens for a KV method, one fewer for a weights method, whose first token is
 *     its own prefill's), tokens per second recomputed from the record's timings, and the
 *     execution provider equal to environment.json's.
 * The timings themselves are measurements no verifier can recompute (docs/THREAT-MODEL.md);
 * replay re-times them here. A format version 3 bundle must carry all of it; an older one
 * carries none, which is a warning naming what is missing, not a pass.
 */

import { RUN_COST_FORMAT_VERSION } from "../../bundle/format.js";
import {
  type EnvironmentFile,
  type FingerprintLine,
  isWeightFingerprint,
  type LayerFingerprint,
  type SampleRecord,
} from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { executedKvBytes, executedWeightBytesOfShapes } from "../../model/executed.js";
import type { GptNeoConfig } from "../../model/types.js";
import { plannedRank } from "../../weights/memory.js";
import type { WeightsMethodParams } from "../../weights/method.js";
import { planCompression } from "../../weights/policy.js";
import { FailureCollector } from "../collect.js";
import { type Finding, pass, warn } from "../types.js";
import { numbersAgree } from "./recompute.js";

const CHECK = "executed-cost" as const;

/** Tokens per second are recomputed with the same formula: only another implementation's last bit may differ. */
const SPEED_RELATIVE_TOLERANCE = 1e-12;

export interface ExecutedCostInput {
  /** manifest.json's version. */
  version: number;
  config: RunConfig;
  environment: EnvironmentFile;
  records: readonly SampleRecord[];
  fingerprints: readonly FingerprintLine[];
}

/**
 * The model's config as far as the graph's constants depend on it: attention types, window
 * and epsilon are inputs or attributes, never constants, so placeholders stand in for them.
 */
function shapesConfig(model: EnvironmentFile["model"]): GptNeoConfig | undefined {
  const architecture = model.architecture;
  if (architecture === undefined || model.hiddenSize % model.heads !== 0) return undefined;
  return {
    vocabSize: architecture.vocabSize,
    hiddenSize: model.hiddenSize,
    numLayers: model.layers,
    numHeads: model.heads,
    headDim: model.hiddenSize / model.heads,
    attentionLayers: Array.from({ length: model.layers }, () => "global" as const),
    windowSize: 1,
    maxPositions: architecture.maxPositions,
    intermediateSize: architecture.intermediateSize,
    layerNormEpsilon: 0,
    activation: architecture.activation,
    bosTokenId: undefined,
    eosTokenId: undefined,
  };
}

function tokensPerSecond(tokens: number, ms: number): number {
  return tokens === 0 ? 0 : tokens / (ms / 1000);
}

export function checkExecutedCost(input: ExecutedCostInput): Finding[] {
  const { version, config, environment, records } = input;
  const failures = new FailureCollector(CHECK);
  const carrying = records.filter((record) => record.runCost !== undefined).length;
  const required = version >= RUN_COST_FORMAT_VERSION;
  if (!required && carrying === 0) {
    return [
      warn(
        CHECK,
        "W_EXECUTED_COST_ABSENT",
        `format version ${version} bundle: no run cost recorded (records' runCost, fingerprints' slotsRead, environment's model.architecture), so executed memory, speeds, executedMemoryRatio and decodeSpeedRatio are absent and no claim can name them`,
      ),
    ];
  }
  if (carrying !== records.length) {
    failures.add(
      "E_EXECUTED_BYTES",
      `${records.length - carrying} of ${records.length} records lack runCost${required ? ` (required from format version ${RUN_COST_FORMAT_VERSION})` : ""}`,
    );
  }
  const model = shapesConfig(environment.model);
  if (model === undefined) {
    failures.add(
      "E_EXECUTED_BYTES",
      "environment.json model.architecture is missing (or hiddenSize is not a multiple of heads): executed bytes cannot be derived",
    );
    return failures.findings();
  }

  const graphOptions = { observationWindow: config.kv.observationWindow };
  const denseWeights = executedWeightBytesOfShapes(model, graphOptions);
  const kinds = new Map(config.methods.map((method) => [method.name, method.kind]));
  const kvLayers = new Map<string, LayerFingerprint[]>();
  const ranks = new Map<string, Map<string, number>>();
  for (const line of input.fingerprints) {
    if (isWeightFingerprint(line)) {
      const methodRanks = ranks.get(line.method) ?? new Map<string, number>();
      if (line.encoding === "lowrank" && line.rank !== null) methodRanks.set(line.tensor, line.rank);
      ranks.set(line.method, methodRanks);
    } else {
      const key = `${line.sampleId}\u0000${line.method}`;
      const list = kvLayers.get(key) ?? [];
      list.push(line);
      kvLayers.set(key, list);
    }
  }
  // A factor's rank sets what its method executes: the policy's rank (fixed rank or fraction:
  // exact; energy threshold: at most its bound), so a rank stated smaller than that fails.
  for (const method of config.methods) {
    if (method.kind !== "weights") continue;
    const plans = new Map(
      planCompression(model, method.params as unknown as WeightsMethodParams).map((plan) => [
        plan.name,
        plan,
      ]),
    );
    for (const [tensor, rank] of ranks.get(method.name) ?? []) {
      const plan = plans.get(tensor);
      if (plan === undefined) continue;
      const planned = plannedRank(plan);
      if (planned.exact ? rank !== planned.rank : rank > planned.rank) {
        failures.add(
          "E_EXECUTED_BYTES",
          `weight fingerprint ${method.name}/${tensor}: rank ${rank}, the policy gives ${planned.exact ? "" : "at most "}${planned.rank}`,
        );
      }
    }
  }
  const weightsOf = new Map<string, number>();
  const methodWeights = (method: string) => {
    let bytes = weightsOf.get(method);
    if (bytes === undefined) {
      bytes = executedWeightBytesOfShapes(model, graphOptions, ranks.get(method) ?? new Map());
      weightsOf.set(method, bytes);
    }
    return bytes;
  };

  for (const record of records) {
    const cost = record.runCost;
    if (cost === undefined) continue;
    const where = `record ${record.sampleId}/${record.method}`;
    const weightsMethod = kinds.get(record.method) === "weights";
    // Weights methods decode from their own prefill's first token: one step fewer.
    const room = weightsMethod ? Math.max(0, config.generation.tokens - 1) : config.generation.tokens;
    const contextSlots = Array.from({ length: model.numLayers }, () => record.contextTokens + room);
    const baselineKv = executedKvBytes(model, contextSlots);
    const bytes = (name: string, stated: number, expected: number) => {
      if (stated !== expected)
        failures.add(
          "E_EXECUTED_BYTES",
          `${where}: ${name} ${stated}, the shapes and fingerprints give ${expected}`,
        );
    };
    bytes("baselineExecutedBytes.weights", cost.baselineExecutedBytes.weights, denseWeights);
    bytes("baselineExecutedBytes.kv", cost.baselineExecutedBytes.kv, baselineKv);
    if (weightsMethod) {
      bytes("executedBytes.weights", cost.executedBytes.weights, methodWeights(record.method));
      bytes("executedBytes.kv", cost.executedBytes.kv, baselineKv);
    } else {
      bytes("executedBytes.weights", cost.executedBytes.weights, denseWeights);
      const layers = kvLayers.get(`${record.sampleId}\u0000${record.method}`) ?? [];
      const slots = new Array<number>(model.numLayers).fill(Number.NaN);
      for (const layer of layers) {
        const read = layer.slotsRead;
        if (read === undefined) {
          failures.add("E_EXECUTED_BYTES", `${where} layer ${layer.layer}: fingerprint lacks slotsRead`);
          continue;
        }
        const low = Math.ceil(layer.tokensKept / model.numHeads);
        const high = Math.min(layer.tokensKept, Math.floor(layer.tokensTotal / model.numHeads));
        if (read < low || read > high) {
          failures.add(
            "E_EXECUTED_BYTES",
            `${where} layer ${layer.layer}: slotsRead ${read} outside [${low}, ${high}] for ${layer.tokensKept} kept slots over ${model.numHeads} heads`,
          );
        }
        if (layer.layer < model.numLayers) slots[layer.layer] = read + room;
      }
      if (slots.some((value) => Number.isNaN(value))) {
        failures.add(
          "E_EXECUTED_BYTES",
          `${where}: layer fingerprints do not cover the ${model.numLayers} layers`,
        );
      } else {
        bytes("executedBytes.kv", cost.executedBytes.kv, executedKvBytes(model, slots));
      }
    }

    const speed = (message: string) => failures.add("E_EXECUTED_SPEED", `${where}: ${message}`);
    if (cost.executionProvider !== environment.executionProvider) {
      speed(
        `execution provider ${cost.executionProvider}, environment.json says ${environment.executionProvider}`,
      );
    }
    if (cost.teacherForcedTokens !== record.continuationTokens - 1) {
      speed(
        `teacherForcedTokens ${cost.teacherForcedTokens}, the continuation feeds ${record.continuationTokens - 1}`,
      );
    }
    if (cost.decodeSteps !== room) {
      speed(`decodeSteps ${cost.decodeSteps}, the config's generation gives ${room}`);
    }
    const expected = {
      teacherForced: tokensPerSecond(cost.teacherForcedTokens, record.timingsMs.continuation),
      decode: tokensPerSecond(cost.decodeSteps, record.timingsMs.generation),
      baselineTeacherForced: tokensPerSecond(cost.teacherForcedTokens, cost.baselineTimingsMs.continuation),
      baselineDecode: tokensPerSecond(cost.decodeSteps, cost.baselineTimingsMs.generation),
    };
    for (const [field, value] of Object.entries(expected) as [keyof typeof expected, number][]) {
      const stated = cost.tokensPerSecond[field];
      if (!Number.isFinite(value) || !numbersAgree(stated, value, SPEED_RELATIVE_TOLERANCE)) {
        speed(`tokensPerSecond.${field} ${stated}, its tokens and timings give ${value}`);
      }
    }
  }
  if (failures.size > 0) return failures.findings();
  return [
    pass(
      CHECK,
      `executed bytes of ${records.length} records follow from the model's shapes and the fingerprints; their speeds from their timings (timed on ${environment.executionProvider}, not re-timed here)`,
    ),
  ];
}
