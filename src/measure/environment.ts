/**
 * environment.json: where and with what a run was measured — the machine (systeminformation),
 * runtime versions, exact package versions, the hardware check, the model files and the data.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { RunConfig } from "../config/types.js";
import type { DatasetIdentity, Sample } from "../data/types.js";
import { type HardwareCheck, hardwareCheckRecord } from "../hardware/check.js";
import type { HardwareSnapshot } from "../hardware/probe.js";
import type { GptNeoCheckpoint } from "../model/types.js";
import { packageRoot } from "../paths.js";

/** Installed version of each runtime dependency, read from its own package.json. */
export function installedPackageVersions(): Record<string, string> {
  const root = packageRoot();
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  const require = createRequire(join(root, "package.json"));
  const versions: Record<string, string> = {};
  for (const name of Object.keys(manifest.dependencies ?? {}).sort()) {
    let dir: string;
    try {
      dir = join(require.resolve(`${name}/package.json`), "..");
    } catch {
      // Packages whose exports hide package.json: find it beside the resolved entry's node_modules path.
      dir = join(root, "node_modules", name);
    }
    versions[name] = (
      JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }
    ).version;
  }
  return versions;
}

export interface EnvironmentInputs {
  config: RunConfig;
  snapshot: HardwareSnapshot;
  check: HardwareCheck;
  executionProvider: string;
  modelPath: string;
  checkpoint: GptNeoCheckpoint;
  evaluationSplit: DatasetIdentity;
  calibrationSplit: DatasetIdentity;
  evaluation: readonly Sample[];
  calibration: readonly Sample[];
}

export function buildEnvironment(inputs: EnvironmentInputs): Record<string, unknown> {
  const { snapshot, check, checkpoint } = inputs;
  const packages = installedPackageVersions();
  return {
    os: snapshot.os,
    cpu: snapshot.cpu,
    memory: snapshot.memory,
    gpus: snapshot.gpus.map((gpu) => ({ ...gpu, vram: gpu.vramMiB })),
    node: process.version,
    onnxruntime: ort.env.versions.node ?? packages["onnxruntime-node"],
    executionProvider: inputs.executionProvider,
    packages,
    hardwareCheck: hardwareCheckRecord(check),
    model: {
      path: inputs.modelPath,
      sha256: checkpoint.sha256,
      files: checkpoint.files,
      layers: checkpoint.config.numLayers,
      heads: checkpoint.config.numHeads,
      hiddenSize: checkpoint.config.hiddenSize,
      // The rest of the shapes the session's executed bytes follow from (verify's executed-cost check).
      architecture: {
        vocabSize: checkpoint.config.vocabSize,
        maxPositions: checkpoint.config.maxPositions,
        intermediateSize: checkpoint.config.intermediateSize,
        activation: checkpoint.config.activation,
        // Written only for an untied head, so a tied model's environment.json is as before.
        ...(checkpoint.config.tieWordEmbeddings === false ? { tieWordEmbeddings: false as const } : {}),
      },
    },
    dataset: {
      source: inputs.config.dataset.source,
      split: inputs.evaluationSplit.split,
      calibrationSplit: inputs.calibrationSplit.split,
      sha256: inputs.evaluationSplit.sha256,
      calibrationSha256: inputs.calibrationSplit.sha256,
      documents: inputs.evaluationSplit.documents,
      ...datasetFormat(inputs.evaluationSplit, inputs.calibrationSplit),
    },
    calibration: { samples: inputs.calibration.map(({ sampleId, tokenHash }) => ({ sampleId, tokenHash })) },
    evaluation: { samples: inputs.evaluation.map(({ sampleId, tokenHash }) => ({ sampleId, tokenHash })) },
  };
}

/**
 * How the splits were read (added fields, absent from older bundles): the format, the file
 * as downloaded (path as configured, bytes, sha256) for each split, the text field or column,
 * the row layout and the sampling rule, so a verifier can find the same files and redraw.
 */
function datasetFormat(evaluation: DatasetIdentity, calibration: DatasetIdentity): Record<string, unknown> {
  return {
    format: evaluation.format,
    sampling: evaluation.sampling,
    ...(evaluation.file ? { file: evaluation.file } : {}),
    ...(calibration.file ? { calibrationFile: calibration.file } : {}),
    ...(evaluation.textField !== undefined ? { textField: evaluation.textField } : {}),
    ...(evaluation.layout !== undefined ? { layout: evaluation.layout } : {}),
  };
}
