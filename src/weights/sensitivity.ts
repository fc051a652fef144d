/**
 * `spg prove --sensitivity`: which parts of a model a weight policy may not touch, found by
 * measurement. A unit is one transformer layer ("layer<N>") or the embeddings (wte, wpe; wte
 * is also the tied head). For each weights method and each unit its policy compresses, two
 * variants are added to the run as ordinary weights methods (so they are measured, recorded
 * and recomputed like any other):
 *   <method>@restore=<unit>  the policy with that unit kept dense (everything else compressed)
 *   <method>@only=<unit>     the policy with every other unit kept dense
 * Both are the parent's params plus keepDense entries, so verify can re-derive them. The
 * summary ranks units by how much restoring them recovers of the parent's perplexity increase.
 */
import type { SensitivityEntry, SensitivitySummary } from "../bundle/types.js";
import type { MethodConfig, RunConfig } from "../config/types.js";
import { SpgError } from "../errors.js";
import type { GptNeoConfig } from "../model/types.js";
import {
  type SensitivityMode,
  type SensitivityTag,
  sensitivityOf,
  type WeightsMethodParams,
} from "./method.js";
import { type KeepDenseEntry, planCompression } from "./policy.js";

export const EMBEDDINGS_UNIT = "embeddings";

/** Every unit of a model with `numLayers` layers, in order: layer0 .. layer<L-1>, embeddings. */
export function sensitivityUnits(numLayers: number): string[] {
  return [...Array.from({ length: numLayers }, (_, layer) => `layer${layer}`), EMBEDDINGS_UNIT];
}

function keepDenseEntry(unit: string): KeepDenseEntry {
  if (unit === EMBEDDINGS_UNIT) return { modules: ["wte", "wpe"] };
  return { layers: [Number(unit.slice("layer".length))] };
}

/** The params of a sensitivity variant, derived from its parent's (what verify re-derives). */
export function variantParams(
  parent: WeightsMethodParams,
  of: string,
  mode: SensitivityMode,
  unit: string,
  numLayers: number,
): WeightsMethodParams {
  const units = sensitivityUnits(numLayers);
  if (!units.includes(unit)) {
    throw new SpgError("E_SENSITIVITY_UNIT", `unit ${unit} does not exist in a ${numLayers}-layer model`, {
      field: "params.sensitivity.unit",
      fix: `use one of ${units.join(", ")}`,
    });
  }
  const extra = mode === "restore" ? [unit] : units.filter((u) => u !== unit);
  const { sensitivity: _parentTag, ...base } = parent;
  return {
    ...base,
    keepDense: [...base.keepDense, ...extra.map(keepDenseEntry)],
    sensitivity: { of, mode, unit },
  };
}

function unitOf(layer: number | undefined): string {
  return layer === undefined ? EMBEDDINGS_UNIT : `layer${layer}`;
}

/** The variants of one weights method: both modes for every unit its policy compresses. */
export function sensitivityVariants(method: MethodConfig, model: GptNeoConfig): MethodConfig[] {
  const params = method.params as unknown as WeightsMethodParams;
  const compressed = new Set(
    planCompression(model, params)
      .filter((plan) => plan.treatment.encoding !== "dense")
      .map((plan) => unitOf(plan.layer)),
  );
  const units = sensitivityUnits(model.numLayers).filter((unit) => compressed.has(unit));
  const variants: MethodConfig[] = [];
  for (const mode of ["restore", "only"] as const) {
    for (const unit of units) {
      variants.push({
        name: `${method.name}@${mode}=${unit}`,
        kind: "weights",
        params: variantParams(params, method.name, mode, unit, model.numLayers) as unknown as Record<
          string,
          unknown
        >,
      });
    }
  }
  return variants;
}

/** The config with every weights method's sensitivity variants appended. */
export function withSensitivity(config: RunConfig, model: GptNeoConfig): RunConfig {
  const bases = config.methods.filter((m) => m.kind === "weights" && sensitivityOf(m) === undefined);
  if (bases.length === 0) {
    throw new SpgError("E_SENSITIVITY_NO_WEIGHTS", "--sensitivity needs a weights method in the run", {
      field: "methods",
      fix: "add a method of kind weights (e.g. configs/weights-naive-vs-surgical.yaml), or drop --sensitivity",
    });
  }
  const names = new Set(config.methods.map((m) => m.name));
  const added = bases.flatMap((m) => sensitivityVariants(m, model)).filter((m) => !names.has(m.name));
  return { ...config, methods: [...config.methods, ...added] };
}

/** summary.sensitivity from the config's variants and the methods' recomputed perplexity increases. */
export function summarizeSensitivity(
  config: RunConfig,
  pplIncrease: (method: string) => number,
): Record<string, SensitivitySummary> | undefined {
  const byParent = new Map<string, { method: string; tag: SensitivityTag }[]>();
  for (const method of config.methods) {
    const tag = sensitivityOf(method);
    if (tag === undefined) continue;
    const list = byParent.get(tag.of) ?? [];
    list.push({ method: method.name, tag });
    byParent.set(tag.of, list);
  }
  if (byParent.size === 0) return undefined;
  const out: Record<string, SensitivitySummary> = {};
  for (const [parent, variants] of byParent) {
    const own = pplIncrease(parent);
    const entry = (v: { method: string; tag: SensitivityTag }): SensitivityEntry => ({
      unit: v.tag.unit,
      method: v.method,
      perplexityIncreasePct: pplIncrease(v.method),
    });
    const restore = variants
      .filter((v) => v.tag.mode === "restore")
      .map((v) => {
        const e = entry(v);
        return { ...e, recoveredPct: own - e.perplexityIncreasePct };
      });
    const only = variants.filter((v) => v.tag.mode === "only").map(entry);
    const ranking = restore
      .map((e, index) => ({ e, index }))
      .sort((a, b) => b.e.recoveredPct - a.e.recoveredPct || a.index - b.index)
      .map(({ e }) => e.unit);
    out[parent] = { perplexityIncreasePct: own, restore, only, ranking };
  }
  return out;
}
