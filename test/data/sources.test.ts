import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { resolveConfig } from "../../src/config/load.js";
import {
  firstInvalidUtf8,
  hashDocuments,
  loadConfiguredLocalSplit,
  loadLocalSplit,
  localSplitPath,
  splitTextDocuments,
} from "../../src/data/sources.js";
import { spgErrorAsync } from "../helpers/spg-error.js";

const work = mkdtempSync(join(tmpdir(), "spg-sources-"));

function file(name: string, content: string | Uint8Array): string {
  const path = join(work, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, content);
  return path;
}

test("WikiText-style files split on top-level headings, not on sections", async () => {
  const text = [
    " ",
    " = Robert Boulter = ",
    " ",
    " Robert Boulter is an English actor . ",
    " ",
    " = = Career = = ",
    " ",
    " In 2000 Boulter had a role . ",
    " = Du Fu = ",
    " Du Fu was a poet . ",
    "",
  ].join("\n");
  const docs = splitTextDocuments(text);
  assert.deepEqual(
    docs.map((d) => d.id),
    ["L2 Robert Boulter", "L9 Du Fu"],
  );
  assert.match(docs[0].text, /= = Career = =/);
  assert.match(docs[0].text, /role/);
  assert.ok(!docs[0].text.includes("Du Fu"));
  assert.ok(docs[1].text.startsWith(" = Du Fu = "));
});

test("plain text: single blank lines separate documents unless the file uses double blank lines", async () => {
  const single = splitTextDocuments("one a\none b\n\ntwo\n\n\nthree\n");
  // has a run of two blank lines -> documents are separated by 2+ blank lines only
  assert.deepEqual(
    single.map((d) => [d.id, d.text]),
    [
      ["L1", "one a\none b\n\ntwo"],
      ["L7", "three"],
    ],
  );
  const paragraphs = splitTextDocuments("\nfirst\n\nsecond\nline\n  \nthird");
  assert.deepEqual(
    paragraphs.map((d) => [d.id, d.text]),
    [
      ["L2", "first"],
      ["L4", "second\nline"],
      ["L7", "third"],
    ],
  );
});

test("a text split carries its documents and the sha256 of ids and texts (length-prefixed)", async () => {
  const path = file("plain.txt", "\uFEFFalpha\n\nbeta é\n");
  const split = await loadLocalSplit("text", path, "test");
  assert.equal(split.source, "text");
  assert.equal(split.split, "test");
  assert.equal(split.path, path);
  assert.deepEqual(split.documents, [
    { id: "L1", text: "alpha" },
    { id: "L3", text: "beta é" },
  ]);
  const hash = createHash("sha256");
  for (const part of ["L1", "alpha", "L3", "beta é"]) {
    const bytes = Buffer.from(part, "utf8");
    const length = Buffer.alloc(8);
    length.writeUInt32LE(bytes.length, 0);
    hash.update(length).update(bytes);
  }
  assert.equal(split.sha256, hash.digest("hex"));
  assert.equal(hashDocuments(split.documents), split.sha256);
});

test("CRLF line endings and a UTF-8 BOM read like LF files", async () => {
  const lf = await loadLocalSplit("text", file("lf.txt", "a\nb\n\nc\n"), "eval");
  const crlf = await loadLocalSplit("text", file("crlf.txt", "\uFEFFa\r\nb\r\n\r\nc\r\n"), "eval");
  assert.deepEqual(crlf.documents, lf.documents);
  assert.equal(crlf.sha256, lf.sha256);
  const jsonl = await loadLocalSplit(
    "jsonl",
    file("bom.jsonl", '\uFEFF{"text":"x"}\r\n{"text":"y"}\r\n'),
    "eval",
  );
  assert.deepEqual(
    jsonl.documents.map((d) => d.text),
    ["x", "y"],
  );
});

test("JSONL: a text field per line, field name configurable, bad lines named", async () => {
  const path = file("docs.jsonl", '{"text":"first doc"}\n\n{"text":"second","meta":1}\n');
  assert.deepEqual((await loadLocalSplit("jsonl", path, "eval")).documents, [
    { id: "L1", text: "first doc" },
    { id: "L3", text: "second" },
  ]);
  const custom = file("content.jsonl", '{"content":"x y"}\n');
  assert.equal(
    (await loadLocalSplit("jsonl", custom, "eval", { textField: "content" })).documents[0].text,
    "x y",
  );
  const badJson = file("bad.jsonl", '{"text":"ok"}\n{"text": oops}\n');
  const error = await spgErrorAsync(() => loadLocalSplit("jsonl", badJson, "eval"));
  assert.equal(error.code, "E_DATASET_JSONL");
  assert.match(error.message, /line 2/);
  assert.equal(error.file, badJson);
  const noField = file("nofield.jsonl", '{"text":"ok"}\n{"body":"x"}\n');
  const missing = await spgErrorAsync(() => loadLocalSplit("jsonl", noField, "eval"));
  assert.match(missing.message, /line 2 has no string field "text"/);
  assert.match(missing.fix ?? "", /textField/);
});

test("directory: every .txt below it, sorted by relative path in byte order", async () => {
  file("corpus/b.txt", "bee\n");
  file("corpus/a.txt", "\nay\n\n");
  file("corpus/sub/C.txt", "sea");
  file("corpus/notes.md", "ignored");
  file("corpus/empty.txt", "   \n");
  const split = await loadLocalSplit("dir", join(work, "corpus"), "eval");
  assert.deepEqual(split.documents, [
    { id: "a.txt", text: "ay" },
    { id: "b.txt", text: "bee" },
    { id: "sub/C.txt", text: "sea" },
  ]);
  mkdirSync(join(work, "nothing"), { recursive: true });
  assert.equal(
    (await spgErrorAsync(() => loadLocalSplit("dir", join(work, "nothing"), "eval"))).code,
    "E_DATASET_EMPTY",
  );
});

test("bad inputs: missing, empty, wrong kind, not UTF-8", async () => {
  const missing = await spgErrorAsync(() => loadLocalSplit("text", join(work, "absent.txt"), "eval"));
  assert.equal(missing.code, "E_DATASET_MISSING");
  assert.match(missing.message, /split "eval"/);
  assert.equal(
    (await spgErrorAsync(() => loadLocalSplit("text", file("empty.txt", " \n\n"), "eval"))).code,
    "E_DATASET_EMPTY",
  );
  assert.equal(
    (await spgErrorAsync(() => loadLocalSplit("jsonl", file("empty.jsonl", ""), "eval"))).code,
    "E_DATASET_EMPTY",
  );
  const wrongKind = await spgErrorAsync(() => loadLocalSplit("text", join(work, "corpus"), "eval"));
  assert.match(wrongKind.fix ?? "", /--dataset dir/);
  const latin1 = file("latin1.txt", Uint8Array.from([0x61, 0x62, 0x63, 0x20, 0x63, 0x61, 0x66, 0xe9, 0x0a]));
  const encoding = await spgErrorAsync(() => loadLocalSplit("text", latin1, "eval"));
  assert.equal(encoding.code, "E_DATASET_ENCODING");
  assert.match(encoding.fix ?? "", /UTF-8/);
  assert.match(encoding.message, /byte offset 8/);
  // 0xe9 opens a 3-byte sequence; the newline after it (offset 8) is where decoding fails.
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0x63, 0x20, 0x63, 0x61, 0x66, 0xe9, 0x0a])), 8);
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0x63, 0xff, 0x61])), 3);
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x61, 0xe2, 0x9c])), 1);
  assert.equal(firstInvalidUtf8(Buffer.from("fine ✓")), -1);
});

test("split paths: {split} template, or calibrationPath for calibration", async () => {
  file("wiki/wiki.test.raw", " = Eval article = \n text \n");
  file("wiki/wiki.valid.raw", " = Calibration article = \n other \n");
  const config = resolveConfig({
    overrides: {
      dataset: "text",
      datasetPath: join(work, "wiki/wiki.{split}.raw"),
      split: "test",
      calibrationSplit: "valid",
    },
  });
  assert.equal(localSplitPath(config.dataset, "eval"), join(work, "wiki/wiki.test.raw"));
  assert.equal(localSplitPath(config.dataset, "calibration"), join(work, "wiki/wiki.valid.raw"));
  const evaluation = await loadConfiguredLocalSplit(config.dataset, "eval");
  const calibration = await loadConfiguredLocalSplit(config.dataset, "calibration");
  assert.equal(evaluation.split, "test");
  assert.equal(calibration.split, "valid");
  assert.equal(evaluation.documents[0].id, "L1 Eval article");
  assert.equal(calibration.documents[0].id, "L1 Calibration article");
  const explicit = { ...config.dataset, path: "eval.txt", calibrationPath: "calibration.txt" };
  assert.equal(localSplitPath(explicit, "eval"), "eval.txt");
  assert.equal(localSplitPath(explicit, "calibration"), "calibration.txt");
});
