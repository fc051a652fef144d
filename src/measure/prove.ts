/**
 * `spg prove` as a library: config -> hardware check -> model -> dataset -> per-sample
 * evaluation -> summary -> signed bundle (docs/ARCHITECTURE.md "The data path").
 */
import { resolve } from "node:path";
import { refuseExisting } from "../bundle/atomic.js";
import type { SigningKey } from "../bundle/keys.js";
import { selectShard, shardMarker } from "../bundle/shards.js";
import { readToolInfo } from "../bundle/tool-info.js";
import type { SampleRecord, Summary } from "../bundle/types.js";
import { type WrittenBundle, writeBundle } from "../bundle/write.js";
import { checkConfigAgainstModel, type ResolveOptions, resolveConfig } from "../config/load.js";
import type { ShardSpec } from "../config/shard.js";
import { applySweep } from "../config/sweep.js";
import type { RunConfig } from "../config/types.js";
import type { HardwareCheck } from "../hardware/check.js";
import { runHardwareCheck } from "../hardware/check.js";
import type { HardwareProbe, HardwareSnapshot } from "../hardware/probe.js";
import { memoryRequirement } from "../hardware/requirement.js";
import { readCheckpoint } from "../model/checkpoint.js";
import { readGptNeoConfig } from "../model/config.js";
import { bundledModelDir } from "../paths.js";
import { withSensitivity } from "../weights/sensitivity.js";
import { buildEnvironment } from "./environment.js";
import { drawRunSamples, measureRun } from "./open-run.js";
import { renderReportMarkdown } from "./report-md.js";
import { summarize } from "./summary.js";

export type ProveEvent =
  | { kind: "hardware"; check: HardwareCheck }
  | { kind: "model"; path: string; sha256: string; executionProvider: string }
  | { kind: "samples"; evaluation: number; calibration: number }
  | { kind: "sample-done"; done: number; total: number; methods: number }
  | { kind: "weights-method-done"; method: string; done: number; total: number };

export interface ProveOptions {
  config: RunConfig;
  /** Where the bundle goes (written atomically; an existing file is refused, E_FILE_EXISTS, unless `overwrite`). */
  out: string;
  /** Replace an existing file at `out` (--force). */
  overwrite?: boolean;
  key: SigningKey;
  probe?: HardwareProbe;
  onEvent?: (event: ProveEvent) => void;
  /** Graph cache directory (default: the user's cache). */
  cacheDir?: string;
  /** Fixed creation time for reproducible bundles. */
  createdAt?: string;
  /** Prove only this shard of the run (the same draw and calibration; its part of the evaluation samples). */
  shard?: ShardSpec;
}

export interface ProveResult {
  bundle: WrittenBundle;
  summary: Summary;
  records: SampleRecord[];
  snapshot: HardwareSnapshot;
}

export function resolveModelDir(config: RunConfig): string {
  return config.model.path === "bundled" ? bundledModelDir() : resolve(config.model.path);
}

/**
 * The run config `spg prove` runs: the preset, file and flags resolved, then `sweep` points of
 * each method (with ablations on, of the preset's own methods only, not of every ablation
 * variant) and, with `sensitivity`, each weights method's sensitivity variants.
 */
export function resolveProveConfig(
  options: ResolveOptions,
  extras: { sweep?: number; sensitivity?: boolean } = {},
): RunConfig {
  const resolved = resolveConfig(options);
  let config = resolved;
  if (extras.sweep !== undefined) {
    const swept = options.ablation
      ? new Set(resolveConfig({ ...options, ablation: false }).methods.map((m) => m.name))
      : undefined;
    config = applySweep(resolved, extras.sweep, undefined, swept);
  }
  return extras.sensitivity ? withSensitivityVariants(config) : config;
}

/** `--sensitivity`: the config with every weights method's sensitivity variants (needs the model's layer count). */
export function withSensitivityVariants(config: RunConfig): RunConfig {
  const modelDir = resolveModelDir(config);
  return withSensitivity(config, readGptNeoConfig(modelDir));
}

export async function prove(options: ProveOptions): Promise<ProveResult> {
  const { config } = options;
  const emit = options.onEvent ?? (() => {});
  const modelDir = resolveModelDir(config);
  // Before hours of measuring, not after: the final write refuses again, atomically.
  await refuseExisting(options.out, options.overwrite === true);

  // The hardware check runs on the config alone, before any weight is loaded.
  const modelConfig = readGptNeoConfig(modelDir);
  checkConfigAgainstModel(config, modelConfig, modelDir);
  const { snapshot, check } = await runHardwareCheck(
    memoryRequirement(modelConfig, config, process.memoryUsage().rss),
    config.model.device,
    options.probe,
  );
  emit({ kind: "hardware", check });

  const { evaluationSplit, calibrationSplit, evaluation, calibration } = await drawRunSamples(config);
  // A shard measures its part of the unsharded draw; environment.json still lists the whole draw.
  const measured = options.shard === undefined ? evaluation : selectShard(evaluation, options.shard);
  emit({ kind: "samples", evaluation: measured.length, calibration: calibration.length });

  const checkpoint = await readCheckpoint(modelDir);
  const { records, fingerprints, executionProvider } = await measureRun(
    checkpoint,
    measured,
    config,
    { device: config.model.device, cacheDir: options.cacheDir },
    {
      backendOpened: (provider) =>
        emit({ kind: "model", path: modelDir, sha256: checkpoint.sha256, executionProvider: provider }),
      sampleDone: (done, total, methods) => emit({ kind: "sample-done", done, total, methods }),
      weightsMethodDone: (method, done, total) => emit({ kind: "weights-method-done", method, done, total }),
    },
  );

  const summary = summarize(records, config);
  const environment = buildEnvironment({
    config,
    snapshot,
    check,
    executionProvider,
    modelPath: config.model.path,
    checkpoint,
    evaluationSplit,
    calibrationSplit,
    evaluation,
    calibration,
  });
  const bundle = await writeBundle(
    options.out,
    {
      config,
      environment,
      records,
      fingerprints,
      summary,
      reportMd: renderReportMarkdown(config, summary, { model: { sha256: checkpoint.sha256 } }),
      shard:
        options.shard === undefined
          ? undefined
          : shardMarker(
              config,
              options.shard,
              measured.map((sample) => sample.sampleId),
            ),
    },
    options.key,
    readToolInfo(),
    { createdAt: options.createdAt, overwrite: options.overwrite },
  );
  return { bundle, summary, records, snapshot };
}
