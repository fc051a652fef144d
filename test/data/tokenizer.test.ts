import assert from "node:assert/strict";
import { test } from "node:test";
import { decode, encode, endOfTextId, vocabularySize } from "../../src/data/tokenizer.js";

test("GPT-2 vocabulary size and end-of-text id", () => {
  assert.equal(vocabularySize, 50257);
  assert.equal(endOfTextId, 50256);
  assert.equal(decode([endOfTextId]), "<|endoftext|>");
});

test("known GPT-2 token ids", () => {
  // Ids from the published GPT-2 vocabulary (encoder.json): "Hello"=15496, " world"=995, " the"=262.
  assert.deepEqual(encode("Hello world"), [15496, 995]);
  assert.deepEqual(encode(" the"), [262]);
  assert.deepEqual(encode("\n\n"), [628]);
});

test("encode/decode round-trips text, including unicode and special-token text", () => {
  for (const text of [
    'The jury said, "deserves the praise".\n\nNext paragraph.',
    "naïve café – 1961",
    "a<|endoftext|>b",
  ]) {
    assert.equal(decode(encode(text)), text);
  }
  // Special-token text is plain text here, never the control token.
  assert.ok(!encode("<|endoftext|>").includes(endOfTextId));
});
