/** Sensitivity variants are their parent's policy plus keep-dense entries; the ranking is by recovery. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveConfig } from "../../src/config/load.js";
import type { RunConfig } from "../../src/config/types.js";
import { isSpgError } from "../../src/errors.js";
import { planCompression } from "../../src/weights/policy.js";
import { sensitivityVariants, summarizeSensitivity, withSensitivity } from "../../src/weights/sensitivity.js";
import { loadFixtureCheckpoint } from "../helpers/fixture-checkpoint.js";

const model = loadFixtureCheckpoint("A").config; // 4 layers
const config = resolveConfig({ preset: "weights-naive-vs-surgical" });
const method = (name: string) => config.methods.find((m) => m.name === name)!;

test("variants exist only for units the policy compresses; restore/only change exactly the unit", () => {
  // surgical keeps layers 0 and -1 and the embeddings dense: only layers 1 and 2 are compressed
  const variants = sensitivityVariants(method("surgical"), model);
  assert.deepEqual(
    variants.map((v) => v.name),
    ["surgical@restore=layer1", "surgical@restore=layer2", "surgical@only=layer1", "surgical@only=layer2"],
  );
  const dense = (name: string) =>
    new Set(
      planCompression(model, variants.find((v) => v.name === name)!.params as never)
        .filter((p) => p.treatment.encoding !== "dense")
        .map((p) => p.layer),
    );
  assert.deepEqual([...dense("surgical@restore=layer1")], [2]);
  assert.deepEqual([...dense("surgical@only=layer1")], [1]);
  // naive compresses everything: 4 layers + embeddings, both modes
  assert.equal(sensitivityVariants(method("naive"), model).length, 2 * 5);
});

test("withSensitivity needs a weights method", () => {
  const kvOnly = resolveConfig({ preset: "default" });
  assert.throws(
    () => withSensitivity(kvOnly, model),
    (e: unknown) => isSpgError(e) && e.code === "E_SENSITIVITY_NO_WEIGHTS",
  );
});

test("summary: recovered = parent's increase − variant's, ranking by recovery (ties in unit order)", () => {
  const expanded: RunConfig = withSensitivity(
    { ...config, methods: [method("full"), method("naive")] },
    model,
  );
  const ppl: Record<string, number> = {
    naive: 50,
    "naive@restore=layer0": 40,
    "naive@restore=layer1": 49,
    "naive@restore=layer2": 40,
    "naive@restore=layer3": 55,
    "naive@restore=embeddings": 1,
  };
  const summary = summarizeSensitivity(expanded, (name) => ppl[name] ?? 7)!;
  assert.deepEqual(Object.keys(summary), ["naive"]);
  assert.deepEqual(
    summary.naive.restore.map((e) => [e.unit, e.recoveredPct]),
    [
      ["layer0", 10],
      ["layer1", 1],
      ["layer2", 10],
      ["layer3", -5],
      ["embeddings", 49],
    ],
  );
  assert.deepEqual(summary.naive.ranking, ["embeddings", "layer0", "layer2", "layer1", "layer3"]);
  assert.equal(summary.naive.only.length, 5);
  assert.ok(summary.naive.only.every((e) => e.perplexityIncreasePct === 7));
});
