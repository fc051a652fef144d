import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  brownCorpusDir,
  brownDocumentIds,
  brownSplitOf,
  detagBrown,
  detokenizeSentence,
  hashDocuments,
  loadBrownSplit,
} from "../../src/data/brown.js";
import { encode } from "../../src/data/tokenizer.js";

test("Brown splits: 400 train / 50 calibration / 50 eval, disjoint, covering all 500 documents", () => {
  const ids = brownDocumentIds();
  assert.equal(ids.length, 500);
  assert.equal(ids[0], "ca01");
  assert.equal(ids[499], "cr09");
  const train = loadBrownSplit("train");
  const calibration = loadBrownSplit("calibration");
  const evaluation = loadBrownSplit("eval");
  assert.equal(train.documents.length, 400);
  assert.equal(calibration.documents.length, 50);
  assert.equal(evaluation.documents.length, 50);
  const seen = new Set<string>();
  for (const split of [train, calibration, evaluation]) {
    for (const document of split.documents) {
      assert.ok(!seen.has(document.id), `${document.id} in two splits`);
      seen.add(document.id);
      assert.equal(brownSplitOf(document.id), split.split);
      assert.ok(document.text.length > 1000);
    }
  }
  assert.equal(seen.size, 500);
  assert.deepEqual(
    evaluation.documents.slice(0, 3).map((document) => document.id),
    ["ca01", "ca11", "ca21"],
  );
  assert.deepEqual(
    calibration.documents.slice(0, 3).map((document) => document.id),
    ["ca02", "ca12", "ca22"],
  );
  assert.equal(evaluation.source, "brown");
  assert.equal(evaluation.path, brownCorpusDir());
});

test("Brown split hashes are deterministic and differ between splits", () => {
  const first = loadBrownSplit("eval");
  const second = loadBrownSplit("eval");
  assert.match(first.sha256, /^[0-9a-f]{64}$/);
  assert.equal(first.sha256, second.sha256);
  assert.equal(first.sha256, hashDocuments(first.documents));
  assert.notEqual(first.sha256, loadBrownSplit("calibration").sha256);
  // The hash covers ids and texts: changing either changes it.
  const renamed = first.documents.map((document, index) =>
    index === 0 ? { ...document, id: "x" } : document,
  );
  assert.notEqual(hashDocuments(renamed), first.sha256);
  const edited = first.documents.map((document, index) =>
    index === 0 ? { ...document, text: `${document.text}.` } : document,
  );
  assert.notEqual(hashDocuments(edited), first.sha256);
});

test("detagging strips POS tags and rebuilds spacing, quotes and paragraphs", () => {
  const tagged = [
    "",
    "",
    "\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.",
    "It/pps was/bedz ,/, he/pps said/vbd (/( briefly/rb )/) ,/, over/rb ./.",
    "",
    "",
    "\tWho/wps won/vbd ?/.",
  ].join("\n");
  assert.equal(
    detagBrown(tagged),
    'The jury said "no evidence" that any irregularities took place. It was, he said (briefly), over.\nWho won?',
  );
  assert.equal(detokenizeSentence(["1/2", "inch", ";", "$", "5", "."]), "1/2 inch; $5.");
});

test("the first eval document reads as English text without tags", () => {
  const text = loadBrownSplit("eval").documents[0].text;
  assert.ok(text.startsWith("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent"));
  assert.ok(!/\/(at|nn|vbd|np)\b/.test(text), "no POS tags left");
});

test("unknown split and document ids are clear errors", () => {
  assert.throws(() => loadBrownSplit("test" as never), { code: "E_BROWN_SPLIT" });
  assert.throws(() => brownSplitOf("zz99"), { code: "E_BROWN_DOCUMENT" });
});

test("a corpus directory without Brown documents is E_BROWN_EMPTY; a given directory is read as is", () => {
  const dir = mkdtempSync(join(tmpdir(), "spg-brown-"));
  try {
    assert.throws(() => brownDocumentIds(dir), { code: "E_BROWN_EMPTY" });
    // Eleven tiny documents: index 0 and 10 are eval, 1 is calibration, the rest train.
    for (let i = 1; i <= 11; i++)
      writeFileSync(join(dir, `ca${String(i).padStart(2, "0")}`), `\tWord/nn ${i}/cd ./.\n`);
    assert.deepEqual(
      loadBrownSplit("eval", dir).documents.map((document) => document.id),
      ["ca01", "ca11"],
    );
    assert.equal(loadBrownSplit("train", dir).documents.length, 8);
    assert.equal(loadBrownSplit("calibration", dir).documents[0].text, "Word 2.");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a paragraph break is one newline token: the splits never encode two in a row", () => {
  const newline = encode("\n");
  assert.equal(newline.length, 1, "GPT-2 encodes a lone line break as one token");
  for (const split of ["train", "calibration", "eval"] as const) {
    for (const document of loadBrownSplit(split).documents) {
      const ids = encode(document.text);
      for (let i = 1; i < ids.length; i++) {
        if (ids[i] === newline[0] && ids[i - 1] === newline[0]) {
          assert.fail(`${split} document ${document.id}: two newline tokens at ${i - 1}`);
        }
      }
    }
  }
});
