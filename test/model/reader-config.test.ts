import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { SUPPORTED_ACTIVATIONS } from "../../src/model/activations.js";
import { expandAttentionTypes, readGptNeoConfig } from "../../src/model/config.js";
import { spgError } from "../helpers/spg-error.js";
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
  assert.throws(() => readModified({ model_type: undefined }), spgCode("E_CHECKPOINT_ARCH"));
});

test("absent keys take transformers' GPTNeoConfig defaults, as from_pretrained reads them", () => {
  // configuration_gpt_neo.py: window_size=256, activation_function="gelu_new", layer_norm_epsilon=1e-5.
  readModified({
    architectures: undefined, // GPTNeoForCausalLM.from_pretrained does not need it
    window_size: undefined,
    activation_function: undefined,
    layer_norm_epsilon: undefined,
  });
  const config = readGptNeoConfig(tempDir);
  assert.equal(config.windowSize, 256);
  assert.equal(config.activation, "gelu_new");
  assert.equal(config.layerNormEpsilon, 1e-5);
  // Default attention_types (12 x global/local) gives 24 layers: with num_layers 4 transformers raises, so do we.
  assert.throws(
    () => readModified({ attention_types: undefined, attention_layers: undefined }),
    spgCode("E_CONFIG_INVALID"),
  );
});

test("bos/eos ids outside the vocabulary (transformers' default 50256 on a small vocab) read as absent", () => {
  readModified({ bos_token_id: 50256, eos_token_id: 512 });
  const config = readGptNeoConfig(tempDir);
  assert.equal(config.bosTokenId, undefined);
  assert.equal(config.eosTokenId, undefined);
});

test("all-global, all-local and window_size beyond max_position_embeddings are accepted; epsilon may be 0", () => {
  readModified({ attention_types: [[["global"], 4]], attention_layers: undefined });
  assert.deepEqual(readGptNeoConfig(tempDir).attentionLayers, ["global", "global", "global", "global"]);
  readModified({ attention_types: [[["local"], 4]], attention_layers: undefined, window_size: 1000 });
  assert.deepEqual(readGptNeoConfig(tempDir).attentionLayers, ["local", "local", "local", "local"]);
  readModified({ layer_norm_epsilon: 0 });
  assert.equal(readGptNeoConfig(tempDir).layerNormEpsilon, 0);
});

test("E_CONFIG_INVALID: inconsistent or malformed fields", () => {
  for (const changes of [
    { attention_types: [[["global", "local"], 1]] }, // 2 layers for num_layers 4
    { attention_layers: ["local", "local", "global", "local"] }, // disagrees with attention_types
    { attention_layers: ["global", "local", "global"] }, // shorter than num_layers
    { attention_types: [[["global", "dense"], 2]], attention_layers: undefined },
    { num_heads: 5 }, // 32 % 5 != 0
    { hidden_size: 0 },
    { vocab_size: 12.5 },
    { max_position_embeddings: "64" },
    { layer_norm_epsilon: -1 },
    { intermediate_size: 0 },
    { bos_token_id: -1 },
  ]) {
    assert.throws(() => readModified(changes), spgCode("E_CONFIG_INVALID"), JSON.stringify(changes));
  }
  writeFileSync(join(tempDir, "config.json"), "{ not json");
  assert.throws(() => readGptNeoConfig(tempDir), spgCode("E_CONFIG_INVALID"));
});

test("every ACT2FN activation is accepted; others fail E_MODEL_ACTIVATION naming the field and the list", () => {
  for (const name of SUPPORTED_ACTIVATIONS) {
    readModified({ activation_function: name });
    assert.equal(readGptNeoConfig(tempDir).activation, name);
  }
  for (const name of ["gelu_fancy", "", 3, null, "__proto__", "toString"]) {
    const error = spgError(() => readModified({ activation_function: name }));
    assert.equal(error.code, "E_MODEL_ACTIVATION", JSON.stringify(name));
    assert.equal(error.field, "activation_function");
    assert.equal(error.file, join(tempDir, "config.json"));
    assert.match(error.message, /gelu_new, gelu_python, gelu_pytorch_tanh/);
  }
});

test("tie_word_embeddings: false unties the head; absent or true ties it; anything else is E_CONFIG_INVALID", () => {
  readModified({ tie_word_embeddings: false });
  assert.equal(readGptNeoConfig(tempDir).tieWordEmbeddings, false);
  for (const tied of [true, undefined]) {
    readModified({ tie_word_embeddings: tied });
    assert.equal(readGptNeoConfig(tempDir).tieWordEmbeddings, undefined);
  }
  const error = spgError(() => readModified({ tie_word_embeddings: "no" }));
  assert.equal(error.code, "E_CONFIG_INVALID");
  assert.equal(error.field, "tie_word_embeddings");
});

test("E_CHECKPOINT_MISSING: no config.json", () => {
  rmSync(join(tempDir, "config.json"), { force: true });
  assert.throws(() => readGptNeoConfig(tempDir), spgCode("E_CHECKPOINT_MISSING"));
});
