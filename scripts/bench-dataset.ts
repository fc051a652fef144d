/**
 * `npm run bench -- dataset [--format jsonl.gz|text|dir] [--documents N] [--samples N]`
 *
 * The streamed draw on a large split: writes N synthetic documents (random words, 200-1800
 * each, deterministic) as a `.jsonl.gz` (default), one text file (documents separated by two
 * blank lines, paragraphs inside by one) or a directory of one `.txt` per document, then draws
 * the default preset's samples from it as `spg prove --dataset jsonl|text|dir` does, and prints
 * the split's size, the draw's time, how many documents were tokenized, and the process's peak
 * resident memory (which stays far below the split's size: nothing but the current document
 * and the chosen windows is held). The files are deleted afterwards.
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGzip } from "node:zlib";
import { resolveConfig } from "../src/config/load.js";
import { streamLocalSplit } from "../src/data/sources.js";
import { drawStreamedSamples } from "../src/data/stream-sampling.js";
import { encode } from "../src/data/tokenizer.js";
import { peakRssBytes } from "../src/measure/evaluate.js";
import { mulberry32 } from "../src/measure/prng.js";

const MiB = 1024 * 1024;
const WORDS =
  "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches".split(" ");

export type BenchDatasetFormat = "jsonl.gz" | "text" | "dir";

/** The synthetic documents, deterministic: 200-1800 random words each, in paragraphs of 100. */
function* syntheticDocuments(documents: number): Generator<string> {
  const random = mulberry32(1);
  for (let d = 0; d < documents; d++) {
    const words = 200 + Math.floor(random() * 1600);
    const text = Array.from({ length: words }, (_, w) => {
      const word = WORDS[Math.floor(random() * WORDS.length)];
      return w > 0 && w % 100 === 0 ? `\n\n${word}` : word;
    }).join(" ");
    yield text;
  }
}

/** Writes the split in `format` at `path`; returns the bytes of text (JSON for jsonl.gz) written. */
async function writeSynthetic(format: BenchDatasetFormat, path: string, documents: number): Promise<number> {
  let bytes = 0;
  if (format === "dir") {
    let d = 0;
    for (const text of syntheticDocuments(documents)) {
      const sub = join(path, String(d % 100).padStart(2, "0"));
      if (d < 100) mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `doc-${d++}.txt`), text);
      bytes += Buffer.byteLength(text);
    }
    return bytes;
  }
  const file = createWriteStream(path);
  const gzip = format === "jsonl.gz" ? createGzip({ level: 1 }) : undefined;
  const sink = gzip ?? file;
  const done = new Promise<void>((resolve, reject) => {
    file.on("finish", () => resolve()).on("error", reject);
  });
  gzip?.pipe(file);
  let d = 0;
  for (const text of syntheticDocuments(documents)) {
    const piece = format === "jsonl.gz" ? `${JSON.stringify({ text, id: d })}\n` : `${text}\n\n\n`;
    d++;
    bytes += Buffer.byteLength(piece);
    if (!sink.write(piece)) await new Promise<void>((resolve) => sink.once("drain", () => resolve()));
  }
  sink.end();
  await done;
  return bytes;
}

export async function benchDataset(
  documents: number,
  samples: number | undefined,
  format: BenchDatasetFormat = "jsonl.gz",
): Promise<void> {
  const config = resolveConfig();
  const dir = mkdtempSync(join(tmpdir(), "spg-bench-dataset-"));
  try {
    const path = join(
      dir,
      format === "dir" ? "corpus" : `synthetic.${format === "text" ? "txt" : "jsonl.gz"}`,
    );
    const textBytes = await writeSynthetic(format, path, documents);
    const count = samples ?? config.dataset.samples;
    let tokenized = 0;
    const written = peakRssBytes();
    const started = performance.now();
    const split = streamLocalSplit(format === "jsonl.gz" ? "jsonl" : format, path, "eval");
    await drawStreamedSamples(
      split.documents,
      {
        count,
        contextTokens: config.dataset.contextTokens,
        continuationTokens: config.dataset.continuationTokens,
        seed: config.dataset.seed,
        role: "eval",
      },
      (text) => {
        tokenized++;
        return encode(text);
      },
    );
    const seconds = (performance.now() - started) / 1000;
    const identity = split.identity();
    const what = format === "jsonl.gz" ? "JSON" : "text";
    console.log(
      format === "dir"
        ? `split: a directory of ${identity.documents} .txt files (100 subdirectories), ${(textBytes / MiB).toFixed(0)} MiB of text`
        : `file: ${(statSync(path).size / MiB).toFixed(0)} MiB ${format}, ${(textBytes / MiB).toFixed(0)} MiB of ${what}, ${identity.documents} documents`,
    );
    console.log(
      `draw: ${count} samples of ${config.dataset.contextTokens}+${config.dataset.continuationTokens} tokens in ${seconds.toFixed(1)} s ` +
        `(${(textBytes / MiB / seconds).toFixed(1)} MiB of ${what}/s), ${tokenized} documents tokenized, ` +
        `split sha256 ${identity.sha256.slice(0, 16)}${identity.file ? `, file sha256 ${identity.file.sha256.slice(0, 16)}` : ""}`,
    );
    console.log(
      `peak resident memory (the whole process): ${(peakRssBytes() / MiB).toFixed(0)} MiB; ${(written / MiB).toFixed(0)} MiB after writing the split, before the draw`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
