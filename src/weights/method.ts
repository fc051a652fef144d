/**
 * The `weights` method kind of a run configuration. A config names a policy preset
 * (`params: {policy: naive}`, from configs/weights/) or gives the policy inline
 * (`policy` is then only its label); resolution copies the preset's params into the method,
 * so a bundle's config.json states the whole policy it ran and verify never reads
 * configs/weights. A sensitivity variant (src/weights/sensitivity.ts) also carries
 * `sensitivity: {of, mode, unit}`, naming the method it was derived from.
 */
import type { MethodConfig } from "../config/types.js";
import { loadWeightPolicy, type WeightPolicy, type WeightsParams, weightsParamsSchema } from "./policy.js";

export const SENSITIVITY_MODES = ["restore", "only"] as const;
export type SensitivityMode = (typeof SENSITIVITY_MODES)[number];

export interface SensitivityTag {
  /** The weights method this variant derives from. */
  of: string;
  /** restore: everything compressed but this unit; only: nothing compressed but this unit. */
  mode: SensitivityMode;
  /** "layer<N>" or "embeddings". */
  unit: string;
}

export interface WeightsMethodParams extends WeightsParams {
  /** Preset name, or the label of an inline policy. */
  policy: string;
  sensitivity?: SensitivityTag;
}

/**
 * $defs/params-weights of schemas/config.schema.json (test/config/method-schemas.test.ts
 * checks they agree). A function, not a constant: policy.ts and config/load.ts import each
 * other, and a constant built from policy.ts at load time could see it uninitialised.
 */
export function weightsMethodParamsSchema() {
  return {
    type: "object",
    additionalProperties: false,
    required: ["policy", ...weightsParamsSchema.required],
    properties: {
      policy: {
        type: "string",
        minLength: 1,
        description:
          "A preset of configs/weights (its params are copied in when the config is resolved), or the label of an inline policy.",
      },
      ...weightsParamsSchema.properties,
      sensitivity: {
        type: "object",
        additionalProperties: false,
        required: ["of", "mode", "unit"],
        description: "Set by `spg prove --sensitivity` on the variants it derives; not written by hand.",
        properties: {
          of: { type: "string", minLength: 1 },
          mode: { enum: [...SENSITIVITY_MODES] },
          unit: { type: "string", pattern: "^(layer(0|[1-9][0-9]*)|embeddings)$" },
        },
      },
    },
  };
}

/**
 * A weights method's params with the named preset's params filled in where the method does
 * not give them. Only `policy` given: the preset as is; `rules` given: inline, no preset read.
 */
export function resolveWeightsParams(params: Record<string, unknown>): Record<string, unknown> {
  if (typeof params.policy !== "string" || params.rules !== undefined) return params;
  const preset = loadWeightPolicy(params.policy).params;
  return { ...preset, ...params };
}

/** The policy a (resolved, validated) weights method runs. */
export function policyOfMethod(method: MethodConfig): WeightPolicy {
  const { policy: _label, sensitivity: _tag, ...params } = method.params as unknown as WeightsMethodParams;
  return { name: method.name, params };
}

export function sensitivityOf(method: MethodConfig): SensitivityTag | undefined {
  return method.kind === "weights"
    ? (method.params as unknown as WeightsMethodParams).sensitivity
    : undefined;
}
