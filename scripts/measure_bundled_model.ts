/**
 * Measures a GPT-Neo checkpoint (default: the bundled model) with spg's own ONNX runtime and
 * writes `measurements.json` next to it, for scripts/model_card.ts:
 *   - perplexity on the Brown eval split: each document tokenized on its own, cut into
 *     consecutive windows of --window tokens; every token but a window's first is scored;
 *     perplexity = exp(sum NLL / scored tokens);
 *   - the add-one unigram baseline (fit on the Brown train split's tokens, as the trainer saw
 *     them) on exactly the same scored tokens;
 *   - mean attention entropy per layer against uniform attention over the same visible keys;
 *   - a greedy continuation of --prompt (--sample-tokens tokens);
 *   - with --torch-logits FILE (from `train_gpt_neo.py --dump-logits`): max |ONNX - torch| logits.
 *
 * Usage: node dist/scripts/measure_bundled_model.js [--model DIR] [--window 1024]
 *          [--max-windows N] [--torch-logits FILE] [--out FILE]
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadBrownSplit } from "../src/data/brown.js";
import { decode, encode } from "../src/data/tokenizer.js";
import { emptyCache, pastInputs } from "../src/kv/layout.js";
import { evaluatePerplexity } from "../src/measure/perplexity.js";
import { readCheckpoint } from "../src/model/checkpoint.js";
import { loadRuntime } from "../src/model/session.js";
import type { ForwardOutput, GptNeoConfig, GptNeoRuntime } from "../src/model/types.js";
import { bundledModelDir } from "../src/paths.js";
import { attentionEntropy } from "./measure_helpers.js";

async function prefill(runtime: GptNeoRuntime, config: GptNeoConfig, ids: number[]): Promise<ForwardOutput> {
  const positions = ids.map((_, index) => index);
  const inputs = pastInputs(emptyCache(config), config, positions);
  return runtime.forward({ inputIds: ids, positionIds: positions, ...inputs });
}

function writeAtomic(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: bundledModelDir() },
      window: { type: "string", default: "1024" },
      "max-windows": { type: "string" },
      "entropy-windows": { type: "string", default: "8" },
      prompt: { type: "string", default: "The Fulton County Grand Jury said Friday" },
      "sample-tokens": { type: "string", default: "30" },
      "torch-logits": { type: "string" },
      out: { type: "string" },
    },
  });
  const modelDir = values.model!;
  const windowTokens = Number(values.window);
  const maxWindows =
    values["max-windows"] === undefined ? Number.POSITIVE_INFINITY : Number(values["max-windows"]);
  const entropyWindows = Number(values["entropy-windows"]);
  const sampleTokens = Number(values["sample-tokens"]);
  const outPath = values.out ?? join(modelDir, "measurements.json");

  const checkpoint = await readCheckpoint(modelDir);
  const config = checkpoint.config;
  if (windowTokens < 2 || windowTokens > config.maxPositions) {
    throw new Error(`--window must be in [2, ${config.maxPositions}]`);
  }
  // Attention rows for every query are only needed on the entropy windows; scoring-only windows use a
  // graph that returns one row (cheaper), with the same logits.
  const entropyRuntime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: windowTokens });
  const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
  const started = Date.now();

  // Perplexity and the unigram baseline by the same code as `spg model eval`; the first
  // entropy windows run on the runtime that returns every query row's attention.
  const train = loadBrownSplit("train");
  const evaluation = loadBrownSplit("eval");
  const entropy = config.attentionLayers.map(() => ({ entropy: 0, uniform: 0, rows: 0 }));
  const result = await evaluatePerplexity(runtime, evaluation, {
    windowTokens,
    ...(Number.isFinite(maxWindows) ? { maxWindows } : {}),
    unigramSplit: train,
    onWindow: (windows, scored, perplexity) => {
      if (windows % 10 === 0) console.error(`${windows} windows, ${scored} tokens, ppl ${perplexity}`);
    },
    inspect: {
      windows: entropyWindows,
      runtime: entropyRuntime,
      inspect: (output, window) => {
        const positions = window.map((_, index) => index);
        config.attentionLayers.forEach((kind, layer) => {
          const totals = attentionEntropy(
            output.attentionLastRows[layer],
            config.numHeads,
            output.attentionRows,
            positions,
            kind,
            config.windowSize,
          );
          entropy[layer].entropy += totals.entropy;
          entropy[layer].uniform += totals.uniform;
          entropy[layer].rows += totals.rows;
        });
      },
    },
  });
  const unigram = result.unigram;
  if (unigram === null) throw new Error("evaluatePerplexity returned no unigram baseline");
  const { windows, scoredTokens: scored, sumNll } = result;

  // Greedy sample: full recompute per step (short), argmax of the last row.
  const promptIds = encode(values.prompt!);
  const generated: number[] = [];
  for (let step = 0; step < sampleTokens; step++) {
    const ids = [...promptIds, ...generated];
    const output = await prefill(runtime, config, ids);
    const offset = (ids.length - 1) * config.vocabSize;
    let best = 0;
    for (let v = 1; v < config.vocabSize; v++) {
      if (output.logits[offset + v] > output.logits[offset + best]) best = v;
    }
    generated.push(best);
  }

  let torchComparison: Record<string, unknown> | undefined;
  if (values["torch-logits"] !== undefined) {
    const dump = JSON.parse(readFileSync(values["torch-logits"], "utf8")) as {
      input_ids: number[];
      rows: number[];
      logits: Record<string, number[]>;
      model_sha256: string;
    };
    const output = await prefill(runtime, config, dump.input_ids);
    let maxAbsDiff = 0;
    for (const row of dump.rows) {
      const reference = dump.logits[String(row)];
      for (let v = 0; v < config.vocabSize; v++) {
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(output.logits[row * config.vocabSize + v] - reference[v]));
      }
    }
    torchComparison = {
      file: values["torch-logits"],
      torchModelSha256: dump.model_sha256,
      positions: dump.input_ids.length,
      rowsCompared: dump.rows.length,
      valuesCompared: dump.rows.length * config.vocabSize,
      maxAbsDiff,
    };
  }
  await runtime.close();
  await entropyRuntime.close();

  const measurements = {
    model: { dir: modelDir, sha256: checkpoint.sha256, files: checkpoint.files },
    runtime: { name: "spg ONNX runtime (onnxruntime-node)", executionProvider: runtime.executionProvider },
    protocol: {
      split: "brown eval",
      splitSha256: evaluation.sha256,
      documents: evaluation.documents.length,
      windowTokens,
      windows,
      scoring:
        "each document tokenized alone; consecutive windows; all tokens but each window's first scored",
    },
    evalPerplexity: { scoredTokens: scored, sumNll, perplexity: Math.exp(sumNll / scored) },
    unigramBaseline: {
      fitOn: "brown train split tokens (documents + <|endoftext|>), add-one smoothing",
      trainSplitSha256: train.sha256,
      trainTokens: unigram.fitTokens,
      scoredTokens: scored,
      sumNll: unigram.sumNll,
      perplexity: unigram.perplexity,
    },
    attentionEntropy: {
      windows: Math.min(windows, entropyWindows),
      layers: entropy.map((totals, layer) => ({
        layer,
        kind: config.attentionLayers[layer],
        meanEntropy: totals.entropy / totals.rows,
        meanUniformEntropy: totals.uniform / totals.rows,
        rows: totals.rows,
      })),
    },
    greedySample: {
      prompt: values.prompt,
      promptIds,
      tokens: generated,
      text: decode(generated),
    },
    torchComparison: torchComparison ?? null,
    seconds: (Date.now() - started) / 1000,
  };
  writeAtomic(outPath, `${JSON.stringify(measurements, null, 2)}\n`);
  console.log(JSON.stringify({ ...measurements, model: undefined }, null, 2));
}

await main();
