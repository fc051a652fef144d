/** Policy validation and selection on the fixture config A (4 layers: global, local, global, local). */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, test } from "node:test";
import {
  loadWeightPolicy,
  planCompression,
  validateWeightPolicy,
  type WeightsParams,
  weightPresetsDir,
} from "../../src/weights/policy.js";
import { loadFixtureCheckpoint } from "../helpers/fixture-checkpoint.js";

const config = loadFixtureCheckpoint("A").config;
const ATTENTION = ["q_proj", "k_proj", "v_proj", "out_proj"];
const attentionName = (layer: number, kind: string) => `transformer.h.${layer}.attn.attention.${kind}.weight`;
const mlpName = (layer: number, kind: string) => `transformer.h.${layer}.mlp.${kind}.weight`;

function touched(params: WeightsParams): Map<string, string> {
  return new Map(
    planCompression(config, params)
      .filter((p) => p.treatment.encoding !== "dense")
      .map((p) => [p.name, p.treatment.encoding]),
  );
}

describe("weights policy", () => {
  test("every preset in configs/weights validates and plans on config A", () => {
    const names = readdirSync(weightPresetsDir()).filter((f) => f.endsWith(".yaml"));
    assert.ok(names.length >= 3);
    for (const file of names) {
      const policy = loadWeightPolicy(file.replace(/\.yaml$/, ""));
      assert.equal(`${policy.name}.yaml`, file);
      assert.equal(planCompression(config, policy.params).length, 2 + 6 * 4);
    }
  });

  test("naive preset: every matrix (26 on config A) is low-rank + INT8, nothing dense", () => {
    const policy = loadWeightPolicy("naive");
    const plan = planCompression(config, policy.params);
    assert.equal(plan.length, 2 + 6 * 4);
    for (const p of plan) {
      assert.deepEqual(p.treatment, {
        encoding: "lowrank",
        selection: { kind: "rank", rank: 128 },
        quantize: { bits: 8, scheme: "asymmetric", groupSize: "row" },
      });
    }
  });

  test("naive-scaled preset: every matrix at rank fraction 1/16 + INT8", () => {
    const plan = planCompression(config, loadWeightPolicy("naive-scaled").params);
    assert.equal(plan.length, 2 + 6 * 4);
    for (const p of plan) {
      assert.equal(p.treatment.encoding, "lowrank");
      if (p.treatment.encoding === "lowrank") {
        assert.deepEqual(p.treatment.selection, { kind: "fraction", fraction: 0.0625 });
      }
    }
  });

  test("surgical preset: embeddings and layers 0 and 3 dense; attention low-rank, MLP quantized in 1 and 2", () => {
    const policy = loadWeightPolicy("surgical");
    const expected = new Map<string, string>();
    for (const layer of [1, 2]) {
      for (const kind of ATTENTION) expected.set(attentionName(layer, kind), "lowrank");
      expected.set(mlpName(layer, "c_fc"), "quantized");
      expected.set(mlpName(layer, "c_proj"), "quantized");
    }
    assert.deepEqual(touched(policy.params), expected);
  });

  test("first matching rule wins, keepDense beats rules, negative layers count from the end", () => {
    const params: WeightsParams = {
      baselineDtype: "fp16",
      rules: [
        { modules: ["k_proj"], layers: [-1], lowRank: { energy: 0.5 } },
        { modules: ["k_proj", "wte"], quantize: { bits: 4, scheme: "symmetric", groupSize: 8 } },
      ],
      keepDense: [{ modules: ["k_proj"], layers: [1] }],
    };
    const result = touched(params);
    assert.deepEqual(
      result,
      new Map([
        ["transformer.wte.weight", "quantized"],
        [attentionName(0, "k_proj"), "quantized"],
        [attentionName(2, "k_proj"), "quantized"],
        [attentionName(3, "k_proj"), "lowrank"],
      ]),
    );
  });

  test("a layer the model lacks is refused", () => {
    const params: WeightsParams = {
      baselineDtype: "fp16",
      rules: [{ modules: ["q_proj"], layers: [4], lowRank: { rank: 2 } }],
      keepDense: [],
    };
    assert.throws(() => planCompression(config, params), {
      code: "E_WEIGHTS_POLICY_LAYER",
      field: "params.rules.0.layers",
    });
    params.rules[0].layers = [-5];
    assert.throws(() => planCompression(config, params), { code: "E_WEIGHTS_POLICY_LAYER" });
  });

  test("lm_head names an untied head's matrix; for a tied head (which is wte) it is refused", () => {
    const params: WeightsParams = {
      baselineDtype: "fp16",
      rules: [{ modules: ["lm_head"], lowRank: { rank: 2 } }],
      keepDense: [],
    };
    assert.throws(() => planCompression(config, params), {
      code: "E_WEIGHTS_POLICY_MODULE",
      field: "params.rules.0.modules",
    });
    const untied = planCompression({ ...config, tieWordEmbeddings: false }, params);
    assert.deepEqual(
      untied
        .filter((plan) => plan.treatment.encoding === "lowrank")
        .map((plan) => [plan.name, plan.rows, plan.cols]),
      [["lm_head.weight", config.vocabSize, config.hiddenSize]],
    );
  });

  test("the schema refuses unknown modules, both rank and energy, a rule with no treatment, maxRank with rank", () => {
    const base = { name: "x", kind: "weights", params: { baselineDtype: "fp16", keepDense: [] } };
    const bad = [
      [{ modules: ["lm_head_bias"], lowRank: { rank: 2 } }],
      [{ modules: ["q_proj"], lowRank: { rank: 2, energy: 0.9 } }],
      [{ modules: ["q_proj"] }],
      [{ modules: ["q_proj"], quantize: { bits: 8, scheme: "asymmetric" } }],
      [{ modules: ["q_proj"], lowRank: { rank: 2, maxRank: 4 } }],
      [{ modules: ["q_proj"], lowRank: { rankFraction: 0.5, rank: 2 } }],
      [{ modules: ["q_proj"], lowRank: { rankFraction: 1.5 } }],
      [{ modules: ["q_proj"], lowRank: { rank: 4, randomized: { oversample: 4, powerIterations: 1 } } }],
    ];
    for (const rules of bad) {
      assert.throws(() => validateWeightPolicy({ ...base, params: { ...base.params, rules } }), {
        code: "E_WEIGHTS_POLICY",
      });
    }
    assert.throws(() => loadWeightPolicy("no-such-preset"), { code: "E_PRESET_UNKNOWN" });
  });
});
