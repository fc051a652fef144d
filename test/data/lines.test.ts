/** utf8Lines on hostile input: one endless line is refused with a code, and long lines split right. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { utf8Lines } from "../../src/data/streams.js";

async function* chunksOf(...texts: string[]): AsyncGenerator<Uint8Array> {
  for (const text of texts) yield new TextEncoder().encode(text);
}

async function lines(chunks: AsyncIterable<Uint8Array>, maxLineChars?: number): Promise<string[]> {
  const out: string[] = [];
  for await (const { line, text } of utf8Lines(chunks, "x.jsonl", maxLineChars)) out[line - 1] = text;
  return out;
}

test("lines split across chunks are joined; a BOM is dropped; CRLF and a last line without a break", async () => {
  assert.deepEqual(await lines(chunksOf("\uFEFFab", "c\r\nd", "", "ef\n\ng", "h")), ["abc", "def", "", "gh"]);
});

test("a line longer than the limit fails E_DATASET_LINE_LENGTH naming the line, whether it ends or not", async () => {
  const tooLong = (line: number) => ({ code: "E_DATASET_LINE_LENGTH", field: `line ${line}` });
  await assert.rejects(lines(chunksOf("ab\n", "cdef", "gh"), 5), tooLong(2));
  await assert.rejects(lines(chunksOf("ab\ncdefgh\nij"), 5), tooLong(2));
  assert.deepEqual(await lines(chunksOf("ab\n", "cde", "\nfghij"), 5), ["ab", "cde", "fghij"]);
});

test("one line that never ends is refused at the engine's string limit, not by a RangeError", async () => {
  // 2 GiB without a break, fed without being held: the default limit is the longest string V8 allows.
  const block = new Uint8Array(1 << 24).fill(0x61);
  async function* endless(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 128; i++) yield block;
  }
  await assert.rejects(lines(endless()), { code: "E_DATASET_LINE_LENGTH", field: "line 1" });
});
