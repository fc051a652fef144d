import { RECORDED_DRAW_RULE_FORMAT_VERSION } from "../../bundle/format.js";
import type { RunConfig } from "../../config/types.js";
import { currentSamplingRule } from "../../data/draw.js";
import { checkpointSha256 } from "../../model/checkpoint.js";
import type { CheckpointFile } from "../../model/types.js";
import { FailureCollector } from "../collect.js";
import { isRecord } from "../parse.js";
import { type Finding, fail, pass } from "../types.js";
import { hardwareRecordProblems } from "./hardware-record.js";

const CHECK = "protocol" as const;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface ProtocolInput {
  /** Parsed config.json, environment.json and records.jsonl lines; read defensively, so
   * this check still speaks when a file is schema-invalid (a missing model hash is named as such). */
  config: unknown;
  environment: unknown;
  /** The lines (an array), or the records already folded line by line (ProtocolRecordsFold). */
  records: unknown;
  /** manifest.json's format version (1 when absent). */
  version?: unknown;
}

/**
 * Whether environment.json's draw rule is one a producer of this format version could have
 * recorded for this source. The draw check redraws with the stated rule, so a rule a current
 * prove never uses would let a producer pick between two draws of one seed.
 */
export function drawRuleProblem(source: unknown, sampling: unknown, version: unknown): string | undefined {
  if (typeof source !== "string") return undefined;
  const rule = currentSamplingRule(source as RunConfig["dataset"]["source"]);
  const recorded = typeof version === "number" && version >= RECORDED_DRAW_RULE_FORMAT_VERSION;
  if (sampling === rule) return undefined;
  if (sampling === undefined && !recorded) return undefined;
  // Before the rule was recorded local sources were read whole and drawn by "pool"; between its
  // recording and version 3, by "stream": either may stand in an older bundle.
  if (!recorded && source !== "brown" && (sampling === "pool" || sampling === "stream")) return undefined;
  return `environment.json dataset.sampling is ${JSON.stringify(sampling)}; a format version ${String(version ?? 1)} bundle of a ${source} source is drawn by ${JSON.stringify(rule)}${recorded ? " and records it" : ""}`;
}

function sampleList(
  environment: Record<string, unknown>,
  role: "calibration" | "evaluation",
): unknown[] | undefined {
  const list = environment[role];
  return isRecord(list) && Array.isArray(list.samples) ? list.samples : undefined;
}

function get(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (!isRecord(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

/** The listed evaluation samples by id and by hash; `failures` (when given) hears of malformed and repeated ones. */
function indexEvaluation(
  evaluation: unknown[] | undefined,
  failures?: FailureCollector,
): { byId: Map<string, string>; positionOf: Map<string, number>; hashes: Set<string> } {
  const byId = new Map<string, string>();
  const positionOf = new Map<string, number>();
  const hashes = new Set<string>();
  for (const [position, sample] of (evaluation ?? []).entries()) {
    const id = get(sample, "sampleId");
    const hash = get(sample, "tokenHash");
    if (typeof id !== "string" || typeof hash !== "string" || !SHA256_HEX.test(hash)) {
      failures?.add(
        "E_PROTOCOL_SAMPLES",
        `evaluation sample ${JSON.stringify(sample)} lacks a sampleId or sha256 tokenHash`,
      );
      continue;
    }
    if (hashes.has(hash) || byId.has(id)) {
      failures?.add(
        "E_PROTOCOL_DUPLICATE_SAMPLE",
        `evaluation sample ${id} (${hash}) is listed more than once`,
      );
    }
    hashes.add(hash);
    byId.set(id, hash);
    if (!positionOf.has(id)) positionOf.set(id, position);
  }
  return { byId, positionOf, hashes };
}

/**
 * Every record scores a listed evaluation sample, at its place in the list: folded one parsed records.jsonl line at a
 * time (read defensively: a schema-invalid line is judged too).
 */
export class ProtocolRecordsFold {
  readonly failures = new FailureCollector(CHECK);
  private readonly evaluationById: Map<string, string>;
  private readonly positionOf: Map<string, number>;

  constructor(environment: unknown) {
    const evaluation = isRecord(environment) ? sampleList(environment, "evaluation") : undefined;
    const index = indexEvaluation(evaluation);
    this.evaluationById = index.byId;
    this.positionOf = index.positionOf;
  }

  record(record: unknown): void {
    const id = get(record, "sampleId");
    const hash = get(record, "tokenHash");
    if (typeof id !== "string" || this.evaluationById.get(id) !== hash) {
      this.failures.add(
        "E_PROTOCOL_UNKNOWN_SAMPLE",
        `record ${String(id)}/${String(get(record, "method"))}: tokenHash ${String(hash)} is not that of a listed evaluation sample`,
      );
      return;
    }
    // The summary and its bootstrap order records by sampleIndex: it must be the sample's place
    // in the draw, or a producer could reorder samples to move an interval (also without the
    // dataset here, where the draw check cannot look).
    const sampleIndex = get(record, "sampleIndex");
    const position = this.positionOf.get(id);
    if (sampleIndex !== position) {
      this.failures.add(
        "E_PROTOCOL_SAMPLE_INDEX",
        `record ${id}/${String(get(record, "method"))}: sampleIndex ${String(sampleIndex)}, but ${id} is evaluation sample ${String(position)} in environment.json`,
      );
    }
  }
}

/**
 * The evaluation protocol held: evaluation and calibration samples are disjoint by token hash
 * (no tuning on the tokens scored; different splits), counts are as configured, every record
 * scores a listed evaluation sample, the model and both dataset splits are identified by
 * sha256, and the run used the configured device with a passing hardware check.
 */
export function checkProtocol(input: ProtocolInput): Finding[] {
  const { config, environment, records } = input;
  if (!isRecord(environment))
    return [fail(CHECK, "E_PROTOCOL_NO_ENVIRONMENT", "environment.json is missing or not an object")];
  const failures = new FailureCollector(CHECK);

  const evaluation = sampleList(environment, "evaluation");
  const calibration = sampleList(environment, "calibration");
  if (evaluation === undefined || calibration === undefined) {
    failures.add(
      "E_PROTOCOL_SAMPLES",
      "environment.json must list evaluation.samples and calibration.samples",
    );
  }
  const evaluationHashes = indexEvaluation(evaluation, failures).hashes;
  for (const sample of calibration ?? []) {
    const id = get(sample, "sampleId");
    const hash = get(sample, "tokenHash");
    if (typeof hash !== "string" || !SHA256_HEX.test(hash)) {
      failures.add(
        "E_PROTOCOL_SAMPLES",
        `calibration sample ${JSON.stringify(sample)} lacks a sha256 tokenHash`,
      );
    } else if (evaluationHashes.has(hash)) {
      failures.add(
        "E_PROTOCOL_LEAK",
        `calibration sample ${String(id)} has the same tokens (${hash}) as an evaluation sample: tuned on what is scored`,
      );
    }
  }

  const samples = get(config, "dataset", "samples");
  const calibrationSamples = get(config, "dataset", "calibrationSamples");
  if (evaluation !== undefined && evaluation.length !== samples) {
    failures.add(
      "E_PROTOCOL_SAMPLE_COUNT",
      `${evaluation.length} evaluation samples; config.dataset.samples is ${String(samples)}`,
    );
  }
  if (calibration !== undefined && calibration.length !== calibrationSamples) {
    failures.add(
      "E_PROTOCOL_SAMPLE_COUNT",
      `${calibration.length} calibration samples; config.dataset.calibrationSamples is ${String(calibrationSamples)}`,
    );
  }

  if (records instanceof ProtocolRecordsFold) failures.absorb(records.failures);
  else if (Array.isArray(records)) {
    const fold = new ProtocolRecordsFold(environment);
    for (const record of records) fold.record(record);
    failures.absorb(fold.failures);
  }

  const modelHash = get(environment, "model", "sha256");
  const modelFiles = get(environment, "model", "files");
  if (typeof modelHash !== "string" || !SHA256_HEX.test(modelHash)) {
    failures.add("E_PROTOCOL_MODEL_HASH", "environment.json has no sha256 of the model (model.sha256)");
  }
  if (
    !Array.isArray(modelFiles) ||
    modelFiles.length === 0 ||
    modelFiles.some((file) => {
      const hash = get(file, "sha256");
      return typeof hash !== "string" || !SHA256_HEX.test(hash);
    })
  ) {
    failures.add(
      "E_PROTOCOL_MODEL_HASH",
      "environment.json must list the model's files, each with its sha256 (model.files)",
    );
  } else if (
    typeof modelHash === "string" &&
    modelHash !== checkpointSha256(modelFiles as CheckpointFile[])
  ) {
    // The identity replay matches is model.sha256: the files a reviewer compares must be its files.
    failures.add(
      "E_PROTOCOL_MODEL_HASH",
      "environment.json model.sha256 is not the identity of model.files (sha256 of their sorted sha256 digests joined by newlines)",
    );
  }
  const datasetHash = get(environment, "dataset", "sha256");
  const calibrationHash = get(environment, "dataset", "calibrationSha256");
  for (const [field, hash] of [
    ["dataset.sha256", datasetHash],
    ["dataset.calibrationSha256", calibrationHash],
  ] as const) {
    if (typeof hash !== "string" || !SHA256_HEX.test(hash)) {
      failures.add(
        "E_PROTOCOL_DATASET_HASH",
        `environment.json has no sha256 of the dataset split (${field})`,
      );
    }
  }
  const split = get(config, "dataset", "split");
  const calibrationSplit = get(config, "dataset", "calibrationSplit");
  if (typeof calibrationSamples === "number" && calibrationSamples > 0) {
    if (split === calibrationSplit || (typeof datasetHash === "string" && datasetHash === calibrationHash)) {
      failures.add(
        "E_PROTOCOL_SAME_SPLIT",
        `calibration and evaluation come from the same split (${String(split)}): calibrate on a split never scored`,
      );
    }
  }
  for (const field of ["source", "split", "calibrationSplit"]) {
    const stated = get(environment, "dataset", field);
    const configured = get(config, "dataset", field);
    if (stated !== configured) {
      failures.add(
        "E_PROTOCOL_DATASET_IDENTITY",
        `environment.json dataset.${field} is ${JSON.stringify(stated)}; config.json says ${JSON.stringify(configured)}`,
      );
    }
  }

  const ruleProblem = drawRuleProblem(
    get(config, "dataset", "source"),
    get(environment, "dataset", "sampling"),
    input.version,
  );
  if (ruleProblem !== undefined) failures.add("E_PROTOCOL_DRAW_RULE", ruleProblem);

  const device = get(config, "model", "device");
  if (get(environment, "hardwareCheck", "verdict") !== "pass") {
    failures.add(
      "E_PROTOCOL_HARDWARE_CHECK",
      "the hardware check did not pass (environment.json hardwareCheck.verdict)",
    );
  }
  for (const problem of hardwareRecordProblems(
    environment.hardwareCheck,
    config,
    environment.model,
    input.version,
  )) {
    failures.add("E_PROTOCOL_HARDWARE_INPUTS", problem);
  }
  if (
    get(environment, "hardwareCheck", "device") !== device ||
    get(environment, "executionProvider") !== device
  ) {
    failures.add(
      "E_PROTOCOL_DEVICE",
      `config asks for device ${String(device)}, but the run checked ${String(get(environment, "hardwareCheck", "device"))} and used ${String(get(environment, "executionProvider"))}`,
    );
  }

  if (failures.size > 0) return failures.findings();
  return [
    pass(
      CHECK,
      `${evaluationHashes.size} evaluation and ${calibration?.length ?? 0} calibration samples, disjoint; model and dataset hashed`,
    ),
  ];
}
