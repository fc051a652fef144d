/** The weights method kind in run configs: presets copied in, inline policies, errors naming the field. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { checkConfigAgainstModel, resolveConfig } from "../../src/config/load.js";
import { loadWeightPolicy } from "../../src/weights/policy.js";
import { loadFixtureCheckpoint } from "../helpers/fixture-checkpoint.js";
import { spgError } from "../helpers/spg-error.js";

const work = mkdtempSync(join(tmpdir(), "spg-weights-config-"));
const file = (name: string, text: string) => {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
};

test("params {policy: <preset>} resolve to the preset's params, so config.json states the whole policy", () => {
  const config = resolveConfig({ preset: "weights-naive-vs-surgical" });
  for (const name of ["naive", "naive-scaled", "surgical"]) {
    const method = config.methods.find((m) => m.name === name);
    assert.equal(method?.kind, "weights");
    assert.deepEqual(method?.params, { ...loadWeightPolicy(name).params, policy: name });
  }
});

test("fields given beside the preset name override it; an inline policy reads no preset", () => {
  const path = file(
    "inline.yaml",
    `extends: default
methods:
  - name: mine
    kind: weights
    params:
      policy: surgical
      baselineDtype: fp32
  - name: inline
    kind: weights
    params:
      policy: my-own-label
      baselineDtype: fp16
      rules: [{ modules: [c_fc], quantize: { bits: 4, scheme: symmetric, groupSize: 16 } }]
      keepDense: []
`,
  );
  const config = resolveConfig({ file: path });
  const mine = config.methods.find((m) => m.name === "mine")!;
  assert.equal(mine.params.baselineDtype, "fp32");
  assert.deepEqual(mine.params.rules, loadWeightPolicy("surgical").params.rules);
  const inline = config.methods.find((m) => m.name === "inline")!;
  assert.equal(inline.params.policy, "my-own-label");
});

test("an unknown preset, a bad policy field and a layer the model lacks are SpgErrors naming the field", () => {
  const unknown = spgError(() =>
    resolveConfig({
      file: file(
        "unknown.yaml",
        "extends: default\nmethods:\n  - { name: w, kind: weights, params: { policy: nope } }\n",
      ),
    }),
  );
  assert.equal(unknown.code, "E_PRESET_UNKNOWN");
  assert.match(unknown.field ?? "", /params\.policy/);

  const bad = spgError(() =>
    resolveConfig({
      file: file(
        "bad.yaml",
        "extends: default\nmethods:\n  - name: w\n    kind: weights\n    params: { policy: x, baselineDtype: fp16, keepDense: [], rules: [{ modules: [c_fc], lowRank: { rank: 4, energy: 0.9 } }] }\n",
      ),
    }),
  );
  assert.equal(bad.code, "E_CONFIG_INVALID");
  assert.match(bad.field ?? "", /methods\[\d+\]\.params\.rules\[0\]\.lowRank/);

  const maxRank = spgError(() =>
    resolveConfig({
      file: file(
        "maxrank.yaml",
        "extends: default\nmethods:\n  - name: w\n    kind: weights\n    params: { policy: x, baselineDtype: fp16, keepDense: [], rules: [{ modules: [c_fc], lowRank: { rank: 4, maxRank: 2 } }] }\n",
      ),
    }),
  );
  assert.equal(maxRank.code, "E_CONFIG_INVALID");
  assert.match(maxRank.message, /maxRank/);

  const config = resolveConfig({
    file: file(
      "layer.yaml",
      "extends: default\nmethods:\n  - name: w\n    kind: weights\n    params: { policy: x, baselineDtype: fp16, keepDense: [{ layers: [9] }], rules: [] }\n",
    ),
  });
  const model = loadFixtureCheckpoint("A").config;
  const layer = spgError(() => checkConfigAgainstModel(config, model));
  assert.equal(layer.code, "E_CONFIG_INVALID");
  assert.match(layer.message, /layer 9 does not exist/);
});
