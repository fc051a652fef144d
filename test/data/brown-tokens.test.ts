/**
 * The build's Brown token cache (src/data/brown-tokens.ts) holds exactly what the tokenizer
 * gives each document of each split, and is used for nothing else: another split, a damaged
 * file or another tokenizer identity is a miss (the split is then tokenized as before).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { brownSplitNames, loadBrownSplit } from "../../src/data/brown.js";
import { BROWN_TOKENS_FILE, brownTokensFile, cachedSplitTokens } from "../../src/data/brown-tokens.js";
import { encode } from "../../src/data/tokenizer.js";

test("the built cache holds every Brown split's ids exactly as the tokenizer gives them", () => {
  for (const name of brownSplitNames) {
    const split = loadBrownSplit(name);
    const cached = cachedSplitTokens(split, BROWN_TOKENS_FILE);
    assert.ok(cached !== undefined, `the build's cache (${BROWN_TOKENS_FILE}) lacks the ${name} split`);
    assert.equal(cached.length, split.documents.length);
    split.documents.forEach((document, index) => {
      assert.deepEqual(cached[index], encode(document.text), `${name} ${document.id}`);
    });
  }
});

test("another split, a damaged file or another tokenizer is a miss", () => {
  const dir = mkdtempSync(join(tmpdir(), "spg-brown-tokens-"));
  try {
    const evaluation = loadBrownSplit("eval");
    const small = { ...evaluation, documents: evaluation.documents.slice(0, 3), sha256: "a".repeat(64) };
    const good = join(dir, "good.bin");
    writeFileSync(good, brownTokensFile([small]));
    assert.deepEqual(
      cachedSplitTokens(small, good),
      small.documents.map((document) => encode(document.text)),
    );
    // The same documents under another split hash, or one document changed: not this cache's split.
    assert.equal(cachedSplitTokens({ ...small, sha256: "b".repeat(64) }, good), undefined);
    const renamed = {
      ...small,
      documents: [{ ...small.documents[0], id: "zz99" }, ...small.documents.slice(1)],
    };
    assert.equal(cachedSplitTokens(renamed, good), undefined);
    // One payload byte changed: its sha256 no longer matches.
    const bytes = readFileSync(good);
    const damaged = join(dir, "damaged.bin");
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] ^= 1;
    writeFileSync(damaged, flipped);
    assert.equal(cachedSplitTokens(small, damaged), undefined);
    // Another tokenizer identity in the header (its length kept, so the payload stays in place).
    const length = bytes.readUInt32LE(0);
    const header = bytes.toString("utf8", 4, 4 + length);
    const identity = (JSON.parse(header) as { tokenizer: string }).tokenizer;
    const other = join(dir, "other-tokenizer.bin");
    const replaced = header.replace(
      identity,
      identity.replace(/^./, (c) => (c === "0" ? "1" : "0")),
    );
    writeFileSync(
      other,
      Buffer.concat([bytes.subarray(0, 4), Buffer.from(replaced), bytes.subarray(4 + length)]),
    );
    assert.equal(cachedSplitTokens(small, other), undefined);
    // Truncated or absent.
    const truncated = join(dir, "truncated.bin");
    writeFileSync(truncated, bytes.subarray(0, 10));
    assert.equal(cachedSplitTokens(small, truncated), undefined);
    assert.equal(cachedSplitTokens(small, join(dir, "absent.bin")), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
