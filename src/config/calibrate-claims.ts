/**
 * Presets' claims from the calibration split (scripts/calibrate-claims.ts, configs/README.md
 * "How presets' claims are set"): a preset's claimed methods are proved on a split its
 * claims are never judged on, and each claim's threshold is the figure its judge reads
 * (bound: the conservative end of the bootstrap interval; point: the point estimate),
 * loosened by a margin the caller gives per metric and rounded outward to a readable value.
 *
 * Everything here is pure but `calibrationPlan`, which reads the preset files.
 */
import { type Document, isMap, isSeq, parseDocument, type YAMLMap, type YAMLSeq } from "yaml";
import { SpgError } from "../errors.js";
import { configsDir } from "../paths.js";
import { presetPath, readConfigFile } from "./files.js";
import { type ConfigOverrides, resolveConfig } from "./load.js";
import type { Claim, ClaimMetric, RunConfig } from "./types.js";

/** How far a threshold moves from the calibration figure, in the direction that loosens the claim. */
export interface ClaimMargin {
  /** relative: value × |figure|; absolute: value, in the metric's own unit. */
  kind: "relative" | "absolute";
  value: number;
}

/** Margins by metric, and by one method's metric (`METHOD:METRIC`), which wins over its metric's. */
export interface Margins {
  byMetric: Partial<Record<ClaimMetric, ClaimMargin>>;
  byClaim: Map<string, ClaimMargin>;
}

const CLAIM_METRICS: readonly ClaimMetric[] = [
  "compression_ratio",
  "perplexity_increase_pct",
  "mean_kl",
  "top1_agreement",
  "generation_agreement",
];

const MARGIN_FIX =
  "give --margin KEY=VALUE[,KEY=VALUE...]: KEY a metric or METHOD:METRIC, VALUE% relative to the calibration figure, a plain VALUE absolute in the metric's unit (e.g. compression_ratio=10%,perplexity_increase_pct=2,window-trim:perplexity_increase_pct=0.01)";

/** `--margin compression_ratio=10%,perplexity_increase_pct=2,window-trim:perplexity_increase_pct=0.01`. */
export function parseMargins(spec: string): Margins {
  const margins: Margins = { byMetric: {}, byClaim: new Map() };
  const entries = spec
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) {
    throw new SpgError("E_CALIBRATE_MARGIN", "--margin is empty", { field: "--margin", fix: MARGIN_FIX });
  }
  const seen = new Set<string>();
  for (const entry of entries) {
    const match = /^(?:([^:=\s]+):)?([a-z0-9_]+)=([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)(%?)$/i.exec(entry);
    if (match === null) {
      throw new SpgError("E_CALIBRATE_MARGIN", `--margin entry "${entry}" is not KEY=VALUE or KEY=VALUE%`, {
        field: "--margin",
        fix: MARGIN_FIX,
      });
    }
    const [, method, metricName, number, percent] = match;
    const metric = metricName as ClaimMetric;
    if (!CLAIM_METRICS.includes(metric)) {
      throw new SpgError(
        "E_CALIBRATE_MARGIN",
        `--margin names "${metricName}", which is not a claim metric`,
        {
          field: "--margin",
          fix: `use one of: ${CLAIM_METRICS.join(", ")}`,
        },
      );
    }
    const key = method === undefined ? metric : claimKey(method, metric);
    if (seen.has(key)) {
      throw new SpgError("E_CALIBRATE_MARGIN", `--margin gives ${key} twice`, {
        field: "--margin",
        fix: "give each key once",
      });
    }
    seen.add(key);
    const value = Number(number);
    const relative = percent === "%";
    if (!Number.isFinite(value) || (relative && value >= 100)) {
      throw new SpgError("E_CALIBRATE_MARGIN", `--margin ${entry}: a relative margin must be below 100%`, {
        field: "--margin",
        fix: MARGIN_FIX,
      });
    }
    const margin: ClaimMargin = relative
      ? { kind: "relative", value: value / 100 }
      : { kind: "absolute", value };
    if (method === undefined) margins.byMetric[metric] = margin;
    else margins.byClaim.set(key, margin);
  }
  return margins;
}

function claimKey(method: string, metric: string): string {
  return `${method}:${metric}`;
}

/** The margin a claim is loosened by: its own (`METHOD:METRIC`), else its metric's. */
export function marginFor(
  margins: Margins,
  claim: Pick<Claim, "method" | "metric">,
): ClaimMargin | undefined {
  return margins.byClaim.get(claimKey(claim.method, claim.metric)) ?? margins.byMetric[claim.metric];
}

/** The margin in words, for tables and the comment written above a claim. */
export function describeMargin(margin: ClaimMargin): string {
  return margin.kind === "relative" ? `${+(margin.value * 100).toPrecision(12)}%` : `${margin.value}`;
}

/**
 * `value` rounded to `digits` significant digits away from the claim's strict side: down for
 * ">=", up for "<=", so the rounded threshold is never tighter than the loosened figure.
 */
export function roundOutward(value: number, op: Claim["op"], digits: number): number {
  if (!Number.isInteger(digits) || digits < 1)
    throw new RangeError(`digits must be a positive integer, got ${digits}`);
  if (value === 0 || !Number.isFinite(value)) return value;
  const exponent = Math.floor(Math.log10(Math.abs(value))) - digits + 1;
  // Scale by an exact power of ten in the direction that keeps integers exact (10^-3 is not).
  const steps = exponent >= 0 ? value / 10 ** exponent : value * 10 ** -exponent;
  // A value already on the grid (4.7 read as 46.99999...) stays where it is.
  const nearest = Math.round(steps);
  const onGrid = Math.abs(steps - nearest) <= 1e-9 * Math.max(1, Math.abs(steps));
  const rounded = onGrid ? nearest : op === ">=" ? Math.floor(steps) : Math.ceil(steps);
  return exponent >= 0 ? rounded * 10 ** exponent : Number((rounded / 10 ** -exponent).toFixed(-exponent));
}

export interface DerivedThreshold {
  /** The figure the claim's judge reads on the calibration split. */
  figure: number;
  /** figure loosened by the margin, before rounding. */
  loosened: number;
  /** loosened, rounded outward: the proposed threshold. */
  threshold: number;
}

/** A claim's threshold from its calibration figure: loosen by the margin, round outward. */
export function deriveThreshold(
  op: Claim["op"],
  figure: number,
  margin: ClaimMargin,
  digits: number,
): DerivedThreshold {
  if (!Number.isFinite(figure)) {
    throw new RangeError(`the calibration figure is ${figure}; a threshold needs a finite figure`);
  }
  const amount = margin.kind === "relative" ? margin.value * Math.abs(figure) : margin.value;
  const loosened = op === ">=" ? figure - amount : figure + amount;
  return { figure, loosened, threshold: roundOutward(loosened, op, digits) };
}

/**
 * Presets whose claims quote a figure published elsewhere, on purpose: their claims show
 * whether the published figure holds, so calibrating them would change what they test.
 */
export const QUOTED_CLAIM_PRESETS: ReadonlyMap<string, string> = new Map([
  ["450x", "it carries the SPG Space's own published 450x claim, to show whether it holds"],
]);

export interface PresetCalibration {
  preset: string;
  file: string;
  /** The preset as it runs (its claims are the ones in `file`). */
  config: RunConfig;
  /** The run on the calibration split: the preset with the split overrides, only its claimed methods. */
  calibrationConfig: RunConfig;
}

/**
 * What calibrating `preset` runs. Refuses a preset that quotes its claims, one without claims
 * of its own (inherited claims are calibrated in the preset that states them), a split its
 * claims are judged on, and a metric without a margin.
 */
export function calibrationPlan(
  preset: string,
  splits: { split: string; calibrationSplit: string },
  margins: Margins,
  extra: Pick<ConfigOverrides, "model" | "device"> = {},
  presetsDir: string = configsDir(),
): PresetCalibration {
  const quoted = QUOTED_CLAIM_PRESETS.get(preset);
  if (quoted !== undefined) {
    throw new SpgError("E_CALIBRATE_PRESET", `preset "${preset}" is not calibrated: ${quoted}`, {
      field: "--presets",
      fix: `drop ${preset} from --presets`,
    });
  }
  const file = presetPath(preset, presetsDir);
  if (!Array.isArray(readConfigFile(file).claims)) {
    throw new SpgError(
      "E_CALIBRATE_PRESET",
      `preset "${preset}" states no claims of its own (it inherits them)`,
      {
        file,
        field: "claims",
        fix: "calibrate the preset its claims come from (its extends chain), or give it its own claims",
      },
    );
  }
  const config = resolveConfig({ preset, presetsDir, overrides: { ...extra } });
  const judgedOn = config.dataset.split;
  for (const [flag, name] of [
    ["--split", splits.split],
    ["--calibration-split", splits.calibrationSplit],
  ] as const) {
    if (name === judgedOn) {
      throw new SpgError(
        "E_CALIBRATE_EVAL_SPLIT",
        `${flag} is "${name}", the split preset "${preset}" judges its claims on: thresholds set from it would be tuned on the evaluation data`,
        {
          file,
          field: flag,
          fix: "calibrate on a split the preset never evaluates on (Brown: --split calibration --calibration-split train)",
        },
      );
    }
  }
  if (config.claims.length === 0) {
    throw new SpgError("E_CALIBRATE_PRESET", `preset "${preset}" has an empty claims list`, {
      file,
      field: "claims",
      fix: "add the claims to calibrate, or drop the preset from --presets",
    });
  }
  const missing = [
    ...new Set(config.claims.filter((c) => marginFor(margins, c) === undefined).map((c) => c.metric)),
  ];
  if (missing.length > 0) {
    throw new SpgError(
      "E_CALIBRATE_MARGIN",
      `no margin for ${missing.join(", ")} (claimed by preset "${preset}")`,
      {
        field: "--margin",
        fix: `add ${missing.map((m) => `${m}=VALUE`).join(",")} to --margin`,
      },
    );
  }
  // Each method's figures depend only on its own records, so the claimed methods alone suffice.
  const claimed = [...new Set(config.claims.map((c) => c.method))];
  const calibrationConfig = resolveConfig({
    preset,
    presetsDir,
    overrides: {
      ...extra,
      name: `${config.name}-calibration`,
      split: splits.split,
      calibrationSplit: splits.calibrationSplit,
      methods: claimed,
    },
  });
  return { preset, file, config, calibrationConfig };
}

/** A METHOD:METRIC margin that names no claim of the presets calibrated is a typo: refused. */
export function checkClaimMarginsUsed(
  margins: Margins,
  claims: readonly Pick<Claim, "method" | "metric">[],
): void {
  const used = new Set(claims.map((c) => claimKey(c.method, c.metric)));
  const unused = [...margins.byClaim.keys()].filter((key) => !used.has(key));
  if (unused.length > 0) {
    throw new SpgError(
      "E_CALIBRATE_MARGIN",
      `--margin names ${unused.join(", ")}, which no preset calibrated claims`,
      {
        field: "--margin",
        fix: `name claimed METHOD:METRIC pairs: ${[...used].join(", ")}`,
      },
    );
  }
}

/** One claim's row: what the calibration run measured and the threshold it proposes. */
export interface CalibratedClaim extends DerivedThreshold {
  index: number;
  claim: Claim;
  margin: ClaimMargin;
  current: number;
}

/** Every claim of the preset from the calibration run's judged figures (same order as the config's claims). */
export function calibrateClaims(
  claims: readonly Claim[],
  judged: readonly { method: string; metric: string; judged: number }[],
  margins: Margins,
  digits: number,
): CalibratedClaim[] {
  return claims.map((claim, index) => {
    const result = judged.find((r) => r.method === claim.method && r.metric === claim.metric);
    const margin = marginFor(margins, claim);
    if (result === undefined || margin === undefined) {
      throw new SpgError(
        "E_CALIBRATE_PRESET",
        `claim ${index} (${claim.method} ${claim.metric}) has no ${result === undefined ? "calibration figure" : "margin"}`,
        {
          field: `claims[${index}]`,
          fix: "every claim needs a measured figure and a --margin for its metric",
        },
      );
    }
    return {
      index,
      claim,
      margin,
      current: claim.threshold,
      ...deriveThreshold(claim.op, result.judged, margin, digits),
    };
  });
}

/** Lines spg writes above a calibrated claim start with this; a rerun replaces them. */
export const CALIBRATION_COMMENT_MARKER = " threshold set by scripts/calibrate-claims.ts";

/** The comment line above a calibrated claim (without the leading '#'). */
export function calibrationComment(
  row: CalibratedClaim,
  provenance: { date: string; split: string; calibrationSplit: string; modelSha256: string },
): string {
  const figure = `${row.claim.judge === "bound" ? "bootstrap bound" : "point"} ${formatFigure(row.figure)}`;
  return `${CALIBRATION_COMMENT_MARKER} on ${provenance.date} from split "${provenance.split}" (calibration from "${provenance.calibrationSplit}"), model sha256 ${provenance.modelSha256}: ${figure}, margin ${describeMargin(row.margin)}`;
}

/** A figure with enough digits to check the rounding by hand. */
export function formatFigure(value: number): string {
  return Number.isInteger(value) ? String(value) : String(+value.toPrecision(6));
}

function withoutMarker(comment: string | null | undefined): string[] {
  if (comment === undefined || comment === null || comment === "") return [];
  return comment.split("\n").filter((line) => !line.startsWith(CALIBRATION_COMMENT_MARKER));
}

/**
 * The preset file's text with each row's threshold set and its comment line above the claim
 * (an older such line replaced); every other byte as it was. Claims are matched by position
 * and must name the same method and metric as the row.
 */
export function updatePresetClaims(
  text: string,
  file: string,
  rows: readonly { index: number; claim: Claim; threshold: number; comment: string }[],
): string {
  const document: Document = parseDocument(text);
  const claims = document.get("claims", true);
  if (!isSeq(claims)) {
    throw new SpgError("E_CALIBRATE_PRESET", "the preset has no claims list to update", {
      file,
      field: "claims",
      fix: "give the preset its own claims list",
    });
  }
  const seq = claims as YAMLSeq;
  for (const row of rows) {
    const item = seq.items[row.index];
    if (!isMap(item) || item.get("method") !== row.claim.method || item.get("metric") !== row.claim.metric) {
      throw new SpgError(
        "E_CALIBRATE_PRESET",
        `claims[${row.index}] in the file is not the claim calibrated (${row.claim.method} ${row.claim.metric})`,
        { file, field: `claims[${row.index}]`, fix: "rerun the calibration on the preset as it is now" },
      );
    }
    const map = item as YAMLMap;
    map.set("threshold", row.threshold);
    // The comment above the first item belongs to the list itself when the file is read back.
    if (row.index === 0) {
      const kept = withoutMarker(seq.commentBefore);
      seq.commentBefore = kept.length > 0 ? kept.join("\n") : undefined;
    }
    map.commentBefore = [...withoutMarker(map.commentBefore), row.comment].join("\n");
  }
  return document.toString({ lineWidth: 0 });
}
