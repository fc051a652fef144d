import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, test } from "node:test";
import { encode } from "../../src/data/tokenizer.js";
import type { DatasetSplit } from "../../src/data/types.js";
import { emptyCache, pastInputs } from "../../src/kv/layout.js";
import { evaluatePerplexity } from "../../src/measure/perplexity.js";
import { readCheckpoint } from "../../src/model/checkpoint.js";
import { loadRuntime } from "../../src/model/session.js";
import { writeRandomGptNeo } from "../helpers/random-gpt-neo.js";
import { referenceForward } from "../helpers/reference.js";

const modelDir = await writeRandomGptNeo({
  hidden: 16,
  layers: 2,
  heads: 2,
  window: 4,
  maxPositions: 32,
  seed: 5,
});
after(() => rmSync(modelDir, { recursive: true, force: true }));

const split: DatasetSplit = {
  source: "text",
  split: "test",
  path: "memory",
  sha256: "0".repeat(64),
  documents: [
    {
      id: "a",
      text: "The jury said it did find that many of Georgia's registration and election laws are outmoded.",
    },
    { id: "b", text: "Short one." },
  ],
};

test("perplexity is exp(mean NLL) over windows, equal to a float64 reference forward", async () => {
  const checkpoint = await readCheckpoint(modelDir);
  const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
  const windowTokens = 8;
  const result = await evaluatePerplexity(runtime, split, { windowTokens, unigramSplit: split });
  await runtime.close();

  let sumNll = 0;
  let scored = 0;
  const vocab = checkpoint.config.vocabSize;
  for (const document of split.documents) {
    const ids = encode(document.text);
    for (let start = 0; start + 1 < ids.length; start += windowTokens) {
      const window = ids.slice(start, start + windowTokens);
      const positions = window.map((_, i) => i);
      const out = referenceForward(
        checkpoint,
        { observationWindow: 1 },
        {
          inputIds: window,
          positionIds: positions,
          ...pastInputs(emptyCache(checkpoint.config), checkpoint.config, positions),
        },
      );
      for (let i = 0; i + 1 < window.length; i++) {
        let max = Number.NEGATIVE_INFINITY;
        for (let v = 0; v < vocab; v++) max = Math.max(max, out.logits[i * vocab + v]);
        let z = 0;
        for (let v = 0; v < vocab; v++) z += Math.exp(out.logits[i * vocab + v] - max);
        sumNll -= out.logits[i * vocab + window[i + 1]] - max - Math.log(z);
        scored++;
      }
    }
  }
  assert.equal(result.scoredTokens, scored);
  assert.ok(Math.abs(result.sumNll - sumNll) / scored < 1e-4, `${result.sumNll} vs ${sumNll}`);
  assert.ok(Math.abs(result.perplexity - Math.exp(sumNll / scored)) / result.perplexity < 1e-4);
  assert.ok(result.unigram !== null && result.unigram.perplexity > 1);
});

test("a window that does not fit the model is refused", async () => {
  const checkpoint = await readCheckpoint(modelDir);
  const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
  await assert.rejects(evaluatePerplexity(runtime, split, { windowTokens: 33 }), /does not fit/);
  await runtime.close();
});

test("a streamed split is evaluated one document at a time, with the figures and hash of the split read whole", async () => {
  const { mkdtempSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { loadLocalSplit, streamLocalSplit } = await import("../../src/data/sources.js");
  const dir = mkdtempSync(join(tmpdir(), "spg-ppl-stream-"));
  try {
    const file = join(dir, "docs.jsonl");
    const documents = 40;
    writeFileSync(
      file,
      Array.from({ length: documents }, (_, i) =>
        JSON.stringify({ text: `${split.documents[i % 2].text} Document ${i} of the stream.` }),
      ).join("\n"),
    );
    const checkpoint = await readCheckpoint(modelDir);
    const runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow: 1 });
    try {
      const options = { windowTokens: 8, maxWindows: 5 };
      const whole = await evaluatePerplexity(runtime, await loadLocalSplit("jsonl", file, "test"), options);
      const streamed = streamLocalSplit("jsonl", file, "test");
      let yielded = 0;
      const yieldedAtWindow: number[] = [];
      const counted = {
        documents: (async function* () {
          for await (const document of streamed.documents) {
            yielded++;
            yield document;
          }
        })(),
        identity: () => streamed.identity(),
      };
      const result = await evaluatePerplexity(runtime, counted, {
        ...options,
        onWindow: () => yieldedAtWindow.push(yielded),
      });
      // Lazily: the first windows ran when only the first documents had been read ...
      assert.ok(yieldedAtWindow[0] <= 2, `first window after ${yieldedAtWindow[0]} documents`);
      // ... and the rest was read to its end for the hash, without running the model on it.
      assert.equal(yielded, documents);
      assert.deepEqual(result, whole);
      assert.equal(result.windows, 5);
    } finally {
      await runtime.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
