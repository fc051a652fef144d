/**
 * Sets presets' claim thresholds from runs on the calibration split, never from the split the
 * claims are judged on (configs/README.md "How presets' claims are set"):
 *
 *   npx tsc -p . && node dist/scripts/calibrate-claims.js \
 *     --presets default,conservative,weights-naive-vs-surgical \
 *     --margin compression_ratio=10%,perplexity_increase_pct=2,top1_agreement=0.02,window-trim:perplexity_increase_pct=0.01 \
 *     [--split calibration] [--calibration-split train] [--digits 2] [--model DIR] \
 *     [--keep-bundles DIR] [--write]
 *
 * For each preset: its claimed methods are proved by `prove()` (the library `spg prove` runs)
 * with evaluation samples from --split and calibration samples from --calibration-split; each
 * claim's figure is what its judge reads (bound: the bootstrap bound, point: the point), the
 * proposed threshold that figure loosened by the claim's margin (METHOD:METRIC, else METRIC) and rounded outward to
 * --digits significant digits. Prints a table; --write sets the thresholds in the preset files
 * (comments kept) with one comment line above each claim naming this script, the date, the
 * split and the model's sha256. The calibration bundles are signed with a throwaway key and
 * deleted unless --keep-bundles names a directory.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeFileAtomic } from "../src/bundle/atomic.js";
import { ephemeralKey } from "../src/bundle/keys.js";
import {
  type CalibratedClaim,
  calibrateClaims,
  calibrationComment,
  calibrationPlan,
  checkClaimMarginsUsed,
  describeMargin,
  formatFigure,
  parseMargins,
  updatePresetClaims,
} from "../src/config/calibrate-claims.js";
import { isSpgError, SpgError } from "../src/errors.js";
import { prove } from "../src/measure/prove.js";

const USAGE =
  "usage: node dist/scripts/calibrate-claims.js --presets A,B --margin [METHOD:]METRIC=VALUE[%],... " +
  "[--split calibration] [--calibration-split train] [--digits 2] [--model DIR] [--device cpu] " +
  "[--keep-bundles DIR] [--write]";

interface PresetResult {
  preset: string;
  file: string;
  modelSha256: string;
  rows: CalibratedClaim[];
}

function table(results: readonly PresetResult[]): string {
  const header = ["preset", "claim", "judge", "calibration figure", "margin", "proposed", "current"];
  const lines = results.flatMap((r) =>
    r.rows.map((row) => [
      r.preset,
      `${row.claim.method} ${row.claim.metric} ${row.claim.op}`,
      row.claim.judge,
      formatFigure(row.figure),
      describeMargin(row.margin),
      String(row.threshold),
      String(row.current),
    ]),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [format(header), format(widths.map((w) => "-".repeat(w))), ...lines.map(format)].join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      presets: { type: "string" },
      margin: { type: "string" },
      split: { type: "string", default: "calibration" },
      "calibration-split": { type: "string", default: "train" },
      digits: { type: "string", default: "2" },
      model: { type: "string" },
      device: { type: "string" },
      "keep-bundles": { type: "string" },
      write: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.presets === undefined || values.margin === undefined) {
    throw new SpgError("E_CALIBRATE_MARGIN", "--presets and --margin are required", {
      field: values.presets === undefined ? "--presets" : "--margin",
      fix: USAGE,
    });
  }
  const margins = parseMargins(values.margin);
  const digits = Number(values.digits);
  if (!Number.isInteger(digits) || digits < 1) {
    throw new SpgError("E_CALIBRATE_MARGIN", `--digits must be a positive integer, got ${values.digits}`, {
      field: "--digits",
      fix: "give --digits 2 (significant digits of a proposed threshold)",
    });
  }
  const splits = { split: values.split, calibrationSplit: values["calibration-split"] };
  const extra = {
    ...(values.model === undefined ? {} : { model: values.model }),
    ...(values.device === undefined ? {} : { device: values.device }),
  };
  const presets = values.presets
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  // Every preset is checked (splits, margins, claims) before the first run starts.
  const plans = presets.map((preset) => calibrationPlan(preset, splits, margins, extra));
  checkClaimMarginsUsed(
    margins,
    plans.flatMap((plan) => plan.config.claims),
  );

  const keep = values["keep-bundles"] === undefined ? undefined : resolve(values["keep-bundles"]);
  if (keep !== undefined) mkdirSync(keep, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), "spg-calibrate-"));
  const results: PresetResult[] = [];
  try {
    for (const plan of plans) {
      process.stderr.write(
        `${plan.preset}: proving ${plan.calibrationConfig.methods.map((m) => m.name).join(", ")} on split "${splits.split}" (calibration from "${splits.calibrationSplit}")\n`,
      );
      let modelSha256 = "";
      const out = join(keep ?? scratch, `${plan.preset}-calibration.zip`);
      const result = await prove({
        config: plan.calibrationConfig,
        out,
        // --keep DIR is this script's own folder: a second run replaces its bundles.
        overwrite: true,
        key: ephemeralKey(),
        onEvent: (event) => {
          if (event.kind === "model") modelSha256 = event.sha256;
          else if (event.kind === "sample-done")
            process.stderr.write(`  sample ${event.done}/${event.total}\n`);
          else if (event.kind === "weights-method-done")
            process.stderr.write(`  weights method ${event.method} (${event.done}/${event.total})\n`);
        },
      });
      if (keep !== undefined) process.stderr.write(`  calibration bundle: ${out}\n`);
      results.push({
        preset: plan.preset,
        file: plan.file,
        modelSha256,
        rows: calibrateClaims(plan.config.claims, result.summary.claims, margins, digits),
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }

  process.stdout.write(`${table(results)}\n`);
  if (!values.write) {
    process.stdout.write("(not written: add --write to set these thresholds in the preset files)\n");
    return 0;
  }
  const date = new Date().toISOString().slice(0, 10);
  for (const r of results) {
    const text = readFileSync(r.file, "utf8");
    const updated = updatePresetClaims(
      text,
      r.file,
      r.rows.map((row) => ({
        ...row,
        comment: calibrationComment(row, { date, ...splits, modelSha256: r.modelSha256 }),
      })),
    );
    await writeFileAtomic(r.file, updated, { overwrite: true });
    process.stdout.write(`wrote ${relative(process.cwd(), r.file) || r.file}\n`);
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (isSpgError(error)) {
      process.stderr.write(`${error.describe()}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
