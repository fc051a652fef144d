/**
 * The prefill in query chunks (kv.prefillChunkTokens) against Hugging Face's attentions and
 * logits (test/fixtures/gpt-neo-hf) and against the one-pass prefill: the same keys, values,
 * column sums, observation rows, window sums, norms and last logits, to float32 rounding.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PREFILL_CHUNK_SPLITS,
  type PrefillChunking,
  prefillChunkSizes,
} from "../../src/model/prefill-chunks.js";
import { loadRuntime, prefillTokens } from "../../src/model/session.js";
import type { ForwardOutput, GptNeoCheckpoint, GptNeoRuntime } from "../../src/model/types.js";
import { fixtureCase, loadFixtureCheckpoint, maxAbsDiff } from "../helpers/fixture-checkpoint.js";
import { spgError, spgErrorAsync } from "../helpers/spg-error.js";

const TOLERANCE = 1e-4;
const OBSERVATION_WINDOW = 3;

test("chunk sizes, remainder first (the default): the last pass holds max(chunk, observation rows), the first the remainder", () => {
  const sizes = (count: number, chunks: PrefillChunking) => prefillChunkSizes(count, chunks);
  assert.deepEqual(sizes(320, { tokens: 256, lastRows: 16, split: "remainder-first" }), [64, 256]);
  assert.deepEqual(sizes(24, { tokens: 5, lastRows: 3 }), [4, 5, 5, 5, 5]);
  assert.deepEqual(sizes(24, { tokens: 2, lastRows: 7 }), [1, 2, 2, 2, 2, 2, 2, 2, 2, 7]);
  assert.deepEqual(sizes(320, { tokens: 256, lastRows: 16 }), [64, 256]);
  assert.deepEqual(sizes(10, { tokens: 256, lastRows: 16 }), [10]);
  assert.deepEqual(sizes(1, { tokens: 1, lastRows: 1 }), [1]);
  for (const tokens of [0, 2.5]) {
    const error = spgError(() => sizes(10, { tokens, lastRows: 3 }));
    assert.equal(error.code, "E_RUNTIME_OPTION");
    assert.equal(error.field, "kv.prefillChunkTokens");
  }
});

test("chunk sizes, balanced: the fewest passes of at most the chunk, equal to a row, the larger last, the last at least the observation rows", () => {
  const sizes = (count: number, tokens: number, lastRows: number) =>
    prefillChunkSizes(count, { tokens, lastRows, split: "balanced" });
  assert.deepEqual(sizes(320, 256, 16), [160, 160]);
  assert.deepEqual(sizes(1024, 256, 32), [256, 256, 256, 256]);
  assert.deepEqual(sizes(512, 256, 32), [256, 256]);
  assert.deepEqual(sizes(2032, 256, 32), [254, 254, 254, 254, 254, 254, 254, 254]);
  assert.deepEqual(sizes(24, 5, 3), [4, 5, 5, 5, 5]);
  assert.deepEqual(sizes(23, 5, 3), [4, 4, 5, 5, 5]);
  assert.deepEqual(sizes(10, 256, 16), [10]);
  // Equal passes smaller than the observation rows: a last pass of those rows, the rest split evenly.
  assert.deepEqual(sizes(24, 2, 7), [1, 2, 2, 2, 2, 2, 2, 2, 2, 7]);
  assert.deepEqual(sizes(9, 4, 8), [1, 8]);
  assert.deepEqual(sizes(8, 4, 9), [8]);
  for (const [count, tokens, lastRows] of [
    [320, 256, 16],
    [2032, 128, 32],
    [777, 100, 50],
    [24, 2, 7],
    [9, 4, 8],
  ]) {
    const split = sizes(count, tokens, lastRows);
    assert.equal(
      split.reduce((a, b) => a + b, 0),
      count,
      `${count}/${tokens}: the passes cover the context`,
    );
    assert.ok(split[split.length - 1] >= Math.min(count, lastRows), `${count}/${tokens}: last pass`);
    assert.ok(
      split.slice(0, -1).every((size) => size <= tokens && size >= 1),
      `${count}/${tokens}: earlier passes within the chunk`,
    );
  }
  const error = spgError(() =>
    prefillChunkSizes(10, { tokens: 4, lastRows: 3, split: "sideways" as unknown as "balanced" }),
  );
  assert.equal(error.code, "E_RUNTIME_OPTION");
  assert.equal(error.field, "kv.prefillChunkSplit");
});

function assertSameOutputs(chunked: ForwardOutput, whole: ForwardOutput, what: string) {
  assert.equal(chunked.attentionRows, whole.attentionRows, `${what}: rows`);
  assert.ok(maxAbsDiff(chunked.logits, whole.logits) <= TOLERANCE, `${what}: logits`);
  assert.deepEqual(Array.from(chunked.logitsArgmax), Array.from(whole.logitsArgmax), `${what}: argmax`);
  const fields = [
    "presentKeys",
    "presentValues",
    "attentionLastRows",
    "attentionWindowSums",
    "attentionColumnSums",
    "keyNorms",
    "valueNorms",
  ] as const;
  for (const field of fields) {
    whole[field].forEach((expected, l) => {
      assert.ok(
        maxAbsDiff(chunked[field][l], expected) <= TOLERANCE,
        `${what}: layer ${l} ${field} differs by ${maxAbsDiff(chunked[field][l], expected)}`,
      );
    });
  }
}

for (const name of ["A", "B"] as const) {
  describe(`prefill in chunks, config ${name}`, () => {
    let checkpoint: GptNeoCheckpoint;
    let runtime: GptNeoRuntime;

    before(async () => {
      checkpoint = loadFixtureCheckpoint(name);
      runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: OBSERVATION_WINDOW });
    });
    after(async () => {
      await runtime.close();
    });

    test("Hugging Face's attentions and last logits, and the one-pass prefill, for several chunk sizes", async () => {
      const reference = fixtureCase(name, name === "A" ? "attentions_len24" : "attentions_len17");
      const ids = reference.input_ids[0];
      const count = ids.length;
      const vocab = checkpoint.config.vocabSize;
      const hfLogits = reference.logits?.data ?? [];
      const hfLastRow = hfLogits.slice((count - 1) * vocab, count * vocab);
      const whole = await prefillTokens(runtime, ids);
      for (const [tokens, split] of [1, 2, 5, 8].flatMap((t) =>
        PREFILL_CHUNK_SPLITS.map((split) => [t, split] as const),
      )) {
        const chunks = { tokens, lastRows: OBSERVATION_WINDOW, split };
        assert.ok(prefillChunkSizes(count, chunks).length > 1, "the case runs more than one pass");
        const chunked = await prefillTokens(runtime, ids, { logitRows: 1, chunks });
        const what = `chunk ${tokens} ${split}`;
        assert.ok(maxAbsDiff(chunked.output.logits, hfLastRow) <= TOLERANCE, `${what}: HF last logits`);
        const heads = checkpoint.config.numHeads;
        (reference.attentions ?? []).forEach((attention, l) => {
          // HF: [1, heads, count, count]; column sums over every row, and the last rows.
          const sums = new Float64Array(heads * count);
          const lastRows = new Float64Array(heads * OBSERVATION_WINDOW * count);
          for (let h = 0; h < heads; h++) {
            for (let r = 0; r < count; r++) {
              for (let c = 0; c < count; c++) {
                const p = attention.data[(h * count + r) * count + c];
                sums[h * count + c] += p;
                const windowRow = r - (count - OBSERVATION_WINDOW);
                if (windowRow >= 0) lastRows[(h * OBSERVATION_WINDOW + windowRow) * count + c] = p;
              }
            }
          }
          assert.ok(maxAbsDiff(chunked.output.attentionColumnSums[l], sums) <= TOLERANCE, `${what}: HF sums`);
          assert.ok(
            maxAbsDiff(chunked.output.attentionLastRows[l], lastRows) <= TOLERANCE,
            `${what}: HF observation rows`,
          );
        });
        const lastLogits = whole.output.logits.subarray((count - 1) * vocab);
        assertSameOutputs(
          chunked.output,
          {
            ...whole.output,
            logits: lastLogits,
            logitsArgmax: whole.output.logitsArgmax.subarray(count - 1),
          },
          what,
        );
        assert.deepEqual(chunked.positions, whole.positions);
        chunked.cache.layers.forEach((layer, l) => {
          layer.heads.forEach((head, h) => {
            const other = whole.cache.layers[l].heads[h];
            assert.deepEqual(Array.from(head.positions), Array.from(other.positions));
            assert.ok(maxAbsDiff(head.keys, other.keys) <= TOLERANCE, `${what}: cache keys`);
            assert.ok(maxAbsDiff(head.values, other.values) <= TOLERANCE, `${what}: cache values`);
          });
        });
      }
    });

    test("logits of more rows than the last pass holds are refused", async () => {
      const ids = fixtureCase(name, name === "A" ? "full_len7" : "full_len6").input_ids[0];
      const error = await spgErrorAsync(() =>
        prefillTokens(runtime, ids, { logitRows: 4, chunks: { tokens: 2, lastRows: 1 } }),
      );
      assert.equal(error.code, "E_FORWARD_INPUT");
      assert.equal(error.field, "logitRows");
    });
  });
}
