/**
 * `npm run bench -- model [--shape NAME]... [--prefill N] [--decode N] [--threads N]`
 * `npm run bench -- verify [--samples N] [--layers L] [--resamples N] [--repeats K] [--max-ratio R] [--max-rss-mib M] [--keep DIR]` (scripts/bench-verify.ts)
 * `npm run bench -- verify --adversarial [--scale N] [--case NAME]...` (scripts/bench-adversarial.ts)
 * `npm run bench -- dataset [--format jsonl.gz|text|dir] [--documents N] [--samples N]` (scripts/bench-dataset.ts)
 * `npm run bench -- prove|methods [--preset NAME] [--model DIR | --shape NAME] [--samples N] [--context N] [--continuation N] [--prefill-chunk N]`
 *   (scripts/bench-prove.ts; --shape runs a real-shape checkpoint with random weights)
 *
 * Prefill and decode throughput of the GPT-Neo runtime on CPU, and the same forwards through
 * bare onnxruntime (the same graph and session options; feeds prepared in advance, only
 * session.run timed), so the cost of our code around the model (cache layout, bias, feeds,
 * output mapping) is a printed ratio. Shapes: the HF fixture checkpoints (A, B, when present),
 * and the shapes in scripts/shapes (125m, 1.3b, 2.7b) plus "bundled" (the bundled model's own
 * config.json): an HF-layout F16 checkpoint
 * with random weights written to a temporary folder (scripts/synthetic-checkpoint.ts) and
 * read through spg's own loading path.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { cacheFromPrefill, emptyCache, pastInputs } from "../src/kv/layout.js";
import { PaddedCache } from "../src/kv/padded-cache.js";
import { peakRssBytes } from "../src/measure/evaluate.js";
import { mulberry32 } from "../src/measure/prng.js";
import { readCheckpoint } from "../src/model/checkpoint.js";
import { graphNames } from "../src/model/graph.js";
import { prepareGraph } from "../src/model/graph-cache.js";
import { createSession, forwardFeeds, loadRuntime } from "../src/model/session.js";
import type { ForwardInput, GptNeoCheckpoint } from "../src/model/types.js";
import { packageRoot } from "../src/paths.js";
import { benchAdversarial } from "./bench-adversarial.js";
import { benchDataset } from "./bench-dataset.js";
import { benchMethods, benchProve } from "./bench-prove.js";
import { benchVerify } from "./bench-verify.js";
import { syntheticCheckpointDir, syntheticShapeNames } from "./synthetic-checkpoint.js";

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

/** Prefills timed per runtime (ours and bare in turns); the median is reported. */
const PREFILL_TURNS = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
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
  // Bare onnxruntime: the same graph and session options, its feeds prepared before timing.
  // Both are open at once and timed in turns (ours, then bare, pass by pass), so a busy
  // machine slows both alike and the ratio stays meaningful.
  const session = await createSession(await prepareGraph(checkpoint, options), "cpu", intraOpThreads);
  // One untimed token first: onnxruntime allocates and pre-packs on a session's first run.
  const warmUp: ForwardInput = {
    inputIds: [ids[0]],
    positionIds: [0],
    ...pastInputs(emptyCache(config), config, [0]),
  };
  await runtime.forward(warmUp);
  await session.run(forwardFeeds(config, warmUp));

  // Ours: layout helpers + runtime.forward, as the evaluation uses them.
  const positions = ids.slice(0, prefillLength).map((_, i) => i);
  const prefillIds = ids.slice(0, prefillLength);
  const prefillMsList: number[] = [];
  const barePrefillMsList: number[] = [];
  let cache = emptyCache(config);
  const prefillInput: ForwardInput = {
    inputIds: prefillIds,
    positionIds: positions,
    ...pastInputs(emptyCache(config), config, positions),
  };
  const prefillFeeds = forwardFeeds(config, prefillInput);
  for (let turn = 0; turn < PREFILL_TURNS; turn++) {
    start = performance.now();
    const prefill = await runtime.forward({
      inputIds: prefillIds,
      positionIds: positions,
      ...pastInputs(emptyCache(config), config, positions),
    });
    cache = cacheFromPrefill(config, prefill, positions);
    prefillMsList.push(performance.now() - start);
    start = performance.now();
    await session.run(prefillFeeds);
    barePrefillMsList.push(performance.now() - start);
  }
  const prefillMs = median(prefillMsList);
  const barePrefillMs = median(barePrefillMsList);
  // Decode as generation runs it: the cache laid out once with room for every step, each
  // step appending its keys and values in place (src/kv/padded-cache.ts). The bare steps'
  // feeds are built before timing over a second laid-out cache of the same shape (what
  // onnxruntime computes does not depend on the values), fetching the same outputs.
  const decodeReturns = { logits: false, attention: false, statistics: false } as const;
  const barePadded = PaddedCache.from(cache, config, decodeSteps);
  const decodeFeeds = Array.from({ length: decodeSteps }, (_, step) => {
    const stepPositions = [prefillLength + step];
    return forwardFeeds(config, {
      inputIds: [ids[prefillLength + step]],
      positionIds: stepPositions,
      ...barePadded.inputs(stepPositions),
    });
  });
  const decodeFetches = [
    graphNames.logitsLogSumExp,
    graphNames.logitsArgmax,
    graphNames.scoredExpectedLogit,
    graphNames.scoredTargetLogit,
    ...config.attentionLayers.flatMap((_, l) => [graphNames.presentKey(l), graphNames.presentValue(l)]),
  ];
  let decodeMs = 0;
  let bareDecodeMs = 0;
  start = performance.now();
  const padded = PaddedCache.from(cache, config, decodeSteps);
  decodeMs += performance.now() - start;
  for (let step = 0; step < decodeSteps; step++) {
    const stepPositions = [prefillLength + step];
    start = performance.now();
    const output = await runtime.forward({
      inputIds: [ids[prefillLength + step]],
      positionIds: stepPositions,
      ...padded.inputs(stepPositions),
      returns: decodeReturns,
    });
    padded.append(output, stepPositions);
    decodeMs += performance.now() - start;
    start = performance.now();
    await session.run(decodeFeeds[step], decodeFetches);
    bareDecodeMs += performance.now() - start;
  }
  await runtime.close();
  await session.release();

  const rate = (tokens: number, ms: number) => (tokens / (ms / 1000)).toFixed(1);
  console.log(
    [
      `${label}: layers ${config.numLayers}, hidden ${config.hiddenSize}, heads ${config.numHeads}, vocab ${config.vocabSize}`,
      `  load (build graph + session): ${loadMs.toFixed(0)} ms`,
      `  prefill ${prefillLength} tokens (median of ${PREFILL_TURNS}): ${rate(prefillLength, prefillMs)} tok/s (bare onnxruntime ${rate(prefillLength, barePrefillMs)} tok/s, overhead x${(prefillMs / barePrefillMs).toFixed(2)})`,
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
      context: { type: "string" },
      continuation: { type: "string" },
      "prefill-chunk": { type: "string" },
      preset: { type: "string" },
      model: { type: "string" },
      resamples: { type: "string", default: "200" },
      adversarial: { type: "boolean", default: false },
      case: { type: "string", multiple: true },
      scale: { type: "string", default: "40" },
      "max-seconds": { type: "string", default: "60" },
      // Per command: --adversarial's budget is 2048 MiB a case, verify's target 1024 MiB.
      "max-rss-mib": { type: "string" },
      layers: { type: "string", default: "24" },
      "max-ratio": { type: "string", default: "5" },
      keep: { type: "string" },
      repeats: { type: "string", default: "3" },
      documents: { type: "string", default: "250000" },
      format: { type: "string" },
    },
  });
  const what = positionals[0] ?? "model";
  if (what === "prove" || what === "methods") {
    const shape = values.shape?.[0];
    if (shape !== undefined && !syntheticShapeNames().includes(shape)) {
      throw new Error(`unknown --shape ${shape} (shapes: ${syntheticShapeNames().join(", ")})`);
    }
    const options = {
      preset: values.preset ?? "default",
      model: values.model,
      shape,
      samples: values.samples === undefined ? undefined : Number(values.samples),
      context: values.context === undefined ? undefined : Number(values.context),
      continuation: values.continuation === undefined ? undefined : Number(values.continuation),
      prefillChunk: values["prefill-chunk"] === undefined ? undefined : Number(values["prefill-chunk"]),
    };
    await (what === "prove" ? benchProve(options) : benchMethods(options));
    return;
  }
  if (what === "verify" && values.adversarial) {
    await benchAdversarial({
      scale: Number(values.scale),
      maxSeconds: Number(values["max-seconds"]),
      maxRssMiB: Number(values["max-rss-mib"] ?? "2048"),
      only: values.case,
    });
    return;
  }
  if (what === "verify") {
    await benchVerify({
      samples: Number(values.samples ?? "15000"),
      layers: Number(values.layers),
      resamples: Number(values.resamples),
      maxRatio: Number(values["max-ratio"]),
      maxRssMiB: Number(values["max-rss-mib"] ?? "1024"),
      keep: values.keep,
      repeats: Number(values.repeats),
    });
    return;
  }
  if (what === "dataset") {
    const format = values.format ?? "jsonl.gz";
    if (format !== "jsonl.gz" && format !== "text" && format !== "dir") {
      console.error(`--format must be jsonl.gz, text or dir, got ${format}`);
      process.exitCode = 2;
      return;
    }
    await benchDataset(
      Number(values.documents),
      values.samples === undefined ? undefined : Number(values.samples),
      format,
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
    if (syntheticShapeNames().includes(shape)) {
      const checkpoint = await readCheckpoint(syntheticCheckpointDir(shape));
      await benchOne(`${shape} shape (random F16 weights)`, checkpoint, prefillTokens, decodeSteps, threads);
    } else {
      const checkpoint = await fixtureCheckpoint(shape);
      if (checkpoint === undefined) {
        console.error(`no fixture checkpoint ${shape} (known shapes: ${syntheticShapeNames().join(", ")})`);
        process.exitCode = 2;
        return;
      }
      await benchOne(`HF fixture ${shape}`, checkpoint, prefillTokens, decodeSteps, threads);
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
