import assert from "node:assert/strict";
import { test } from "node:test";
import type { SampleRecord } from "../../src/bundle/types.js";
import type { RunConfig } from "../../src/config/types.js";
import { isSpgError } from "../../src/errors.js";
import { mulberry32 } from "../../src/measure/prng.js";
import {
  bootstrapIndices,
  judgeClaim,
  quantileSorted,
  summarize,
  summarizeMethod,
} from "../../src/measure/summary.js";
import { fixtureParts } from "../helpers/bundle-fixture.js";

function record(
  overrides: Partial<SampleRecord> & Pick<SampleRecord, "sampleIndex" | "method">,
): SampleRecord {
  return {
    sampleId: `s${overrides.sampleIndex}`,
    tokenHash: "0".repeat(64),
    document: "d",
    offset: 0,
    contextTokens: 8,
    continuationTokens: 3,
    scoredTokens: 2,
    nllBaseline: 2,
    nllCompressed: 2,
    klSum: 0,
    top1Matches: 2,
    generation: { compared: 4, matches: 4, firstDivergence: null },
    kvBytesBaseline: 100,
    kvBytesCompressed: 100,
    timingsMs: { prefill: 0, compress: 0, decompress: 0, continuation: 0, generation: 0 },
    peakRssBytes: 0,
    ...overrides,
  };
}

function config(overrides: Partial<RunConfig> = {}): RunConfig {
  return {
    ...fixtureParts().config,
    methods: [{ name: "m", kind: "full", params: {} }],
    claims: [],
    ...overrides,
  };
}

test("pooled figures equal their closed forms on two hand-made samples", () => {
  const records = [
    record({
      sampleIndex: 1,
      method: "m",
      scoredTokens: 2,
      nllBaseline: 2,
      nllCompressed: 3,
      klSum: 0.5,
      top1Matches: 1,
    }),
    record({
      sampleIndex: 0,
      method: "m",
      scoredTokens: 2,
      nllBaseline: 2,
      nllCompressed: 5,
      klSum: 1.5,
      top1Matches: 2,
      generation: { compared: 4, matches: 1, firstDivergence: 1 },
      kvBytesCompressed: 25,
    }),
  ];
  const summary = summarize(records, config());
  const m = summary.methods.m;
  assert.equal(m.samples, 2);
  assert.equal(m.scoredTokens, 4);
  // exp(4/4) = e and exp(8/4) = e^2: perplexity is pooled over tokens, not averaged per sample.
  assert.equal(m.perplexityBaseline, Math.E);
  assert.ok(Math.abs(m.perplexityCompressed - Math.E ** 2) < 1e-12);
  assert.ok(Math.abs(m.perplexityIncreasePct - 100 * (Math.E - 1)) < 1e-9);
  assert.equal(m.meanKl, 2 / 4);
  assert.equal(m.top1Agreement, 3 / 4);
  assert.equal(m.generationAgreement, 5 / 8);
  // bytes pooled: 200 / 125, not the mean of 100/100 and 100/25.
  assert.equal(m.compressionRatio, 1.6);
  assert.equal(m.kvBytesBaseline, 200);
  assert.equal(m.kvBytesCompressed, 125);
  assert.deepEqual(summary.claims, []);
  assert.equal(summary.allClaimsPass, true);
});

test("mulberry32 matches the reference formulation and stays in [0, 1)", () => {
  // The widely published one-liner, as a second implementation.
  function reference(a: number): () => number {
    return () => {
      a |= 0;
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  for (const seed of [0, 1, 11, 123456789, 2 ** 32 - 1]) {
    const ours = mulberry32(seed);
    const theirs = reference(seed);
    for (let i = 0; i < 500; i++) {
      const value = ours();
      assert.equal(value, theirs(), `seed ${seed} draw ${i}`);
      assert.ok(value >= 0 && value < 1);
    }
  }
  // Roughly uniform: 10 bins over 20000 draws, each within 10% of 2000.
  const next = mulberry32(42);
  const bins = new Array<number>(10).fill(0);
  for (let i = 0; i < 20000; i++) bins[Math.floor(next() * 10)] += 1;
  for (const count of bins) assert.ok(Math.abs(count - 2000) < 200, `bin count ${count}`);
});

test("type-7 quantile agrees with a second formulation (1-based order statistics)", () => {
  function secondQuantile(values: number[], p: number): number {
    const x = [...values].sort((a, b) => a - b);
    const position = 1 + (x.length - 1) * p; // 1-based
    const j = Math.floor(position);
    const g = position - j;
    const at = (k: number) => x[Math.min(Math.max(k, 1), x.length) - 1];
    return (1 - g) * at(j) + g * at(j + 1);
  }
  const next = mulberry32(5);
  for (let trial = 0; trial < 50; trial++) {
    const values = Array.from({ length: 1 + Math.floor(next() * 30) }, () => next() * 100 - 50);
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [0, 0.025, 0.05, 0.5, 0.95, 0.975, 1, next()]) {
      assert.ok(Math.abs(quantileSorted(sorted, p) - secondQuantile(values, p)) < 1e-12);
    }
  }
  assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
});

test("bootstrap intervals are deterministic from the seed and recomputed independently", () => {
  const records = [0, 1, 2, 3, 4].map((i) =>
    record({ sampleIndex: i, method: "m", kvBytesBaseline: 100, kvBytesCompressed: 10 + 7 * i }),
  );
  const bootstrap = { resamples: 300, confidence: 0.9, seed: 99 };
  const first = summarizeMethod(records, "m", bootstrap);
  const again = summarizeMethod([...records].reverse(), "m", bootstrap);
  assert.deepEqual(first, again, "record order does not matter: samples are ordered by sampleIndex");
  const otherSeed = summarizeMethod(records, "m", { ...bootstrap, seed: 100 });
  assert.notDeepEqual(first.intervals.compressionRatio, otherSeed.intervals.compressionRatio);

  // Independent recomputation: multiplicity counts per resample, ratio of weighted sums, sort, type 7.
  const indices = bootstrapIndices(5, bootstrap.resamples, bootstrap.seed);
  const ratios = indices.map((positions) => {
    const weight = [0, 0, 0, 0, 0];
    for (const p of positions) weight[p] += 1;
    let base = 0;
    let compressed = 0;
    weight.forEach((w, i) => {
      base += w * 100;
      compressed += w * (10 + 7 * i);
    });
    return base / compressed;
  });
  ratios.sort((a, b) => a - b);
  const h = (ratios.length - 1) * 0.05;
  const low =
    ratios[Math.floor(h)] + (h - Math.floor(h)) * (ratios[Math.floor(h) + 1] - ratios[Math.floor(h)]);
  assert.ok(Math.abs(first.intervals.compressionRatio.low - low) < 1e-12);
});

/**
 * The bootstrap as the header states it, one method at a time and one field at a time: each
 * method's own resamples from a fresh generator, each sum added in position order, the
 * metrics' formulas, type-7 quantiles. summarize draws positions once for methods with the
 * same number of records and sums a constant or repeated column once; its intervals must be
 * these, bit for bit.
 */
function intervalsOneByOne(records: readonly SampleRecord[], bootstrap: RunConfig["bootstrap"]) {
  const rows = [...records].sort((a, b) => a.sampleIndex - b.sampleIndex);
  const timed = rows[0].runCost !== undefined;
  const fields: Record<string, (r: SampleRecord) => number> = {
    scored: (r) => r.scoredTokens,
    nllBaseline: (r) => r.nllBaseline,
    nllCompressed: (r) => r.nllCompressed,
    kl: (r) => r.klSum,
    top1: (r) => r.top1Matches,
    compared: (r) => r.generation.compared,
    matches: (r) => r.generation.matches,
    ratioBaseline: (r) => r.kvBytesBaseline,
    ratioCompressed: (r) => r.kvBytesCompressed,
    executed: (r) => (r.runCost ? r.runCost.executedBytes.weights + r.runCost.executedBytes.kv : 0),
    executedBaseline: (r) =>
      r.runCost ? r.runCost.baselineExecutedBytes.weights + r.runCost.baselineExecutedBytes.kv : 0,
    steps: (r) => r.runCost?.decodeSteps ?? 0,
    generationMs: (r) => r.timingsMs.generation,
    baselineGenerationMs: (r) => r.runCost?.baselineTimingsMs.generation ?? 0,
  };
  const values: Record<string, number[]> = {};
  for (const positions of bootstrapIndices(rows.length, bootstrap.resamples, bootstrap.seed)) {
    const sum: Record<string, number> = {};
    for (const [field, read] of Object.entries(fields)) {
      sum[field] = 0;
      for (const p of positions) sum[field] += read(rows[p]);
    }
    const metrics: Record<string, number> = {
      compressionRatio: sum.ratioBaseline / sum.ratioCompressed,
      perplexityIncreasePct:
        100 * (Math.exp(sum.nllCompressed / sum.scored) / Math.exp(sum.nllBaseline / sum.scored) - 1),
      meanKl: sum.kl / sum.scored,
      top1Agreement: sum.top1 / sum.scored,
      generationAgreement: sum.matches / sum.compared,
    };
    if (timed) {
      metrics.executedMemoryRatio = sum.executedBaseline / sum.executed;
      metrics.decodeSpeedRatio =
        sum.steps / (sum.generationMs / 1000) / (sum.steps / (sum.baselineGenerationMs / 1000));
    }
    for (const [key, value] of Object.entries(metrics)) {
      values[key] ??= [];
      values[key].push(value);
    }
  }
  const alpha = (1 - bootstrap.confidence) / 2;
  return Object.fromEntries(
    Object.entries(values).map(([key, list]) => {
      const sorted = list.sort((a, b) => a - b);
      return [key, { low: quantileSorted(sorted, alpha), high: quantileSorted(sorted, 1 - alpha) }];
    }),
  );
}

test("methods resampled together give each method's own intervals, bit for bit", () => {
  const next = mulberry32(17);
  const samples = 40;
  const runCost = (i: number): NonNullable<SampleRecord["runCost"]> => ({
    executionProvider: "cpu",
    intraOpThreads: 1,
    executedBytes: { weights: 1000, kv: 40 + (i % 3) },
    baselineExecutedBytes: { weights: 1000, kv: 90 },
    teacherForcedTokens: 2,
    decodeSteps: 4,
    baselineTimingsMs: { continuation: 0.7, generation: 0.1 + next() },
    tokensPerSecond: { teacherForced: 1, decode: 1, baselineTeacherForced: 1, baselineDecode: 1 },
  });
  const records: SampleRecord[] = [];
  for (let i = 0; i < samples; i++) {
    // Fractional values, so a sum taken in another order or as n times a constant would differ in its last bits.
    const nllBaseline = 1 + next() * 3;
    const timings = (generation: number) => ({
      prefill: 0,
      compress: 0,
      decompress: 0,
      continuation: 0.3,
      generation,
    });
    // "full": its compressed NLL is its baseline's (the same column twice), everything else constant.
    records.push(
      record({
        sampleIndex: i,
        method: "full",
        nllBaseline,
        nllCompressed: nllBaseline,
        timingsMs: timings(0.3),
        runCost: runCost(i),
      }),
    );
    const generation = { compared: 4, matches: Math.floor(next() * 5), firstDivergence: null };
    records.push(
      record({
        sampleIndex: i,
        method: "a",
        nllBaseline,
        nllCompressed: nllBaseline + next(),
        klSum: 0.1,
        top1Matches: Math.floor(next() * 3),
        generation,
        kvBytesCompressed: 30 + Math.floor(next() * 10),
        timingsMs: timings(0.1 + next()),
        runCost: runCost(i),
      }),
    );
    // "b" lacks some samples: its own number of records, so its own positions.
    if (i % 4 !== 0) {
      records.push(
        record({
          sampleIndex: i,
          method: "b",
          nllBaseline,
          nllCompressed: nllBaseline + 0.1,
          klSum: next(),
          kvBytesCompressed: 50,
          timingsMs: timings(0.2),
          runCost: runCost(i),
        }),
      );
    }
  }
  const bootstrap = { resamples: 150, confidence: 0.9, seed: 23 };
  const summary = summarize(
    records,
    config({
      methods: ["full", "a", "b"].map((name) => ({
        name,
        kind: name === "full" ? "full" : "streaming",
        params: {},
      })),
      bootstrap,
    }),
  );
  for (const method of ["full", "a", "b"]) {
    const own = records.filter((r) => r.method === method);
    assert.deepStrictEqual(summary.methods[method].intervals, intervalsOneByOne(own, bootstrap), method);
    assert.deepStrictEqual(
      summarizeMethod(own, method, bootstrap).intervals,
      summary.methods[method].intervals,
    );
  }
});

test("for symmetric data the interval contains the point and is roughly centred on it", () => {
  // Per-sample KL symmetric around 1 nat/token: 1 ± d.
  const deltas = [-0.4, -0.2, 0, 0.2, 0.4];
  const records = deltas.map((d, i) =>
    record({ sampleIndex: i, method: "m", scoredTokens: 10, klSum: 10 * (1 + d) }),
  );
  const m = summarizeMethod(records, "m", { resamples: 2000, confidence: 0.9, seed: 3 });
  assert.equal(m.meanKl, 1);
  assert.ok(m.intervals.meanKl.low < 1 && m.intervals.meanKl.high > 1);
  const below = 1 - m.intervals.meanKl.low;
  const above = m.intervals.meanKl.high - 1;
  assert.ok(Math.abs(below - above) < 0.05, `asymmetric: ${below} vs ${above}`);
  // Sample standard error of the mean KL is 0.1414; a 90% interval spans about ±1.645·se·sqrt(4/5).
  assert.ok(below > 0.1 && below < 0.3, `half-width ${below}`);
});

test("claims judge the point or the conservative end of the interval", () => {
  const m = summarizeMethod(
    [0, 1, 2, 3].map((i) => record({ sampleIndex: i, method: "m", kvBytesCompressed: 20 + 10 * i })),
    "m",
    { resamples: 500, confidence: 0.95, seed: 1 },
  );
  const point = judgeClaim(
    { method: "m", metric: "compression_ratio", op: ">=", threshold: 2.8, judge: "point" },
    m,
  );
  assert.equal(point.value, 400 / 140);
  assert.equal(point.judged, point.value);
  assert.equal(point.pass, true);
  const bound = judgeClaim(
    { method: "m", metric: "compression_ratio", op: ">=", threshold: 2.8, judge: "bound" },
    m,
  );
  assert.equal(bound.judged, m.intervals.compressionRatio.low);
  assert.equal(bound.pass, m.intervals.compressionRatio.low >= 2.8);
  assert.ok(bound.judged < bound.value);
  const upper = judgeClaim({ method: "m", metric: "mean_kl", op: "<=", threshold: 0, judge: "bound" }, m);
  assert.equal(upper.judged, m.intervals.meanKl.high);
  assert.equal(upper.pass, true);
});

test("summarize refuses records and claims for methods the config does not run, and empty sums", () => {
  const expectCode = (run: () => unknown, code: string) =>
    assert.throws(run, (error: unknown) => isSpgError(error) && error.code === code);
  expectCode(
    () => summarize([record({ sampleIndex: 0, method: "other" })], config()),
    "E_SUMMARY_UNKNOWN_METHOD",
  );
  expectCode(
    () =>
      summarize(
        [record({ sampleIndex: 0, method: "m" })],
        config({ claims: [{ method: "x", metric: "mean_kl", op: "<=", threshold: 1, judge: "point" }] }),
      ),
    "E_SUMMARY_UNKNOWN_METHOD",
  );
  expectCode(() => summarize([], config()), "E_SUMMARY_EMPTY");
  expectCode(
    () =>
      summarize(
        [record({ sampleIndex: 0, method: "m" })],
        config({ bootstrap: { resamples: 0, confidence: 0.9, seed: 1 } }),
      ),
    "E_SUMMARY_BOOTSTRAP",
  );
});

test("a weights method's ratio is weight bytes pooled (not KV bytes, not parameters); cosine is a pooled mean", () => {
  const weights = (bytesCompressed: number) => ({
    bytesBaseline: 1000,
    bytesCompressed,
    parametersBaseline: 500,
    parametersStored: 800,
  });
  const records = [
    record({ sampleIndex: 0, method: "w", scoredTokens: 2, weights: weights(250), logitCosineSum: 1.5 }),
    record({ sampleIndex: 1, method: "w", scoredTokens: 4, weights: weights(250), logitCosineSum: 3.9 }),
  ];
  const methods: RunConfig["methods"] = [{ name: "w", kind: "weights", params: {} }];
  const m = summarize(records, config({ methods })).methods.w;
  assert.equal(m.compressionRatio, 2000 / 500);
  assert.equal(m.kvBytesCompressed, 200);
  assert.deepEqual(m.weights, {
    bytesBaseline: 2000,
    bytesCompressed: 500,
    parametersBaseline: 1000,
    parametersStored: 1600,
    parameterRatio: 1000 / 1600,
    meanLogitCosine: (1.5 + 3.9) / 6,
  });
  // every resample has the same per-record bytes: the ratio's interval is the point
  assert.equal(m.intervals.compressionRatio.low, 4);
  assert.equal(m.intervals.compressionRatio.high, 4);
  // a weights method's record without its weight bytes cannot be summarized
  const { weights: _dropped, ...bare } = records[0];
  assert.throws(
    () => summarize([bare, records[1]], config({ methods })),
    (error: unknown) => isSpgError(error) && error.code === "E_SUMMARY_WEIGHTS",
  );
});
