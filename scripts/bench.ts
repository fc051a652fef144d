/**
 * `npm run bench -- model [--shape NAME]... [--prefill N] [--decode N] [--threads N]`
 * `npm run bench -- verify [--samples N] [--resamples N]` (scripts/bench-verify.ts)
 * `npm run bench -- dataset [--documents N] [--samples N]` (scripts/bench-dataset.ts)
 * `npm run bench -- prove|methods [--preset NAME] [--model DIR | --shape NAME] [--samples N]`
 *   (scripts/bench-prove.ts; --shape runs a synthetic checkpoint: timings only)
 *
 * Prefill and decode throughput of the GPT-Neo runtime on CPU, and the same forwards through
 * bare onnxruntime (feeds prepared in advance, only session.run timed), so the cost of our
 * code around the model (cache layout, bias, feeds, output mapping) is a printed ratio.
 * Shapes: the HF fixture checkpoints (when present), `bundled` (the shape of the bundled
 * model), `125m` (GPT-Neo-125M's shape); synthetic checkpoints get random weights generated
 * here, never written to disk.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import ort from "onnxruntime-node";
import { appendTokens, cacheFromPrefill, emptyCache, pastInputs } from "../src/kv/layout.js";
import { peakRssBytes } from "../src/measure/evaluate.js";
import { mulberry32 } from "../src/measure/prng.js";
import { buildGptNeoGraph } from "../src/model/graph.js";
import { forwardFeeds, loadRuntime } from "../src/model/session.js";
import type { ForwardInput, GptNeoCheckpoint } from "../src/model/types.js";
import { packageRoot } from "../src/paths.js";
import { benchDataset } from "./bench-dataset.js";
import { benchMethods, benchProve } from "./bench-prove.js";
import { benchVerify } from "./bench-verify.js";
import { SYNTHETIC_SHAPES, syntheticCheckpoint } from "./synthetic-checkpoint.js";

async function fixtureCheckpoint(name: string): Promise<GptNeoCheckpoint | undefined> {
  const dir = join(packageRoot(), "test", "fixtures", "gpt-neo-hf", `config-${name}`);
  if (!existsSync(dir)) return undefined;
  const helper = join(packageRoot(), "dist", "test", "helpers", "fixture-checkpoint.js");
  if (!existsSync(helper)) return undefined;
  const { loadFixtureCheckpoint } = (await import(helper)) as {
    loadFixtureCheckpoint: (n: string) => GptNeoCheckpoint;
  };
  return loadFixtureCheckpoint(name);
}

function rssMiB(): string {
  return (process.memoryUsage().rss / 2 ** 20).toFixed(0);
}

async function benchOne(
  label: string,
  checkpoint: GptNeoCheckpoint,
  prefillTokens: number,
  decodeSteps: number,
  intraOpThreads: number,
) {
  const config = checkpoint.config;
  const prefillLength = Math.min(prefillTokens, config.maxPositions - decodeSteps);
  const random = mulberry32(7);
  const ids = Array.from({ length: prefillLength + decodeSteps }, () =>
    Math.floor(random() * config.vocabSize),
  );
  const options = { observationWindow: 32 };

  let start = performance.now();
  const runtime = await loadRuntime(checkpoint, { device: "cpu", ...options, intraOpThreads });
  const loadMs = performance.now() - start;
  // One untimed token first: onnxruntime allocates and pre-packs on a session's first run.
  const warmUp: ForwardInput = {
    inputIds: [ids[0]],
    positionIds: [0],
    ...pastInputs(emptyCache(config), config, [0]),
  };
  await runtime.forward(warmUp);

  // Ours: layout helpers + runtime.forward, as the evaluation uses them.
  const positions = ids.slice(0, prefillLength).map((_, i) => i);
  start = performance.now();
  const prefillInput: ForwardInput = {
    inputIds: ids.slice(0, prefillLength),
    positionIds: positions,
    ...pastInputs(emptyCache(config), config, positions),
  };
  const prefill = await runtime.forward(prefillInput);
  let cache = cacheFromPrefill(config, prefill, positions);
  const prefillMs = performance.now() - start;
  const decodeInputs: ForwardInput[] = [];
  start = performance.now();
  for (let step = 0; step < decodeSteps; step++) {
    const position = prefillLength + step;
    const input = {
      inputIds: [ids[position]],
      positionIds: [position],
      ...pastInputs(cache, config, [position]),
    };
    decodeInputs.push(input);
    const output = await runtime.forward(input);
    cache = appendTokens(cache, output, [position]);
  }
  const decodeMs = performance.now() - start;
  await runtime.close();

  // Bare onnxruntime: the same graph and the same feeds, prepared before timing.
  const session = await ort.InferenceSession.create(buildGptNeoGraph(checkpoint, options), {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: intraOpThreads,
  });
  await session.run(forwardFeeds(config, warmUp));
  const prefillFeeds = forwardFeeds(config, prefillInput);
  start = performance.now();
  await session.run(prefillFeeds);
  const barePrefillMs = performance.now() - start;
  const decodeFeeds = decodeInputs.map((input) => forwardFeeds(config, input));
  start = performance.now();
  for (const feeds of decodeFeeds) await session.run(feeds);
  const bareDecodeMs = performance.now() - start;
  await session.release();

  const rate = (tokens: number, ms: number) => (tokens / (ms / 1000)).toFixed(1);
  console.log(
    [
      `${label}: layers ${config.numLayers}, hidden ${config.hiddenSize}, heads ${config.numHeads}, vocab ${config.vocabSize}`,
      `  load (build graph + session): ${loadMs.toFixed(0)} ms`,
      `  prefill ${prefillLength} tokens: ${rate(prefillLength, prefillMs)} tok/s (bare onnxruntime ${rate(prefillLength, barePrefillMs)} tok/s, overhead x${(prefillMs / barePrefillMs).toFixed(2)})`,
      `  decode ${decodeSteps} steps: ${rate(decodeSteps, decodeMs)} tok/s (bare onnxruntime ${rate(decodeSteps, bareDecodeMs)} tok/s, overhead x${(decodeMs / bareDecodeMs).toFixed(2)})`,
      `  RSS now ${rssMiB()} MiB, peak ${(peakRssBytes() / 2 ** 20).toFixed(0)} MiB`,
    ].join("\n"),
  );
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      shape: { type: "string", multiple: true },
      prefill: { type: "string", default: "1024" },
      decode: { type: "string", default: "32" },
      threads: { type: "string", default: "0" },
      samples: { type: "string" },
      preset: { type: "string" },
      model: { type: "string" },
      resamples: { type: "string", default: "200" },
      documents: { type: "string", default: "250000" },
    },
  });
  const what = positionals[0] ?? "model";
  if (what === "prove" || what === "methods") {
    const shape = values.shape?.[0];
    if (shape !== undefined && !(shape in SYNTHETIC_SHAPES)) {
      throw new Error(
        `unknown --shape ${shape} (synthetic shapes: ${Object.keys(SYNTHETIC_SHAPES).join(", ")})`,
      );
    }
    const options = {
      preset: values.preset ?? "default",
      model: values.model,
      shape,
      samples: values.samples === undefined ? undefined : Number(values.samples),
    };
    await (what === "prove" ? benchProve(options) : benchMethods(options));
    return;
  }
  if (what === "verify") {
    await benchVerify(Number(values.samples ?? "200000"), Number(values.resamples));
    return;
  }
  if (what === "dataset") {
    await benchDataset(
      Number(values.documents),
      values.samples === undefined ? undefined : Number(values.samples),
    );
    return;
  }
  if (what !== "model") {
    console.error(`unknown benchmark ${what}; available: model, methods, prove, verify, dataset`);
    process.exitCode = 2;
    return;
  }
  const prefillTokens = Number(values.prefill);
  const decodeSteps = Number(values.decode);
  const threads = Number(values.threads);
  const shapes = values.shape ?? ["A", "B", "bundled", "125m"];
  for (const shape of shapes) {
    if (shape in SYNTHETIC_SHAPES) {
      await benchOne(`synthetic ${shape}`, syntheticCheckpoint(shape), prefillTokens, decodeSteps, threads);
    } else {
      const checkpoint = await fixtureCheckpoint(shape);
      if (checkpoint === undefined) {
        console.error(
          `no fixture checkpoint ${shape} (known synthetic shapes: ${Object.keys(SYNTHETIC_SHAPES).join(", ")})`,
        );
        process.exitCode = 2;
        return;
      }
      await benchOne(`HF fixture ${shape}`, checkpoint, prefillTokens, decodeSteps, threads);
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
