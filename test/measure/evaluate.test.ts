import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Sample } from "../../src/data/types.js";
import { emptyCache, pastInputs } from "../../src/kv/layout.js";
import { type ClosableBackend, createBackend } from "../../src/measure/backend.js";
import { evaluateSample } from "../../src/measure/evaluate.js";
import { compareScored, compareWithBaseline } from "../../src/measure/metrics.js";
import { readCheckpoint } from "../../src/model/checkpoint.js";
import { packageRoot } from "../../src/paths.js";
import { referenceForward } from "../helpers/reference.js";

const fixture = join(packageRoot(), "test", "fixtures", "gpt-neo-hf", "config-A");
let backend: ClosableBackend;

function makeSample(tokens: number[], contextTokens: number): Sample {
  const bytes = Buffer.from(Uint32Array.from(tokens).buffer);
  return {
    sampleId: "eval-0000",
    role: "eval",
    index: 0,
    document: "doc",
    offset: 0,
    tokens,
    contextTokens,
    continuationTokens: tokens.length - contextTokens,
    tokenHash: createHash("sha256").update(bytes).digest("hex"),
  };
}

// Vocabulary 512, window 8, 64 positions: a context of 32 lets the local layers' window bite.
const tokens = Array.from({ length: 44 }, (_, i) => (i * 37 + 11) % 500);
const sample = makeSample(tokens, 32);

before(async () => {
  const checkpoint = await readCheckpoint(fixture);
  backend = await createBackend(checkpoint, { device: "cpu", observationWindow: 4, baselineDtype: "fp16" });
});
after(async () => backend.close());

test("full and window-trim reproduce the fp16 baseline exactly; streaming does not", async () => {
  const { records, fingerprints } = await evaluateSample(
    backend,
    sample,
    [
      { name: "full", kind: "full", params: {} },
      { name: "trim", kind: "window-trim", params: {} },
      {
        name: "stream",
        kind: "streaming",
        params: { sinkTokens: 2, recentTokens: 4, localWindowTrim: true },
      },
    ],
    { generationTokens: 6 },
  );
  assert.equal(records.length, 3);
  const [full, trim, stream] = records;
  // Continuation of 12 tokens: the first is fed, 11 are scored.
  assert.equal(full.scoredTokens, 11);
  for (const record of [full, trim]) {
    assert.ok(record.klSum < 1e-9, `${record.method}: KL ${record.klSum}`);
    assert.ok(
      Math.abs(record.nllCompressed - record.nllBaseline) < 1e-4,
      `${record.nllCompressed} vs ${record.nllBaseline}`,
    );
    assert.equal(record.top1Matches, 11);
    const { baselineTokens, tokens, ...agreement } = record.generation;
    assert.deepEqual(agreement, { compared: 6, matches: 6, firstDivergence: null });
    assert.equal(tokens?.length, 6);
    assert.deepEqual(tokens, baselineTokens);
  }
  // fp16 baseline: 4 layers x 4 heads x 32 slots x 8 dims x 2 (K,V) x 2 bytes.
  assert.equal(full.kvBytesBaseline, 4 * 4 * 32 * 8 * 2 * 2);
  assert.ok(trim.kvBytesCompressed < full.kvBytesCompressed);
  assert.ok(stream.kvBytesCompressed < trim.kvBytesCompressed);
  assert.ok(stream.klSum > 1e-6, "dropping most of the context must change the predictions");
  assert.equal(fingerprints.length, 3 * 4);
  const streamBytes = fingerprints.filter((f) => f.method === "stream").reduce((s, f) => s + f.bytes, 0);
  assert.equal(streamBytes, stream.kvBytesCompressed);
});

test("baseline NLL equals an independent float64 reference forward over the whole sequence", async () => {
  const checkpoint = await readCheckpoint(fixture);
  // Counted in fp32, the baseline cache is the runtime's own: no rounding between it and the reference.
  const fp32Backend = await createBackend(checkpoint, {
    device: "cpu",
    observationWindow: 4,
    baselineDtype: "fp32",
  });
  const { records } = await evaluateSample(
    fp32Backend,
    sample,
    [{ name: "full", kind: "full", params: {} }],
    {
      generationTokens: 1,
    },
  );
  const positions = tokens.map((_, i) => i);
  const reference = referenceForward(
    checkpoint,
    { observationWindow: 4 },
    {
      inputIds: tokens,
      positionIds: positions,
      ...pastInputs(emptyCache(checkpoint.config), checkpoint.config, positions),
    },
  );
  const vocab = checkpoint.config.vocabSize;
  let nll = 0;
  // Rows 32..42 predict tokens 33..43: the scored continuation tokens.
  for (let row = 32; row < 43; row++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < vocab; v++) max = Math.max(max, reference.logits[row * vocab + v]);
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(reference.logits[row * vocab + v] - max);
    nll -= reference.logits[row * vocab + tokens[row + 1]] - max - Math.log(sum);
  }
  await fp32Backend.close();
  assert.ok(Math.abs(records[0].nllBaseline - nll) < 1e-3, `${records[0].nllBaseline} vs ${nll}`);
});

test("rows scored in the graph give the comparison the JS path computes from copied-out logits", async () => {
  const runtime = await backend.runtime(undefined);
  const context = tokens.slice(0, sample.contextTokens);
  const prefill = await backend.prefill(runtime, context);
  const fed = tokens.slice(sample.contextTokens, -1);
  const positions = fed.map((_, i) => sample.contextTokens + i);
  const targets = tokens.slice(sample.contextTokens + 1);
  const baselineRows = await backend.extend(
    runtime,
    backend.layout(backend.baselineCache(prefill), 0),
    fed,
    positions,
  );
  const prepared = await backend.prepareBaseline(baselineRows, targets);
  const evicted = backend.compress(
    { name: "stream", kind: "streaming", params: { sinkTokens: 2, recentTokens: 4, localWindowTrim: true } },
    prefill,
  ).cache;
  const rows = await backend.extend(runtime, backend.layout(evicted, 0), fed, positions);
  const scored = await backend.score(runtime, backend.layout(evicted, 0), fed, positions, prepared, targets);
  const vocab = backend.config.vocabSize;
  const byJs = compareWithBaseline(prepared, rows, targets, vocab);
  const byGraph = compareScored(prepared, scored, targets);
  assert.ok(byJs.klSum > 1e-6, "the evicted cache must change the predictions");
  assert.ok(
    Math.abs(byGraph.klSum - byJs.klSum) <= 1e-9 * byJs.klSum + 1e-12,
    `${byGraph.klSum} vs ${byJs.klSum}`,
  );
  assert.equal(byGraph.nllCompressed, byJs.nllCompressed);
  assert.equal(byGraph.top1Matches, byJs.top1Matches);
  // No rows asked for, none scored.
  const none = await backend.score(runtime, backend.layout(evicted, 0), fed, positions, prepared, []);
  assert.equal(none.expectedLogit.length, 0);
  assert.equal(none.targetLogit.length, 0);
});
