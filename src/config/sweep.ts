/**
 * `spg prove --sweep N`: one method becomes N variants that differ in the parameter that
 * trades compression for quality. Which parameter, and over what range, is data
 * (configs/sweeps/default.yaml), not code: this module only spreads the points, applies
 * them to a copy of the method's params, and names the variants "<method>@<label>=<value>".
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { SpgError } from "../errors.js";
import { configsDir } from "../paths.js";
import { validateRunConfig } from "./load.js";
import type { MethodConfig, RunConfig } from "./types.js";

export interface SweepRange {
  from: number;
  to: number;
  scale: "linear" | "log";
  /** Every point is rounded to a multiple of this. */
  step: number;
}

export interface KindSweep {
  label: string;
  /** Dotted paths inside the method's params, all set to the same value. */
  params: string[];
  value: "identity" | "reciprocal";
  range?: SweepRange;
  values?: number[];
}

export interface SweepSpec {
  points: { min: number; max: number };
  /** null: the kind is not swept (run once). */
  kinds: Record<MethodConfig["kind"], KindSweep | null>;
}

/** Between the method name and the swept setting in a variant's name. */
export const SWEEP_NAME_SEPARATOR = "@";

/** The method a variant was made from ("spg" for "spg@ratio=8"); a name without the separator is its own. */
export function methodOfVariant(name: string): string {
  const at = name.indexOf(SWEEP_NAME_SEPARATOR);
  return at <= 0 ? name : name.slice(0, at);
}

export function defaultSweepSpecPath(): string {
  return join(configsDir(), "sweeps", "default.yaml");
}

const KINDS: MethodConfig["kind"][] = [
  "full",
  "window-trim",
  "streaming",
  "h2o",
  "snapkv",
  "quant",
  "spg",
  "weights",
];

const kindSweepSchema = {
  type: "object",
  additionalProperties: false,
  required: ["label", "params", "value"],
  oneOf: [{ required: ["range"] }, { required: ["values"] }],
  properties: {
    label: { type: "string", pattern: "^[A-Za-z0-9._-]+$" },
    params: {
      type: "array",
      minItems: 1,
      items: { type: "string", pattern: "^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$" },
    },
    value: { enum: ["identity", "reciprocal"] },
    range: {
      type: "object",
      additionalProperties: false,
      required: ["from", "to", "scale", "step"],
      properties: {
        from: { type: "number" },
        to: { type: "number" },
        scale: { enum: ["linear", "log"] },
        step: { type: "number", exclusiveMinimum: 0 },
      },
    },
    values: { type: "array", minItems: 1, uniqueItems: true, items: { type: "number" } },
  },
} as const;

const sweepSpecSchema = {
  type: "object",
  additionalProperties: false,
  required: ["points", "kinds"],
  properties: {
    points: {
      type: "object",
      additionalProperties: false,
      required: ["min", "max"],
      properties: { min: { type: "integer", minimum: 1 }, max: { type: "integer", minimum: 1 } },
    },
    kinds: {
      type: "object",
      additionalProperties: false,
      required: KINDS,
      properties: Object.fromEntries(
        KINDS.map((kind) => [kind, { anyOf: [{ type: "null" }, { $ref: "#/$defs/kindSweep" }] }]),
      ),
    },
  },
  $defs: { kindSweep: kindSweepSchema },
};

/** Validate a parsed sweep spec (from YAML or an object). */
export function validateSweepSpec(value: unknown, file = "sweep spec"): SweepSpec {
  // strictRequired off: the oneOf branches name properties declared beside them.
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  const validate = ajv.compile(sweepSpecSchema);
  if (!validate(value)) {
    const first = validate.errors?.[0];
    throw new SpgError(
      "E_SWEEP_SPEC",
      `invalid sweep spec: ${first?.instancePath || "/"} ${first?.message ?? ""}`.trim(),
      {
        file,
        field: first?.instancePath || undefined,
        fix: "see the comment at the top of configs/sweeps/default.yaml",
      },
    );
  }
  const spec = value as unknown as SweepSpec;
  if (spec.points.min > spec.points.max) {
    throw new SpgError("E_SWEEP_SPEC", "points.min is above points.max", {
      file,
      field: "points",
      fix: "swap them",
    });
  }
  for (const kind of KINDS) {
    const range = spec.kinds[kind]?.range;
    if (range?.scale === "log" && (range.from <= 0 || range.to <= 0)) {
      throw new SpgError("E_SWEEP_SPEC", `kinds.${kind}.range: a log scale needs positive from/to`, {
        file,
        field: `kinds.${kind}.range`,
        fix: "use positive bounds or scale: linear",
      });
    }
  }
  return spec;
}

/** Read and validate a sweep spec file (default: configs/sweeps/default.yaml). */
export function loadSweepSpec(path: string = defaultSweepSpecPath()): SweepSpec {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new SpgError("E_SWEEP_SPEC_MISSING", `sweep spec not readable: ${(error as Error).message}`, {
      file: path,
      fix: "restore configs/sweeps/default.yaml from the package or pass an existing file",
    });
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new SpgError("E_SWEEP_SPEC", `invalid YAML: ${(error as Error).message.split("\n")[0]}`, {
      file: path,
      fix: "fix the YAML syntax",
    });
  }
  return validateSweepSpec(parsed, path);
}

function decimalsOf(step: number): number {
  const text = String(step);
  const dot = text.indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
}

/** Round to a multiple of step, printed without binary noise (0.1 + 0.2 stays 0.3). */
function roundToStep(value: number, step: number): number {
  return Number((Math.round(value / step) * step).toFixed(decimalsOf(step)));
}

/** `points` values spread over the range: evenly (linear) or by equal factors (log), ends included. */
export function rangePoints(range: SweepRange, points: number): number[] {
  const values: number[] = [];
  for (let i = 0; i < points; i++) {
    const t = points === 1 ? 0 : i / (points - 1);
    const raw =
      range.scale === "log"
        ? range.from * (range.to / range.from) ** t
        : range.from + (range.to - range.from) * t;
    values.push(roundToStep(raw, range.step));
  }
  return values;
}

/** min(points, n) indices spread evenly over 0..n-1, ends included. */
export function spreadIndices(n: number, points: number): number[] {
  const count = Math.min(points, n);
  if (count === 1) return [0];
  return Array.from({ length: count }, (_, i) => Math.round((i * (n - 1)) / (count - 1)));
}

function setParam(params: Record<string, unknown>, path: string, value: number, method: MethodConfig): void {
  const parts = path.split(".");
  let node: Record<string, unknown> = params;
  for (let i = 0; i < parts.length; i++) {
    const key = parts[i];
    const isLast = i === parts.length - 1;
    const child = Object.hasOwn(node, key) ? node[key] : undefined;
    if (
      child === undefined ||
      (!isLast && (child === null || typeof child !== "object" || Array.isArray(child)))
    ) {
      throw new SpgError(
        "E_SWEEP_PARAM",
        `method ${JSON.stringify(method.name)} (kind ${method.kind}) has no params.${parts.slice(0, i + 1).join(".")} to sweep`,
        {
          field: `methods[${method.name}].params.${path}`,
          fix: `make configs/sweeps/default.yaml name a parameter of the ${method.kind} method's params (src/kv/methods/), or set it in the method's config`,
        },
      );
    }
    if (isLast) node[key] = value;
    else node = child as Record<string, unknown>;
  }
}

/**
 * The method's sweep variants: `points` copies, each with the swept params set and named
 * "<method>@<label>=<value>". A kind the spec marks null is not swept: [method] itself.
 */
export function sweepVariants(method: MethodConfig, points: number, spec: SweepSpec): MethodConfig[] {
  if (!Number.isInteger(points) || points < spec.points.min || points > spec.points.max) {
    throw new SpgError(
      "E_SWEEP_POINTS",
      `--sweep ${points}: a sweep has ${spec.points.min} to ${spec.points.max} points`,
      {
        field: "sweep",
        fix: `pass an integer from ${spec.points.min} to ${spec.points.max}`,
      },
    );
  }
  if (!Object.hasOwn(spec.kinds, method.kind)) {
    throw new SpgError("E_SWEEP_SPEC", `the sweep spec has no entry for method kind "${method.kind}"`, {
      field: `kinds.${method.kind}`,
      fix: "add the kind to configs/sweeps/default.yaml (null if it is not swept)",
    });
  }
  const sweep = spec.kinds[method.kind];
  if (sweep === null) return [method];

  let values: number[];
  if (sweep.range !== undefined) {
    values = rangePoints(sweep.range, points);
    if (new Set(values).size !== values.length) {
      throw new SpgError(
        "E_SWEEP_POINTS",
        `kind ${method.kind}: ${points} points over ${sweep.range.from}..${sweep.range.to} at step ${sweep.range.step} are not distinct (${values.join(", ")})`,
        {
          field: `kinds.${method.kind}.range`,
          fix: "widen the range, refine the step, or sweep fewer points",
        },
      );
    }
  } else {
    const domain = sweep.values ?? [];
    values = spreadIndices(domain.length, points).map((i) => domain[i]);
  }

  return values.map((value) => {
    const applied = sweep.value === "reciprocal" ? 1 / value : value;
    if (!Number.isFinite(applied)) {
      throw new SpgError(
        "E_SWEEP_POINTS",
        `kind ${method.kind}: value ${value} gives a non-finite parameter`,
        {
          field: `kinds.${method.kind}`,
          fix: "keep swept values non-zero for value: reciprocal",
        },
      );
    }
    const params = structuredClone(method.params);
    for (const path of sweep.params) setParam(params, path, applied, method);
    return {
      ...method,
      name: `${method.name}${SWEEP_NAME_SEPARATOR}${sweep.label}=${value}`,
      params,
    };
  });
}

/**
 * `spg prove --sweep N`: every swept method is followed by its N variants (the method itself
 * stays, so claims about it still apply), and the result is validated like any config.
 */
export function applySweep(
  config: RunConfig,
  points: number,
  spec: SweepSpec = loadSweepSpec(),
  /** Sweep only these methods (e.g. not the ablation variants); default all. */
  only?: ReadonlySet<string>,
): RunConfig {
  const methods = config.methods.flatMap((method) => {
    if (only !== undefined && !only.has(method.name)) return [method];
    const variants = sweepVariants(method, points, spec);
    return variants.length === 1 && variants[0] === method ? [method] : [method, ...variants];
  });
  return validateRunConfig({ ...config, methods }, "--sweep");
}
