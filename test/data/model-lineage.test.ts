/**
 * The model card's lineage walk (scripts/model_lineage.ts) on small synthetic training records:
 * a base model whose weights a run started from (--init-weights), a hand-stopped phase, a
 * deadline-stopped phase, a --grow phase and a last phase that recorded only its command line.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type LayoutResolver,
  type LineageFile,
  lineageOf,
  type PhaseRecord,
  parseTrainerCommand,
  renderFlags,
  reproducePlan,
  type TrainingRecord,
} from "../../scripts/model_lineage.js";
import { SpgError } from "../../src/errors.js";

const blank = { splitSha256: "b".repeat(64), fileSha256: "1".repeat(64), tokens: 100 };
const newline = { splitSha256: "n".repeat(64), fileSha256: "2".repeat(64), tokens: 90 };
const resolver: LayoutResolver = (splitSha256) =>
  splitSha256 === blank.splitSha256
    ? { paragraphBreak: "blank-line", fileSha256: blank.fileSha256, tokens: blank.tokens }
    : splitSha256 === newline.splitSha256
      ? { paragraphBreak: "newline", fileSha256: newline.fileSha256, tokens: newline.tokens }
      : undefined;

function args(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    data_dir: "tmp/data-old",
    seed: 7,
    num_layers: 2,
    num_heads: 2,
    lr: 0.01,
    warmup_steps: 2,
    deadline_utc: null,
    stop_at_step: null,
    init_from: null,
    init_weights: null,
    grow: false,
    check_fixtures: null,
    ...extra,
  };
}

/** The base model: phase A (fresh, 10 steps) then phase B (to 20), exported into models/base. */
function baseRecord(): TrainingRecord {
  return {
    command: "/abs/train_gpt_neo.py --run-dir tmp/a2 --max-steps 20",
    steps: 20,
    max_steps: 20,
    stop_reason: "max-steps",
    args: args({
      run_dir: "tmp/a2",
      out: "models/base",
      max_steps: 20,
      schedule_start: 10,
      init_from: "tmp/a1/checkpoint.pt",
    }),
    data: { train: blank },
    initial_weights: null,
    previous_phase: {
      command: "/abs/train_gpt_neo.py --run-dir tmp/a1 --max-steps 10",
      steps: 10,
      checkpoint_sha256: "a".repeat(64),
      args: args({ run_dir: "tmp/a1", out: "models/base", max_steps: 10, schedule_start: 0 }),
      data: blank,
      stop_reason: "max-steps",
      previous_phase: null,
      initial_weights: null,
    },
  };
}

/**
 * The run: B1 from the base's weights (ended by hand at 5 of 50), B2 (deadline at 12 of 30),
 * B3 grown to 4 layers (to 40 of 40, on the newline layout), B4 with only its command (deadline at 45).
 */
function runRecord(withBaseTraining: boolean): TrainingRecord {
  const b1: PhaseRecord = {
    command: "/abs/train_gpt_neo.py --run-dir tmp/b1",
    steps: 5,
    checkpoint_sha256: "c1".repeat(32),
    args: args({
      run_dir: "tmp/b1",
      out: "tmp/out-b1",
      max_steps: 50,
      schedule_start: 0,
      init_weights: "models/base",
      deadline_utc: "09:00",
    }),
    data: blank,
    stop_reason: null,
    previous_phase: null,
    initial_weights: {
      directory: "models/base",
      model_sha256: "m".repeat(64),
      ...(withBaseTraining ? { training: baseRecord() } : {}),
    },
  };
  const b2: PhaseRecord = {
    command: "/abs/train_gpt_neo.py --run-dir /abs/tmp/b2",
    steps: 12,
    checkpoint_sha256: "c2".repeat(32),
    args: args({
      run_dir: "/abs/tmp/b2",
      out: "tmp/out-b2",
      max_steps: 30,
      schedule_start: 5,
      init_from: "/notes/ck-b1.pt",
      deadline_utc: "10:00",
    }),
    data: blank,
    stop_reason: "deadline 10:00 UTC",
    previous_phase: b1,
    grown: { from_layers: 2, to_layers: 4 },
  };
  const b3: PhaseRecord = {
    command: "/abs/train_gpt_neo.py --run-dir tmp/b3 --grow",
    steps: 40,
    checkpoint_sha256: "c3".repeat(32),
    args: args({
      run_dir: "tmp/b3",
      out: "tmp/out-b3",
      max_steps: 40,
      schedule_start: 12,
      num_layers: 4,
      grow: true,
      init_from: "/notes/ck-b2.pt",
      data_dir: "tmp/data-new",
    }),
    data: newline,
    stop_reason: "max-steps",
    previous_phase: b2,
  };
  return {
    command:
      '/abs/train_gpt_neo.py --data-dir tmp/data-new --run-dir tmp/b4 --out tmp/out-b4 --num-layers 4 --attention-types [[["global","local"],2]] --max-steps 60 --init-from /notes/ck-b3.pt --schedule-start 40 --lr 1e-3 --deadline-utc 11:00',
    steps: 45,
    max_steps: 60,
    stop_reason: "deadline 11:00 UTC",
    data: { train: newline },
    initial_weights: null,
    previous_phase: b3,
  };
}

function lineageError(run: () => unknown, pattern: RegExp): void {
  assert.throws(
    run,
    (error: unknown) =>
      error instanceof SpgError && error.code === "E_MODEL_LINEAGE" && pattern.test(error.message),
  );
}

test("the walk lists every phase oldest first, through --init-weights, with how each started and stopped", () => {
  const phases = lineageOf(runRecord(true));
  assert.deepEqual(
    phases.map((phase) => [
      phase.number,
      phase.fromStep,
      phase.toStep,
      phase.maxSteps,
      phase.start.kind,
      phase.stopReason,
    ]),
    [
      [1, 0, 10, 10, "fresh", "max-steps"],
      [2, 10, 20, 20, "continue", "max-steps"],
      [3, 0, 5, 50, "init-weights", "ended before finishing (its checkpoint at step 5 was continued)"],
      [4, 5, 12, 30, "continue", "deadline 10:00 UTC"],
      [5, 12, 40, 40, "grow", "max-steps"],
      [6, 40, 45, 60, "continue", "deadline 11:00 UTC"],
    ],
  );
  assert.deepEqual(phases[2].start, {
    kind: "init-weights",
    from: 2,
    modelSha256: "m".repeat(64),
    directory: "models/base",
  });
  assert.deepEqual(phases[4].start, { kind: "grow", from: 4, fromLayers: 2, toLayers: 4 });
  assert.equal(phases[5].argsFrom, "command");
  assert.equal(phases[5].args.lr, "1e-3");
  assert.equal(phases[0].argsFrom, "recorded");
});

test("the reproduction: relative dirs, --init-from the previous run dir, --stop-at-step for early stops, one export per layout", () => {
  const phases = lineageOf(runRecord(true));
  const plan = reproducePlan(phases, resolver);
  assert.deepEqual(
    plan.layouts.map((layout) => [layout.paragraphBreak, layout.dataDir, layout.phases]),
    [
      ["blank-line", "tmp/data-old", [1, 2, 3, 4]],
      ["newline", "tmp/data-new", [5, 6]],
    ],
  );
  // An absolute run dir and an output into models/ are replaced by directories of the checkout.
  assert.deepEqual(plan.runDirs, ["tmp/a1", "tmp/a2", "tmp/b1", "tmp/train-phase4", "tmp/b3", "tmp/b4"]);
  assert.deepEqual(plan.outs, [
    "tmp/model-phase1",
    "tmp/model-phase2",
    "tmp/out-b1",
    "tmp/out-b2",
    "tmp/out-b3",
    "tmp/out-b4",
  ]);
  const flags = plan.commands.map((command) => new Map(command));
  assert.equal(flags[0].has("init_from"), false);
  assert.equal(flags[1].get("init_from"), "tmp/a1/checkpoint.pt");
  assert.equal(flags[2].get("init_weights"), "tmp/model-phase2");
  assert.equal(flags[2].get("stop_at_step"), "5");
  assert.equal(flags[3].get("init_from"), "tmp/b1/checkpoint.pt");
  assert.equal(flags[3].get("stop_at_step"), "12");
  assert.equal(flags[4].get("grow"), true);
  assert.equal(flags[4].get("init_from"), "tmp/train-phase4/checkpoint.pt");
  assert.equal(flags[4].has("stop_at_step"), false);
  assert.equal(flags[5].get("init_from"), "tmp/b3/checkpoint.pt");
  assert.equal(flags[5].get("stop_at_step"), "45");
  for (const command of flags) {
    assert.equal(command.has("deadline_utc"), false);
    assert.equal(command.has("check_fixtures"), false);
  }
  const last = renderFlags(plan.commands[5]);
  assert.match(
    last,
    /^--data-dir tmp\/data-new --run-dir tmp\/b4 --out tmp\/out-b4 --num-layers 4 --attention-types '\[\[\["global","local"\],2\]\]' --max-steps 60 --init-from tmp\/b3\/checkpoint.pt --schedule-start 40 --lr 1e-3 --stop-at-step 45$/,
  );
});

test("what a record lacks comes from the lineage file; without it the walk names what to record", () => {
  lineageError(
    () => lineageOf(runRecord(false)),
    /--init-weights models\/base .*training record is not recorded/,
  );
  const lineage: LineageFile = { weights: { ["m".repeat(64)]: { training: baseRecord() } } };
  assert.deepEqual(
    lineageOf(runRecord(false), lineage).map((phase) => phase.toStep),
    lineageOf(runRecord(true)).map((phase) => phase.toStep),
  );
  // An early stop without a recorded reason.
  const run = runRecord(true);
  const b2 = (run.previous_phase as PhaseRecord).previous_phase as PhaseRecord;
  delete b2.stop_reason;
  delete b2.data;
  lineageError(() => lineageOf(run), /train data \(token export\) is not recorded/);
  const key = "c2".repeat(32);
  lineageError(
    () => lineageOf(run, { phases: { [key]: { data: blank } } }),
    /stopped at step 12 of 30 and its stop reason is not recorded/,
  );
  const filled = lineageOf(run, { phases: { [key]: { data: blank, stop_reason: "deadline 10:00 UTC" } } });
  assert.equal(filled[3].stopReason, "deadline 10:00 UTC");
  // The lineage file never overrides the trainer's record.
  lineageError(
    () => lineageOf(runRecord(true), { phases: { [key]: { stop_reason: "max-steps" } } }),
    /lineage file's stop_reason differs/,
  );
});

test("records that do not chain, and layouts the export cannot rebuild, are errors", () => {
  const run = runRecord(true);
  (run.previous_phase as PhaseRecord).args = {
    ...(run.previous_phase as PhaseRecord).args,
    schedule_start: 11,
  };
  lineageError(() => lineageOf(run), /--schedule-start 11, but the phase before it ended at step 12/);
  const phases = lineageOf(runRecord(true));
  lineageError(() => reproducePlan(phases, () => undefined), /no --paragraph-break .* rebuilds/);
  lineageError(
    () =>
      reproducePlan(phases, (sha) => ({
        ...(resolver(sha) ?? { paragraphBreak: "x", tokens: 0 }),
        fileSha256: "3".repeat(64),
      })),
    /rebuilds split .* as token file 3{64}/,
  );
});

test("a recorded command line parses into flags, bare flags included", () => {
  assert.deepEqual(
    parseTrainerCommand(
      '/x/train_gpt_neo.py --grow --max-steps 10 --attention-types [[["global","local"],4]] --export-only',
    ),
    {
      grow: true,
      max_steps: "10",
      attention_types: '[[["global","local"],4]]',
      export_only: true,
    },
  );
  assert.equal(
    renderFlags([
      ["data_dir", "tmp/it's"],
      ["grow", true],
    ]),
    "--data-dir 'tmp/it'\\''s' --grow",
  );
});

test("the committed lineage file walks the previously bundled model back to its first phase", () => {
  const path = fileURLToPath(new URL("../../../models/gpt-neo-brown/lineage.json", import.meta.url));
  const lineage = JSON.parse(readFileSync(path, "utf8")) as LineageFile;
  const entries = Object.entries(lineage.weights ?? {});
  assert.equal(entries.length, 1);
  const [sha, entry] = entries[0];
  const phases = lineageOf(entry.training as TrainingRecord, lineage, sha);
  assert.deepEqual(
    phases.map((phase) => [
      phase.fromStep,
      phase.toStep,
      phase.start.kind,
      phase.argsFrom,
      phase.data.splitSha256,
    ]),
    [
      [0, 300, "fresh", "recorded", "8f4630307b9dbee0d8e1ec1ac48165992bbf3f0f75cb195079c38afc1b14ba19"],
      [300, 520, "continue", "recorded", "8f4630307b9dbee0d8e1ec1ac48165992bbf3f0f75cb195079c38afc1b14ba19"],
      [520, 1000, "continue", "recorded", "8f4630307b9dbee0d8e1ec1ac48165992bbf3f0f75cb195079c38afc1b14ba19"],
    ],
  );
});
