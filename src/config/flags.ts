/**
 * The configuration flags `spg prove` (and anything else that runs a configuration)
 * shares, and their translation into ResolveOptions. Values are checked by the config
 * schema, not here, so every bad value gets the same E_CONFIG_INVALID naming the flag.
 */
import { Flags } from "@oclif/core";
import type { ConfigOverrides, ResolveOptions } from "./load.js";

export const configFlags = {
  config: Flags.string({
    char: "c",
    description: "YAML or JSON config file (may start with `extends: <preset>`)",
  }),
  preset: Flags.string({ description: "preset from configs/ (default: default)" }),
  "dry-run": Flags.boolean({ description: "print the resolved configuration and exit" }),
  ablation: Flags.boolean({ description: "add one SPG variant per component (configs/ablations/)" }),
  name: Flags.string({ description: "name of this run" }),
  model: Flags.string({ description: 'GPT-Neo checkpoint directory, or "bundled"' }),
  device: Flags.string({ description: "cpu | cuda | webgpu (never switched silently)" }),
  dataset: Flags.string({ description: "brown | text | jsonl | parquet | dir" }),
  "dataset-path": Flags.string({
    description: "local dataset file or directory; {split} is replaced by the split name",
  }),
  "calibration-path": Flags.string({
    description: "calibration split's file or directory (when --dataset-path has no {split})",
  }),
  "text-field": Flags.string({
    description: 'JSONL field or parquet column holding the text (default "text")',
  }),
  split: Flags.string({ description: "evaluation split name" }),
  "calibration-split": Flags.string({ description: "calibration split name" }),
  samples: Flags.integer({ description: "evaluation samples" }),
  "calibration-samples": Flags.integer({ description: "calibration samples" }),
  context: Flags.integer({ description: "context tokens per sample" }),
  continuation: Flags.integer({ description: "teacher-forced continuation tokens per sample" }),
  "prefill-chunk": Flags.integer({
    description: "query rows per prefill pass (kv.prefillChunkTokens): bounds the attention held at once",
  }),
  generation: Flags.integer({ description: "greedy generation tokens per sample" }),
  seed: Flags.integer({ description: "sampling seed" }),
  methods: Flags.string({
    description: "comma-separated method names to run (the full baseline always runs)",
  }),
};

/** Parsed values of configFlags, as oclif returns them. */
export interface ConfigFlagValues {
  config?: string;
  preset?: string;
  "dry-run"?: boolean;
  ablation?: boolean;
  name?: string;
  model?: string;
  device?: string;
  dataset?: string;
  "dataset-path"?: string;
  "calibration-path"?: string;
  "text-field"?: string;
  split?: string;
  "calibration-split"?: string;
  samples?: number;
  "calibration-samples"?: number;
  context?: number;
  continuation?: number;
  "prefill-chunk"?: number;
  generation?: number;
  seed?: number;
  methods?: string;
}

/** Parsed flags -> options for resolveConfig. */
export function resolveOptionsFromFlags(flags: ConfigFlagValues): ResolveOptions {
  const overrides: ConfigOverrides = {
    name: flags.name,
    model: flags.model,
    device: flags.device,
    dataset: flags.dataset,
    datasetPath: flags["dataset-path"],
    calibrationPath: flags["calibration-path"],
    textField: flags["text-field"],
    split: flags.split,
    calibrationSplit: flags["calibration-split"],
    samples: flags.samples,
    calibrationSamples: flags["calibration-samples"],
    context: flags.context,
    continuation: flags.continuation,
    prefillChunk: flags["prefill-chunk"],
    generation: flags.generation,
    seed: flags.seed,
    methods:
      flags.methods === undefined
        ? undefined
        : flags.methods
            .split(",")
            .map((m) => m.trim())
            .filter((m) => m !== ""),
  };
  for (const key of Object.keys(overrides) as (keyof ConfigOverrides)[]) {
    if (overrides[key] === undefined) delete overrides[key];
  }
  return { file: flags.config, preset: flags.preset, overrides, ablation: flags.ablation };
}
