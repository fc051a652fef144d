/**
 * `spg model generate`: its continuation equals an independent greedy decode (the argmax of a
 * full forward pass over prompt + tokens so far, recomputed at every step with no cache, as
 * `spg model forward` runs it), and --method puts the baseline and a method side by side.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { printable } from "../../src/commands/model/generate.js";
import { resolveConfig } from "../../src/config/load.js";
import { encode } from "../../src/data/tokenizer.js";
import { createBackend } from "../../src/measure/backend.js";
import { generateText, generateWithMethod } from "../../src/measure/generate.js";
import { compareGenerations } from "../../src/measure/metrics.js";
import { readCheckpoint } from "../../src/model/checkpoint.js";
import { loadRuntime, prefillTokens } from "../../src/model/session.js";
import { packageRoot } from "../../src/paths.js";
import { writeRandomGptNeo } from "../helpers/random-gpt-neo.js";

const run = promisify(execFile);
const bin = join(packageRoot(), "bin", "run.js");
// The local window (8) is shorter than prompt + continuation, so local layers' masking is exercised.
const modelDir = await writeRandomGptNeo({
  hidden: 16,
  layers: 2,
  heads: 2,
  window: 8,
  maxPositions: 64,
  seed: 11,
});
after(() => rmSync(modelDir, { recursive: true, force: true }));

const promptText = "The jury said that the election";
const tokens = 10;

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Greedy decoding with a fresh full forward pass per step: no cache, no shared code with generate.ts. */
async function independentGreedy(prompt: number[], steps: number): Promise<number[]> {
  const checkpoint = await readCheckpoint(modelDir);
  const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
  const vocab = checkpoint.config.vocabSize;
  const ids = [...prompt];
  try {
    for (let step = 0; step < steps; step++) {
      const logits = (await prefillTokens(runtime, ids)).output.logits;
      ids.push(argmax(logits.subarray((ids.length - 1) * vocab, ids.length * vocab)));
    }
  } finally {
    await runtime.close();
  }
  return ids.slice(prompt.length);
}

test("generate's greedy continuation equals an independent full-recompute greedy decode, in the library and the CLI", async () => {
  const prompt = encode(promptText);
  const expected = await independentGreedy(prompt, tokens);
  const checkpoint = await readCheckpoint(modelDir);
  const backend = await createBackend(checkpoint, {
    device: "cpu",
    observationWindow: 4,
    baselineDtype: "fp16",
  });
  try {
    assert.deepEqual(await generateText(backend, prompt, tokens), expected);
  } finally {
    await backend.close();
  }
  const { stdout } = await run(process.execPath, [
    bin,
    "model",
    "generate",
    modelDir,
    "--prompt",
    promptText,
    "--tokens",
    String(tokens),
    "--json",
  ]);
  const printed = JSON.parse(stdout) as { continuation: { ids: number[] }; promptTokens: number[] };
  assert.deepEqual(printed.promptTokens, prompt);
  assert.deepEqual(printed.continuation.ids, expected);
});

test("--method: the full method agrees with the baseline at the same bytes; a trimmed cache is compared token by token", async () => {
  const config = resolveConfig({ preset: "ci-smoke" });
  const checkpoint = await readCheckpoint(modelDir);
  const backend = await createBackend(checkpoint, {
    device: "cpu",
    observationWindow: 4,
    baselineDtype: config.kv.baselineDtype,
  });
  const prompt = encode(`${promptText} was conducted in a manner that the city would praise`);
  try {
    const full = await generateWithMethod(backend, prompt, tokens, {
      name: "full",
      kind: "full",
      params: {},
    });
    assert.deepEqual(full.compressed, full.baseline);
    assert.equal(full.firstDivergence, null);
    assert.equal(full.kvBytesCompressed, full.kvBytesBaseline);
    const streaming = await generateWithMethod(backend, prompt, tokens, {
      name: "tiny-window",
      kind: "streaming",
      params: {
        ...config.methods.find((m) => m.name === "streaming")?.params,
        sinkTokens: 1,
        recentTokens: 2,
      },
    });
    assert.deepEqual(streaming.baseline, full.baseline, "the baseline does not depend on the method");
    assert.equal(
      streaming.firstDivergence,
      compareGenerations(streaming.baseline, streaming.compressed).firstDivergence,
    );
    assert.ok(streaming.kvBytesCompressed < streaming.kvBytesBaseline);
  } finally {
    await backend.close();
  }
});

test("CLI --method prints both continuations and the bytes; unknown methods and overlong runs fail with codes", async () => {
  const { stdout } = await run(process.execPath, [
    bin,
    "model",
    "generate",
    modelDir,
    "--prompt",
    promptText,
    "--tokens",
    "6",
    "--preset",
    "ci-smoke",
    "--method",
    "streaming",
  ]);
  assert.match(stdout, /baseline \(fp16 cache\)/);
  assert.match(stdout, /streaming: [\d,]+ \(/);
  assert.equal(stdout.split("\n").filter((line) => /^[ ▶] {1,4}\d+ {2}/.test(line)).length, 6);
  const failure = async (args: string[]) => {
    try {
      await run(process.execPath, [bin, "model", "generate", modelDir, "--prompt", promptText, ...args]);
    } catch (error) {
      return error as { code: number; stderr: string };
    }
    assert.fail("expected a non-zero exit");
  };
  const unknown = await failure(["--method", "nope"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /E_GENERATE_METHOD/);
  assert.match(unknown.stderr, /spg/);
  const long = await failure(["--tokens", "100"]);
  assert.equal(long.code, 2);
  assert.match(long.stderr, /E_GENERATE_LENGTH/);
  assert.match(long.stderr, /at most 58/);
});

test("printable escapes control characters but keeps newlines, tabs and text", () => {
  assert.equal(printable("a\tb\nc\u001b[31m\u0007é"), "a\tb\nc\\u001b[31m\\u0007é");
});
