/**
 * The draw, re-derived here without the model: the evaluation and calibration samples are
 * drawn again from the dataset + tokenizer + config seed (src/data/sampling.ts's rule), and
 * environment.json's lists and every record's sample identity must be exactly what that
 * gives. So a producer cannot drop an unflattering sample, swap one for a friendlier window,
 * or invent calibration hashes: only the seed and counts are theirs, and those are signed.
 *
 * The dataset is only ever one the verifier names: the bundled Brown corpus for
 * `source: brown`, otherwise the files given to verify (--dataset-path, --calibration-path),
 * each checked against the bundle's sha256. A path inside the bundle is never read. Without
 * the dataset the check is a warning ("not checked"), never a pass.
 */
import type { SampleRecord } from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { loadBrownSplitNamed } from "../../data/brown.js";
import { type LocalSource, loadLocalSplit } from "../../data/sources.js";
import type { DatasetSplit, Sample } from "../../data/types.js";
import { isSpgError } from "../../errors.js";
import { drawRunSamples } from "../../measure/prove.js";
import { FailureCollector } from "../collect.js";
import { type EnvironmentFile, type Finding, fail, pass, type SampleHash, warn } from "../types.js";

const CHECK = "draw" as const;

/** Dataset files the verifier names for bundles whose dataset is not the bundled corpus. */
export interface VerifierDataset {
  /** The evaluation split's file or directory. */
  path?: string;
  /** The calibration split's file or directory. */
  calibrationPath?: string;
}

type SplitsHere =
  | { kind: "available"; evaluation: DatasetSplit; calibration: DatasetSplit }
  | { kind: "unavailable"; reason: string }
  | { kind: "failed"; finding: Finding };

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The splits the verifier holds for this bundle, each checked against the bundle's hash. */
export function verifierSplits(
  config: RunConfig,
  environment: EnvironmentFile,
  dataset: VerifierDataset = {},
): SplitsHere {
  const source = config.dataset.source;
  let evaluation: DatasetSplit;
  let calibration: DatasetSplit;
  try {
    if (source === "brown") {
      evaluation = loadBrownSplitNamed(config.dataset.split, "dataset.split");
      calibration = loadBrownSplitNamed(config.dataset.calibrationSplit, "dataset.calibrationSplit");
    } else {
      if (dataset.path === undefined || dataset.calibrationPath === undefined) {
        return {
          kind: "unavailable",
          reason: `the bundle's ${source} dataset is not available here (give it with --dataset-path and --calibration-path)`,
        };
      }
      const options = { textField: config.dataset.textField };
      evaluation = loadLocalSplit(source as LocalSource, dataset.path, config.dataset.split, options);
      calibration = loadLocalSplit(
        source as LocalSource,
        dataset.calibrationPath,
        config.dataset.calibrationSplit,
        options,
      );
    }
  } catch (error) {
    if (!isSpgError(error)) throw error;
    return {
      kind: "failed",
      finding: fail(CHECK, "E_DRAW_DATASET", `the dataset named cannot be read here: ${error.message}`, {
        cause: error.code,
      }),
    };
  }
  const mismatched = [
    ["evaluation", evaluation, environment.dataset.sha256],
    ["calibration", calibration, environment.dataset.calibrationSha256],
  ].filter(([, split, expected]) => (split as DatasetSplit).sha256 !== expected);
  if (mismatched.length > 0) {
    return {
      kind: "failed",
      finding: fail(
        CHECK,
        "E_DRAW_DATASET_MISMATCH",
        `the ${mismatched.map(([role]) => role).join(" and ")} split here is not the one the bundle was measured on (sha256 differs)`,
        Object.fromEntries(
          mismatched.map(([role, split, expected]) => [
            role,
            { expected, here: (split as DatasetSplit).sha256 },
          ]),
        ),
      ),
    };
  }
  return { kind: "available", evaluation, calibration };
}

function listDifferences(
  role: string,
  stated: readonly SampleHash[],
  drawn: readonly Sample[],
  out: FailureCollector,
) {
  if (stated.length !== drawn.length) {
    out.add(
      "E_DRAW_MISMATCH",
      `environment.json lists ${stated.length} ${role} samples; the draw gives ${drawn.length}`,
    );
  }
  for (let i = 0; i < Math.min(stated.length, drawn.length); i++) {
    if (stated[i].sampleId !== drawn[i].sampleId || stated[i].tokenHash !== drawn[i].tokenHash) {
      out.add(
        "E_DRAW_MISMATCH",
        `${role} sample ${i}: environment.json has ${stated[i].sampleId} (${stated[i].tokenHash}); the draw gives ${drawn[i].sampleId} (${drawn[i].tokenHash})`,
      );
    }
  }
}

export interface DrawInput {
  config: RunConfig;
  environment: EnvironmentFile;
  records: readonly SampleRecord[];
  dataset?: VerifierDataset;
  /** A shard's samples (shard.json): only these must have records. Default: every drawn sample. */
  recordedSampleIds?: readonly string[];
}

export interface DrawResult {
  findings: Finding[];
  /** The evaluation samples as drawn here (with their tokens), when the dataset is available. */
  evaluation?: Sample[];
}

/** Redraw the samples and compare them with everything the bundle says about them. */
export function checkDraw(input: DrawInput): DrawResult {
  const { config, environment, records } = input;
  const splits = verifierSplits(config, environment, input.dataset);
  if (splits.kind === "unavailable")
    return { findings: [warn(CHECK, "W_DRAW_NOT_CHECKED", `not checked: ${splits.reason}`)] };
  if (splits.kind === "failed") return { findings: [splits.finding] };

  let drawn: { evaluation: Sample[]; calibration: Sample[] };
  try {
    drawn = drawRunSamples(config, splits.evaluation, splits.calibration);
  } catch (error) {
    if (!isSpgError(error)) throw error;
    return {
      findings: [
        fail(
          CHECK,
          "E_DRAW_FAILED",
          `the config's draw cannot be made from this dataset: ${errorText(error)}`,
          {
            cause: error.code,
          },
        ),
      ],
    };
  }
  const failures = new FailureCollector(CHECK);
  listDifferences("evaluation", environment.evaluation.samples, drawn.evaluation, failures);
  listDifferences("calibration", environment.calibration.samples, drawn.calibration, failures);
  if (environment.dataset.documents !== splits.evaluation.documents.length) {
    failures.add(
      "E_DRAW_MISMATCH",
      `environment.json says the evaluation split has ${environment.dataset.documents} documents; it has ${splits.evaluation.documents.length}`,
    );
  }
  const byId = new Map(drawn.evaluation.map((sample) => [sample.sampleId, sample]));
  const covered = new Set<string>();
  for (const record of records) {
    const sample = byId.get(record.sampleId);
    const where = `record ${record.sampleId}/${record.method}`;
    if (sample === undefined) {
      failures.add("E_DRAW_RECORD", `${where}: no such sample in the draw`);
      continue;
    }
    covered.add(sample.sampleId);
    const differs: string[] = (["tokenHash", "document", "offset"] as const).filter(
      (field) => record[field] !== sample[field],
    );
    if (record.sampleIndex !== sample.index) differs.push("sampleIndex");
    if (differs.length > 0) {
      failures.add("E_DRAW_RECORD", `${where}: ${differs.join(", ")} differ from the sample drawn here`);
    }
  }
  const recorded = input.recordedSampleIds === undefined ? undefined : new Set(input.recordedSampleIds);
  for (const sample of drawn.evaluation) {
    if (recorded !== undefined && !recorded.has(sample.sampleId)) continue;
    if (!covered.has(sample.sampleId))
      failures.add("E_DRAW_RECORD", `drawn sample ${sample.sampleId} has no record`);
  }
  if (failures.size > 0) return { findings: failures.findings(), evaluation: drawn.evaluation };
  return {
    findings: [
      pass(
        CHECK,
        `${drawn.evaluation.length} evaluation and ${drawn.calibration.length} calibration samples re-drawn here from ` +
          `${config.dataset.source === "brown" ? "the bundled Brown corpus" : "the dataset given"} (sha256 checked): identical`,
      ),
    ],
    evaluation: drawn.evaluation,
  };
}
