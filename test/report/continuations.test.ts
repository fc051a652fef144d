import assert from "node:assert/strict";
import { test } from "node:test";
import type { SampleRecord } from "../../src/bundle/types.js";
import { encode, vocabularySize } from "../../src/data/tokenizer.js";
import { compareGenerations } from "../../src/measure/metrics.js";
import { continuationHtml, continuationsSection, decodeIds } from "../../src/report/continuations.js";

function record(sampleIndex: number, method: string, baseline: number[], tokens: number[]): SampleRecord {
  return {
    sampleId: `eval-${sampleIndex}`,
    sampleIndex,
    method,
    document: "<b>doc</b>",
    offset: 3,
    contextTokens: 64,
    generation: { ...compareGenerations(baseline, tokens), baselineTokens: baseline, tokens },
  } as SampleRecord;
}

const baseline = encode(" the court said <script>alert(1)</script> and\nleft");
const diverging = [...baseline.slice(0, 4), ...encode(" nothing & more")];

test("continuations are decoded, escaped, and marked from the first differing token", () => {
  const html = continuationHtml(diverging, 4);
  assert.ok(!html.includes("<script>"));
  assert.match(
    html,
    /^<span class="generated"> the court said &lt;<mark[^>]*> nothing &amp; more<\/mark><\/span>$/,
  );
  const plain = continuationHtml(baseline, null);
  assert.match(plain, /&lt;script&gt;alert\(1\)&lt;\/script&gt; and↵<br>left/);
  assert.equal(decodeIds([vocabularySize]), null);
  assert.match(continuationHtml([1, vocabularySize], null), /outside the GPT-2 vocabulary: 1 50257/);
});

test("the section shows the first samples, baseline then methods in config order; old records get a note", () => {
  const records = [2, 0, 1].flatMap((i) => [
    record(i, "spg", baseline, diverging),
    record(i, "full", baseline, baseline),
  ]);
  const html = continuationsSection(records, ["full", "spg"], 2);
  assert.deepEqual(
    [...html.matchAll(/<h3>(eval-\d)/g)].map((m) => m[1]),
    ["eval-0", "eval-1"],
  );
  const first = html.slice(html.indexOf("<h3>eval-0"), html.indexOf("<h3>eval-1"));
  assert.deepEqual(
    [...first.matchAll(/<tr><td>([^<]+)<\/td>/g)].map((m) => m[1]),
    ["baseline", "full", "spg"],
  );
  assert.match(first, /differs from token 4; 4\/\d+ agree/);
  assert.match(first, /&lt;b&gt;doc&lt;\/b&gt;/);
  const old = records.map((r) => ({
    ...r,
    generation: { ...r.generation, tokens: undefined, baselineTokens: undefined },
  }));
  assert.match(continuationsSection(old, ["full", "spg"], 2), /hold no generated token ids/);
});
