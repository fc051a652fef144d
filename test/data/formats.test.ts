/**
 * Dataset files as people download them: JSONL plain, gzip and zstd; parquet (snappy, as the
 * hub writes it) including the hub's WikiText layout. Every file is written by the test itself:
 * gzip by Node's zlib, zstd as a frame of raw blocks built here from the format's spec
 * (RFC 8878), parquet by hyparquet-writer (a devDependency).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { parquetMetadata } from "hyparquet";
import { parquetWriteBuffer } from "hyparquet-writer";
import { resolveConfig } from "../../src/config/load.js";
import { drawConfiguredSplit } from "../../src/data/draw.js";
import { parquetTextRows } from "../../src/data/parquet.js";
import { loadLocalSplit, splitTextDocuments, streamLocalSplit } from "../../src/data/sources.js";
import { withDatasetFile } from "../../src/data/streams.js";
import { spgErrorAsync } from "../helpers/spg-error.js";

const work = mkdtempSync(join(tmpdir(), "spg-formats-"));

function file(name: string, content: string | Uint8Array): string {
  const path = join(work, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, content);
  return path;
}

/** A zstd frame (RFC 8878) of raw blocks: magic, a single-segment header with a 4-byte content size, no checksum. */
function zstdRawFrame(content: Uint8Array, blockBytes = 100): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0])];
  const size = Buffer.alloc(4);
  size.writeUInt32LE(content.length);
  parts.push(size);
  for (let start = 0; start < content.length || start === 0; start += blockBytes) {
    const block = content.subarray(start, start + blockBytes);
    const last = start + blockBytes >= content.length ? 1 : 0;
    const header = (block.length << 3) | (0 << 1) | last;
    parts.push(Uint8Array.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), block);
    if (last) break;
  }
  return Buffer.concat(parts);
}

function parquet(rows: string[], column = "text", rowGroupSize?: number): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({ columnData: [{ name: column, data: rows, type: "STRING" }], rowGroupSize }),
  );
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

const jsonlText = [
  JSON.stringify({ text: "The first document, with a comma." }),
  "",
  JSON.stringify({ text: "Second: ünïcode ✓ and a\nnewline", meta: 2 }),
  JSON.stringify({ text: "   " }),
  JSON.stringify({ text: "third" }),
  "",
].join("\n");
const expectedJsonl = [
  { id: "L1", text: "The first document, with a comma." },
  { id: "L3", text: "Second: ünïcode ✓ and a\nnewline" },
  { id: "L5", text: "third" },
];

test("JSONL, .jsonl.gz and .jsonl.zst give the same documents; the file's sha256 is of its bytes on disk", async () => {
  const plain = Buffer.from(jsonlText, "utf8");
  const gz = gzipSync(plain);
  const zst = zstdRawFrame(plain, 7);
  for (const [name, bytes, format] of [
    ["docs.jsonl", plain, "jsonl"],
    ["docs.jsonl.gz", gz, "jsonl.gz"],
    ["docs.jsonl.zst", zst, "jsonl.zst"],
  ] as const) {
    const split = await loadLocalSplit("jsonl", file(name, bytes), "eval");
    assert.deepEqual(split.documents, expectedJsonl, name);
    assert.equal(split.format, format);
    assert.equal(split.layout, "rows");
    assert.equal(split.textField, "text");
    assert.deepEqual(split.file, { path: join(work, name), bytes: bytes.length, sha256: sha256(bytes) });
  }
  // gzip members concatenated (as `cat a.gz b.gz` makes) read as one stream.
  const twoMembers = Buffer.concat([
    gzipSync(Buffer.from(`${JSON.stringify({ text: "a" })}\n`)),
    gzipSync(Buffer.from(`${JSON.stringify({ text: "b" })}\n`)),
  ]);
  const members = await loadLocalSplit("jsonl", file("members.jsonl.gz", twoMembers), "eval");
  assert.deepEqual(
    members.documents.map((d) => d.text),
    ["a", "b"],
  );
});

test("a cut-short .gz or .zst and a bad JSONL line are named with the file, the line and the fix", async () => {
  const many = Array.from({ length: 400 }, (_, i) => JSON.stringify({ text: `document number ${i}` })).join(
    "\n",
  );
  const gz = gzipSync(Buffer.from(many));
  const cutGz = file("cut.jsonl.gz", gz.subarray(0, Math.floor(gz.length / 2)));
  const gzError = await spgErrorAsync(() => loadLocalSplit("jsonl", cutGz, "eval"));
  assert.equal(gzError.code, "E_DATASET_GZIP");
  assert.equal(gzError.file, cutGz);
  assert.match(gzError.field ?? "", /^line \d+$/);
  assert.match(gzError.fix ?? "", /gzip -t cut\.jsonl\.gz/);

  const zst = zstdRawFrame(Buffer.from(many), 512);
  const cutZst = file("cut.jsonl.zst", zst.subarray(0, zst.length - 300));
  const zstError = await spgErrorAsync(() => loadLocalSplit("jsonl", cutZst, "eval"));
  assert.equal(zstError.code, "E_DATASET_ZSTD");
  assert.equal(zstError.file, cutZst);
  assert.match(zstError.fix ?? "", /zstd -t/);

  const badLine = file("bad.jsonl.gz", gzipSync(Buffer.from('{"text":"ok"}\n{"text":"ok"}\n{"txt":"no"}\n')));
  const fieldError = await spgErrorAsync(() => loadLocalSplit("jsonl", badLine, "eval"));
  assert.equal(fieldError.code, "E_DATASET_JSONL");
  assert.equal(fieldError.field, "line 3.text");
  assert.match(fieldError.fix ?? "", /--text-field/);
  const notJson = file("notjson.jsonl.zst", zstdRawFrame(Buffer.from('{"text":"ok"}\nnot json\n')));
  const jsonError = await spgErrorAsync(() => loadLocalSplit("jsonl", notJson, "eval"));
  assert.equal(jsonError.code, "E_DATASET_JSONL");
  assert.equal(jsonError.field, "line 2");
});

test("parquet: the textField column, read row group by row group; a missing column lists the ones there are", async () => {
  const rows = ["alpha beta", "", "gamma", "  ", "delta é ✓"];
  const path = file("docs.parquet", parquet(rows, "content", 2));
  const split = await loadLocalSplit("parquet", path, "eval", { textField: "content" });
  assert.deepEqual(split.documents, [
    { id: "R0", text: "alpha beta" },
    { id: "R2", text: "gamma" },
    { id: "R4", text: "delta é ✓" },
  ]);
  assert.equal(split.format, "parquet");
  assert.equal(split.file?.sha256, sha256(readFileSync(path)));

  const missing = await spgErrorAsync(() => loadLocalSplit("parquet", path, "eval"));
  assert.equal(missing.code, "E_DATASET_PARQUET_COLUMN");
  assert.match(missing.message, /no column "text".*content/);
  assert.match(missing.fix ?? "", /--text-field/);

  const cut = file("cut.parquet", readFileSync(path).subarray(0, 40));
  const unreadable = await spgErrorAsync(() =>
    loadLocalSplit("parquet", cut, "eval", { textField: "content" }),
  );
  assert.equal(unreadable.code, "E_DATASET_PARQUET");
  assert.equal(unreadable.file, cut);

  const numbers = file(
    "numbers.parquet",
    new Uint8Array(parquetWriteBuffer({ columnData: [{ name: "text", data: [1, 2], type: "INT32" }] })),
  );
  const notText = await spgErrorAsync(() => loadLocalSplit("parquet", numbers, "eval"));
  assert.equal(notText.code, "E_DATASET_PARQUET_COLUMN");
  assert.equal(notText.field, "row 0.text");
});

/** Lines of a WikiText-2-raw-style file: blank lines, top-level headings, sections, paragraphs. */
function wikiLines(articles: number, paragraphWords: number): string[] {
  const lines: string[] = [""];
  for (let a = 0; a < articles; a++) {
    lines.push(` = Article ${a} = `, "");
    for (let p = 0; p < 3; p++) {
      if (p === 1) lines.push(` = = Section ${a}.${p} = = `, "");
      const words = Array.from({ length: paragraphWords }, (_, w) => `word${(a * 7 + p * 3 + w) % 50}`);
      lines.push(` ${words.join(" ")} . `, "");
    }
  }
  return lines;
}

test("the hub's WikiText parquet (one row per raw line, snappy) reads as the raw file's articles", async () => {
  const lines = wikiLines(6, 120);
  // The hub stores each line with its line break, and blank lines as "".
  const rows = lines.map((line) => (line === "" ? "" : `${line}\n`));
  const dir = "wikitext-2-raw-v1";
  file(`${dir}/test-00000-of-00001.parquet`, parquet(rows, "text", 16));
  file(
    `${dir}/validation-00000-of-00001.parquet`,
    parquet(wikiLines(3, 120).map((l) => (l === "" ? "" : `${l}\n`))),
  );
  const split = await loadLocalSplit("parquet", join(work, dir, "test-00000-of-00001.parquet"), "test");
  assert.equal(split.layout, "wikitext-lines");
  // The same lines as a wiki.test.raw text file, split by the in-memory text reader.
  assert.deepEqual(split.documents, splitTextDocuments(lines.join("\n")));
  assert.equal(split.documents.length, 6);
  assert.equal(split.documents[0].id, "L2 Article 0");

  const config = resolveConfig({
    overrides: {
      dataset: "parquet",
      datasetPath: join(work, dir, "{split}-00000-of-00001.parquet"),
      split: "test",
      calibrationSplit: "validation",
      samples: 4,
      calibrationSamples: 2,
      context: 200,
      continuation: 20,
      generation: 20,
    },
  });
  const evaluation = await drawConfiguredSplit(config.dataset, "eval", 4);
  assert.equal(evaluation.samples.length, 4);
  assert.equal(evaluation.identity.sampling, "stream");
  assert.equal(evaluation.identity.documents, 6);
  assert.equal(evaluation.identity.sha256, split.sha256);
  assert.equal(evaluation.identity.file?.path, join(work, dir, "test-00000-of-00001.parquet"));
  assert.deepEqual(await drawConfiguredSplit(config.dataset, "eval", 4), evaluation, "deterministic");
  const calibration = await drawConfiguredSplit(config.dataset, "calibration", 2);
  assert.equal(calibration.identity.split, "validation");
  assert.equal(calibration.samples.length, 2);
});

test("a streamed split's identity is complete only once it has been read to the end", async () => {
  const path = file("identity.jsonl", jsonlText);
  const streamed = streamLocalSplit("jsonl", path, "eval");
  assert.throws(() => streamed.identity(), /not read to its end/);
  let count = 0;
  for await (const _ of streamed.documents) count++;
  assert.equal(count, 3);
  assert.equal(streamed.identity().documents, 3);
  assert.equal(streamed.identity().file?.sha256, sha256(Buffer.from(jsonlText)));
});

test("a .zst frame declaring a window above zstd's default limit fails before anything is allocated; frames and skippable frames in a row still read", async () => {
  const magic = [0x28, 0xb5, 0x2f, 0xfd];
  // Window descriptor exponent 20: 2^30 bytes (fzstd would allocate 1 GiB before failing).
  const wideWindow = file("wide.jsonl.zst", Uint8Array.from([...magic, 0x00, 20 << 3, 0x01, 0x00, 0x00]));
  const wideError = await spgErrorAsync(() => loadLocalSplit("jsonl", wideWindow, "eval"));
  assert.equal(wideError.code, "E_DATASET_ZSTD");
  assert.equal(wideError.file, wideWindow);
  assert.match(wideError.message, /1073741824-byte window/);
  // Single segment: the window is the declared content size (8 bytes: 2^40).
  const hugeContent = file(
    "huge.jsonl.zst",
    Uint8Array.from([...magic, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0x00, 0x00]),
  );
  assert.equal(
    (await spgErrorAsync(() => loadLocalSplit("jsonl", hugeContent, "eval"))).code,
    "E_DATASET_ZSTD",
  );
  // The second of two frames is checked too.
  const first = zstdRawFrame(Buffer.from(`${JSON.stringify({ text: "one" })}\n`));
  const secondWide = file(
    "second.jsonl.zst",
    Buffer.concat([first, Uint8Array.from([...magic, 0x00, 20 << 3, 0x01, 0x00, 0x00])]),
  );
  assert.equal(
    (await spgErrorAsync(() => loadLocalSplit("jsonl", secondWide, "eval"))).code,
    "E_DATASET_ZSTD",
  );
  // Frames at the limit, a skippable frame between them (magic 0x184D2A50, 4-byte size), read as one text.
  const skippable = Uint8Array.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
  const two = file(
    "two.jsonl.zst",
    Buffer.concat([
      zstdRawFrame(Buffer.from(`${JSON.stringify({ text: "first frame" })}\n`), 5),
      skippable,
      zstdRawFrame(Buffer.from(`${JSON.stringify({ text: "second frame" })}\n`), 7),
    ]),
  );
  const split = await loadLocalSplit("jsonl", two, "eval");
  assert.deepEqual(
    split.documents.map((document) => document.text),
    ["first frame", "second frame"],
  );
});

test("parquet sizes the file claims are checked before anything is allocated for them", async () => {
  // Two 3 MB rows (snappy pages of over 1 MiB, so a page header's uncompressed size is a 4-byte varint).
  const rows = [0, 1].map((i) => `row ${i} ${"abcdefghij".repeat(300_000)}`);
  const bytes = parquet(rows);
  const chunk = parquetMetadata(bytes.buffer as ArrayBuffer).row_groups[0].columns[0].meta_data!;
  assert.equal(chunk.codec, "SNAPPY");
  // The first page header: field 1 (type, 1 byte), then field 2, uncompressed_page_size, a zigzag varint.
  const at = Number(chunk.data_page_offset) + 3;
  let length = 0;
  while (bytes[at + length] & 0x80) length++;
  length++;
  assert.equal(length, 4);
  const claimed = new Uint8Array(bytes);
  let zigzag = (2 ** 27 - 1) * 2; // 128 MiB, the largest claim the same four bytes hold
  for (let i = 0; i < length; i++) {
    claimed[at + i] = (zigzag & 0x7f) | (i < length - 1 ? 0x80 : 0);
    zigzag = Math.floor(zigzag / 128);
  }
  const read = (path: string) =>
    withDatasetFile(path, async (opened) => {
      for await (const _ of parquetTextRows(opened, "text"));
    });
  const page = await spgErrorAsync(() => read(file("claims-page.parquet", claimed)));
  assert.equal(page.code, "E_DATASET_PARQUET");
  assert.match(
    page.message,
    /SNAPPY page claims 134217725 uncompressed bytes, but its snappy data states \d+; refused before allocating/,
  );
  // The footer kept, most of the column's bytes cut out: the chunk now claims bytes past the end.
  const footerStart = bytes.length - 8 - new DataView(bytes.buffer).getUint32(bytes.length - 8, true);
  const cut = Buffer.concat([bytes.subarray(0, 4), bytes.subarray(footerStart)]);
  const past = await spgErrorAsync(() => read(file("claims-chunk.parquet", cut)));
  assert.equal(past.code, "E_DATASET_PARQUET");
  assert.match(past.message, /row group 0: column "text" claims bytes \d+-\d+, past the end of the file/);
  // The untouched file reads.
  const texts: string[] = [];
  await withDatasetFile(file("claims-none.parquet", bytes), async (opened) => {
    for await (const row of parquetTextRows(opened, "text")) texts.push(row.text);
  });
  assert.deepEqual(texts, rows);
});
