import assert from "node:assert/strict";
import { test } from "node:test";
import { configFlags, resolveOptionsFromFlags } from "../../src/config/flags.js";
import { resolveConfig } from "../../src/config/load.js";

test("flags map onto overrides; --methods splits on commas; absent flags stay absent", () => {
  const options = resolveOptionsFromFlags({
    preset: "ci-smoke",
    samples: 3,
    "calibration-samples": 0,
    context: 300,
    device: "cpu",
    methods: "spg, window-trim,",
  });
  assert.deepEqual(options, {
    file: undefined,
    preset: "ci-smoke",
    ablation: undefined,
    overrides: {
      samples: 3,
      calibrationSamples: 0,
      context: 300,
      device: "cpu",
      methods: ["spg", "window-trim"],
    },
  });
  const config = resolveConfig(options);
  assert.deepEqual(
    config.methods.map((m) => m.name),
    ["full", "spg", "window-trim"],
  );
  assert.equal(config.dataset.calibrationSamples, 0);
  const reordered = resolveConfig(resolveOptionsFromFlags({ methods: "spg,full,spg" }));
  assert.deepEqual(
    reordered.methods.map((m) => m.name),
    ["full", "spg"],
  );
  for (const flag of [
    "config",
    "preset",
    "dry-run",
    "samples",
    "context",
    "continuation",
    "seed",
    "device",
    "model",
  ]) {
    assert.ok(flag in configFlags, flag);
  }
});
