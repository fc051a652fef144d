import assert from "node:assert/strict";
import { test } from "node:test";
import type { MethodSummary } from "../../src/bundle/types.js";
import { resolveConfig } from "../../src/config/load.js";
import { applySweep } from "../../src/config/sweep.js";
import { frontiers } from "../../src/measure/summary.js";

function summary(ratio: number, increase: number): MethodSummary {
  return { compressionRatio: ratio, perplexityIncreasePct: increase } as MethodSummary;
}

test("summary frontiers: overall and per method family, by hand", () => {
  const result = frontiers({
    full: summary(1, 0),
    "spg@ratio=2": summary(4, 1),
    "spg@ratio=8": summary(16, 9),
    spg: summary(8, 12), // dominated by spg@ratio=8 (more compression, less loss)
    snapkv: summary(4, 2), // dominated by spg@ratio=2
  });
  assert.deepEqual(result.all, ["full", "spg@ratio=2", "spg@ratio=8"]);
  assert.deepEqual(result.byMethod, {
    full: ["full"],
    spg: ["spg@ratio=2", "spg@ratio=8"],
    snapkv: ["snapkv"],
  });
});

test("--sweep keeps each method and adds its variants; unswept kinds stay single", () => {
  const config = applySweep(resolveConfig({ preset: "ci-smoke" }), 3);
  const names = config.methods.map((m) => m.name);
  assert.equal(names.filter((n) => n === "full" || n.startsWith("full@")).length, 1);
  assert.equal(names.filter((n) => n.startsWith("spg@")).length, 3);
  assert.ok(names.includes("spg"));
  assert.equal(new Set(names).size, names.length);
  assert.throws(() => applySweep(resolveConfig({ preset: "ci-smoke" }), 99), /E_SWEEP_POINTS|sweep has/);
});
