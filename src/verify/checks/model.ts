/**
 * The model shapes a bundle states, held to the verifier's own checkpoint before anything is
 * replayed (and under --no-replay too). Consistency, budget, config-rules and executed-cost
 * compute with environment.json's `model` (layers, heads, hidden size, architecture) and infer
 * from the kept slots which layers read a local window; a producer that states other shapes
 * or another layout consistently everywhere is not caught by arithmetic. When the verifier
 * holds the checkpoint the bundle names (the bundled model, or --model DIR), matched by the
 * checkpoint's sha256, or at least its config.json (matched by that file's sha256 in the
 * bundle's file list), every stated shape must be that config.json's, the kept slots of every
 * local-window-trimming layer must be what its true readable window gives, and the listed
 * files must be the checkpoint's. When it holds neither, it says so (W_MODEL_NOT_CHECKED).
 */
import type { EnvironmentFile } from "../../bundle/types.js";
import { isSpgError } from "../../errors.js";
import { scanCheckpoint } from "../../model/checkpoint.js";
import { CONFIG_FILE } from "../../model/config.js";
import { type CheckpointFile, type GptNeoConfig, headIsTied } from "../../model/types.js";
import { bundledModelDir } from "../../paths.js";
import { type Finding, fail, pass, warn } from "../types.js";
import type { Window } from "./budget.js";

const CHECK = "model" as const;

/** The verifier's checkpoint as far as this check reads it: its config.json, files and hash. */
export interface VerifierModel {
  dir: string;
  config: GptNeoConfig;
  files: readonly CheckpointFile[];
  sha256: string;
}

export interface ModelInput {
  environment: EnvironmentFile;
  contextTokens: number;
  /** Per layer, the readable slots per head the trimming methods' kept counts allow (budget.ts). */
  windows: ReadonlyMap<number, { window: Window; methods: readonly string[] }>;
  /** The verifier's checkpoint, undefined when none is here. */
  model: VerifierModel | undefined;
  /** A gate that needs the shapes checked: what would be W_MODEL_NOT_CHECKED fails (E_MODEL_NOT_CHECKED). */
  required?: boolean;
}

/** The warning when the shapes cannot be checked here, or the failure when the verifier requires them checked. */
function notChecked(required: boolean | undefined, why: string, detail?: Record<string, unknown>): Finding[] {
  if (required === true) {
    return [
      fail(
        CHECK,
        "E_MODEL_NOT_CHECKED",
        `${why}; the model shapes and attention layout it states cannot be checked, and this verifier requires them checked (--require-model or the policy's model.required): give the bundle's checkpoint or its config.json with --model DIR`,
        detail,
      ),
    ];
  }
  return [
    warn(
      CHECK,
      "W_MODEL_NOT_CHECKED",
      `not checked: ${why}; the model shapes and attention layout the bundle states are the signer's word`,
      detail,
    ),
  ];
}

/** Readable slots per head of a layer after a prefill of `contextTokens` (select.ts readableMask). */
export function readableSlots(config: GptNeoConfig, layer: number, contextTokens: number): number {
  // The next query sits at position C and reads keys with C - pos < window: the last window - 1.
  return config.attentionLayers[layer] === "local"
    ? Math.min(contextTokens, config.windowSize - 1)
    : contextTokens;
}

/** Stated shape fields against the checkpoint's config.json: "field stated X, checkpoint Y" each. */
export function shapeDifferences(stated: EnvironmentFile["model"], config: GptNeoConfig): string[] {
  const pairs: [string, unknown, unknown][] = [
    ["layers", stated.layers, config.numLayers],
    ["heads", stated.heads, config.numHeads],
    ["hiddenSize", stated.hiddenSize, config.hiddenSize],
  ];
  const architecture = stated.architecture;
  if (architecture !== undefined) {
    pairs.push(
      ["architecture.vocabSize", architecture.vocabSize, config.vocabSize],
      ["architecture.maxPositions", architecture.maxPositions, config.maxPositions],
      ["architecture.intermediateSize", architecture.intermediateSize, config.intermediateSize],
      ["architecture.activation", architecture.activation, config.activation],
      // Absent means a tied head (wte), false a head of its own (lm_head.weight).
      ["architecture.tieWordEmbeddings", architecture.tieWordEmbeddings ?? true, headIsTied(config)],
    );
  }
  return pairs
    .filter(([, a, b]) => a !== b)
    .map(([field, a, b]) => `${field} ${JSON.stringify(a)}, the checkpoint's ${JSON.stringify(b)}`);
}

function fileDifferences(
  stated: EnvironmentFile["model"]["files"],
  here: readonly CheckpointFile[],
): string[] {
  const key = (f: { name: string; sha256: string; bytes: number }) => `${f.name} ${f.bytes} ${f.sha256}`;
  const hereKeys = new Set(here.map(key));
  const statedKeys = new Set(stated.map(key));
  return [
    ...stated.filter((f) => !hereKeys.has(key(f))).map((f) => `listed ${key(f)} is not the checkpoint's`),
    ...here.filter((f) => !statedKeys.has(key(f))).map((f) => `the checkpoint's ${key(f)} is not listed`),
  ];
}

export function checkModel(input: ModelInput): Finding[] {
  const { environment, model, contextTokens } = input;
  const stated = environment.model;
  if (model === undefined)
    return notChecked(input.required, "no checkpoint here (give one with --model DIR)");
  const sameModel = model.sha256 === stated.sha256;
  const statedConfig = stated.files.find((f) => f.name === CONFIG_FILE);
  const hereConfig = model.files.find((f) => f.name === CONFIG_FILE);
  const sameConfig = statedConfig !== undefined && statedConfig.sha256 === hereConfig?.sha256;
  if (!sameModel && !sameConfig) {
    return notChecked(
      input.required,
      `the bundle's model (sha256 ${stated.sha256}) is not the checkpoint here (${model.dir}, sha256 ${model.sha256}), nor is its ${CONFIG_FILE}`,
      { stated: stated.sha256, here: model.sha256 },
    );
  }
  const findings: Finding[] = [];
  const which = sameModel ? "checkpoint" : `${CONFIG_FILE} (the weights are another checkpoint's)`;
  if (sameModel) {
    const files = fileDifferences(stated.files, model.files);
    if (files.length > 0) {
      findings.push(
        fail(CHECK, "E_MODEL_FILES", `environment.json model.files: ${files.slice(0, 4).join("; ")}`, {
          differences: files.slice(0, 16),
        }),
      );
    }
  }
  const shapes = shapeDifferences(stated, model.config);
  if (shapes.length > 0) {
    findings.push(
      fail(
        CHECK,
        "E_MODEL_SHAPES",
        `environment.json model states ${shapes.join("; ")} (the verifier's ${which} at ${model.dir})`,
        { differences: shapes },
      ),
    );
    // The layout below is computed with the checkpoint's layers; stated ones are already refused.
    return findings;
  }
  const layouts: string[] = [];
  for (const [layer, { window, methods }] of [...input.windows].sort(([a], [b]) => a - b)) {
    if (layer >= model.config.numLayers) continue;
    const readable = readableSlots(model.config, layer, contextTokens);
    if (readable < window[0] || readable > window[1]) {
      const kind = model.config.attentionLayers[layer];
      layouts.push(
        `layer ${layer} (${kind}${kind === "local" ? `, window ${model.config.windowSize}` : ""}) reads ${readable} slots per head, but ${methods.join(", ")} keep as if it read ${window[0] === window[1] ? window[0] : `${window[0]}..${window[1]}`}`,
      );
    }
  }
  if (layouts.length > 0) {
    findings.push(
      fail(
        CHECK,
        "E_MODEL_LAYOUT",
        `kept slots under local-window trimming imply another attention layout than the verifier's ${which}: ${layouts.slice(0, 4).join("; ")}`,
        { layers: layouts.slice(0, 16) },
      ),
    );
  }
  if (findings.length > 0) return findings;
  return [
    pass(
      CHECK,
      `the stated shapes are the verifier's ${which}'s (${model.config.numLayers} layers, ${model.config.numHeads} heads, hidden ${model.config.hiddenSize}` +
        (input.windows.size === 0
          ? ")"
          : `; ${input.windows.size} trimmed layers keep what their readable window gives)`),
      { checkpoint: model.sha256 },
    ),
  ];
}

/**
 * The verifier's checkpoint, scanned (config.json, weight headers, file hashes; no weights
 * loaded): `dir` (--model), whose errors are the verifier's bad input, or else the bundled
 * model, undefined when it is not installed.
 */
export async function scannedVerifierModel(dir: string | undefined): Promise<VerifierModel | undefined> {
  if (dir !== undefined) return scanCheckpoint(dir);
  try {
    return await scanCheckpoint(bundledModelDir());
  } catch (error) {
    if (isSpgError(error)) return undefined;
    throw error;
  }
}
