import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { packageRoot } from "../../src/paths.js";

interface ActionStep {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  shell?: string;
  env?: Record<string, string>;
}
interface Action {
  inputs: Record<string, { default?: string }>;
  outputs: Record<string, { value: string }>;
  runs: { using: string; steps: ActionStep[] };
}

const action = parse(readFileSync(join(packageRoot(), "verify", "action.yml"), "utf8")) as Action;
const verifyStep = action.runs.steps.find((step) => step.id === "verify")!;

/**
 * Run the action's verify step with bash the way the runner does (`bash --noprofile --norc -eo pipefail`): inputs as the step's env,
 * GITHUB_OUTPUT and GITHUB_STEP_SUMMARY as files, and a fake `spg` on PATH that fails any
 * bundle whose name contains "bad" (exit 5) and logs its arguments.
 */
function runVerifyStep(bundles: string[], inputs: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "spg-action-"));
  try {
    mkdirSync(join(dir, "bundles", "nested"), { recursive: true });
    for (const bundle of bundles) writeFileSync(join(dir, bundle), "zip");
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const log = join(dir, "spg.log");
    writeFileSync(
      join(bin, "spg"),
      `#!/usr/bin/env bash\necho "$*" >> ${JSON.stringify(log)}\ncase "$2" in *bad*) echo "::error title=spg verify::E_X"; exit 5;; esac\nexit 0\n`,
    );
    chmodSync(join(bin, "spg"), 0o755);
    const output = join(dir, "output");
    const summary = join(dir, "summary.md");
    writeFileSync(summary, "before\n");
    writeFileSync(output, "");
    const defaults = Object.fromEntries(
      Object.entries(action.inputs).map(([name, input]) => [name, input.default ?? ""]),
    );
    const values = { ...defaults, ...inputs };
    // The step's env maps ${{ inputs.x }} to variables; resolve those expressions here.
    const env: Record<string, string> = {};
    for (const [name, expression] of Object.entries(verifyStep.env ?? {})) {
      const input = /^\$\{\{ inputs\.([a-z-]+) \}\}$/.exec(expression)?.[1];
      assert.ok(input !== undefined && input in values, `unexpected env expression ${expression}`);
      env[name] = values[input];
    }
    const result = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", verifyStep.run!], {
      cwd: dir,
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        GITHUB_OUTPUT: output,
        GITHUB_STEP_SUMMARY: summary,
        ...env,
      },
      encoding: "utf8",
    });
    const read = (path: string) => {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return "";
      }
    };
    return {
      status: result.status,
      stdout: result.stdout,
      outputs: Object.fromEntries(
        read(output)
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((line) => line.split("=") as [string, string]),
      ),
      summary: read(summary),
      calls: read(log).trim().split("\n").filter(Boolean),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("action.yml is a composite action: setup-node, install+build in the action path, then verify", () => {
  assert.equal(action.runs.using, "composite");
  assert.ok(action.runs.steps[0].uses?.startsWith("actions/setup-node@"));
  const install = action.runs.steps[1];
  assert.match(install.run!, /npm ci/);
  assert.match(install.run!, /npm run build/);
  assert.ok(verifyStep.shell === "bash");
  assert.deepEqual(Object.keys(action.outputs).sort(), ["failed", "verified"]);
  assert.doesNotMatch(verifyStep.run!, /\$\{\{/, "inputs must not be spliced into the script");
});

test("the job fails when one bundle fails, after verifying all of them", () => {
  const run = runVerifyStep(["bundles/a.zip", "bundles/bad.zip", "bundles/c.zip"], {
    "trusted-keys": "keys.txt",
  });
  assert.equal(run.status, 1);
  assert.deepEqual(run.outputs, { verified: "3", failed: "1" });
  assert.deepEqual(run.calls, [
    "verify bundles/a.zip --trusted-keys keys.txt --require-trusted --replay all",
    "verify bundles/bad.zip --trusted-keys keys.txt --require-trusted --replay all",
    "verify bundles/c.zip --trusted-keys keys.txt --require-trusted --replay all",
  ]);
  assert.match(run.stdout, /::error title=spg verify::bundles\/bad\.zip failed verification \(exit 5\)/);
  assert.ok(run.summary.startsWith("before\n### spg verify: 3 bundle(s), 1 failed"));
  assert.match(run.summary, /\| `bundles\/bad\.zip` \| ❌ fail \| 5 \|/);
});

test("the job passes when every bundle passes; globs, replay and trust flags are passed through", () => {
  const run = runVerifyStep(["bundles/a.zip", "bundles/nested/b.zip"], {
    bundles: "bundles/**/*.zip",
    "require-trusted": "false",
    replay: "2",
    "model-path": "models/my gpt-neo",
    policy: "strict.yaml",
  });
  assert.equal(run.status, 0);
  assert.deepEqual(run.outputs, { verified: "2", failed: "0" });
  assert.deepEqual(run.calls, [
    "verify bundles/a.zip --no-require-trusted --replay 2 --model models/my gpt-neo --policy strict.yaml",
    "verify bundles/nested/b.zip --no-require-trusted --replay 2 --model models/my gpt-neo --policy strict.yaml",
  ]);
  const off = runVerifyStep(["bundles/a.zip"], { replay: "off" });
  assert.deepEqual(off.calls, ["verify bundles/a.zip --require-trusted --no-replay"]);
});

test("replay defaults to all: a gate passes only what it replayed, a bundle whose model is not here fails", () => {
  assert.equal(action.inputs.replay.default, "all");
  assert.equal(action.inputs["model-path"].default, "");
});

test("no matching bundle, or a bad input, fails the job instead of passing vacuously", () => {
  const none = runVerifyStep([]);
  assert.equal(none.status, 1);
  assert.match(none.stdout, /no bundle matches 'bundles\/\*\.zip'/);
  assert.deepEqual(none.calls, []);
  for (const replay of ["two", "0", "-1", "1e3"]) {
    const badReplay = runVerifyStep(["bundles/a.zip"], { replay });
    assert.equal(badReplay.status, 1, replay);
    assert.deepEqual(badReplay.calls, []);
  }
});

test("a bundle name with a newline cannot forge a workflow command or a summary row", () => {
  const names = ["bundles/ok\n::warning::forged pass.zip", "bundles/bad\n::notice::forged|cell`x`.zip"];
  const run = runVerifyStep(names);
  assert.equal(run.status, 1);
  assert.deepEqual(run.outputs, { verified: "2", failed: "1" });
  // Each name reached spg whole, and every line the step printed is one of its own commands.
  assert.equal(
    run.calls.length,
    4,
    "spg got each name, newline included (the fake logs one line per name line)",
  );
  for (const line of run.stdout.split("\n").filter(Boolean)) {
    assert.doesNotMatch(line, /^::(warning|notice)::forged/, `forged line: ${line}`);
  }
  assert.match(run.stdout, /::group::spg verify bundles\/ok%0A::warning::forged pass\.zip/);
  assert.match(run.stdout, /::error title=spg verify::bundles\/bad%0A::notice::forged\|cell`x`\.zip failed/);
  const rows = run.summary.split("\n").filter((line) => line.startsWith("| `"));
  assert.equal(rows.length, 2, run.summary);
  assert.ok(
    rows.every((row) => row.split(/(?<!\\)\|/).length === 5),
    run.summary,
  );
});
