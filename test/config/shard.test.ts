import assert from "node:assert/strict";
import { test } from "node:test";
import { selectShard, shardPositions } from "../../src/bundle/shards.js";
import { parseShardFlag, shardFromEnv } from "../../src/config/shard.js";
import { spgError } from "../helpers/spg-error.js";

test("--shard K/N parses K from 1 to N and refuses anything else with E_SHARD_SPEC", () => {
  assert.deepEqual(parseShardFlag("1/3"), { index: 1, count: 3 });
  assert.deepEqual(parseShardFlag(" 3/3 "), { index: 3, count: 3 });
  for (const bad of ["0/3", "4/3", "1/0", "a/3", "1/3/5", "-1/3", "01/3", "1.5/3", "3", ""]) {
    const error = spgError(() => parseShardFlag(bad));
    assert.equal(error.code, "E_SHARD_SPEC", bad);
    assert.equal(error.field, "--shard");
  }
});

test("--shard-from-env: JOB_COMPLETION_INDEX is 0-based and needs --shard-count", () => {
  assert.deepEqual(shardFromEnv({ JOB_COMPLETION_INDEX: "0" }, 3), { index: 1, count: 3 });
  assert.deepEqual(shardFromEnv({ JOB_COMPLETION_INDEX: "2" }, 3), { index: 3, count: 3 });
  assert.equal(spgError(() => shardFromEnv({ JOB_COMPLETION_INDEX: "3" }, 3)).code, "E_SHARD_SPEC");
  const noCount = spgError(() => shardFromEnv({ JOB_COMPLETION_INDEX: "0" }, undefined));
  assert.equal(noCount.code, "E_SHARD_ENV");
  assert.equal(noCount.field, "--shard-count");
  assert.equal(spgError(() => shardFromEnv({ JOB_COMPLETION_INDEX: "x" }, 3)).code, "E_SHARD_ENV");
});

test("--shard-from-env: a Slurm array's id minus its minimum, N from SLURM_ARRAY_TASK_COUNT or the flag", () => {
  const slurm = { SLURM_ARRAY_TASK_ID: "5", SLURM_ARRAY_TASK_MIN: "4", SLURM_ARRAY_TASK_COUNT: "4" };
  assert.deepEqual(shardFromEnv(slurm, undefined), { index: 2, count: 4 });
  assert.deepEqual(shardFromEnv(slurm, 4), { index: 2, count: 4 });
  assert.equal(spgError(() => shardFromEnv(slurm, 5)).code, "E_SHARD_ENV");
  assert.deepEqual(shardFromEnv({ SLURM_ARRAY_TASK_ID: "0", SLURM_ARRAY_TASK_MIN: "0" }, 2), {
    index: 1,
    count: 2,
  });
  assert.equal(
    spgError(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: "0", SLURM_ARRAY_TASK_MIN: "0" }, undefined)).code,
    "E_SHARD_ENV",
  );
  assert.equal(spgError(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: "1" }, 2)).code, "E_SHARD_ENV");
});

test("--shard-from-env with no scheduler's index, or two, is an error, not a guess", () => {
  assert.equal(spgError(() => shardFromEnv({}, 3)).code, "E_SHARD_ENV");
  const both = spgError(() =>
    shardFromEnv({ JOB_COMPLETION_INDEX: "0", SLURM_ARRAY_TASK_ID: "0", SLURM_ARRAY_TASK_MIN: "0" }, 2),
  );
  assert.equal(both.code, "E_SHARD_ENV");
});

test("the N shards of a draw are disjoint, cover it, keep draw order and differ in size by at most one", () => {
  for (const drawSize of [1, 2, 3, 7, 10]) {
    for (let count = 1; count <= drawSize; count++) {
      const owner = new Array<number>(drawSize).fill(0);
      const sizes: number[] = [];
      for (let index = 1; index <= count; index++) {
        const positions = shardPositions(drawSize, { index, count });
        sizes.push(positions.length);
        assert.deepEqual(
          positions,
          [...positions].sort((a, b) => a - b),
        );
        for (const position of positions) owner[position] += 1;
      }
      assert.deepEqual(owner, new Array<number>(drawSize).fill(1), `${drawSize} in ${count}`);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
    }
  }
  assert.deepEqual(selectShard(["a", "b", "c", "d", "e"], { index: 2, count: 2 }), ["b", "d"]);
  assert.equal(spgError(() => selectShard(["a", "b"], { index: 1, count: 3 })).code, "E_SHARD_SPEC");
});
