/**
 * The whole training lineage of an exported model, oldest phase first, from what the trainer
 * recorded: training.json names the phase before it in `previous_phase` (recursively), and the
 * first phase of a run started with `--init-weights` names those weights in `initial_weights`
 * (with their own training record in `initial_weights.training`). What older trainers did not
 * record (a phase's train data, stop reason or arguments; the training record of the weights a
 * run started from) comes from a lineage file (models/gpt-neo-brown/lineage.json): it only fills
 * in what a record lacks, and a value that contradicts a record is an error, never a choice.
 *
 * Then `reproducePlan` turns the lineage into commands a new user runs from a clean clone:
 * relative run directories, `--init-from` the previous phase's run directory, `--stop-at-step`
 * where a phase stopped before its `--max-steps` (a deadline or a hand stop), and one token
 * export per data layout the phases used.
 */
import { SpgError } from "../src/errors.js";

export type PhaseArgs = Record<string, unknown>;

/** A phase's train data: the train split entry of the token export it read. */
export interface TrainData {
  splitSha256: string;
  fileSha256: string;
  tokens: number;
  documents?: number;
  file?: string;
  paragraphBreak?: string;
}

export interface InitialWeights {
  directory: string;
  model_sha256: string;
  config?: Record<string, unknown>;
  training?: TrainingRecord | null;
}

/** One `previous_phase` record (or the top-level record, normalised to this shape). */
export interface PhaseRecord {
  command: string;
  steps: number;
  args?: PhaseArgs;
  max_steps?: number;
  data?: TrainData;
  stop_reason?: string | null;
  checkpoint_sha256?: string;
  grown?: { from_layers: number; to_layers: number; new_layers?: number[] } | null;
  initial_weights?: InitialWeights | null;
  previous_phase?: PhaseRecord | null;
}

/** training.json as the trainer writes it (the fields the lineage reads). */
export interface TrainingRecord {
  command: string;
  steps: number;
  max_steps: number;
  stop_reason?: string | null;
  args?: PhaseArgs;
  data?: { train?: TrainData };
  initial_weights?: InitialWeights | null;
  previous_phase?: PhaseRecord | null;
}

/** What a lineage file may fill in for one phase. */
export interface PhasePatch {
  source?: string;
  args?: PhaseArgs;
  data?: TrainData;
  stop_reason?: string | null;
  previous_phase?: PhaseRecord;
}

export interface LineageFile {
  phases?: Record<string, PhasePatch>;
  weights?: Record<string, { source?: string; training?: TrainingRecord; final_phase?: PhasePatch }>;
}

export type PhaseStart =
  | { kind: "fresh" }
  | { kind: "continue"; from: number }
  | { kind: "grow"; from: number; fromLayers: number | undefined; toLayers: number | undefined }
  | { kind: "init-weights"; from: number; modelSha256: string; directory: string };

export interface LineagePhase {
  /** 1-based, over the whole lineage. */
  number: number;
  args: PhaseArgs;
  /** "recorded": the trainer's argument record; "command": parsed from the recorded command line. */
  argsFrom: "recorded" | "command";
  command: string;
  fromStep: number;
  toStep: number;
  maxSteps: number;
  stopReason: string;
  data: TrainData;
  start: PhaseStart;
}

const fillable = ["args", "data", "stop_reason", "previous_phase"] as const;

function lineageError(message: string, field: string, fix: string): SpgError {
  return new SpgError("E_MODEL_LINEAGE", message, { field, fix });
}

/** A recorded command line (`" ".join(sys.argv)`) as flags: `--name value` or a bare `--name`. */
export function parseTrainerCommand(command: string): PhaseArgs {
  const tokens = command.trim().split(/\s+/);
  const args: PhaseArgs = {};
  let index = tokens.findIndex((token) => token.startsWith("--"));
  if (index < 0) return args;
  while (index < tokens.length) {
    const token = tokens[index];
    if (!token.startsWith("--")) {
      throw lineageError(
        `the recorded command has a value "${token}" that follows no flag: ${command}`,
        "command",
        "record the phase's args in the lineage file",
      );
    }
    const name = token.slice(2).replaceAll("-", "_");
    const next = tokens[index + 1];
    if (next === undefined || next.startsWith("--")) {
      args[name] = true;
      index += 1;
    } else {
      args[name] = next;
      index += 2;
    }
  }
  return args;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The record with the lineage file's facts filled in where it lacks them. */
function patched(record: PhaseRecord, patch: PhasePatch | undefined, where: string): PhaseRecord {
  if (patch === undefined) return record;
  const result: PhaseRecord = { ...record };
  for (const key of fillable) {
    if (patch[key] === undefined) continue;
    if (record[key] === undefined) {
      (result as unknown as Record<string, unknown>)[key] = patch[key];
    } else if (!same(record[key], patch[key])) {
      throw lineageError(
        `${where}: the lineage file's ${key} differs from the trainer's record`,
        key,
        "remove the lineage file's entry for this field: the trainer's record stands",
      );
    }
  }
  return result;
}

function numberOf(value: unknown, where: string, field: string): number {
  const parsed = typeof value === "number" ? value : typeof value === "string" ? Number(value) : Number.NaN;
  if (!Number.isFinite(parsed)) {
    throw lineageError(`${where}: ${field} is not recorded`, field, "record it in the lineage file");
  }
  return parsed;
}

interface RawPhase {
  record: PhaseRecord;
  where: string;
}

/** One run's phases, oldest first (without the weights it started from). */
function runPhases(
  top: TrainingRecord,
  topPatch: PhasePatch | undefined,
  lineage: LineageFile,
  label: string,
): RawPhase[] {
  const phases: RawPhase[] = [];
  let record: PhaseRecord | null | undefined = patched(
    {
      command: top.command,
      steps: top.steps,
      args: top.args,
      max_steps: top.max_steps,
      data: top.data?.train,
      stop_reason: top.stop_reason,
      initial_weights: top.initial_weights,
      previous_phase: top.previous_phase,
    },
    topPatch,
    `${label}, its last phase`,
  );
  let where = `${label}, its last phase`;
  const seen = new Set<string>();
  while (record) {
    phases.push({ record, where });
    const previous: PhaseRecord | null | undefined = record.previous_phase;
    if (!previous) break;
    const key = previous.checkpoint_sha256;
    where = `${label}, the phase that ended in checkpoint sha256 ${key ?? "(not recorded)"} (${previous.command})`;
    if (key !== undefined) {
      if (seen.has(key))
        throw lineageError(`${where}: the lineage loops`, "previous_phase", "fix the lineage file");
      seen.add(key);
    }
    record = patched(previous, key === undefined ? undefined : lineage.phases?.[key], where);
  }
  return phases.reverse();
}

function stopReasonOf(
  record: PhaseRecord,
  args: PhaseArgs,
  maxSteps: number,
  where: string,
  key: string,
): string {
  if (typeof record.stop_reason === "string") return record.stop_reason;
  if (record.stop_reason === null) {
    return `ended before finishing (its checkpoint at step ${record.steps} was continued)`;
  }
  const stopAt =
    args.stop_at_step === undefined || args.stop_at_step === null ? undefined : Number(args.stop_at_step);
  // A run that reached its last step ended there: that much the steps say on their own.
  if (record.steps === maxSteps) return "max-steps";
  if (stopAt !== undefined && record.steps === stopAt) return `stop-at-step ${stopAt}`;
  throw lineageError(
    `${where}: stopped at step ${record.steps} of ${maxSteps} and its stop reason is not recorded`,
    "stop_reason",
    `add "stop_reason" under phases["${key}"] in the lineage file`,
  );
}

/**
 * Every phase, oldest first: the weights a run started from (recursively, through
 * `initial_weights.training` or the lineage file's `weights`), then the run's own phases.
 * modelSha256 (of the model's model.safetensors): the lineage file's `weights` entry for these
 * very weights, if any, fills in their last phase too.
 */
export function lineageOf(
  training: TrainingRecord,
  lineage: LineageFile = {},
  modelSha256?: string,
): LineagePhase[] {
  const result: LineagePhase[] = [];
  const visit = (
    top: TrainingRecord,
    topPatch: PhasePatch | undefined,
    label: string,
    depth: number,
  ): void => {
    const raw = runPhases(top, topPatch, lineage, label);
    const first = raw[0].record;
    let start: PhaseStart = { kind: "fresh" };
    const initial = first.initial_weights;
    if (initial) {
      if (depth > 16)
        throw lineageError(
          `${label}: more than 16 nested --init-weights`,
          "initial_weights",
          "fix the lineage file",
        );
      const entry = lineage.weights?.[initial.model_sha256];
      const base = initial.training ?? entry?.training;
      if (!base) {
        throw lineageError(
          `${label}: its first phase started from --init-weights ${initial.directory} (model sha256 ${initial.model_sha256}), whose training record is not recorded`,
          "initial_weights.training",
          `add weights["${initial.model_sha256}"].training (that model's training.json) to the lineage file`,
        );
      }
      visit(
        base,
        entry?.final_phase,
        `the weights ${initial.directory} (sha256 ${initial.model_sha256.slice(0, 12)}…)`,
        depth + 1,
      );
      start = {
        kind: "init-weights",
        from: result.length,
        modelSha256: initial.model_sha256,
        directory: initial.directory,
      };
    }
    raw.forEach(({ record, where }, index) => {
      const argsFrom = record.args === undefined ? "command" : "recorded";
      const args = record.args ?? parseTrainerCommand(record.command);
      // Where a lineage file entry for this phase goes: its checkpoint's sha256 (the last phase of a
      // run has none: it is the weights' final_phase).
      const checkpointKey =
        record.checkpoint_sha256 ?? "<the sha256 of the checkpoint this phase ended with>";
      const maxSteps = record.max_steps ?? numberOf(args.max_steps, where, "max_steps");
      const fromStep = index === 0 ? 0 : raw[index - 1].record.steps;
      if (index > 0) {
        const scheduleStart = numberOf(args.schedule_start, where, "schedule_start");
        if (scheduleStart !== fromStep) {
          throw lineageError(
            `${where}: --schedule-start ${scheduleStart}, but the phase before it ended at step ${fromStep}`,
            "schedule_start",
            "the records do not chain: check the lineage file's previous_phase entries",
          );
        }
      }
      if (record.data === undefined) {
        throw lineageError(
          `${where}: its train data (token export) is not recorded`,
          "data",
          `add "data" (the train entry of the token export's manifest.json) under phases["${checkpointKey}"] in the lineage file`,
        );
      }
      const number = result.length + 1;
      let phaseStart: PhaseStart = start;
      if (index > 0) {
        const grown = record.previous_phase?.grown ?? undefined;
        phaseStart =
          args.grow === true || args.grow === "true"
            ? { kind: "grow", from: number - 1, fromLayers: grown?.from_layers, toLayers: grown?.to_layers }
            : { kind: "continue", from: number - 1 };
      }
      result.push({
        number,
        args,
        argsFrom,
        command: record.command,
        fromStep,
        toStep: record.steps,
        maxSteps,
        stopReason: stopReasonOf(record, args, maxSteps, where, checkpointKey),
        data: record.data,
        start: phaseStart,
      });
    });
  };
  visit(
    training,
    modelSha256 === undefined ? undefined : lineage.weights?.[modelSha256]?.final_phase,
    "this model",
    0,
  );
  return result;
}

/** A data layout the phases used, and how to rebuild it. */
export interface DataLayout {
  splitSha256: string;
  fileSha256: string;
  tokens: number;
  paragraphBreak: string;
  dataDir: string;
  phases: number[];
}

/** Which export option rebuilds a train split (by its split sha256), with the token file it writes. */
export type LayoutResolver = (
  splitSha256: string,
) => { paragraphBreak: string; fileSha256: string; tokens: number } | undefined;

export interface ReproducePlan {
  layouts: DataLayout[];
  /** One per phase: flag name (snake_case) and value (true: a bare flag). */
  commands: [string, string | true][][];
  runDirs: string[];
  outs: string[];
}

/** Arguments of other modes, or of the wall clock: not part of a phase's reproduction. */
const notReproduced = new Set([
  "command",
  "check_fixtures",
  "check_report",
  "eval_only",
  "export_only",
  "dump_logits",
  "dump_compact",
  "dump_length",
  "dump_rows",
  "eval_seq",
  "fixture_tolerance",
  "deadline_utc",
  "deadline_margin_s",
]);

function isPlainRelative(path: unknown, prefix: string): path is string {
  return typeof path === "string" && path.startsWith(prefix) && !path.split("/").includes("..");
}

/** Commands that rebuild every phase from a clean clone, in order. */
export function reproducePlan(phases: readonly LineagePhase[], resolveLayout: LayoutResolver): ReproducePlan {
  const layouts: DataLayout[] = [];
  const layoutOf: DataLayout[] = [];
  for (const phase of phases) {
    let layout = layouts.find((candidate) => candidate.splitSha256 === phase.data.splitSha256);
    if (layout === undefined) {
      const rebuilt = resolveLayout(phase.data.splitSha256);
      if (rebuilt === undefined) {
        throw lineageError(
          `phase ${phase.number} trained on a train split (sha256 ${phase.data.splitSha256}) that no --paragraph-break of scripts/export_brown_tokens.ts rebuilds`,
          "data.splitSha256",
          "add the layout to src/data/brown.ts paragraphBreaks, or correct the record",
        );
      }
      if (rebuilt.fileSha256 !== phase.data.fileSha256 || rebuilt.tokens !== phase.data.tokens) {
        throw lineageError(
          `phase ${phase.number}: the export with --paragraph-break ${rebuilt.paragraphBreak} rebuilds split ${phase.data.splitSha256} as token file ${rebuilt.fileSha256} (${rebuilt.tokens} tokens), the phase recorded ${phase.data.fileSha256} (${phase.data.tokens})`,
          "data.fileSha256",
          "the tokenizer changed since: the phase cannot be reproduced with this checkout",
        );
      }
      const recordedDir = phase.args.data_dir;
      const taken = layouts.some((other) => other.dataDir === recordedDir);
      layout = {
        splitSha256: phase.data.splitSha256,
        fileSha256: rebuilt.fileSha256,
        tokens: rebuilt.tokens,
        paragraphBreak: rebuilt.paragraphBreak,
        dataDir:
          isPlainRelative(recordedDir, "tmp/") && !taken
            ? recordedDir
            : `tmp/train-data-${rebuilt.paragraphBreak}`,
        phases: [],
      };
      layouts.push(layout);
    }
    layout.phases.push(phase.number);
    layoutOf.push(layout);
  }
  const runDirs: string[] = [];
  const outs: string[] = [];
  for (const phase of phases) {
    const runDir = phase.args.run_dir;
    runDirs.push(
      isPlainRelative(runDir, "tmp/") && !runDirs.includes(runDir)
        ? runDir
        : `tmp/train-phase${phase.number}`,
    );
    // Never the bundled model's directory: a reproduction must not overwrite what it started from.
    const out = phase.args.out;
    outs.push(isPlainRelative(out, "tmp/") && !outs.includes(out) ? out : `tmp/model-phase${phase.number}`);
  }
  const commands = phases.map((phase, index) => {
    const values: PhaseArgs = { ...phase.args };
    for (const name of notReproduced) delete values[name];
    values.run_dir = runDirs[index];
    values.out = outs[index];
    values.data_dir = layoutOf[index].dataDir;
    delete values.init_from;
    delete values.init_weights;
    delete values.grow;
    if (phase.start.kind === "continue" || phase.start.kind === "grow") {
      values.init_from = `${runDirs[phase.start.from - 1]}/checkpoint.pt`;
      if (phase.start.kind === "grow") values.grow = true;
    } else if (phase.start.kind === "init-weights") {
      values.init_weights = outs[phase.start.from - 1];
    }
    values.stop_at_step = phase.toStep < phase.maxSteps ? String(phase.toStep) : null;
    // The recorded command's order first (it reads as the phase was run), then the rest by name.
    const order = Object.keys(parseTrainerCommand(phase.command));
    const names = Object.keys(values).sort((a, b) => {
      const ia = order.indexOf(a);
      const ib = order.indexOf(b);
      if (ia >= 0 && ib >= 0) return ia - ib;
      if (ia >= 0 || ib >= 0) return ia >= 0 ? -1 : 1;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    const flags: [string, string | true][] = [];
    for (const name of names) {
      const value = values[name];
      if (value === null || value === undefined || value === false) continue;
      flags.push([name, value === true ? true : typeof value === "string" ? value : JSON.stringify(value)]);
    }
    return flags;
  });
  return { layouts, commands, runDirs, outs };
}

function shellWord(text: string): string {
  return /^[A-Za-z0-9_.,:/=+-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** `--flag value ...` of a planned command, quoted for a POSIX shell. */
export function renderFlags(flags: readonly [string, string | true][]): string {
  return flags
    .map(([name, value]) => {
      const flag = `--${name.replaceAll("_", "-")}`;
      return value === true ? flag : `${flag} ${shellWord(value)}`;
    })
    .join(" ");
}
