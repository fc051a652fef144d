/**
 * Resolving a run configuration: preset (configs/<name>.yaml) and/or config file (YAML or
 * JSON, may `extends:` a preset or another file), then command-line flags, merged with
 * provenance (src/config/merge.ts), then validated with ajv against
 * schemas/config.schema.json and a few cross-field rules a schema cannot say.
 * Errors are SpgErrors naming the file or flag, the field and the fix.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, extname, isAbsolute, join, relative, resolve } from "node:path";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { stringify } from "yaml";
import { gpt2VocabularyProblem, vocabularySize } from "../data/tokenizer.js";
import { SpgError } from "../errors.js";
import { isMethodKind, methods } from "../kv/methods/index.js";
import type { ParamProblem } from "../kv/methods/types.js";
import type { GptNeoConfig } from "../model/types.js";
import { configsDir, schemasDir } from "../paths.js";
import { resolveWeightsParams } from "../weights/method.js";
import { planCompression, validateWeightPolicy } from "../weights/policy.js";
import { CONFIG_EXTENSIONS, listPresets, presetPath, readConfigFile } from "./files.js";
import {
  type ConfigLayer,
  isPlainObject,
  type MergedConfig,
  mergeLayers,
  type PlainObject,
  sourceOf,
} from "./merge.js";
import type { RunConfig } from "./types.js";

/** The preset used when neither --preset nor --config is given. */
export const DEFAULT_PRESET = "default";

/** Command-line overrides; each maps to one field of the config (see FLAG_FIELDS). */
export interface ConfigOverrides {
  name?: string;
  model?: string;
  device?: string;
  dataset?: string;
  datasetPath?: string;
  calibrationPath?: string;
  textField?: string;
  split?: string;
  calibrationSplit?: string;
  samples?: number;
  calibrationSamples?: number;
  context?: number;
  continuation?: number;
  prefillChunk?: number;
  generation?: number;
  seed?: number;
  /** Run only these methods, in this order (the `full` baseline is always run first). */
  methods?: readonly string[];
}

export interface ResolveOptions {
  /** A YAML or JSON config file. */
  file?: string;
  /** A preset name from configs/ (default "default" when no file is given). */
  preset?: string;
  overrides?: ConfigOverrides;
  /** Where presets live (tests point this at fixtures); default configs/ of the package. */
  presetsDir?: string;
  /** `--ablation`: add every overlay of configs/ablations/ (one SPG variant each), in file-name order. */
  ablation?: boolean;
}

export interface ResolvedConfig {
  config: RunConfig;
  /** The layers applied, in order: preset/config files, then flags. */
  sources: string[];
}

/** Flag name and the config field it sets. */
const FLAG_FIELDS: Record<Exclude<keyof ConfigOverrides, "methods">, { flag: string; path: string[] }> = {
  name: { flag: "--name", path: ["name"] },
  model: { flag: "--model", path: ["model", "path"] },
  device: { flag: "--device", path: ["model", "device"] },
  dataset: { flag: "--dataset", path: ["dataset", "source"] },
  datasetPath: { flag: "--dataset-path", path: ["dataset", "path"] },
  calibrationPath: { flag: "--calibration-path", path: ["dataset", "calibrationPath"] },
  textField: { flag: "--text-field", path: ["dataset", "textField"] },
  split: { flag: "--split", path: ["dataset", "split"] },
  calibrationSplit: { flag: "--calibration-split", path: ["dataset", "calibrationSplit"] },
  samples: { flag: "--samples", path: ["dataset", "samples"] },
  calibrationSamples: { flag: "--calibration-samples", path: ["dataset", "calibrationSamples"] },
  context: { flag: "--context", path: ["dataset", "contextTokens"] },
  continuation: { flag: "--continuation", path: ["dataset", "continuationTokens"] },
  prefillChunk: { flag: "--prefill-chunk", path: ["kv", "prefillChunkTokens"] },
  generation: { flag: "--generation", path: ["generation", "tokens"] },
  seed: { flag: "--seed", path: ["dataset", "seed"] },
};

/** A file and everything it extends, base first. `extends` is a preset name or a path relative to the file. */
function fileChain(path: string, presetsDir: string, seen: string[] = []): ConfigLayer[] {
  const absolute = resolve(path);
  if (seen.includes(absolute)) {
    throw new SpgError("E_CONFIG_INVALID", `extends makes a cycle: ${[...seen, absolute].join(" -> ")}`, {
      file: absolute,
      field: "extends",
      fix: "remove one of the extends in the cycle",
    });
  }
  // `$schema` may point editors at schemas/config.schema.json; it is not part of the config.
  const { extends: base, $schema: _editorSchema, ...data } = readConfigFile(absolute);
  const source = displayPath(absolute);
  if (base === undefined) return [{ source, data }];
  if (typeof base !== "string" || base.length === 0) {
    throw new SpgError("E_CONFIG_INVALID", "extends must be a preset name or a path", {
      file: source,
      field: "extends",
      fix: `write e.g. extends: default (presets: ${listPresets(presetsDir).join(", ")})`,
    });
  }
  const looksLikePath = base.includes("/") || CONFIG_EXTENSIONS.includes(extname(base).toLowerCase());
  const basePath = looksLikePath
    ? isAbsolute(base)
      ? base
      : resolve(dirname(absolute), base)
    : presetPath(base, presetsDir);
  return [...fileChain(basePath, presetsDir, [...seen, absolute]), { source, data }];
}

function displayPath(absolute: string): string {
  const fromCwd = relative(process.cwd(), absolute);
  return fromCwd.startsWith("..") || isAbsolute(fromCwd) ? absolute : fromCwd;
}

function overrideLayers(overrides: ConfigOverrides): ConfigLayer[] {
  const layers: ConfigLayer[] = [];
  for (const [key, { flag, path }] of Object.entries(FLAG_FIELDS)) {
    const value = overrides[key as keyof typeof FLAG_FIELDS];
    if (value === undefined) continue;
    let data: PlainObject = { [path[path.length - 1]]: value };
    for (let i = path.length - 2; i >= 0; i--) data = { [path[i]]: data };
    layers.push({ source: flag, data });
  }
  // Switching to the bundled corpus clears the local paths unless they are given too.
  if (overrides.dataset === "brown" && overrides.datasetPath === undefined) {
    layers.push({ source: "--dataset", data: { dataset: { path: null, calibrationPath: null } } });
  }
  return layers;
}

/** --methods a,b: keep those methods in that order, the `full` baseline first; claims on dropped methods go. */
function selectMethods(merged: MergedConfig, names: readonly string[]): void {
  const methods = Array.isArray(merged.value.methods) ? (merged.value.methods as unknown[]) : [];
  const byName = new Map<string, PlainObject>();
  for (const m of methods) if (isPlainObject(m) && typeof m.name === "string") byName.set(m.name, m);
  const unknown = names.filter((n) => !byName.has(n));
  if (unknown.length > 0 || names.length === 0) {
    throw new SpgError(
      "E_CONFIG_INVALID",
      `--methods names unknown methods: ${unknown.join(", ") || "(none given)"}`,
      {
        field: "--methods",
        fix: `choose from: ${[...byName.keys()].join(", ")}`,
      },
    );
  }
  const baseline = methods.find((m) => isPlainObject(m) && m.kind === "full");
  const chosen = [...new Set(names)].map((n) => byName.get(n)!).filter((m) => m !== baseline);
  if (isPlainObject(baseline)) chosen.unshift(baseline);
  merged.value.methods = chosen;
  merged.provenance.set("/methods", "--methods");
  if (Array.isArray(merged.value.claims)) {
    const kept = new Set(chosen.map((m) => m.name));
    merged.value.claims = merged.value.claims.filter(
      (c) => !isPlainObject(c) || kept.has(c.method as string),
    );
  }
}

/** The ablation overlays (configs/ablations/*.yaml), sorted by file name. */
export function listAblations(dir: string = configsDir()): string[] {
  const ablations = join(dir, "ablations");
  if (!existsSync(ablations)) return [];
  return readdirSync(ablations)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => join(ablations, f));
}

/** Ablation overlays only add methods (variants `from` an existing one); anything else is refused. */
function ablationLayers(dir: string): ConfigLayer[] {
  const files = listAblations(dir);
  if (files.length === 0) {
    throw new SpgError("E_CONFIG_MISSING", `no ablation overlays in ${join(dir, "ablations")}`, {
      fix: "reinstall spg, or drop --ablation",
    });
  }
  return files.map((file) => {
    const data = readConfigFile(file);
    const extra = Object.keys(data).filter((k) => k !== "methods");
    if (extra.length > 0) {
      throw new SpgError(
        "E_CONFIG_INVALID",
        `an ablation overlay may only add methods, not ${extra.join(", ")}`,
        {
          file,
          field: extra[0],
          fix: "keep only a methods list whose entries derive from a method with `from:`",
        },
      );
    }
    return { source: displayPath(file), data };
  });
}

/** The layers, in order, for these options. */
function layersFor(options: ResolveOptions): ConfigLayer[] {
  const presetsDir = options.presetsDir ?? configsDir();
  const layers: ConfigLayer[] = [];
  const fileLayers = options.file === undefined ? [] : fileChain(options.file, presetsDir);
  if (options.preset !== undefined && fileLayers.length > 1) {
    throw new SpgError("E_CONFIG_INVALID", "both --preset and a config file with `extends` were given", {
      file: options.file,
      field: "extends",
      fix: "drop --preset, or drop extends from the file",
    });
  }
  const preset = options.preset ?? (options.file === undefined ? DEFAULT_PRESET : undefined);
  if (preset !== undefined) layers.push(...fileChain(presetPath(preset, presetsDir), presetsDir));
  layers.push(...fileLayers);
  if (options.ablation === true) layers.push(...ablationLayers(presetsDir));
  layers.push(...overrideLayers(options.overrides ?? {}));
  return layers;
}

/** Resolves, validates and returns the run configuration, with the layers it came from. */
export function resolveConfigWithSources(options: ResolveOptions = {}): ResolvedConfig {
  const layers = layersFor(options);
  const merged = mergeLayers(layers);
  if (options.overrides?.methods !== undefined) selectMethods(merged, options.overrides.methods);
  expandWeightPolicies(merged);
  const config = validateMerged(merged);
  const sources = layers.map((l) => l.source);
  if (options.overrides?.methods !== undefined) sources.push("--methods");
  return { config, sources };
}

/** Resolves and validates the run configuration (see ResolveOptions). */
export function resolveConfig(options: ResolveOptions = {}): RunConfig {
  return resolveConfigWithSources(options).config;
}

/** `--dry-run`: the resolved configuration as YAML (default) or canonical-order JSON, ready to print. */
export function formatConfig(config: RunConfig, format: "yaml" | "json" = "yaml"): string {
  return format === "json" ? `${JSON.stringify(config, null, 2)}\n` : stringify(config, { lineWidth: 0 });
}

/** `--dry-run` in one call: resolve, validate, format. */
export function dryRun(options: ResolveOptions = {}, format: "yaml" | "json" = "yaml"): string {
  const { config, sources } = resolveConfigWithSources(options);
  const header = format === "yaml" ? `# resolved from: ${sources.join(" <- ")}\n` : "";
  return header + formatConfig(config, format);
}

/**
 * Weights methods naming a preset (`params: {policy: naive}`) get the preset's params copied
 * in, so the resolved config (and a bundle's config.json) states the whole policy.
 */
function expandWeightPolicies(merged: MergedConfig): void {
  const methods = merged.value.methods;
  if (!Array.isArray(methods)) return;
  methods.forEach((method, i) => {
    if (!isPlainObject(method) || method.kind !== "weights" || !isPlainObject(method.params)) return;
    try {
      method.params = resolveWeightsParams(method.params);
    } catch (error) {
      if (!(error instanceof SpgError)) throw error;
      const name = typeof method.name === "string" ? method.name : String(i);
      throw new SpgError(error.code, `methods[${i}] (method "${name}"): ${error.message}`, {
        file: error.file ?? sourceOf(`/methods/${i}/params/policy`, merged),
        field: `methods[${i}].params.policy`,
        fix: error.fix,
      });
    }
  });
}

// ---------------------------------------------------------------- validation

let compiled: ValidateFunction | undefined;

/** The compiled config schema (ajv 2020-12, all errors, strict). */
export function configValidator(): ValidateFunction {
  if (compiled === undefined) {
    const schema = JSON.parse(readFileSync(join(schemasDir(), "config.schema.json"), "utf8"));
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
    compiled = ajv.compile(schema);
  }
  return compiled as ValidateFunction;
}

/** One problem with a configuration. */
export interface ConfigProblem {
  /** JSON pointer into the resolved config. */
  pointer: string;
  message: string;
  fix: string;
}

/** Validates an already-merged plain object as a RunConfig (no provenance: errors name `file`). */
export function validateRunConfig(value: unknown, file?: string): RunConfig {
  const merged: MergedConfig = {
    value: isPlainObject(value) ? value : {},
    provenance: new Map(file === undefined ? [] : [["", file]]),
  };
  if (!isPlainObject(value)) {
    throw new SpgError("E_CONFIG_INVALID", "the configuration must be an object", {
      file,
      fix: "see configs/default.yaml",
    });
  }
  return validateMerged(merged);
}

function validateMerged(merged: MergedConfig): RunConfig {
  const validate = configValidator();
  const problems: ConfigProblem[] = validate(merged.value)
    ? semanticProblems(merged.value as unknown as RunConfig)
    : schemaProblems(validate.errors ?? []);
  if (problems.length > 0) throw problemsError(problems, merged);
  return merged.value as unknown as RunConfig;
}

const WRAPPER_KEYWORDS = new Set(["if", "then", "else", "allOf", "anyOf", "oneOf", "not"]);

function schemaProblems(errors: readonly ErrorObject[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const oneOfPointers = new Set(errors.filter((e) => e.keyword === "oneOf").map((e) => e.instancePath));
  for (const error of errors) {
    if (error.keyword === "oneOf") {
      problems.push({
        pointer: error.instancePath,
        message: "matches none of the allowed forms",
        fix: `use one of the forms the schema allows: ${describeOneOf(error.schema)}`,
      });
      continue;
    }
    if (WRAPPER_KEYWORDS.has(error.keyword)) continue;
    // Branch failures of a oneOf are summarised by the oneOf problem itself.
    if (oneOfPointers.has(error.instancePath) && error.schemaPath.includes("/oneOf/")) continue;
    problems.push(schemaProblem(error));
  }
  // ajv may report the same problem through several schema paths (if/then); keep each once.
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.pointer}|${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function describeOneOf(branches: unknown): string {
  if (!Array.isArray(branches)) return "see schemas/config.schema.json";
  return branches
    .map((b) => (isPlainObject(b) && typeof b.type === "string" ? b.type : "object"))
    .join(" or ");
}

function schemaProblem(error: ErrorObject): ConfigProblem {
  const params = error.params as Record<string, unknown>;
  const at = error.instancePath;
  switch (error.keyword) {
    case "required":
      return {
        pointer: `${at}/${params.missingProperty}`,
        message: "is required but missing",
        fix: `add ${params.missingProperty} (see schemas/config.schema.json; a partial config file should start with \`extends: default\`)`,
      };
    case "additionalProperties": {
      const allowed = isPlainObject(error.parentSchema?.properties)
        ? Object.keys(error.parentSchema.properties)
        : [];
      return {
        pointer: `${at}/${params.additionalProperty}`,
        message: "is not a known field",
        fix: `remove it or correct the spelling; allowed here: ${allowed.join(", ") || "(no fields)"}`,
      };
    }
    case "enum":
      return {
        pointer: at,
        message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")} (got ${JSON.stringify(error.data)})`,
        fix: `use one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`,
      };
    case "const":
      return {
        pointer: at,
        message: `must be ${JSON.stringify(params.allowedValue)} (got ${JSON.stringify(error.data)})`,
        fix: `set it to ${JSON.stringify(params.allowedValue)}`,
      };
    case "type":
      if (at === "/dataset/path" || at === "/dataset/calibrationPath") {
        return {
          pointer: at,
          message: `must be ${params.type} for dataset.source "${(error.parentSchema as { type?: unknown }).type === "null" ? "brown" : "text|jsonl|parquet|dir"}" (got ${JSON.stringify(error.data)})`,
          fix:
            params.type === "null"
              ? "to read local files, also give --dataset text|jsonl|parquet|dir; for the bundled corpus drop the path"
              : "give --dataset-path with the file or directory to read",
        };
      }
      return {
        pointer: at,
        message: `must be ${params.type} (got ${JSON.stringify(error.data)})`,
        fix: `give a value of type ${params.type}`,
      };
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return {
        pointer: at,
        message: `must be ${params.comparison} ${params.limit} (got ${JSON.stringify(error.data)})`,
        fix: `set a value ${params.comparison} ${params.limit}`,
      };
    default:
      return { pointer: at, message: error.message ?? error.keyword, fix: "see schemas/config.schema.json" };
  }
}

/** Rules across fields that the schema cannot express. */
/** The rules a config must keep beyond its schema (prove refuses a config that breaks one; verify re-applies them). */
export function semanticProblems(config: RunConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const names = config.methods.map((m) => m.name);
  if (config.methods[0].kind !== "full") {
    problems.push({
      pointer: "/methods/0/kind",
      message: `must be "full": the first method is the uncompressed baseline (got "${config.methods[0].kind}")`,
      fix: "put a method of kind full first",
    });
  }
  config.methods.forEach((method, i) => {
    if (i > 0 && method.kind === "full") {
      problems.push({
        pointer: `/methods/${i}/kind`,
        message: 'repeats the baseline kind "full"',
        fix: "keep one full method, first",
      });
    }
  });
  // Names differing only in case read as one method in a report (and on a case-insensitive file system).
  // Maps, not indexOf: verify applies these rules to a signed config of any length.
  const firstOfName = new Map<string, number>();
  names.forEach((name, i) => {
    if (!firstOfName.has(name.toLowerCase())) firstOfName.set(name.toLowerCase(), i);
  });
  config.methods.forEach((_method, i) => {
    const first = firstOfName.get(names[i].toLowerCase()) ?? i;
    if (first !== i) {
      problems.push({
        pointer: `/methods/${i}/name`,
        message: `duplicates the name of methods[${first}]${names[first] === names[i] ? "" : ` ("${names[first]}", up to case)`}`,
        fix: "give every method a unique name (unique up to case)",
      });
    }
  });
  const kindOf = new Map(config.methods.map((method) => [method.name, method.kind]));
  // Built once, and bounded: a signed config may name any number of methods and claims.
  const listed =
    names.length > 8 ? `${names.slice(0, 8).join(", ")}, ... (${names.length} methods)` : names.join(", ");
  config.claims.forEach((claim, i) => {
    if (!kindOf.has(claim.method)) {
      problems.push({
        pointer: `/claims/${i}/method`,
        message: `names no configured method ("${claim.method}")`,
        fix: `use one of: ${listed}`,
      });
    }
  });
  const dataset = config.dataset;
  if (config.kv.observationWindow > dataset.contextTokens) {
    problems.push({
      pointer: "/kv/observationWindow",
      message: `is longer than the context (${config.kv.observationWindow} > ${dataset.contextTokens})`,
      fix: "lower kv.observationWindow or raise --context",
    });
  }
  if (
    dataset.source === "brown" &&
    dataset.split === dataset.calibrationSplit &&
    dataset.calibrationSamples > 0
  ) {
    problems.push({
      pointer: "/dataset/calibrationSplit",
      message: `is the evaluation split ("${dataset.split}"): calibration and evaluation would share samples`,
      fix: "name two different splits (the Brown corpus has train, calibration, eval)",
    });
  }
  if (dataset.source !== "brown" && dataset.calibrationSamples > 0 && dataset.path !== null) {
    const templated = dataset.path.includes("{split}");
    const calibrationPath = dataset.calibrationPath ?? undefined;
    if (!templated && calibrationPath === undefined) {
      problems.push({
        pointer: "/dataset/calibrationPath",
        message: "is needed: calibration samples are asked for but only the evaluation path is given",
        fix: "give --calibration-path, or put {split} in --dataset-path (e.g. wiki.{split}.raw), or set calibrationSamples to 0",
      });
    } else if (
      (templated && calibrationPath === undefined && dataset.split === dataset.calibrationSplit) ||
      (!templated && calibrationPath !== undefined && resolve(calibrationPath) === resolve(dataset.path))
    ) {
      problems.push({
        pointer: "/dataset/calibrationPath",
        message:
          "reads the same data as the evaluation split: calibration and evaluation would share samples",
        fix: "point calibration at a different file (another split)",
      });
    }
  }
  const run = { observationRows: config.kv.observationWindow, contextTokens: dataset.contextTokens };
  config.methods.forEach((method, i) => {
    // Each KV method owns its rules (src/kv/methods): observation window, kernel table, bit widths.
    if (!isMethodKind(method.kind)) return;
    for (const problem of methods[method.kind].runProblems(method.params, run)) {
      problems.push(methodProblem(i, problem));
    }
  });
  config.methods.forEach((method, i) => {
    if (method.kind !== "weights") return;
    // What the schema cannot say about a policy (e.g. maxRank only with an energy threshold).
    try {
      const { policy, sensitivity: _tag, ...params } = method.params;
      validateWeightPolicy({ name: policy, kind: "weights", params }, `methods[${i}]`);
    } catch (error) {
      if (!(error instanceof SpgError)) throw error;
      problems.push({
        pointer: `/methods/${i}/params${error.field ? `/${error.field.replace(/^params\.?/, "").replaceAll(".", "/")}` : ""}`,
        message: error.message,
        fix: error.fix ?? "see configs/weights/README.md",
      });
    }
  });
  const hasClaimOnBaseline = config.claims.findIndex((c) => kindOf.get(c.method) === "full");
  if (hasClaimOnBaseline >= 0) {
    problems.push({
      pointer: `/claims/${hasClaimOnBaseline}/method`,
      message: "names the uncompressed baseline: claims are about compression methods",
      fix: "claim something about a compression method",
    });
  }
  return problems;
}

/**
 * The rules of checkConfigAgainstModel that need only the model's shapes a bundle states
 * (vocabulary and positions when known, heads, layers): `spg verify` applies them again to a
 * signed config (checks/config-rules.ts).
 */
export function shapeProblems(
  config: RunConfig,
  model: Pick<GptNeoConfig, "numHeads" | "numLayers"> &
    Partial<Pick<GptNeoConfig, "vocabSize" | "maxPositions">>,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const tokens =
    config.dataset.contextTokens + Math.max(config.dataset.continuationTokens, config.generation.tokens);
  // The dataset is drawn as GPT-2 text (data/draw.ts): every id the tokenizer can produce must be a row of wte.
  const vocabularyProblem =
    model.vocabSize === undefined ? undefined : gpt2VocabularyProblem(model.vocabSize);
  if (vocabularyProblem !== undefined) {
    problems.push({
      pointer: "/dataset",
      message: vocabularyProblem,
      fix: `prove needs a GPT-Neo checkpoint with the GPT-2 vocabulary (vocab_size >= ${vocabularySize}); other vocabularies run with spg model forward --ids`,
    });
  }
  if (model.maxPositions !== undefined && tokens > model.maxPositions) {
    problems.push({
      pointer: "/dataset/contextTokens",
      message: `context + max(continuation, generation) = ${tokens} tokens exceeds the model's ${model.maxPositions} positions`,
      fix: `lower --context to at most ${model.maxPositions - Math.max(config.dataset.continuationTokens, config.generation.tokens)}`,
    });
  }
  config.methods.forEach((method, i) => {
    if (!isMethodKind(method.kind)) return;
    for (const problem of methods[method.kind].modelProblems(method.params, model)) {
      problems.push(methodProblem(i, problem));
    }
  });
  return problems;
}

/**
 * Checks that need the checkpoint's config: the sample fits the model's positions, and
 * per-model SPG settings (reserved heads, per-layer budgets) match its shape.
 * `prove` calls it after reading config.json, before loading weights.
 */
export function checkConfigAgainstModel(config: RunConfig, model: GptNeoConfig, modelFile?: string): void {
  const problems: ConfigProblem[] = shapeProblems(config, model);
  config.methods.forEach((method, i) => {
    if (method.kind !== "weights") return;
    // Layer indices of a policy must exist in this model.
    try {
      planCompression(model, method.params as never);
    } catch (error) {
      if (!(error instanceof SpgError)) throw error;
      problems.push({
        pointer: `/methods/${i}/${(error.field ?? "params").replaceAll(".", "/")}`,
        message: error.message,
        fix: error.fix ?? "see configs/weights/README.md",
      });
    }
  });
  if (problems.length > 0) {
    const error = problemsError(problems, { value: config as unknown as PlainObject, provenance: new Map() });
    throw new SpgError(error.code, `${error.message} (model: ${modelFile ?? "checkpoint config.json"})`, {
      field: error.field,
      fix: error.fix,
    });
  }
}

/** A method's own rule broken, as a problem at its params field. */
function methodProblem(index: number, problem: ParamProblem): ConfigProblem {
  return {
    pointer: `/methods/${index}/params/${problem.field.replaceAll(".", "/")}`,
    message: problem.message,
    fix: problem.fix,
  };
}

/** JSON pointer -> readable field path: /methods/2/params/stage1 -> methods[2].params.stage1 */
export function fieldName(pointer: string): string {
  return pointer
    .split("/")
    .slice(1)
    .map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((acc, token) => (/^\d+$/.test(token) ? `${acc}[${token}]` : acc ? `${acc}.${token}` : token), "");
}

function problemsError(problems: readonly ConfigProblem[], merged: MergedConfig): SpgError {
  const described = problems.map((p) => {
    const source = sourceOf(p.pointer, merged);
    const field = fieldName(p.pointer) || "(root)";
    const methodName = methodNameAt(p.pointer, merged);
    return { ...p, source, field: methodName ? `${field} (method "${methodName}")` : field };
  });
  const first = described[0];
  const message =
    described.length === 1
      ? `${first.field} ${first.message}`
      : `${described.length} problems in the configuration:`;
  const details =
    described.length === 1
      ? []
      : described.map((p) => `  - ${p.field} ${p.message}${p.source ? ` [${p.source}]` : ""}; fix: ${p.fix}`);
  const fromFlag = first.source?.startsWith("--") === true;
  return new SpgError("E_CONFIG_INVALID", message, {
    details,
    file: fromFlag ? undefined : first.source,
    field: fromFlag ? `${first.field} (set by ${first.source})` : first.field,
    fix: first.fix,
  });
}

function methodNameAt(pointer: string, merged: MergedConfig): string | undefined {
  const match = /^\/methods\/(\d+)\//.exec(pointer);
  const methods = merged.value.methods;
  if (!match || !Array.isArray(methods)) return undefined;
  const entry = methods[Number(match[1])];
  return isPlainObject(entry) && typeof entry.name === "string" ? entry.name : undefined;
}
