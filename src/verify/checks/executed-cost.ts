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

import { headLayoutOfVersion, RUN_COST_FORMAT_VERSION } from "../../bundle/format.js";
import {
  type EnvironmentFile,
  type FingerprintLine,
  isWeightFingerprint,
  type LayerFingerprint,
  type SampleRecord,
} from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { executedKvBytes, executedWeightBytesOfShapes } from "../../model/executed.js";
import type { GraphOptions } from "../../model/graph.js";
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
/** The model config environment.json's shapes give (the executed bytes follow from it); undefined before version 3. */
export function shapesConfig(model: EnvironmentFile["model"]): GptNeoConfig | undefined {
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
    ...(architecture.tieWordEmbeddings === false ? { tieWordEmbeddings: false } : {}),
  };
}

function tokensPerSecond(tokens: number, ms: number): number {
  return tokens === 0 ? 0 : tokens / (ms / 1000);
}

/** A KV record's stated executed KV bytes, and what its layer fingerprints add up to. */
interface KvRecordCost {
  stated: number;
  room: number;
  sum: number;
  layers: number;
}

/** Where a KV fingerprint line is, for a failure's words (made only then: most lines fail nothing). */
function recordLayerWhere(line: LayerFingerprint): string {
  return `record ${line.sampleId}/${line.method} layer ${line.layer}`;
}

/**
 * The check as a fold (verify streams records.jsonl, then fingerprints.jsonl, through it): each
 * record is judged as it arrives against the model's shapes and the config; what needs the
 * fingerprints (a KV record's cache, a weights method's factor ranks) is kept as one number per
 * record or per method and settled in findings().
 */
export class ExecutedCostFold {
  private readonly failures = new FailureCollector(CHECK);
  private readonly model: GptNeoConfig | undefined;
  private readonly graphOptions: GraphOptions;
  private readonly denseWeights: number;
  private readonly kinds: Map<string, string>;
  private records = 0;
  private carrying = 0;
  /** KV records: stated executed KV bytes, and what their layer fingerprints add up to. */
  private readonly kvRecords = new Map<string, KvRecordCost>();
  /** The same entries by sample, then method: a fingerprint line finds its record without building a key. */
  private readonly kvRecordsBySample = new Map<string, Map<string, KvRecordCost>>();
  /** Weights methods: the executed weight bytes their records state (one value each, when they agree). */
  private readonly statedWeights = new Map<string, Set<number>>();
  private readonly ranks = new Map<string, Map<string, number>>();
  /** The baseline's executed KV bytes per cached slot count (every record of a run shares one or two). */
  private readonly baselineKvBySlots = new Map<number, number>();

  constructor(private readonly input: Omit<ExecutedCostInput, "records" | "fingerprints">) {
    this.model = shapesConfig(input.environment.model);
    // The graph the bundle's version was proved with (version 3 and before: the head's transposed copy).
    this.graphOptions = {
      observationWindow: input.config.kv.observationWindow,
      headLayout: headLayoutOfVersion(input.version),
    };
    this.denseWeights =
      this.model === undefined ? 0 : executedWeightBytesOfShapes(this.model, this.graphOptions);
    this.kinds = new Map(input.config.methods.map((method) => [method.name, method.kind]));
  }

  record(record: SampleRecord): void {
    this.records += 1;
    const cost = record.runCost;
    const model = this.model;
    if (cost === undefined || model === undefined) return;
    this.carrying += 1;
    const { config, environment } = this.input;
    const failures = this.failures;
    const where = `record ${record.sampleId}/${record.method}`;
    const weightsMethod = this.kinds.get(record.method) === "weights";
    // Weights methods decode from their own prefill's first token: one step fewer.
    const room = weightsMethod ? Math.max(0, config.generation.tokens - 1) : config.generation.tokens;
    const slots = record.contextTokens + room;
    let baselineKv = this.baselineKvBySlots.get(slots);
    if (baselineKv === undefined) {
      baselineKv = executedKvBytes(
        model,
        Array.from({ length: model.numLayers }, () => slots),
      );
      this.baselineKvBySlots.set(slots, baselineKv);
    }
    const bytes = (name: string, stated: number, expected: number) => {
      if (stated !== expected)
        failures.add(
          "E_EXECUTED_BYTES",
          `${where}: ${name} ${stated}, the shapes and fingerprints give ${expected}`,
        );
    };
    bytes("baselineExecutedBytes.weights", cost.baselineExecutedBytes.weights, this.denseWeights);
    bytes("baselineExecutedBytes.kv", cost.baselineExecutedBytes.kv, baselineKv);
    if (weightsMethod) {
      const stated = this.statedWeights.get(record.method) ?? new Set<number>();
      stated.add(cost.executedBytes.weights);
      this.statedWeights.set(record.method, stated);
      bytes("executedBytes.kv", cost.executedBytes.kv, baselineKv);
    } else {
      bytes("executedBytes.weights", cost.executedBytes.weights, this.denseWeights);
      const entry = { stated: cost.executedBytes.kv, room, sum: 0, layers: 0 };
      this.kvRecords.set(`${record.sampleId}\u0000${record.method}`, entry);
      const methods = this.kvRecordsBySample.get(record.sampleId) ?? new Map<string, KvRecordCost>();
      methods.set(record.method, entry);
      this.kvRecordsBySample.set(record.sampleId, methods);
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
    if (cost.decodeSteps !== room)
      speed(`decodeSteps ${cost.decodeSteps}, the config's generation gives ${room}`);
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

  fingerprint(line: FingerprintLine): void {
    const model = this.model;
    if (model === undefined) return;
    if (isWeightFingerprint(line)) {
      const methodRanks = this.ranks.get(line.method) ?? new Map<string, number>();
      if (line.encoding === "lowrank" && line.rank !== null) methodRanks.set(line.tensor, line.rank);
      this.ranks.set(line.method, methodRanks);
      return;
    }
    const entry = this.kvRecordsBySample.get(line.sampleId)?.get(line.method);
    const read = line.slotsRead;
    if (read === undefined) {
      if (this.input.version >= RUN_COST_FORMAT_VERSION || entry !== undefined)
        this.failures.add("E_EXECUTED_BYTES", `${recordLayerWhere(line)}: fingerprint lacks slotsRead`);
      return;
    }
    const low = Math.ceil(line.tokensKept / model.numHeads);
    const high = Math.min(line.tokensKept, Math.floor(line.tokensTotal / model.numHeads));
    if (read < low || read > high) {
      this.failures.add(
        "E_EXECUTED_BYTES",
        `${recordLayerWhere(line)}: slotsRead ${read} outside [${low}, ${high}] for ${line.tokensKept} kept slots over ${model.numHeads} heads`,
      );
    }
    if (entry === undefined) return;
    entry.sum += executedKvBytes(model, [read + entry.room]);
    entry.layers += 1;
  }

  findings(): Finding[] {
    const { version } = this.input;
    const required = version >= RUN_COST_FORMAT_VERSION;
    if (!required && this.carrying === 0) {
      return [
        warn(
          CHECK,
          "W_EXECUTED_COST_ABSENT",
          `format version ${version} bundle: no run cost recorded (records' runCost, fingerprints' slotsRead, environment's model.architecture), so executed memory, speeds, executedMemoryRatio and decodeSpeedRatio are absent and no claim can name them`,
        ),
      ];
    }
    const failures = this.failures;
    const model = this.model;
    if (model === undefined) {
      failures.add(
        "E_EXECUTED_BYTES",
        "environment.json model.architecture is missing (or hiddenSize is not a multiple of heads): executed bytes cannot be derived",
      );
      return failures.findings();
    }
    if (this.carrying !== this.records) {
      failures.add(
        "E_EXECUTED_BYTES",
        `${this.records - this.carrying} of ${this.records} records lack runCost${required ? ` (required from format version ${RUN_COST_FORMAT_VERSION})` : ""}`,
      );
    }
    for (const [key, entry] of this.kvRecords) {
      const where = `record ${key.replace("\u0000", "/")}`;
      if (entry.layers !== model.numLayers) {
        failures.add(
          "E_EXECUTED_BYTES",
          `${where}: layer fingerprints do not cover the ${model.numLayers} layers`,
        );
      } else if (entry.stated !== entry.sum) {
        failures.add(
          "E_EXECUTED_BYTES",
          `${where}: executedBytes.kv ${entry.stated}, the shapes and fingerprints give ${entry.sum}`,
        );
      }
    }
    for (const method of this.input.config.methods) {
      if (method.kind !== "weights") continue;
      const methodRanks = this.ranks.get(method.name) ?? new Map<string, number>();
      // A factor's rank sets what its method executes: the policy's rank (fixed rank or fraction:
      // exact; energy threshold: at most its bound), so a rank stated smaller than that fails.
      const plans = new Map(
        planCompression(model, method.params as unknown as WeightsMethodParams).map((plan) => [
          plan.name,
          plan,
        ]),
      );
      for (const [tensor, rank] of methodRanks) {
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
      const stated = this.statedWeights.get(method.name);
      if (stated === undefined) continue;
      const expected = executedWeightBytesOfShapes(model, this.graphOptions, methodRanks);
      for (const value of stated) {
        if (value !== expected)
          failures.add(
            "E_EXECUTED_BYTES",
            `records of ${method.name}: executedBytes.weights ${value}, the shapes and fingerprints give ${expected}`,
          );
      }
    }
    if (failures.size > 0) return failures.findings();
    return [
      pass(
        CHECK,
        `executed bytes of ${this.records} records follow from the model's shapes and the fingerprints; their speeds from their timings (timed on ${this.input.environment.executionProvider}, not re-timed here)`,
      ),
    ];
  }
}

/** The check over records and fingerprints held in memory (the fold, fed in stream order). */
export function checkExecutedCost(input: ExecutedCostInput): Finding[] {
  const fold = new ExecutedCostFold(input);
  for (const record of input.records) fold.record(record);
  for (const line of input.fingerprints) fold.fingerprint(line);
  return fold.findings();
}
