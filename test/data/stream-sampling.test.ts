import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { Mulberry32 } from "../../src/data/prng.js";
import { drawStreamedSamples } from "../../src/data/stream-sampling.js";
import type { DatasetDocument } from "../../src/data/types.js";
import { spgErrorAsync } from "../helpers/spg-error.js";

/** One token per character: the byte bound (tokens <= UTF-8 bytes) holds, and lengths are easy to set. */
const tokenizeChars = (text: string) => Array.from(text, (c) => c.codePointAt(0) ?? 0);

function corpus(lengths: number[]): DatasetDocument[] {
  return lengths.map((length, d) => ({
    id: `doc-${d}`,
    text: Array.from({ length }, (_, i) => String.fromCharCode(97 + ((d * 7 + i) % 26))).join(""),
  }));
}

async function* stream(documents: readonly DatasetDocument[]): AsyncGenerator<DatasetDocument> {
  yield* documents;
}

/** The rule of src/data/stream-sampling.ts written out plainly: every slot of every document, sorted. */
function bruteForce(
  documents: readonly DatasetDocument[],
  count: number,
  window: number,
  seed: number,
  role: string,
) {
  const hash = (key: string) => createHash("sha256").update(key).digest();
  const slots: { priority: number; id: string; k: number; offset: number }[] = [];
  for (const document of documents) {
    const tokens = tokenizeChars(document.text);
    const n = Math.floor(tokens.length / window);
    if (n === 0) continue;
    const rng = new Mulberry32(hash(`spg-sampling-stream:${role}:${seed}:${document.id}`).readUInt32LE(0));
    const phases = Array.from({ length: n }, () => rng.nextBelow(tokens.length - n * window + 1)).sort(
      (a, b) => a - b,
    );
    for (let k = 0; k < n; k++) {
      const priority = hash(`spg-sampling-stream:${role}:${seed}:${document.id}:${k}`).readUIntBE(0, 6);
      slots.push({ priority, id: document.id, k, offset: k * window + phases[k] });
    }
  }
  slots.sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : a.k - b.k));
  return slots.slice(0, count).map(({ id, offset }) => ({ document: id, offset }));
}

const lengths = [5, 300, 64, 1000, 63, 2500, 130, 700, 10, 450, 4000, 90];
const options = { count: 12, contextTokens: 50, continuationTokens: 14, seed: 7, role: "eval" as const };

test("the streamed draw equals every slot listed and sorted by priority, and its tokens are the document's", async () => {
  const documents = corpus(lengths);
  for (const count of [1, 5, 12, 40]) {
    const samples = await drawStreamedSamples(stream(documents), { ...options, count }, tokenizeChars);
    assert.deepEqual(
      samples.map(({ document, offset }) => ({ document, offset })),
      bruteForce(documents, count, 64, options.seed, options.role),
      `count ${count}`,
    );
    for (const sample of samples) {
      const source = tokenizeChars(documents.find((d) => d.id === sample.document)?.text ?? "");
      assert.deepEqual(sample.tokens, source.slice(sample.offset, sample.offset + 64));
    }
  }
});

test("the streamed draw does not depend on document order, and differs by seed and role", async () => {
  const documents = corpus(lengths);
  const forward = await drawStreamedSamples(stream(documents), options, tokenizeChars);
  const backward = await drawStreamedSamples(stream([...documents].reverse()), options, tokenizeChars);
  assert.deepEqual(backward, forward);
  const otherSeed = await drawStreamedSamples(stream(documents), { ...options, seed: 8 }, tokenizeChars);
  const calibration = await drawStreamedSamples(
    stream(documents),
    { ...options, role: "calibration" },
    tokenizeChars,
  );
  assert.notDeepEqual(
    otherSeed.map((s) => s.tokenHash),
    forward.map((s) => s.tokenHash),
  );
  assert.notDeepEqual(
    calibration.map((s) => s.tokenHash),
    forward.map((s) => s.tokenHash),
  );
  assert.deepEqual(
    forward.map((s) => s.sampleId),
    Array.from({ length: 12 }, (_, i) => `eval-${String(i).padStart(4, "0")}`),
  );
});

test("windows of one document never overlap; only documents that can still place a slot are tokenized", async () => {
  const documents = corpus(lengths);
  const all = await drawStreamedSamples(stream(documents), { ...options, count: 141 }, tokenizeChars);
  const byDocument = new Map<string, number[]>();
  for (const s of all) byDocument.set(s.document, [...(byDocument.get(s.document) ?? []), s.offset]);
  for (const offsets of byDocument.values()) {
    offsets.sort((a, b) => a - b);
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i] - offsets[i - 1] >= 64);
  }
  let tokenized = 0;
  const many = corpus(Array.from({ length: 400 }, (_, i) => 64 + ((i * 37) % 200)));
  const counting = (text: string) => {
    tokenized++;
    return tokenizeChars(text);
  };
  await drawStreamedSamples(stream(many), { ...options, count: 4 }, counting);
  assert.ok(tokenized < 100, `tokenized ${tokenized} of 400 documents`);
});

test("a split with too few windows fails with E_DATASET_TOO_SHORT and the count that fits", async () => {
  const documents = corpus([200, 70, 10]);
  const error = await spgErrorAsync(() =>
    drawStreamedSamples(stream(documents), { ...options, count: 5 }, tokenizeChars),
  );
  assert.equal(error.code, "E_DATASET_TOO_SHORT");
  assert.match(error.fix ?? "", /at most 4/);
  const none = await spgErrorAsync(() =>
    drawStreamedSamples(stream(corpus([30, 40])), { ...options, count: 1 }, tokenizeChars),
  );
  assert.match(none.fix ?? "", /lower --context to at most 26/);
});
