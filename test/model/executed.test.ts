import assert from "node:assert/strict";
import { test } from "node:test";
import { expectedWeightShapes, readCheckpoint } from "../../src/model/checkpoint.js";
import { readGptNeoConfig } from "../../src/model/config.js";
import { executedKvBytes, executedWeightBytesOfShapes } from "../../src/model/executed.js";
import { graphWeightNames } from "../../src/model/graph.js";
import { loadRuntime } from "../../src/model/session.js";
import { bundledModelDir } from "../../src/paths.js";

const FLOAT32 = 4;
const options = { observationWindow: 8 };
const config = readGptNeoConfig(bundledModelDir());
const shapes = expectedWeightShapes(config);
const elements = (name: string) => (shapes.get(name) ?? []).reduce((a, b) => a * b, 1);
/** Parameters the graph reads, closed form from the config's shapes. */
const parameters = graphWeightNames(config).reduce((total, name) => total + elements(name), 0);
const headBytes = config.vocabSize * config.hiddenSize * FLOAT32;
/** The graph's shape constants and scalars (a few int64 vectors): far under one KiB. */
const CONSTANTS_BELOW = 1024;

test("executed weights of the dense graph: every weight once in float32 (the head reads wte in place), plus small constants", () => {
  const executed = executedWeightBytesOfShapes(config, options);
  const closedForm = parameters * FLOAT32;
  assert.ok(executed >= closedForm, `${executed} < ${closedForm}`);
  assert.ok(executed - closedForm < CONSTANTS_BELOW, `constants take ${executed - closedForm} bytes`);
});

test("the transposed head (format version 3's graph) adds the tied head's transposed copy", () => {
  const inPlace = executedWeightBytesOfShapes(config, options);
  const transposed = executedWeightBytesOfShapes(config, { ...options, headLayout: "transposed" });
  // in place reads one more int64 pair (the [hidden, -1] shape of h^T's Reshape): 16 bytes
  assert.equal(transposed - inPlace, headBytes - 2 * 8);
});

test("a factorised matrix executes its two float32 factors in place of the matrix", () => {
  const name = "transformer.h.0.mlp.c_fc.weight";
  const [rows, cols] = shapes.get(name)!;
  const rank = 3;
  const dense = executedWeightBytesOfShapes(config, options);
  const factorised = executedWeightBytesOfShapes(config, options, new Map([[name, rank]]));
  assert.equal(factorised - dense, FLOAT32 * (rank * (rows + cols) - rows * cols));
  // Rank 0 stores nothing: the dense (zero) matrix stands in.
  assert.equal(executedWeightBytesOfShapes(config, options, new Map([[name, 0]])), dense);
});

test("a factorised tied head holds its factors and their transposed copies", () => {
  const name = "transformer.wte.weight";
  const rank = 5;
  const { vocabSize: v, hiddenSize: h } = config;
  // the dense head: wte once (in place), plus the 16-byte shape its Reshape reads
  const dense = executedWeightBytesOfShapes(config, options);
  const factorised = executedWeightBytesOfShapes(config, options, new Map([[name, rank]]));
  assert.equal(factorised - dense, 2 * FLOAT32 * rank * (v + h) - FLOAT32 * v * h - 2 * 8);
  // format version 3's graph held wte and its transposed copy
  const transposed = { ...options, headLayout: "transposed" as const };
  const denseTransposed = executedWeightBytesOfShapes(config, transposed);
  assert.equal(
    executedWeightBytesOfShapes(config, transposed, new Map([[name, rank]])) - denseTransposed,
    2 * FLOAT32 * (rank * (v + h) - v * h),
  );
});

test("the session over the stored checkpoint (F16 cast at load) holds what the shapes give", async () => {
  const checkpoint = await readCheckpoint(bundledModelDir());
  const runtime = await loadRuntime(checkpoint, { device: "cpu", ...options });
  try {
    assert.equal(runtime.executedWeightBytes, executedWeightBytesOfShapes(config, options));
  } finally {
    await runtime.close();
  }
});

test("executed KV bytes: float32 keys and values of every head at each layer's slots", () => {
  const slots = Array.from({ length: config.numLayers }, (_, layer) => 10 + layer);
  const expected = slots.reduce((total, s) => total + 2 * config.hiddenSize * s * FLOAT32, 0);
  assert.equal(executedKvBytes(config, slots), expected);
});
