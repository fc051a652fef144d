/**
 * Weight-compression policies: which matrices of a GPT-Neo checkpoint are rewritten, and how.
 * Everything (modules, layers, ranks, energy thresholds, bits, group sizes, keep-dense lists)
 * comes from the policy (configs/weights/*.yaml, validated against `weightsParamsSchema`).
 *
 * Resolution per matrix: a keep-dense entry that matches wins; otherwise the first rule that
 * matches; a matrix no rule matches stays dense at the baseline dtype. Layer indices may be
 * negative (-1 = the last layer), so a preset can name boundary layers without knowing the
 * model's depth. Embeddings (wte, wpe) and an untied head (lm_head) have no layer: a `layers`
 * filter never excludes them.
 */
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { presetPath, readConfigFile } from "../config/files.js";
import { SpgError } from "../errors.js";
import { LM_HEAD } from "../model/checkpoint.js";
import { type GptNeoConfig, headIsTied } from "../model/types.js";
import type { BaselineDtype } from "../numeric/dtype.js";
import { configsDir } from "../paths.js";
import type { QuantSpec } from "./quantize.js";
import type { RandomizedSvdOptions } from "./randomized-svd.js";
import type { RankSelection } from "./svd.js";

/** Module kinds by their Hugging Face GPT-Neo names. */
export const WEIGHT_MODULE_KINDS = [
  "q_proj",
  "k_proj",
  "v_proj",
  "out_proj",
  "c_fc",
  "c_proj",
  "wte",
  "wpe",
  // An untied head's own matrix (tie_word_embeddings false); a tied head is wte.
  "lm_head",
] as const;
export type WeightModuleKind = (typeof WEIGHT_MODULE_KINDS)[number];

export interface LowRankParams {
  /** Fixed number of singular triplets kept (exactly one of rank / rankFraction / energy). */
  rank?: number;
  /** Keep ceil(rankFraction · min(rows, cols)) triplets. */
  rankFraction?: number;
  /** Keep the fewest triplets holding this share of ‖W‖²_F. */
  energy?: number;
  /** Cap on the rank an energy threshold may choose. */
  maxRank?: number;
  /** Seeded randomized SVD instead of the exact one (large matrices). */
  randomized?: RandomizedSvdOptions;
}

export interface WeightRule {
  modules: WeightModuleKind[];
  /** Absent: every layer. */
  layers?: number[];
  /** Truncated SVD; factors at the baseline dtype unless `quantize` is given too. */
  lowRank?: LowRankParams;
  /** Integer quantization of the matrix, or of both factors when `lowRank` is given. */
  quantize?: QuantSpec;
}

export interface KeepDenseEntry {
  modules?: WeightModuleKind[];
  layers?: number[];
}

export interface WeightsParams {
  /** dtype of the baseline checkpoint and of everything kept dense. */
  baselineDtype: BaselineDtype;
  rules: WeightRule[];
  keepDense: KeepDenseEntry[];
}

export interface WeightPolicy {
  name: string;
  params: WeightsParams;
}

const moduleList = {
  type: "array",
  minItems: 1,
  uniqueItems: true,
  items: { enum: [...WEIGHT_MODULE_KINDS] },
  description:
    "Module kinds by Hugging Face name: q_proj k_proj v_proj out_proj c_fc c_proj wte wpe lm_head (lm_head: an untied head only).",
};
const layerList = {
  type: "array",
  minItems: 1,
  uniqueItems: true,
  items: { type: "integer" },
  description: "Layer indices; negative counts from the end (-1 = last). Absent: all layers.",
};

export const weightsParamsSchema = {
  type: "object",
  additionalProperties: false,
  required: ["baselineDtype", "rules", "keepDense"],
  properties: {
    baselineDtype: { enum: ["fp16", "fp32"] },
    rules: {
      type: "array",
      description: "Tried in order; the first rule matching a matrix decides its treatment.",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["modules"],
        // Each branch declares what it requires, so the schema compiles under ajv's strictRequired
        // (the config schema embeds it as $defs/params-weights).
        anyOf: [
          { required: ["lowRank"], properties: { lowRank: true } },
          { required: ["quantize"], properties: { quantize: true } },
        ],
        properties: {
          modules: moduleList,
          layers: layerList,
          lowRank: {
            type: "object",
            additionalProperties: false,
            oneOf: [
              { required: ["rank"], properties: { rank: true } },
              { required: ["rankFraction"], properties: { rankFraction: true } },
              { required: ["energy"], properties: { energy: true } },
            ],
            properties: {
              rank: { type: "integer", minimum: 1 },
              rankFraction: { type: "number", exclusiveMinimum: 0, maximum: 1 },
              energy: { type: "number", exclusiveMinimum: 0, maximum: 1 },
              maxRank: { type: "integer", minimum: 1 },
              randomized: {
                type: "object",
                additionalProperties: false,
                required: ["oversample", "powerIterations", "seed"],
                properties: {
                  oversample: { type: "integer", minimum: 0 },
                  powerIterations: { type: "integer", minimum: 0 },
                  seed: { type: "integer", minimum: 0, maximum: 4294967295 },
                },
              },
            },
          },
          quantize: {
            type: "object",
            additionalProperties: false,
            required: ["bits", "scheme", "groupSize"],
            properties: {
              bits: { type: "integer", minimum: 2, maximum: 8 },
              scheme: { enum: ["symmetric", "asymmetric"] },
              groupSize: { anyOf: [{ type: "integer", minimum: 1 }, { const: "row" }] },
            },
          },
        },
      },
    },
    keepDense: {
      type: "array",
      description: "Matrices matching any entry stay dense at the baseline dtype, whatever the rules say.",
      items: {
        type: "object",
        additionalProperties: false,
        minProperties: 1,
        properties: { modules: moduleList, layers: layerList },
      },
    },
  },
} as const;

const policyFileSchema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "kind", "params"],
  properties: {
    name: { type: "string", minLength: 1 },
    kind: { const: "weights" },
    description: { type: "string" },
    params: weightsParamsSchema,
  },
};

let validator: ReturnType<Ajv2020["compile"]> | undefined;

function policyValidator(): ReturnType<Ajv2020["compile"]> {
  if (validator === undefined) {
    // strictRequired off: the oneOf/anyOf branches name properties declared beside them.
    const ajv = new Ajv2020({ allErrors: false, strict: true, strictRequired: false, allowUnionTypes: true });
    validator = ajv.compile(policyFileSchema);
  }
  return validator;
}

/** Validates a parsed policy file ({name, kind: weights, params}). */
export function validateWeightPolicy(value: unknown, file = "weights policy"): WeightPolicy {
  const validate = policyValidator();
  if (!validate(value)) {
    const first = validate.errors?.[0];
    const where = first?.instancePath || "/";
    throw new SpgError(
      "E_WEIGHTS_POLICY",
      `invalid weights policy at ${where}: ${first?.message ?? "invalid"}`,
      {
        file,
        field: first?.instancePath.replace(/^\//, "").replaceAll("/", ".") || undefined,
        fix: "see configs/weights/naive.yaml for the shape of a policy",
      },
    );
  }
  const policy = value as { name: string; params: WeightsParams };
  policy.params.rules.forEach((rule, i) => {
    if (rule.lowRank?.maxRank !== undefined && rule.lowRank.energy === undefined) {
      throw new SpgError("E_WEIGHTS_POLICY", "lowRank.maxRank only applies to an energy threshold", {
        file,
        field: `params.rules.${i}.lowRank.maxRank`,
        fix: "drop maxRank, or use energy instead of rank / rankFraction",
      });
    }
  });
  return { name: policy.name, params: policy.params };
}

/** configs/weights, where the presets live. */
export function weightPresetsDir(): string {
  return join(configsDir(), "weights");
}

/** A policy file (YAML/JSON) or a preset name from configs/weights. */
export function loadWeightPolicy(nameOrPath: string): WeightPolicy {
  const path = /[/\\]|\.(ya?ml|json)$/i.test(nameOrPath)
    ? nameOrPath
    : presetPath(nameOrPath, weightPresetsDir());
  return validateWeightPolicy(readConfigFile(path), path);
}

const LAYER_OF_NAME = /^transformer\.h\.(\d+)\./;

/** The block a checkpoint tensor belongs to, from its HF name; null outside the blocks (embeddings, ln_f, head). */
export function layerOfTensorName(name: string): number | null {
  const match = LAYER_OF_NAME.exec(name);
  return match === null ? null : Number(match[1]);
}

/** One weight matrix of the checkpoint a policy may rewrite. */
export interface WeightMatrix {
  name: string;
  kind: WeightModuleKind;
  /** undefined for the embeddings. */
  layer: number | undefined;
  rows: number;
  cols: number;
}

/** Every matrix a policy can address, in checkpoint order, shapes from the config. */
export function weightMatrices(config: GptNeoConfig): WeightMatrix[] {
  const hidden = config.hiddenSize;
  const inner = config.intermediateSize;
  const matrices: WeightMatrix[] = [
    { name: "transformer.wte.weight", kind: "wte", layer: undefined, rows: config.vocabSize, cols: hidden },
    {
      name: "transformer.wpe.weight",
      kind: "wpe",
      layer: undefined,
      rows: config.maxPositions,
      cols: hidden,
    },
  ];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `transformer.h.${layer}`;
    for (const kind of ["q_proj", "k_proj", "v_proj", "out_proj"] as const) {
      matrices.push({ name: `${p}.attn.attention.${kind}.weight`, kind, layer, rows: hidden, cols: hidden });
    }
    matrices.push({ name: `${p}.mlp.c_fc.weight`, kind: "c_fc", layer, rows: inner, cols: hidden });
    matrices.push({ name: `${p}.mlp.c_proj.weight`, kind: "c_proj", layer, rows: hidden, cols: inner });
  }
  if (!headIsTied(config)) {
    matrices.push({ name: LM_HEAD, kind: "lm_head", layer: undefined, rows: config.vocabSize, cols: hidden });
  }
  return matrices;
}

/** How one matrix is stored. */
export type MatrixTreatment =
  | { encoding: "dense" }
  | { encoding: "quantized"; quantize: QuantSpec }
  | {
      encoding: "lowrank";
      selection: RankSelection;
      quantize: QuantSpec | undefined;
      /** Absent: the exact SVD. */
      randomized?: RandomizedSvdOptions;
    };

export interface MatrixPlan extends WeightMatrix {
  treatment: MatrixTreatment;
  /** Index of the rule that decided it; undefined when kept dense. */
  rule: number | undefined;
}

function resolveLayers(
  layers: number[] | undefined,
  numLayers: number,
  field: string,
): Set<number> | undefined {
  if (layers === undefined) return undefined;
  return new Set(
    layers.map((index) => {
      const resolved = index < 0 ? numLayers + index : index;
      if (resolved < 0 || resolved >= numLayers) {
        throw new SpgError(
          "E_WEIGHTS_POLICY_LAYER",
          `layer ${index} does not exist in a ${numLayers}-layer model`,
          {
            field,
            fix: `use indices in 0..${numLayers - 1} (or -${numLayers}..-1 from the end)`,
          },
        );
      }
      return resolved;
    }),
  );
}

function matches(
  matrix: WeightMatrix,
  modules: readonly WeightModuleKind[] | undefined,
  layers: Set<number> | undefined,
): boolean {
  if (modules !== undefined && !modules.includes(matrix.kind)) return false;
  if (matrix.layer === undefined) return modules !== undefined; // embeddings: named by kind only
  return layers === undefined || layers.has(matrix.layer);
}

function treatmentOf(rule: WeightRule): MatrixTreatment {
  if (rule.lowRank === undefined) return { encoding: "quantized", quantize: rule.quantize! };
  const { rank, rankFraction, energy, maxRank } = rule.lowRank;
  const selection: RankSelection =
    rank !== undefined
      ? { kind: "rank", rank }
      : rankFraction !== undefined
        ? { kind: "fraction", fraction: rankFraction }
        : { kind: "energy", threshold: energy!, maxRank };
  return {
    encoding: "lowrank",
    selection,
    quantize: rule.quantize,
    ...(rule.lowRank.randomized === undefined ? {} : { randomized: rule.lowRank.randomized }),
  };
}

/** E_WEIGHTS_POLICY_MODULE when a rule or keep-dense entry names lm_head and the model's head is tied (it is wte). */
function checkModulesExist(config: GptNeoConfig, params: WeightsParams): void {
  if (!headIsTied(config)) return;
  const entries = [
    ...params.rules.map((rule, i) => [`params.rules.${i}.modules`, rule.modules] as const),
    ...params.keepDense.map((entry, i) => [`params.keepDense.${i}.modules`, entry.modules] as const),
  ];
  for (const [field, modules] of entries) {
    if (modules?.includes("lm_head")) {
      throw new SpgError(
        "E_WEIGHTS_POLICY_MODULE",
        "the policy names lm_head, but this model's head is tied to wte (tie_word_embeddings is not false): it has no lm_head matrix",
        { field, fix: "name wte (the tied head is the token embedding), or drop lm_head from the list" },
      );
    }
  }
}

/** The treatment of every matrix of a model under a policy. */
export function planCompression(config: GptNeoConfig, params: WeightsParams): MatrixPlan[] {
  checkModulesExist(config, params);
  const numLayers = config.numLayers;
  const dense = params.keepDense.map((entry, i) => ({
    modules: entry.modules,
    layers: resolveLayers(entry.layers, numLayers, `params.keepDense.${i}.layers`),
  }));
  const rules = params.rules.map((rule, i) => ({
    rule,
    layers: resolveLayers(rule.layers, numLayers, `params.rules.${i}.layers`),
  }));
  return weightMatrices(config).map((matrix) => {
    if (dense.some((entry) => matches(matrix, entry.modules, entry.layers))) {
      return { ...matrix, treatment: { encoding: "dense" }, rule: undefined };
    }
    const index = rules.findIndex((r) => matches(matrix, r.rule.modules, r.layers));
    if (index < 0) return { ...matrix, treatment: { encoding: "dense" }, rule: undefined };
    return { ...matrix, treatment: treatmentOf(rules[index].rule), rule: index };
  });
}
