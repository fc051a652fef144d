/**
 * The token export rebuilds either Brown layout byte for byte. The expected hashes are facts of
 * the corpus, copied from the manifests of the two exports the bundled model's phases trained on:
 * blank-line (paragraphs joined by "\n\n", spg's layout before it read one line break) and newline.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { writeBrownTokenFiles } from "../../scripts/brown_token_files.js";
import { detagBrown, loadBrownSplit } from "../../src/data/brown.js";

const expected = {
  "blank-line": {
    train: {
      splitSha256: "8f4630307b9dbee0d8e1ec1ac48165992bbf3f0f75cb195079c38afc1b14ba19",
      fileSha256: "7e9751ad108e7c05ad02e7705dcdae621fb8b82bfd502aa21db5747962e63770",
      tokens: 1039592,
    },
    eval: {
      splitSha256: "465776e6b1d48ed16b92f0389c2eb6ca4ba2d525d0f03f500ebf9deccbbba1f0",
      fileSha256: "66c08a5531666e075d034503026eb05040855d4321cefeb0eab082bb73ddacce",
      tokens: 129399,
    },
  },
  newline: {
    train: {
      splitSha256: "c762c470ea750d0d6711e6f05654b5de4921f95c13425fbee5aa3ea4d935f326",
      fileSha256: "0aa13fa0b8b93ccf54a7fb0dce14c61ca9cc9695c24961948dd61fcfe1c92f6f",
      tokens: 1027425,
    },
    eval: {
      splitSha256: "bdecc13b9c5d84d97378c29bedd82ff943eda13732c9506eb6a97dc38a4e6acf",
      fileSha256: "00f47cb24d60374db1768bb38514ad5e4d50f6890274dac0764d6eba64ef5232",
      tokens: 127986,
    },
  },
} as const;

for (const paragraphBreak of ["blank-line", "newline"] as const) {
  test(`the ${paragraphBreak} export reproduces its recorded split and token file hashes`, () => {
    const dir = mkdtempSync(join(tmpdir(), "spg-brown-export-"));
    try {
      const manifest = writeBrownTokenFiles(dir, paragraphBreak);
      const written = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
      assert.equal(written.paragraphBreak, paragraphBreak);
      for (const split of ["train", "eval"] as const) {
        const entry = manifest.splits[split];
        assert.deepEqual(
          { splitSha256: entry.splitSha256, fileSha256: entry.fileSha256, tokens: entry.tokens },
          expected[paragraphBreak][split],
          `${paragraphBreak} ${split}`,
        );
        assert.equal(readFileSync(join(dir, entry.file)).length, entry.tokens * 2);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("spg's own Brown splits use the newline layout", () => {
  assert.equal(loadBrownSplit("eval").sha256, expected.newline.eval.splitSha256);
  const tagged = "\tThe/at cat/nn ./.\n\n\tA/at dog/nn ./.\n";
  assert.equal(detagBrown(tagged), "The cat.\nA dog.");
  assert.equal(detagBrown(tagged, "blank-line"), "The cat.\n\nA dog.");
});

test("an unknown --paragraph-break is E_BROWN_PARAGRAPH_BREAK and writes nothing", () => {
  const dir = mkdtempSync(join(tmpdir(), "spg-brown-export-"));
  try {
    const script = fileURLToPath(new URL("../../scripts/export_brown_tokens.js", import.meta.url));
    const out = join(dir, "out");
    const run = spawnSync(process.execPath, [script, out, "--paragraph-break", "two-lines"], {
      encoding: "utf8",
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /E_BROWN_PARAGRAPH_BREAK/);
    assert.equal(existsSync(out), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
