/**
 * Which shard of a run this process proves: `--shard K/N`, or the index a scheduler put in
 * the environment (Kubernetes Indexed Job, Slurm job array). spg never schedules; the engine
 * places, retries and parallelises, and this only reads what it was told.
 */
import { SpgError } from "../errors.js";

/** Shard `index` (1-based) of `count`. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** The environment variables read by --shard-from-env. */
export const SHARD_ENV = {
  /** Kubernetes Indexed Job: the pod's index, 0-based. */
  kubernetesIndex: "JOB_COMPLETION_INDEX",
  /** Slurm job array: this task's id, the array's lowest id and its task count. */
  slurmTaskId: "SLURM_ARRAY_TASK_ID",
  slurmTaskMin: "SLURM_ARRAY_TASK_MIN",
  slurmTaskCount: "SLURM_ARRAY_TASK_COUNT",
} as const;

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function checkedSpec(index: number, count: number, field: string, fix: string): ShardSpec {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new SpgError("E_SHARD_SPEC", `the shard count ${count} is not a positive integer`, { field, fix });
  }
  if (!Number.isSafeInteger(index) || index < 1 || index > count) {
    throw new SpgError("E_SHARD_SPEC", `shard ${index} is not between 1 and the shard count ${count}`, {
      field,
      fix,
    });
  }
  return { index, count };
}

/** `--shard K/N`: K from 1 to N. */
export function parseShardFlag(text: string): ShardSpec {
  const match = /^([0-9]+)\/([0-9]+)$/.exec(text.trim());
  const fix = "write --shard K/N with 1 <= K <= N, e.g. --shard 2/8 for the second of eight shards";
  if (match === null || !DECIMAL.test(match[1]) || !DECIMAL.test(match[2])) {
    throw new SpgError("E_SHARD_SPEC", `--shard ${JSON.stringify(text)} is not K/N`, {
      field: "--shard",
      fix,
    });
  }
  return checkedSpec(Number(match[1]), Number(match[2]), "--shard", fix);
}

function envInteger(env: NodeJS.ProcessEnv, name: string): number {
  const value = env[name];
  if (value === undefined || !DECIMAL.test(value.trim())) {
    throw new SpgError(
      "E_SHARD_ENV",
      `${name} is ${value === undefined ? "not set" : JSON.stringify(value)}, not a non-negative integer`,
      {
        field: name,
        fix: `run under a scheduler that sets ${name}, or pass --shard K/N`,
      },
    );
  }
  return Number(value.trim());
}

/**
 * `--shard-from-env`: the index from JOB_COMPLETION_INDEX (0-based) or from
 * SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN (a contiguous array); the count from `count`
 * (--shard-count) or, under Slurm, SLURM_ARRAY_TASK_COUNT. Both schedulers' variables at
 * once, or neither, is an error rather than a guess.
 */
export function shardFromEnv(env: NodeJS.ProcessEnv, count: number | undefined): ShardSpec {
  const kubernetes = env[SHARD_ENV.kubernetesIndex] !== undefined;
  const slurm = env[SHARD_ENV.slurmTaskId] !== undefined;
  if (kubernetes && slurm) {
    throw new SpgError(
      "E_SHARD_ENV",
      `both ${SHARD_ENV.kubernetesIndex} and ${SHARD_ENV.slurmTaskId} are set: which scheduler's index is this shard's?`,
      { field: SHARD_ENV.kubernetesIndex, fix: "unset one of them, or pass --shard K/N" },
    );
  }
  if (kubernetes) {
    const fix = `pass --shard-count N (the Job's completions) with --shard-from-env`;
    if (count === undefined) {
      throw new SpgError(
        "E_SHARD_ENV",
        `${SHARD_ENV.kubernetesIndex} gives the index but not the shard count`,
        { field: "--shard-count", fix },
      );
    }
    return checkedSpec(envInteger(env, SHARD_ENV.kubernetesIndex) + 1, count, SHARD_ENV.kubernetesIndex, fix);
  }
  if (slurm) {
    const fix = "submit a contiguous array (sbatch --array=0-N-1 or 1-N, no step) or pass --shard K/N";
    const index = envInteger(env, SHARD_ENV.slurmTaskId) - envInteger(env, SHARD_ENV.slurmTaskMin) + 1;
    let total = count;
    if (env[SHARD_ENV.slurmTaskCount] !== undefined) {
      const arrayCount = envInteger(env, SHARD_ENV.slurmTaskCount);
      if (total !== undefined && total !== arrayCount) {
        throw new SpgError(
          "E_SHARD_ENV",
          `--shard-count ${total} disagrees with ${SHARD_ENV.slurmTaskCount}=${arrayCount}`,
          { field: "--shard-count", fix: "leave out --shard-count under Slurm, or make it the array's size" },
        );
      }
      total = arrayCount;
    }
    if (total === undefined) {
      throw new SpgError(
        "E_SHARD_ENV",
        `neither --shard-count nor ${SHARD_ENV.slurmTaskCount} gives the shard count`,
        {
          field: "--shard-count",
          fix,
        },
      );
    }
    return checkedSpec(index, total, SHARD_ENV.slurmTaskId, fix);
  }
  throw new SpgError(
    "E_SHARD_ENV",
    `--shard-from-env found neither ${SHARD_ENV.kubernetesIndex} (Kubernetes Indexed Job) nor ${SHARD_ENV.slurmTaskId} (Slurm array)`,
    { field: "--shard-from-env", fix: "run it as an Indexed Job or a Slurm array task, or pass --shard K/N" },
  );
}
