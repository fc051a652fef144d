/**
 * `spg prove` on downloaded-format datasets: the bundle records the files it read and the
 * verifier (schemas, protocol, replay) accepts it, redrawing the samples from the same files.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import { ephemeralKey } from "../../src/bundle/keys.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { resolveConfig } from "../../src/config/load.js";
import { prove } from "../../src/measure/prove.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { writeRandomGptNeo } from "../helpers/random-gpt-neo.js";

const modelDir = await writeRandomGptNeo({
  hidden: 16,
  layers: 2,
  heads: 2,
  window: 16,
  maxPositions: 128,
  seed: 5,
});
const work = mkdtempSync(join(tmpdir(), "spg-prove-datasets-"));
const cacheDir = join(work, "graphs");
after(() => {
  for (const dir of [modelDir, work]) rmSync(dir, { recursive: true, force: true });
});

function prose(seed: number, words: number): string {
  const vocabulary = ["the", "river", "ran", "north", "past", "a", "mill", "and", "two", "farms", ",", "."];
  return Array.from(
    { length: words },
    (_, i) => vocabulary[(seed * 13 + i * 7 + ((i * i) % 5)) % vocabulary.length],
  ).join(" ");
}

async function proveAndVerify(
  overrides: Record<string, unknown>,
  name: string,
  dataset?: { path: string; calibrationPath: string },
) {
  const config = resolveConfig({
    preset: "ci-smoke",
    overrides: {
      model: modelDir,
      context: 40,
      continuation: 8,
      samples: 2,
      calibrationSamples: 1,
      ...overrides,
    },
  });
  config.claims = [];
  const out = join(work, `${name}.zip`);
  await prove({ config, out, key: ephemeralKey(), cacheDir });
  const read = await readBundleZip(out);
  assert.ok(read.ok);
  const environment = JSON.parse(read.entries.get("environment.json")?.toString("utf8") ?? "{}");
  const result = await verifyBundleFile(out, {
    requireTrusted: false,
    replay: { samples: 1, modelDir, cacheDir },
    dataset,
  });
  assert.deepEqual(
    result.findings.filter((f) => !f.ok),
    [],
  );
  assert.ok(result.findings.some((f) => f.check === "replay" && f.ok));
  if (dataset !== undefined) {
    // The verifier's own files: every sample redrawn from them, not merely "not checked".
    const draw = result.findings.find((f) => f.check === "draw");
    assert.equal(draw?.code, "OK", JSON.stringify(draw));
    assert.match(draw?.message ?? "", /re-drawn here from the dataset given \(sha256 checked\): identical/);
  }
  return environment.dataset as Record<string, unknown>;
}

test("prove on .jsonl.gz splits records format, both files' sha256 and the text field; the bundle verifies and replays", async () => {
  const files: Record<string, Buffer> = {};
  for (const split of ["test", "validation"]) {
    const lines = Array.from({ length: 6 }, (_, d) =>
      JSON.stringify({ body: prose(d + (split === "test" ? 0 : 50), 120) }),
    );
    files[split] = gzipSync(Buffer.from(`${lines.join("\n")}\n`));
    writeFileSync(join(work, `c4-${split}.jsonl.gz`), files[split]);
  }
  const dataset = await proveAndVerify(
    {
      dataset: "jsonl",
      datasetPath: join(work, "c4-{split}.jsonl.gz"),
      textField: "body",
      split: "test",
      calibrationSplit: "validation",
    },
    "jsonl-gz",
  );
  assert.equal(dataset.format, "jsonl.gz");
  assert.equal(dataset.sampling, "stream");
  assert.equal(dataset.textField, "body");
  assert.equal(dataset.layout, "rows");
  const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
  assert.deepEqual(dataset.file, {
    path: join(work, "c4-test.jsonl.gz"),
    bytes: files.test.length,
    sha256: sha(files.test),
  });
  assert.equal((dataset.calibrationFile as { sha256: string }).sha256, sha(files.validation));
});

test("prove on the hub's WikiText parquet layout verifies and replays", async () => {
  const dir = join(work, "wikitext-2-raw-v1");
  mkdirSync(dir, { recursive: true });
  for (const split of ["test", "validation"]) {
    const rows = [""];
    for (let a = 0; a < 3; a++) rows.push(` = ${split} article ${a} = \n`, "", ` ${prose(a, 150)} \n`, "");
    writeFileSync(
      join(dir, `${split}-00000-of-00001.parquet`),
      new Uint8Array(parquetWriteBuffer({ columnData: [{ name: "text", data: rows, type: "STRING" }] })),
    );
  }
  const dataset = await proveAndVerify(
    {
      dataset: "parquet",
      datasetPath: join(dir, "{split}-00000-of-00001.parquet"),
      split: "test",
      calibrationSplit: "validation",
    },
    "wikitext-parquet",
  );
  assert.equal(dataset.format, "parquet");
  assert.equal(dataset.layout, "wikitext-lines");
  assert.equal(dataset.documents, 3);
  assert.equal(
    (dataset.file as { sha256: string }).sha256,
    createHash("sha256")
      .update(readFileSync(join(dir, "test-00000-of-00001.parquet")))
      .digest("hex"),
  );
});

test("prove on a text file and on a directory streams the draw; verify redraws it from --dataset-path", async () => {
  const text = (split: string) =>
    Array.from(
      { length: 4 },
      (_, a) => ` = ${split} article ${a} = \n\n ${prose(a + split.length, 150)} \n`,
    ).join("\n");
  for (const split of ["test", "valid"]) writeFileSync(join(work, `wiki.${split}.raw`), text(split));
  const files = { path: join(work, "wiki.test.raw"), calibrationPath: join(work, "wiki.valid.raw") };
  const fromText = await proveAndVerify(
    {
      dataset: "text",
      datasetPath: join(work, "wiki.{split}.raw"),
      split: "test",
      calibrationSplit: "valid",
    },
    "text",
    files,
  );
  assert.equal(fromText.format, "text");
  assert.equal(fromText.sampling, "stream");
  assert.equal(fromText.documents, 4);
  assert.equal(
    (fromText.file as { sha256: string }).sha256,
    createHash("sha256").update(readFileSync(files.path)).digest("hex"),
  );

  for (const split of ["eval", "calib"]) {
    for (let d = 0; d < 5; d++) {
      mkdirSync(join(work, split, `part-${d % 2}`), { recursive: true });
      writeFileSync(
        join(work, split, `part-${d % 2}`, `doc-${d}.txt`),
        prose(d + (split === "eval" ? 0 : 70), 120),
      );
    }
  }
  const dirs = { path: join(work, "eval"), calibrationPath: join(work, "calib") };
  const fromDir = await proveAndVerify(
    { dataset: "dir", datasetPath: dirs.path, calibrationPath: dirs.calibrationPath },
    "dir",
    dirs,
  );
  assert.equal(fromDir.format, "dir");
  assert.equal(fromDir.sampling, "stream");
  assert.equal(fromDir.documents, 5);
});
