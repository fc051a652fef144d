import assert from "node:assert/strict";
import { test } from "node:test";
import { describeBundle, renderDescription } from "../../src/verify/inspect.js";
import { bundleFixture } from "../helpers/bundle-fixture.js";

test("inspect shows what the bundle states: format, signer, run, methods, claims, entries", () => {
  const { contents, key } = bundleFixture();
  const description = describeBundle(contents);
  assert.deepEqual(description.signer, { keyId: key.keyId, ephemeral: false });
  assert.equal(description.entries.length, 8);
  const text = renderDescription("b.zip", description);
  assert.match(text, /not verified/);
  assert.match(text, new RegExp(`signer    ${key.keyId}\\n`));
  assert.match(text, /stream\s+streaming\s+1\.6\s/); // 3072 / 1920 bytes, as summary.json states
  assert.match(text, /compression_ratio >= 1\.2\s+point\s+1\.6\s/);
  assert.match(text, /summary\.jsonl?\s+\d+/);
  // Integers (seeds, counts) exactly, not rounded to 5 significant digits (inspect trusts
  // nothing, so a config.json edited in place is enough to show it).
  const config = JSON.parse(contents.entries.get("config.json")?.toString("utf8") ?? "{}");
  config.dataset.seed = 20261123;
  contents.entries.set("config.json", Buffer.from(JSON.stringify(config)));
  assert.match(renderDescription("b.zip", describeBundle(contents)), /seed 20261123;/);
});

test("inspect does not fail on a damaged bundle: unknown parts show as ?", () => {
  const { contents } = bundleFixture();
  contents.entries.set("summary.json", Buffer.from("{"));
  contents.entries.delete("signature.json");
  const text = renderDescription("b.zip", describeBundle(contents));
  assert.match(text, /signer {4}\?/);
  assert.doesNotMatch(text, /methods \(summary\.json\)/);
});
