import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { expandAttentionTypes, readGptNeoConfig } from "../../src/model/config.js";
import { fixtureDir, makeTempDir, removeDir, spgCode } from "./reader-helpers.js";

const tempDir = makeTempDir();
after(() => removeDir(tempDir));

test("fixture configs resolve as in the fixture README's table", () => {
  // Values from test/fixtures/gpt-neo-hf/README.md (written from the transformers run, not from this reader).
  assert.deepEqual(readGptNeoConfig(fixtureDir("config-A")), {
    vocabSize: 512,
    hiddenSize: 32,
    numLayers: 4,
    numHeads: 4,
    headDim: 8,
    attentionLayers: ["global", "local", "global", "local"],
    windowSize: 8,
    maxPositions: 64,
    intermediateSize: 128,
    layerNormEpsilon: 1e-5,
    activation: "gelu_new",
    bosTokenId: 511,
    eosTokenId: 511,
  });
  assert.deepEqual(readGptNeoConfig(fixtureDir("config-B")), {
    vocabSize: 300,
    hiddenSize: 48,
    numLayers: 2,
    numHeads: 6,
    headDim: 8,
    attentionLayers: ["local", "global"],
    windowSize: 5,
    maxPositions: 40,
    intermediateSize: 80,
    layerNormEpsilon: 1e-5,
    activation: "gelu_new",
    bosTokenId: 299,
    eosTokenId: 299,
  });
});

test("attention_types expansion concatenates repeated patterns", () => {
  assert.deepEqual(
    expandAttentionTypes(
      [
        [["global", "local"], 2],
        [["local"], 3],
      ],
      "x",
    ),
    ["global", "local", "global", "local", "local", "local", "local"],
  );
  assert.throws(() => expandAttentionTypes([[["dense"], 1]], "x"), spgCode("E_CONFIG_INVALID"));
  assert.throws(() => expandAttentionTypes([["global", 1]], "x"), spgCode("E_CONFIG_INVALID"));
});

/** Write the fixture A config with some fields changed (undefined deletes a field) and read it. */
function readModified(changes: Record<string, unknown>): void {
  const json = JSON.parse(readFileSync(join(fixtureDir("config-A"), "config.json"), "utf8"));
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete json[key];
    else json[key] = value;
  }
  writeFileSync(join(tempDir, "config.json"), JSON.stringify(json));
  readGptNeoConfig(tempDir);
}

test("intermediate_size absent or null means 4 * hidden_size; attention_layers is optional", () => {
  readModified({ intermediate_size: undefined, attention_layers: undefined });
  assert.equal(readGptNeoConfig(tempDir).intermediateSize, 128);
});

test("E_CHECKPOINT_ARCH: another architecture or model_type", () => {
  assert.throws(() => readModified({ architectures: ["GPT2LMHeadModel"] }), spgCode("E_CHECKPOINT_ARCH"));
  assert.throws(() => readModified({ architectures: ["GPTNeoModel"] }), spgCode("E_CHECKPOINT_ARCH"));
  assert.throws(() => readModified({ model_type: "gpt2" }), spgCode("E_CHECKPOINT_ARCH"));
  assert.throws(() => readModified({ architectures: undefined }), spgCode("E_CHECKPOINT_ARCH"));
});

test("E_CONFIG_INVALID: inconsistent or missing fields", () => {
  for (const changes of [
    { attention_types: [[["global", "local"], 1]] }, // 2 layers for num_layers 4
    { attention_layers: ["local", "local", "global", "local"] }, // disagrees with attention_types
    { attention_types: undefined },
    { num_heads: 5 }, // 32 % 5 != 0
    { hidden_size: 0 },
    { window_size: undefined },
    { vocab_size: 12.5 },
    { max_position_embeddings: "64" },
    { layer_norm_epsilon: -1 },
    { intermediate_size: 0 },
    { bos_token_id: 512 }, // outside vocab
  ]) {
    assert.throws(() => readModified(changes), spgCode("E_CONFIG_INVALID"), JSON.stringify(changes));
  }
  writeFileSync(join(tempDir, "config.json"), "{ not json");
  assert.throws(() => readGptNeoConfig(tempDir), spgCode("E_CONFIG_INVALID"));
});

test("E_CONFIG_UNSUPPORTED: activation other than gelu_new, untied head", () => {
  assert.throws(() => readModified({ activation_function: "gelu" }), spgCode("E_CONFIG_UNSUPPORTED"));
  assert.throws(() => readModified({ activation_function: undefined }), spgCode("E_CONFIG_UNSUPPORTED"));
  assert.throws(() => readModified({ tie_word_embeddings: false }), spgCode("E_CONFIG_UNSUPPORTED"));
});

test("E_CHECKPOINT_MISSING: no config.json", () => {
  rmSync(join(tempDir, "config.json"), { force: true });
  assert.throws(() => readGptNeoConfig(tempDir), spgCode("E_CHECKPOINT_MISSING"));
});
