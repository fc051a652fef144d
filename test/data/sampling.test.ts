import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { Mulberry32 } from "../../src/data/prng.js";
import {
  assertDisjointSamples,
  drawSamples,
  sharedSampleHashes,
  streamSeed,
  type TokenizedDocument,
  tokenHash,
} from "../../src/data/sampling.js";
import { spgError } from "../helpers/spg-error.js";

/** A second, independent mulberry32 written with BigInt arithmetic (mod 2^32 by hand). */
function referenceMulberry32(seed: number, count: number): number[] {
  const M = 2n ** 32n;
  const mul = (a: bigint, b: bigint) => (a * b) % M;
  let state = BigInt(seed);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5n) % M;
    let t = state;
    t = mul(t ^ (t >> 15n), t | 1n);
    t = t ^ ((t + mul(t ^ (t >> 7n), t | 61n)) % M);
    out.push(Number(t ^ (t >> 14n)));
  }
  return out;
}

function documents(prefix: string, lengths: number[], base = 0): TokenizedDocument[] {
  return lengths.map((length, d) => ({
    id: `${prefix}${d}`,
    tokens: Array.from({ length }, (_, i) => base + d * 100_000 + i),
  }));
}

const options = {
  count: 6,
  contextTokens: 40,
  continuationTokens: 10,
  seed: 1234,
  role: "eval" as const,
  split: "eval",
};

test("mulberry32 matches an independent BigInt implementation", () => {
  for (const seed of [0, 1, 20261123, 0xffffffff]) {
    const rng = new Mulberry32(seed);
    const values = Array.from({ length: 8 }, () => rng.nextUint32());
    assert.deepEqual(values, referenceMulberry32(seed, 8), `seed ${seed}`);
  }
  const rng = new Mulberry32(5);
  for (let i = 0; i < 200; i++) {
    const v = rng.nextBelow(7);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 7);
  }
  assert.deepEqual(new Mulberry32(9).shuffle([0, 1, 2, 3, 4, 5]).sort(), [0, 1, 2, 3, 4, 5]);
  assert.throws(() => new Mulberry32(-1), RangeError);
});

test("token hash is sha256 of little-endian uint32 ids (hand-built buffer)", () => {
  const bytes = Buffer.from([0x01, 0, 0, 0, 0x00, 0x01, 0, 0, 0x04, 0x03, 0x02, 0x01, 0xff, 0xff, 0, 0]);
  const expected = createHash("sha256").update(bytes).digest("hex");
  assert.equal(tokenHash([1, 256, 0x01020304, 65535]), expected);
  assert.equal(tokenHash([]), createHash("sha256").update(Buffer.alloc(0)).digest("hex"));
});

test("each role draws from its own stream: sha256('spg-sampling:<role>:<seed>')[0..4] LE", () => {
  const digest = createHash("sha256").update("spg-sampling:eval:1234").digest();
  assert.equal(
    streamSeed(1234, "eval"),
    digest[0] + digest[1] * 256 + digest[2] * 65536 + digest[3] * 16777216,
  );
  assert.notEqual(streamSeed(1234, "eval"), streamSeed(1234, "calibration"));
  // identical documents, same seed: the two roles pick different windows
  const docs = documents("d", [500, 500, 500, 500]);
  const evaluation = drawSamples(docs, options);
  const calibration = drawSamples(docs, { ...options, role: "calibration" });
  assert.notDeepEqual(
    evaluation.map((s) => `${s.document}:${s.offset}`),
    calibration.map((s) => `${s.document}:${s.offset}`),
  );
});

test("same seed, same samples; different seeds differ", () => {
  const docs = documents("d", [500, 130, 49, 260, 1000]);
  const a = drawSamples(docs, options);
  const b = drawSamples(docs, options);
  assert.deepEqual(a, b);
  const c = drawSamples(docs, { ...options, seed: 1235 });
  assert.notDeepEqual(
    a.map((s) => s.tokenHash),
    c.map((s) => s.tokenHash),
  );
});

test("every window lies inside one document, is hashed, and no two overlap when they can avoid it", () => {
  const docs = documents("d", [500, 130, 49, 260, 1000]);
  const samples = drawSamples(docs, { ...options, count: 30 });
  const windowTokens = options.contextTokens + options.continuationTokens;
  // capacity: floor(500/50) + floor(130/50) + 0 + floor(260/50) + floor(1000/50) = 10 + 2 + 5 + 20 = 37 >= 30
  assert.equal(samples.length, 30);
  samples.forEach((sample, index) => {
    const doc = docs.find((d) => d.id === sample.document);
    assert.ok(doc, sample.document);
    assert.notEqual(sample.document, "d2", "documents shorter than a window are skipped");
    assert.ok(sample.offset >= 0 && sample.offset + windowTokens <= doc.tokens.length);
    assert.deepEqual(sample.tokens, doc.tokens.slice(sample.offset, sample.offset + windowTokens));
    assert.equal(sample.index, index);
    assert.equal(sample.sampleId, `eval-${String(index).padStart(4, "0")}`);
    assert.equal(sample.contextTokens, options.contextTokens);
    assert.equal(sample.continuationTokens, options.continuationTokens);
    assert.equal(sample.tokenHash, tokenHash(sample.tokens));
  });
  for (const a of samples) {
    for (const b of samples) {
      if (a === b || a.document !== b.document) continue;
      assert.ok(Math.abs(a.offset - b.offset) >= windowTokens, `${a.sampleId} and ${b.sampleId} overlap`);
    }
  }
});

test("more samples than non-overlapping windows: distinct windows, overlapping allowed; beyond that an error", () => {
  const docs = documents("d", [60, 55]);
  // non-overlapping capacity 2; distinct windows (60-50+1) + (55-50+1) = 17
  const samples = drawSamples(docs, { ...options, count: 17 });
  assert.equal(new Set(samples.map((s) => `${s.document}:${s.offset}`)).size, 17);
  const error = spgError(() => drawSamples(docs, { ...options, count: 18 }));
  assert.equal(error.code, "E_DATASET_TOO_SHORT");
  assert.match(error.message, /17 distinct windows/);
});

test("no document long enough: E_DATASET_TOO_SHORT names the split, the longest, the need and the fix", () => {
  const docs = documents("d", [30, 45, 12]);
  const error = spgError(() => drawSamples(docs, { ...options, split: "valid" }));
  assert.equal(error.code, "E_DATASET_TOO_SHORT");
  assert.match(error.message, /split "valid"/);
  assert.match(error.message, /longest has 45 tokens/);
  assert.match(error.message, /needs 50/);
  assert.match(error.fix ?? "", /--context to at most 35/);
  assert.deepEqual(drawSamples(docs, { ...options, count: 0 }), []);
});

test("calibration drawn from another split shares no sample with evaluation", () => {
  const evalDocs = documents("e", [400, 300, 800]);
  const calibrationDocs = documents("c", [500, 700], 10_000_000);
  const evaluation = drawSamples(evalDocs, options);
  const calibration = drawSamples(calibrationDocs, { ...options, role: "calibration", seed: options.seed });
  assert.deepEqual(sharedSampleHashes(evaluation, calibration), []);
  assertDisjointSamples(evaluation, calibration);
  assert.ok(calibration.every((s) => s.role === "calibration" && s.sampleId.startsWith("calibration-")));
  // a calibration set that reuses two evaluation windows is caught by token hash
  const leaked = [
    ...calibration.slice(2),
    ...evaluation.slice(0, 2).map((s) => ({ ...s, role: "calibration" as const })),
  ];
  assert.deepEqual(
    sharedSampleHashes(evaluation, leaked),
    evaluation.slice(0, 2).map((s) => s.tokenHash),
  );
  assert.equal(spgError(() => assertDisjointSamples(evaluation, leaked)).code, "E_SAMPLES_SHARED");
});
