import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { listPresets, presetPath, readConfigFile } from "../../src/config/files.js";
import {
  checkConfigAgainstModel,
  configValidator,
  dryRun,
  resolveConfig,
  resolveConfigWithSources,
  validateRunConfig,
} from "../../src/config/load.js";
import type { RunConfig } from "../../src/config/types.js";
import type { GptNeoConfig } from "../../src/model/types.js";
import { spgError } from "../helpers/spg-error.js";

const work = mkdtempSync(join(tmpdir(), "spg-config-"));

/** A checkpoint shape for the checks against the model (4 layers of 4 heads). */
const shapeModel: GptNeoConfig = {
  vocabSize: 50257,
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  headDim: 32,
  attentionLayers: ["global", "local", "global", "local"],
  windowSize: 256,
  maxPositions: 2048,
  intermediateSize: 512,
  layerNormEpsilon: 1e-5,
  activation: "gelu_new",
  bosTokenId: 50256,
  eosTokenId: 50256,
};

function writeConfig(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

function spgParams(config: RunConfig): Record<string, Record<string, unknown>> {
  const spg = config.methods.find((m) => m.kind === "spg");
  assert.ok(spg);
  return spg.params as Record<string, Record<string, unknown>>;
}

test("no file and no preset resolves the default preset, valid against the schema", () => {
  const { config, sources } = resolveConfigWithSources();
  assert.equal(config.name, "default");
  assert.equal(sources.length, 1);
  assert.ok(sources[0].endsWith(join("configs", "default.yaml")));
  assert.equal(config.methods[0].kind, "full");
  const kinds = config.methods.map((m) => m.kind);
  assert.ok(kinds.includes("spg") && kinds.includes("window-trim") && kinds.length >= 4);
  assert.ok(configValidator()(config));
  assert.ok(config.claims.some((c) => c.method === "spg" && c.metric === "compression_ratio"));
  assert.ok(
    config.claims.some(
      (c) => c.method === "spg" && c.metric === "perplexity_increase_pct" && c.judge === "bound",
    ),
  );
});

test("every preset in configs/ resolves and validates", () => {
  const presets = listPresets();
  for (const expected of ["default", "ci-smoke", "450x"]) assert.ok(presets.includes(expected), expected);
  for (const preset of presets) {
    const config = resolveConfig({ preset });
    assert.equal(config.name, preset, `preset ${preset} names itself`);
  }
  const smoke = resolveConfig({ preset: "ci-smoke" });
  const base = resolveConfig();
  assert.ok(smoke.dataset.samples < base.dataset.samples);
  assert.ok(smoke.dataset.contextTokens < base.dataset.contextTokens);
  const aggressive = resolveConfig({ preset: "450x" });
  assert.ok(aggressive.claims.some((c) => c.metric === "compression_ratio" && c.threshold === 450));
});

test("a file that extends a preset deep-merges objects, merges methods by name, replaces arrays", () => {
  const file = writeConfig(
    "overlay.yaml",
    [
      "extends: default",
      "name: overlay",
      "dataset: { samples: 3 }",
      "methods:",
      "  - name: spg",
      "    params: { stage1: { keepRatio: 0.125 } }",
      "  - name: spg-no-sinks",
      "    from: spg",
      "    params: { stage1: { sinkTokens: 0 } }",
      "  - name: quant",
      "    remove: true",
      "claims:",
      "  - { method: spg, metric: mean_kl, op: '<=', threshold: 0.5, judge: point }",
    ].join("\n"),
  );
  const base = resolveConfig();
  const { config, sources } = resolveConfigWithSources({ file });
  assert.equal(sources.length, 2);
  assert.equal(config.name, "overlay");
  assert.equal(config.dataset.samples, 3);
  assert.equal(
    config.dataset.contextTokens,
    base.dataset.contextTokens,
    "untouched fields keep the preset's value",
  );
  const names = config.methods.map((m) => m.name);
  assert.ok(!names.includes("quant"), "remove: true drops the method");
  assert.equal(names[names.length - 1], "spg-no-sinks", "new names are appended");
  const spg = spgParams(config);
  assert.equal(spg.stage1.keepRatio, 0.125);
  assert.equal(
    spg.stage1.sinkTokens,
    spgParams(base).stage1.sinkTokens,
    "sibling params survive a partial overlay",
  );
  const variant = config.methods.find((m) => m.name === "spg-no-sinks")!;
  const badVariant = writeConfig(
    "bad-variant.yaml",
    "extends: default\nmethods:\n  - name: v\n    from: spg\n    params: { stage1: { sinkTokens: -1 } }\n",
  );
  const variantError = spgError(() => resolveConfig({ file: badVariant }));
  assert.ok(variantError.file?.endsWith("bad-variant.yaml"));
  assert.match(variantError.field ?? "", /params\.stage1\.sinkTokens \(method "v"\)/);
  const noBase = writeConfig("no-base.yaml", "extends: default\nmethods:\n  - name: v\n    from: nope\n");
  assert.match(spgError(() => resolveConfig({ file: noBase })).message, /"from" names no method/);
  assert.equal(variant.kind, "spg");
  const variantParams = variant.params as Record<string, Record<string, unknown>>;
  assert.equal(variantParams.stage1.sinkTokens, 0);
  assert.equal(variantParams.stage1.keepRatio, 0.125, "from copies the merged base method");
  assert.deepEqual(variantParams.stage2, spg.stage2);
  assert.equal(config.claims.length, 1, "arrays other than methods are replaced");
});

test("flags override the file and --methods selects methods, baseline first, dropping their claims", () => {
  const config = resolveConfig({
    overrides: {
      samples: 2,
      context: 300,
      continuation: 8,
      seed: 7,
      generation: 3,
      methods: ["spg", "streaming"],
    },
  });
  assert.equal(config.dataset.samples, 2);
  assert.equal(config.dataset.contextTokens, 300);
  assert.equal(config.dataset.continuationTokens, 8);
  assert.equal(config.dataset.seed, 7);
  assert.equal(config.generation.tokens, 3);
  assert.deepEqual(
    config.methods.map((m) => m.name),
    ["full", "spg", "streaming"],
  );
  assert.ok(config.claims.every((c) => c.method === "spg"));
  assert.ok(config.claims.length > 0);
});

test("a JSON config file works like YAML (an editor $schema key is allowed)", () => {
  const file = writeConfig(
    "run.json",
    JSON.stringify({ $schema: "../schemas/config.schema.json", extends: "ci-smoke", dataset: { seed: 99 } }),
  );
  const config = resolveConfig({ file });
  assert.equal(config.dataset.seed, 99);
  assert.equal(config.name, "ci-smoke");
});

test("a bad value names the file, the field and the fix", () => {
  const file = writeConfig("bad-samples.yaml", "extends: default\ndataset:\n  samples: -1\n");
  const error = spgError(() => resolveConfig({ file }));
  assert.equal(error.code, "E_CONFIG_INVALID");
  assert.equal(error.file, file.startsWith(process.cwd()) ? file.slice(process.cwd().length + 1) : file);
  assert.equal(error.field, "dataset.samples");
  assert.match(error.message, /must be >= 1/);
  assert.match(error.fix ?? "", />= 1/);
});

test("a bad flag names the flag", () => {
  const error = spgError(() => resolveConfig({ overrides: { device: "gpu" } }));
  assert.equal(error.code, "E_CONFIG_INVALID");
  assert.equal(error.file, undefined);
  assert.match(error.field ?? "", /model\.device.*--device/);
  assert.match(error.fix ?? "", /"cpu", "cuda"/);
});

test("a misspelt field is rejected with the allowed names", () => {
  const file = writeConfig("typo.yaml", "extends: default\ndataset:\n  sampels: 4\n");
  const error = spgError(() => resolveConfig({ file }));
  assert.equal(error.field, "dataset.sampels");
  assert.match(error.message, /not a known field/);
  assert.match(error.fix ?? "", /samples/);
});

test("method params are validated per kind", () => {
  const file = writeConfig(
    "bad-spg.yaml",
    "extends: default\nmethods:\n  - name: spg\n    params: { stage2: { mixedPrecision: { lowBits: 0 } } }\n  - name: snapkv\n    params: { keepRatio: 2 }\n",
  );
  const error = spgError(() => resolveConfig({ file }));
  assert.match(error.message, /2 problems/);
  assert.match(error.message, /\[[^\]]*bad-spg\.yaml\]; fix/);
  assert.match(
    error.message,
    /methods\[\d\]\.params\.stage2\.mixedPrecision\.lowBits \(method "spg"\) must be >= 1/,
  );
  assert.match(error.message, /methods\[\d\]\.params\.keepRatio \(method "snapkv"\) must be <= 1/);
  const unknownParam = writeConfig(
    "bad-stream.yaml",
    "extends: default\nmethods:\n  - name: streaming\n    params: { window: 3 }\n",
  );
  const second = spgError(() => resolveConfig({ file: unknownParam }));
  assert.ok(
    second.file?.endsWith("bad-stream.yaml"),
    "the overlay that set the bad param is named, not the preset",
  );
  assert.match(second.field ?? "", /params\.window/);
  assert.match(second.fix ?? "", /sinkTokens, recentTokens, localWindowTrim/);
});

test("cross-field rules: baseline first, unique names, claims name methods, op fits the metric", () => {
  const cases: [string, RegExp][] = [
    ["methods:\n  - name: full\n    remove: true\n", /methods\[0\]\.kind.*must be "full"/],
    [
      "claims:\n  - { method: nope, metric: mean_kl, op: '<=', threshold: 1, judge: point }\n",
      /names no configured method/,
    ],
    [
      "claims:\n  - { method: spg, metric: compression_ratio, op: '<=', threshold: 1, judge: point }\n",
      /op must be ">="/,
    ],
    ["claims:\n  - { method: full, metric: mean_kl, op: '<=', threshold: 1, judge: point }\n", /baseline/],
  ];
  cases.forEach(([body, pattern], i) => {
    const file = writeConfig(`rule-${i}.yaml`, `extends: default\n${body}`);
    const error = spgError(() => resolveConfig({ file }));
    assert.equal(error.code, "E_CONFIG_INVALID");
    assert.match(`${error.field} ${error.message}`, pattern, `case ${i}`);
  });
  const twice = structuredClone(resolveConfig());
  twice.methods.push(structuredClone(twice.methods[1]));
  assert.match(spgError(() => validateRunConfig(twice)).message, /duplicates the name/);
  const error = spgError(() => resolveConfig({ overrides: { context: 8 } }));
  assert.match(error.message, /observationWindow is longer than the context/);
  const window = writeConfig("window.yaml", "extends: default\nkv: { observationWindow: 8 }\n");
  const tooWide = spgError(() => resolveConfig({ file: window }));
  assert.match(tooWide.message, /2 problems/);
  assert.match(
    tooWide.message,
    /params\.observationWindow \(method "snapkv"\) is 32 but the graph returns attention for kv\.observationWindow = 8 rows/,
  );
  assert.match(tooWide.message, /params\.stage1\.observationWindow \(method "spg"\)/);
});

test("config validation asks each method's definition: the rules compress applies also fail the config", () => {
  const cases: [string, RegExp][] = [
    [
      "methods:\n  - name: snapkv\n    params: { poolingKernel: 4 }\n",
      /params\.poolingKernel \(method "snapkv"\) must be odd/,
    ],
    [
      "methods:\n  - name: spg\n    params: { stage2: { mixedPrecision: { lowBits: 8, highBits: 4 } } }\n",
      /params\.stage2\.mixedPrecision\.lowBits \(method "spg"\) must not exceed highBits/,
    ],
  ];
  cases.forEach(([body, pattern], i) => {
    const file = writeConfig(`method-rule-${i}.yaml`, `extends: default\n${body}`);
    const error = spgError(() => resolveConfig({ file }));
    assert.equal(error.code, "E_CONFIG_INVALID");
    assert.match(`${error.field} ${error.message}`, pattern, `case ${i}`);
  });
});

test("local sources need a calibration path or a {split} template", () => {
  const error = spgError(() =>
    resolveConfig({ overrides: { dataset: "text", datasetPath: "data/eval.txt" } }),
  );
  assert.equal(error.field, "dataset.calibrationPath");
  assert.match(error.fix ?? "", /--calibration-path/);
  const config = resolveConfig({
    overrides: {
      dataset: "text",
      datasetPath: "data/wiki.{split}.raw",
      split: "test",
      calibrationSplit: "valid",
    },
  });
  assert.equal(config.dataset.path, "data/wiki.{split}.raw");
  const same = spgError(() =>
    resolveConfig({ overrides: { dataset: "text", datasetPath: "a.txt", calibrationPath: "./a.txt" } }),
  );
  assert.match(same.message, /same data/);
  const brownWithPath = spgError(() => resolveConfig({ overrides: { datasetPath: "a.txt" } }));
  assert.match(brownWithPath.fix ?? "", /--dataset text\|jsonl\|parquet\|dir/);
});

test("unknown preset lists the available ones", () => {
  const error = spgError(() => resolveConfig({ preset: "fast" }));
  assert.equal(error.code, "E_PRESET_UNKNOWN");
  for (const name of listPresets()) assert.match(error.fix ?? "", new RegExp(name));
  assert.throws(() => presetPath("../default"), /E_PRESET_UNKNOWN|no preset/);
});

test("parse errors name the line; missing files and extends cycles are errors", () => {
  const broken = writeConfig("broken.yaml", "extends: default\ndataset:\n  samples: [1,\n");
  const parseError = spgError(() => readConfigFile(broken));
  assert.equal(parseError.code, "E_CONFIG_PARSE");
  assert.match(parseError.message, /line \d+/);
  const duplicate = writeConfig("dup.yaml", "name: a\nname: b\n");
  assert.equal(spgError(() => readConfigFile(duplicate)).code, "E_CONFIG_PARSE");
  assert.equal(spgError(() => readConfigFile(join(work, "absent.yaml"))).code, "E_CONFIG_MISSING");
  writeConfig("cycle-a.yaml", "extends: ./cycle-b.yaml\n");
  const b = writeConfig("cycle-b.yaml", "extends: ./cycle-a.yaml\n");
  assert.match(spgError(() => resolveConfig({ file: b })).message, /cycle/);
  const incomplete = writeConfig("incomplete.yaml", "name: x\n");
  const missing = spgError(() => resolveConfig({ file: incomplete }));
  assert.match(missing.message, /is required but missing/);
  assert.match(missing.fix ?? "", /extends: default/);
});

test("dry run prints the resolved config, which reads back to the same config", () => {
  const text = dryRun({ preset: "ci-smoke", overrides: { samples: 5 } });
  assert.match(text, /^# resolved from: .*ci-smoke\.yaml <- --samples/);
  const back = parse(text) as RunConfig;
  assert.deepEqual(back, resolveConfig({ preset: "ci-smoke", overrides: { samples: 5 } }));
  assert.deepEqual(JSON.parse(dryRun({}, "json")), resolveConfig());
});

test("validateRunConfig accepts a resolved config and rejects extra fields (bundle config.json)", () => {
  const config = resolveConfig();
  assert.deepEqual(validateRunConfig(structuredClone(config), "config.json"), config);
  const extra = { ...structuredClone(config), secret: 1 };
  const error = spgError(() => validateRunConfig(extra, "config.json"));
  assert.equal(error.file, "config.json");
  assert.equal(error.field, "secret");
});

test("checks against the model: positions, reserved heads, per-layer budgets", () => {
  const model = shapeModel;
  checkConfigAgainstModel(resolveConfig(), model);
  const tooLong = spgError(() =>
    checkConfigAgainstModel(resolveConfig({ overrides: { context: 2000 } }), model),
  );
  assert.match(tooLong.message, /exceeds the model's 2048 positions/);
  assert.match(tooLong.fix ?? "", /at most 1984/);
  // The dataset is GPT-2 text: a model with fewer rows than the tokenizer's ids cannot read it.
  const smallVocab = spgError(() => checkConfigAgainstModel(resolveConfig(), { ...model, vocabSize: 37 }));
  assert.equal(smallVocab.code, "E_CONFIG_INVALID");
  assert.match(smallVocab.message, /vocab_size 37 is smaller than the GPT-2 tokenizer's 50257 ids/);
  checkConfigAgainstModel(resolveConfig(), { ...model, vocabSize: 50304 }); // padded vocabularies are fine
  const file = writeConfig(
    "heads.yaml",
    "extends: default\nmethods:\n  - name: spg\n    params: { stage1: { layerKeepRatios: [0.5, 0.5] }, stage2: { reservedHeads: 5 } }\n",
  );
  const heads = spgError(() => checkConfigAgainstModel(resolveConfig({ file }), model));
  assert.match(heads.message, /2 problems/);
  assert.match(heads.message, /4 heads/);
  assert.match(heads.message, /4 layers/);
});

test('reservedHeads "all" passes the model check whatever its head count; another string is refused by the schema', () => {
  const file = writeConfig(
    "all-heads.yaml",
    "extends: default\nmethods:\n  - name: spg\n    params: { stage2: { reservedHeads: all } }\n",
  );
  const config = resolveConfig({ file });
  assert.equal(spgParams(config).stage2.reservedHeads, "all");
  for (const numHeads of [1, 4, 8]) checkConfigAgainstModel(config, { ...shapeModel, numHeads });
  const bad = writeConfig(
    "some-heads.yaml",
    "extends: default\nmethods:\n  - name: spg\n    params: { stage2: { reservedHeads: some } }\n",
  );
  const error = spgError(() => resolveConfig({ file: bad }));
  assert.equal(error.code, "E_CONFIG_INVALID");
  assert.match(error.message, /reservedHeads/);
});

test("the ablation 03-no-head-compression reserves every head of the model run, not a fixed count", () => {
  const config = resolveConfig({ ablation: true });
  const variant = config.methods.find((m) => m.name === "spg-no-head-compression");
  assert.ok(variant);
  assert.equal((variant.params.stage2 as { reservedHeads: unknown }).reservedHeads, "all");
});

test("the schema file is valid JSON with additionalProperties false at the top", () => {
  const schema = JSON.parse(
    readFileSync(new URL("../../../schemas/config.schema.json", import.meta.url), "utf8"),
  );
  assert.equal(schema.additionalProperties, false);
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
});

test("--ablation adds one SPG variant per overlay, each differing from spg in its own component only", () => {
  const base = resolveConfig();
  const config = resolveConfig({ ablation: true });
  const spg = config.methods.find((m) => m.name === "spg")!;
  const variants = config.methods.filter((m) => m.name.startsWith("spg-"));
  assert.ok(variants.length >= 10, `${variants.length} variants`);
  assert.deepEqual(
    config.methods.slice(0, base.methods.length).map((m) => m.name),
    base.methods.map((m) => m.name),
  );
  const changedLeaves = (a: unknown, b: unknown, path: string): string[] => {
    if (typeof a === "object" && a !== null && !Array.isArray(a) && typeof b === "object" && b !== null) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b as object)]);
      return [...keys].flatMap((k) =>
        changedLeaves((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`),
      );
    }
    return JSON.stringify(a) === JSON.stringify(b) ? [] : [path];
  };
  const byName = new Map(variants.map((v) => [v.name, changedLeaves(spg.params, v.params, "params")]));
  for (const [name, changed] of byName) {
    assert.ok(changed.length >= 1, `${name} changes something`);
    assert.equal(config.methods.find((m) => m.name === name)!.kind, "spg");
  }
  assert.deepEqual(byName.get("spg-no-sinks"), ["params.stage1.sinkTokens"]);
  assert.deepEqual(byName.get("spg-no-hybrid-sparse"), ["params.decode.sparseTopK"]);
  assert.deepEqual(byName.get("spg-stage2-only"), ["params.stage1.keepRatio"]);
  // the 450x preset's variants derive from its own aggressive spg
  const aggressive = resolveConfig({ preset: "450x", ablation: true });
  const aggressiveSpg = aggressive.methods.find((m) => m.name === "spg")!.params as Record<
    string,
    Record<string, unknown>
  >;
  const noSinks = aggressive.methods.find((m) => m.name === "spg-no-sinks")!.params as Record<
    string,
    Record<string, unknown>
  >;
  assert.equal(noSinks.stage1.keepRatio, aggressiveSpg.stage1.keepRatio);
});
