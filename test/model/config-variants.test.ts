/**
 * Config variants Hugging Face's GPTNeoForCausalLM accepts (every ACT2FN activation, all-global
 * and all-local layers, windows wider than the sequence, explicit intermediate_size, odd vocab
 * and head sizes, F16/BF16 weights, a stored tied lm_head) run through the production reader and
 * the ONNX graph, and match the logits of the PyTorch re-implementation in
 * scripts/train_gpt_neo.py (test/fixtures/gpt-neo-variants/README.md).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SUPPORTED_ACTIVATIONS } from "../../src/model/activations.js";
import { readCheckpoint } from "../../src/model/checkpoint.js";
import { gptNeoModelProto, inlinePlacement } from "../../src/model/graph.js";
import { loadRuntime } from "../../src/model/session.js";
import type { GptNeoCheckpoint } from "../../src/model/types.js";
import { packageRoot } from "../../src/paths.js";
import { maxAbsDiff, prefillInput } from "../helpers/fixture-checkpoint.js";
import { spgError } from "../helpers/spg-error.js";

/** The HF fixtures' float32 tolerance (test/fixtures/gpt-neo-hf/README.md). */
const TOLERANCE = 1e-4;
const variantsRoot = fileURLToPath(new URL("../../../test/fixtures/gpt-neo-variants/", import.meta.url));
const variants = readdirSync(variantsRoot, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

interface VariantReference {
  input_ids: number[];
  logits: { shape: number[]; data: number[] };
}

function reference(name: string): VariantReference {
  return JSON.parse(readFileSync(join(variantsRoot, name, "reference.json"), "utf8")) as VariantReference;
}

async function logitsOf(checkpoint: GptNeoCheckpoint, ids: readonly number[]): Promise<Float32Array> {
  const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
  try {
    return (await runtime.forward(prefillInput(checkpoint, ids))).logits;
  } finally {
    await runtime.close();
  }
}

/** Activations with one formula under several names: swapping within a group changes nothing. */
const SAME_FORMULA = [
  ["gelu", "gelu_python"],
  // gelu_fast writes sqrt(2/pi) as 0.7978845608 and factors x out: the same function in float32.
  ["gelu_new", "gelu_accurate", "gelu_pytorch_tanh", "gelu_fast"],
  ["silu", "swish"],
];
/** The activation nearest in formula that differs: the swap a fixture must be able to tell apart. */
function differentActivation(name: string): string {
  if (name === "gelu_10") return "gelu"; // the fixture's pre-activations reach past the clip
  const group = SAME_FORMULA.find((names) => names.includes(name)) ?? [name];
  return group.includes("gelu_new") ? "gelu" : "gelu_new";
}

test("every activation spg implements has a fixture, and every activation fixture is one spg implements", () => {
  const fixtures = variants.filter((v) => v.startsWith("act-")).map((v) => v.slice("act-".length));
  assert.deepEqual(fixtures.sort(), [...SUPPORTED_ACTIVATIONS].sort());
});

describe("GPT-Neo config variants vs the PyTorch re-implementation", () => {
  for (const name of variants) {
    test(name, async () => {
      const expected = reference(name);
      const checkpoint = await readCheckpoint(join(variantsRoot, name));
      const logits = await logitsOf(checkpoint, expected.input_ids);
      assert.equal(logits.length, expected.logits.data.length);
      const diff = maxAbsDiff(logits, expected.logits.data);
      assert.ok(diff <= TOLERANCE, `${name}: max |diff| ${diff}`);
      if (name.startsWith("act-")) {
        // The fixture tells this activation from its nearest different one.
        const other = differentActivation(checkpoint.config.activation);
        const swapped = await logitsOf(
          { ...checkpoint, config: { ...checkpoint.config, activation: other } },
          expected.input_ids,
        );
        const swappedDiff = maxAbsDiff(swapped, expected.logits.data);
        assert.ok(swappedDiff > 10 * TOLERANCE, `${name} vs ${other}: only ${swappedDiff} apart`);
      }
    });
  }
});

test("the graph builder rejects an activation outside the registry: E_MODEL_ACTIVATION", async () => {
  const checkpoint = await readCheckpoint(join(variantsRoot, "act-relu"));
  const error = spgError(() =>
    gptNeoModelProto(
      { ...checkpoint, config: { ...checkpoint.config, activation: "gelu_fancy" } },
      { observationWindow: 1 },
      inlinePlacement,
    ),
  );
  assert.equal(error.code, "E_MODEL_ACTIVATION");
  assert.equal(error.field, "activation_function");
});

test("spg model forward runs a checkpoint whose vocab_size is not GPT-2's (all-global: 37 tokens)", async () => {
  const expected = reference("all-global");
  const { stdout } = await promisify(execFile)(process.execPath, [
    join(packageRoot(), "bin", "run.js"),
    "model",
    "forward",
    join(variantsRoot, "all-global"),
    "--ids",
    expected.input_ids.join(","),
    "--json",
  ]);
  const parsed = JSON.parse(stdout) as { logits: number[][] };
  assert.equal(parsed.logits[0].length, 37);
  assert.ok(maxAbsDiff(parsed.logits.flat(), expected.logits.data) <= TOLERANCE);
});

test("spg model eval on a vocabulary smaller than GPT-2's fails E_TOKEN_RANGE before loading weights", async () => {
  const failure = await promisify(execFile)(process.execPath, [
    join(packageRoot(), "bin", "run.js"),
    "model",
    "eval",
    join(variantsRoot, "all-global"),
  ]).then(
    () => assert.fail("expected a non-zero exit"),
    (error: { code: number; stderr: string }) => error,
  );
  assert.notEqual(failure.code, 0);
  assert.match(
    failure.stderr,
    /E_TOKEN_RANGE: the model's vocab_size 37 is smaller than the GPT-2 tokenizer's/,
  );
});
