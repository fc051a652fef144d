/**
 * The GitHub workflows and the verify action, parsed (yaml): their outcomes are honest. A
 * step's failure is never swallowed (no `|| true`, no continue-on-error), a multi-line script
 * stops at its first failing command, even inside a pipe (GitHub's default shell for `run` is
 * `bash -e {0}`, without pipefail), and the sharded proof verifies a merge whose claims failed
 * and uploads it only under a name that says so.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { packageRoot } from "../src/paths.js";

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  shell?: string;
  "continue-on-error"?: boolean | string;
  with?: Record<string, string>;
  env?: Record<string, string>;
}

const root = packageRoot();
const workflowsDir = join(root, ".github", "workflows");

function stepsOf(file: string): { where: string; step: Step }[] {
  const parsed = parse(readFileSync(file, "utf8")) as {
    jobs?: Record<string, { steps: Step[]; "continue-on-error"?: unknown }>;
    runs?: { steps: Step[] };
  };
  if (parsed.runs !== undefined) {
    return parsed.runs.steps.map((step, at) => ({ where: `${file} step ${step.name ?? at}`, step }));
  }
  return Object.entries(parsed.jobs ?? {}).flatMap(([job, { steps, ...rest }]) => {
    assert.equal(rest["continue-on-error"], undefined, `${file} job ${job} must not continue on error`);
    return steps.map((step, at) => ({ where: `${file} job ${job} step ${step.name ?? at}`, step }));
  });
}

const files = [
  ...readdirSync(workflowsDir)
    .filter((name) => name.endsWith(".yml") || name.endsWith(".yaml"))
    .map((name) => join(workflowsDir, name)),
  join(root, "verify", "action.yml"),
];

test("every workflow and the action: no failure swallowed, multi-line scripts under set -euo pipefail", () => {
  assert.ok(files.length >= 4, `found ${files.join(", ")}`);
  for (const file of files) {
    for (const { where, step } of stepsOf(file)) {
      assert.equal(step["continue-on-error"], undefined, `${where}: continue-on-error hides a failure`);
      const script = step.run;
      if (script === undefined) continue;
      assert.doesNotMatch(script, /\|\|\s*true\b|\|\|\s*:(\s|$)/, `${where}: \`|| true\` swallows a failure`);
      const commands = script
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line !== "" && !line.startsWith("#"));
      if (commands.length > 1) {
        assert.equal(
          commands[0],
          "set -euo pipefail",
          `${where}: a multi-line script starts with set -euo pipefail`,
        );
      } else {
        // One command: bash -e ends the step with its status, unless a pipe hides it.
        assert.doesNotMatch(script, /[^|]\|[^|]/, `${where}: a one-line pipe needs set -o pipefail`);
      }
    }
  }
});

test("prove-sharded: a merge whose claims failed is still verified, fails the job, and is not uploaded as passing", () => {
  const steps = stepsOf(join(workflowsDir, "prove-sharded.yml"))
    .filter(({ where }) => where.includes("job merge"))
    .map(({ step }) => step);
  const merge = steps.find((step) => step.id === "merge");
  const verify = steps.find((step) => step.id === "verify");
  const upload = steps.find((step) => step.uses?.startsWith("actions/upload-artifact@"));
  assert.ok(merge && verify && upload, "merge, verify and upload steps");
  assert.match(merge.run!, /node bin\/run\.js merge /);
  // merge exits 6 when a claim fails, which fails its step: verify must not need it to succeed.
  assert.equal(verify.uses, "./verify");
  assert.ok(verify.if !== undefined, "verify runs on its own condition, not on success()");
  assert.doesNotMatch(verify.if, /success\(\)|always\(\)/);
  assert.match(verify.if, /!cancelled\(\)/);
  assert.match(verify.if, /hashFiles\('proofs\/run\.zip'\) != ''/);
  assert.equal(verify.with?.bundles, "proofs/run.zip");
  // The artifact's name carries verify's outcome: proof-PRESET only when it verified.
  assert.match(
    upload.with!.name,
    /^proof-\$\{\{ inputs\.preset \}\}\$\{\{ steps\.verify\.outcome != 'success' && '-[\w-]+' \|\| '' \}\}$/,
  );
  assert.ok(steps.indexOf(verify) > steps.indexOf(merge) && steps.indexOf(upload) > steps.indexOf(verify));
});

test("gate-example and ci: step outputs and inputs reach scripts as variables, never spliced in", () => {
  for (const file of files) {
    for (const { where, step } of stepsOf(file)) {
      if (step.run !== undefined)
        assert.doesNotMatch(step.run, /\$\{\{/, `${where}: an expression spliced into a script`);
    }
  }
});

test("the action: every input is read by a step (an input no step reads is silently ignored)", () => {
  const action = join(root, "verify", "action.yml");
  const parsed = parse(readFileSync(action, "utf8")) as { inputs: Record<string, unknown> };
  const stepsText = stepsOf(action)
    .map(({ step }) => JSON.stringify([step.with ?? {}, step.env ?? {}]))
    .join("\n");
  for (const input of Object.keys(parsed.inputs)) {
    assert.ok(stepsText.includes(`inputs.${input} }}`), `input ${input} reaches no step's with or env`);
  }
  const verify = stepsOf(action).find(({ step }) => step.run?.includes("spg verify"))?.step;
  assert.ok(verify?.env && verify.run, "the verify step");
  assert.match(verify.env.SPG_REQUIRE_MODEL, /^\$\{\{ inputs\.require-model \}\}$/);
  assert.match(verify.run, /true\) args\+=\(--require-model\)/);
});
