/**
 * Local dataset files are opened once and checked through the handle: what is read is the file
 * that was checked, whatever happens to its path meanwhile (src/data/streams.ts openDatasetFile).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parquetWriteBuffer } from "hyparquet-writer";
import { streamLocalSplit } from "../../src/data/sources.js";
import { spgErrorAsync } from "../helpers/spg-error.js";

const work = mkdtempSync(join(tmpdir(), "spg-opened-once-"));
after(() => rmSync(work, { recursive: true, force: true }));

function parquetOf(rows: string[]): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({ columnData: [{ name: "text", data: rows, type: "STRING" }], rowGroupSize: 2 }),
  );
}

test("a parquet file replaced mid-read: every row and the sha256 are the opened file's", async () => {
  const path = join(work, "rows.parquet");
  const original = ["alpha one", "alpha two", "alpha three", "alpha four"];
  writeFileSync(path, parquetOf(original));
  const replacement = join(work, "other.parquet");
  writeFileSync(replacement, parquetOf(["omega one", "omega two", "omega three", "omega four"]));
  const split = streamLocalSplit("parquet", path, "eval");
  const texts: string[] = [];
  for await (const document of split.documents) {
    texts.push(document.text);
    // After the first row group: the path now names another file (hyparquet's own buffer reopens it per slice).
    if (texts.length === 1) renameSync(replacement, path);
  }
  assert.deepEqual(texts, original);
  const expected = streamLocalSplit("parquet", join(work, "expected.parquet"), "eval");
  writeFileSync(join(work, "expected.parquet"), parquetOf(original));
  for await (const _ of expected.documents);
  assert.equal(split.identity().file?.sha256, expected.identity().file?.sha256);
});

test("a directory's .txt replaced by a FIFO after the listing is refused (E_DATASET_NOT_REGULAR), not waited on", {
  skip: process.platform === "win32",
  timeout: 30000,
}, async () => {
  const dir = join(work, "docs");
  mkdirSync(dir);
  writeFileSync(join(dir, "a.txt"), "The first document.\n");
  writeFileSync(join(dir, "b.txt"), "The second document.\n");
  const split = streamLocalSplit("dir", dir, "eval");
  const error = await spgErrorAsync(async () => {
    for await (const document of split.documents) {
      if (document.id === "a.txt") {
        rmSync(join(dir, "b.txt"));
        execFileSync("mkfifo", [join(dir, "b.txt")]);
      }
    }
  });
  assert.equal(error.code, "E_DATASET_NOT_REGULAR");
  assert.match(error.message, /b\.txt is a FIFO/);
});
