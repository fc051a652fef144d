/**
 * The scheduler templates (the GitHub Actions workflow, the Kubernetes Jobs and the Slurm
 * scripts under examples/, shown in docs/distributed.md) as written: they parse, every spg
 * flag they pass is one the command declares (renaming a flag breaks this test), the index
 * variables they rely on are the ones --shard-from-env reads, and the shard specs each one
 * hands out for N shards are exactly K = 1..N of N.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import Keygen from "../../src/commands/keygen.js";
import Merge from "../../src/commands/merge.js";
import Prove from "../../src/commands/prove.js";
import Verify from "../../src/commands/verify.js";
import { parseShardFlag, SHARD_ENV, type ShardSpec, shardFromEnv } from "../../src/config/shard.js";
import { packageRoot } from "../../src/paths.js";

const root = packageRoot();
const read = (path: string) => readFileSync(join(root, path), "utf8");
const COMMAND_FLAGS: Record<string, readonly string[]> = {
  prove: Object.keys(Prove.flags),
  merge: Object.keys(Merge.flags),
  verify: Object.keys(Verify.flags),
  keygen: Object.keys(Keygen.flags),
};

interface SpgCall {
  command: string;
  flags: Map<string, string | true>;
  text: string;
}

/**
 * Every `node bin/run.js CMD ...` or `spg CMD ...` call in shell text (line continuations
 * joined, `&&` and `;` ending a call), with its --flags and their values.
 */
function spgCalls(shell: string): SpgCall[] {
  const calls: SpgCall[] = [];
  const joined = shell.replace(/\\\n/g, " ");
  for (const line of joined.split("\n")) {
    for (const part of line.split(/&&|;|\|\|/)) {
      const match = /(?:node bin\/run\.js|(?:^|\s)spg)\s+(\w+)(.*)$/.exec(part);
      if (match === null) continue;
      const words = match[2].trim().split(/\s+/);
      const flags = new Map<string, string | true>();
      words.forEach((word, at) => {
        if (!word.startsWith("--")) return;
        const [name, inline] = word.slice(2).split("=", 2);
        const next = words[at + 1];
        flags.set(name, inline ?? (next !== undefined && !next.startsWith("--") ? next : true));
      });
      calls.push({ command: match[1], flags, text: part.trim() });
    }
  }
  return calls;
}

/** Every flag a call passes is one its command declares (or --no-X of an allowNo flag). */
function assertFlagsExist(calls: readonly SpgCall[], where: string): void {
  assert.ok(calls.length > 0, `${where}: no spg call found`);
  for (const call of calls) {
    const known = COMMAND_FLAGS[call.command];
    assert.ok(known !== undefined, `${where}: spg ${call.command} is not a command this test knows`);
    for (const flag of call.flags.keys()) {
      const base = flag.startsWith("no-") && !known.includes(flag) ? flag.slice(3) : flag;
      assert.ok(known.includes(base), `${where}: spg ${call.command} has no --${flag} (in: ${call.text})`);
    }
  }
}

function unquote(value: string | true | undefined): string {
  assert.equal(typeof value, "string");
  return (value as string).replace(/^"|"$/g, "");
}

/** The shards N tasks get: K from 1 to N once each, all of N. */
function assertCovers(specs: readonly ShardSpec[], count: number): void {
  assert.deepEqual(
    specs.map((spec) => `${spec.index}/${spec.count}`),
    Array.from({ length: count }, (_, at) => `${at + 1}/${count}`),
  );
}

/** The examples/ file as docs/distributed.md shows it (one fenced block, byte for byte). */
function assertShownInDocs(path: string): void {
  const text = read(path);
  assert.ok(
    read("docs/distributed.md").includes(`\n${text}\`\`\``),
    `docs/distributed.md does not show ${path} as it is`,
  );
}

test("GitHub Actions: the workflow parses, its plan step hands out K = 1..N, every spg flag exists", () => {
  const workflow = parse(read(".github/workflows/prove-sharded.yml")) as {
    on: { workflow_dispatch: { inputs: Record<string, unknown> } };
    jobs: Record<
      string,
      {
        steps: { run?: string; env?: Record<string, string>; uses?: string; with?: Record<string, string> }[];
      }
    >;
  };
  const inputs = Object.keys(workflow.on.workflow_dispatch.inputs);
  for (const used of read(".github/workflows/prove-sharded.yml").matchAll(/inputs\.([\w-]+)/g)) {
    assert.ok(inputs.includes(used[1]), `the workflow uses undeclared input ${used[1]}`);
  }
  // Run the plan step's own script for N = 3, as Actions would.
  const plan = workflow.jobs.plan.steps[0].run!;
  const dir = mkdtempSync(join(tmpdir(), "spg-actions-"));
  try {
    const output = join(dir, "output");
    const ran = spawnSync("bash", ["-c", plan], {
      encoding: "utf8",
      env: { ...process.env, N: "3", GITHUB_OUTPUT: output },
    });
    assert.equal(ran.status, 0, ran.stderr);
    const matrix = JSON.parse(/^shards=(.*)$/m.exec(readFileSync(output, "utf8"))![1]) as number[];
    const prove = workflow.jobs.prove.steps.find((step) => step.env?.SHARD !== undefined)!;
    // SHARD is "${{ matrix.shard }}/${{ inputs.shards }}": each matrix value over N.
    assert.match(prove.env!.SHARD, /^\$\{\{ matrix\.shard \}\}\/\$\{\{ inputs\.shards \}\}$/);
    assertCovers(
      matrix.map((k) => parseShardFlag(`${k}/3`)),
      3,
    );
    const refused = spawnSync("bash", ["-c", plan], {
      encoding: "utf8",
      env: { ...process.env, N: "0", GITHUB_OUTPUT: output },
    });
    assert.notEqual(refused.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
  const calls = steps.flatMap((step) => spgCalls(step.run ?? ""));
  assertFlagsExist(calls, "prove-sharded.yml");
  assert.equal(calls.find((call) => call.command === "prove")?.flags.get("shard"), '"$SHARD"');
  // The verify action takes the inputs the workflow gives it.
  const action = parse(read("verify/action.yml")) as { inputs: Record<string, unknown> };
  for (const step of steps.filter((s) => s.uses === "./verify")) {
    for (const input of Object.keys(step.with ?? {}))
      assert.ok(input in action.inputs, `verify action has no input ${input}`);
  }
});

test("Kubernetes: an Indexed Job whose pods prove K = JOB_COMPLETION_INDEX + 1 of completions; the merge Job's flags exist", () => {
  const job = parse(read("examples/kubernetes/prove-job.yaml")) as {
    kind: string;
    spec: {
      completions: number;
      parallelism: number;
      completionMode: string;
      template: {
        spec: {
          containers: { args: string[] }[];
          volumes: { persistentVolumeClaim?: { claimName: string } }[];
        };
      };
    };
  };
  assert.equal(job.kind, "Job");
  assert.equal(job.spec.completionMode, "Indexed");
  const shell = job.spec.template.spec.containers[0].args.join("\n");
  const [prove] = spgCalls(shell);
  assertFlagsExist([prove], "prove-job.yaml");
  assert.equal(prove.flags.get("shard-from-env"), true);
  assert.equal(
    Number(prove.flags.get("shard-count")),
    job.spec.completions,
    "--shard-count is the Job's completions",
  );
  assert.equal(SHARD_ENV.kubernetesIndex, "JOB_COMPLETION_INDEX");
  assert.match(unquote(prove.flags.get("out")), /\$\{JOB_COMPLETION_INDEX\}/, "each pod writes its own file");
  const count = job.spec.completions;
  assertCovers(
    Array.from({ length: count }, (_, index) => shardFromEnv({ JOB_COMPLETION_INDEX: String(index) }, count)),
    count,
  );
  const claim = job.spec.template.spec.volumes.find((volume) => volume.persistentVolumeClaim)!;
  const pvc = parse(read("examples/kubernetes/shards-pvc.yaml")) as {
    kind: string;
    metadata: { name: string };
    spec: { accessModes: string[] };
  };
  assert.equal(pvc.kind, "PersistentVolumeClaim");
  assert.equal(pvc.metadata.name, claim.persistentVolumeClaim!.claimName);
  assert.ok(pvc.spec.accessModes.includes("ReadWriteMany"), "pods on several nodes write to it at once");

  const merge = parse(read("examples/kubernetes/merge-job.yaml")) as typeof job;
  const calls = spgCalls(merge.spec.template.spec.containers[0].args.join("\n"));
  assertFlagsExist(calls, "merge-job.yaml");
  assert.deepEqual(
    calls.map((call) => call.command),
    ["merge", "verify"],
  );
  assert.match(read("examples/kubernetes/Dockerfile"), /npm ci[^\n]*&& npm run build/);
  assertShownInDocs("examples/kubernetes/prove-job.yaml");
});

test("Slurm: a contiguous array whose tasks prove K = 1..N of SLURM_ARRAY_TASK_COUNT; the merge script's flags exist", () => {
  const script = read("examples/slurm/prove.sbatch");
  assert.ok(script.startsWith("#!/bin/bash\n"));
  const syntax = spawnSync("bash", ["-n", join(root, "examples/slurm/prove.sbatch")], { encoding: "utf8" });
  assert.equal(syntax.status, 0, syntax.stderr);
  const array = /^#SBATCH --array=(\d+)-(\d+)$/m.exec(script);
  assert.ok(array !== null, "a contiguous array, no step (--shard-from-env needs one)");
  const [first, last] = [Number(array[1]), Number(array[2])];
  const [prove] = spgCalls(script);
  assertFlagsExist([prove], "prove.sbatch");
  assert.equal(prove.flags.get("shard-from-env"), true);
  assert.equal(prove.flags.get("shard-count"), undefined, "N comes from SLURM_ARRAY_TASK_COUNT");
  assert.match(unquote(prove.flags.get("out")), /\$\{SLURM_ARRAY_TASK_ID\}/, "each task writes its own file");
  assert.match(script, /mkdir -p shards/, "the output folder exists before prove writes to it");
  // The variables Slurm sets in each task of --array=first-last.
  const count = last - first + 1;
  assertCovers(
    Array.from({ length: count }, (_, at) =>
      shardFromEnv(
        {
          [SHARD_ENV.slurmTaskId]: String(first + at),
          [SHARD_ENV.slurmTaskMin]: String(first),
          [SHARD_ENV.slurmTaskCount]: String(count),
        },
        undefined,
      ),
    ),
    count,
  );
  const merge = read("examples/slurm/merge.sbatch");
  assert.equal(spawnSync("bash", ["-n", join(root, "examples/slurm/merge.sbatch")]).status, 0);
  const calls = spgCalls(merge);
  assertFlagsExist(calls, "merge.sbatch");
  assert.deepEqual(
    calls.map((call) => call.command),
    ["merge", "verify"],
  );
  assertShownInDocs("examples/slurm/prove.sbatch");
});

test("docs/distributed.md: every spg call it shows passes flags the command declares, and names files that exist", () => {
  const docs = read("docs/distributed.md");
  const blocks = [...docs.matchAll(/```(?:sh|yaml|bash)?\n([\s\S]*?)```/g)].map((block) => block[1]);
  assertFlagsExist(blocks.flatMap(spgCalls), "docs/distributed.md");
  for (const path of docs.matchAll(/\]\(\.\.\/((?:examples|\.github)\/[^)]+)\)/g)) {
    assert.ok(
      existsSync(join(root, path[1])),
      `docs/distributed.md links to ${path[1]}, which does not exist`,
    );
  }
});
