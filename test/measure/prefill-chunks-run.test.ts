/**
 * The whole protocol on the bundled model with the prefill in chunks against the same run in
 * one pass: every record within the verify policy's replay tolerances
 * (configs/verify/policy.yaml), the stored bytes equal, and a chunked run repeated
 * bit-identical (what a replay of a freshly proved bundle needs on the same machine).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { SampleRecord } from "../../src/bundle/types.js";
import { resolveConfig } from "../../src/config/load.js";
import type { RunConfig } from "../../src/config/types.js";
import { createBackend } from "../../src/measure/backend.js";
import { drawRunSamples } from "../../src/measure/open-run.js";
import { resolveModelDir } from "../../src/measure/prove.js";
import { evaluateRun } from "../../src/measure/run-methods.js";
import { readCheckpoint } from "../../src/model/checkpoint.js";
import { loadVerifyPolicy } from "../../src/verify/policy.js";

/** What a replay compares: the measured fields, without timings, speeds and resident memory. */
function measured(record: SampleRecord) {
  const { timingsMs: _timings, peakRssBytes: _peak, runCost, ...rest } = record;
  if (runCost === undefined) return rest;
  const { baselineTimingsMs: _baseline, tokensPerSecond: _speeds, ...counted } = runCost;
  return { ...rest, runCost: counted };
}

test("prefill in chunks: the bundled model's records stay within the replay tolerances of one pass, and repeat bit for bit", async () => {
  const base = resolveConfig({ preset: "ci-smoke" });
  const withChunk = (chunk: number | undefined): RunConfig => {
    const config = structuredClone(base);
    if (chunk === undefined) delete config.kv.prefillChunkTokens;
    else config.kv.prefillChunkTokens = chunk;
    return config;
  };
  const checkpoint = await readCheckpoint(resolveModelDir(base));
  const { evaluation } = await drawRunSamples(base);
  /** The run's records, and its widest forward pass (query rows), seen by wrapping the runtime. */
  const run = async (config: RunConfig) => {
    const backend = await createBackend(checkpoint, {
      device: "cpu",
      observationWindow: config.kv.observationWindow,
      baselineDtype: config.kv.baselineDtype,
      prefillChunkTokens: config.kv.prefillChunkTokens,
    });
    let widest = 0;
    const runtime = backend.runtime;
    backend.runtime = async (topK) => {
      const inner = await runtime(topK);
      return {
        ...inner,
        forward: (input) => {
          widest = Math.max(widest, input.inputIds.length);
          return inner.forward(input);
        },
      };
    };
    try {
      const { records } = await evaluateRun(backend, checkpoint, evaluation, config);
      return { records, widest };
    } finally {
      await backend.close();
    }
  };
  // 320 context tokens in passes of 64 (five passes), against one pass.
  const whole = await run(withChunk(undefined));
  const chunked = await run(withChunk(64));
  assert.equal(whole.widest, base.dataset.contextTokens, "one pass over the context");
  assert.equal(chunked.widest, 64, "passes of 64 rows");
  const tolerances = loadVerifyPolicy().replay.tolerances;
  assert.equal(chunked.records.length, whole.records.length);
  chunked.records.forEach((record, i) => {
    const other = whole.records[i];
    const where = `${record.method}, sample ${record.sampleId}`;
    assert.equal(record.method, other.method);
    assert.equal(record.kvBytesCompressed, other.kvBytesCompressed, `${where}: stored bytes`);
    assert.equal(record.scoredTokens, other.scoredTokens);
    const perToken = (a: number, b: number) => Math.abs(a - b) / record.scoredTokens;
    assert.ok(
      perToken(record.nllBaseline, other.nllBaseline) <= tolerances.nllPerToken,
      `${where}: baseline NLL`,
    );
    assert.ok(perToken(record.nllCompressed, other.nllCompressed) <= tolerances.nllPerToken, `${where}: NLL`);
    assert.ok(perToken(record.klSum, other.klSum) <= tolerances.klPerToken, `${where}: KL`);
    assert.ok(
      perToken(record.top1Matches, other.top1Matches) <= tolerances.agreementFraction,
      `${where}: top-1 agreement`,
    );
  });
  const again = await run(withChunk(64));
  assert.deepEqual(again.records.map(measured), chunked.records.map(measured));
});
