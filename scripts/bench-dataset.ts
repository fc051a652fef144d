/**
 * `npm run bench -- dataset [--documents N] [--samples N]`
 *
 * The streamed draw on a large file: writes a synthetic `.jsonl.gz` of N documents (random words,
 * 200-1800 each, deterministic), then draws the default preset's samples from it as
 * `spg prove --dataset jsonl` does, and prints the file's size, the draw's time, how many
 * documents were tokenized, and the process's peak resident memory (which stays far below the
 * file's size: nothing but the current document and the chosen windows is held).
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
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

async function writeSyntheticJsonlGz(path: string, documents: number): Promise<number> {
  const gzip = createGzip({ level: 1 });
  const done = new Promise<void>((resolve, reject) => {
    gzip
      .pipe(createWriteStream(path))
      .on("finish", () => resolve())
      .on("error", reject);
  });
  const random = mulberry32(1);
  let bytes = 0;
  for (let d = 0; d < documents; d++) {
    const words = 200 + Math.floor(random() * 1600);
    const text = Array.from({ length: words }, () => WORDS[Math.floor(random() * WORDS.length)]).join(" ");
    const line = `${JSON.stringify({ text, id: d })}\n`;
    bytes += Buffer.byteLength(line);
    if (!gzip.write(line)) await new Promise((resolve) => gzip.once("drain", resolve));
  }
  gzip.end();
  await done;
  return bytes;
}

export async function benchDataset(documents: number, samples: number | undefined): Promise<void> {
  const config = resolveConfig();
  const dir = mkdtempSync(join(tmpdir(), "spg-bench-dataset-"));
  try {
    const path = join(dir, "synthetic.jsonl.gz");
    const jsonBytes = await writeSyntheticJsonlGz(path, documents);
    const count = samples ?? config.dataset.samples;
    let tokenized = 0;
    const started = performance.now();
    const split = streamLocalSplit("jsonl", path, "eval");
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
    console.log(
      `file: ${(statSync(path).size / MiB).toFixed(0)} MiB .jsonl.gz, ${(jsonBytes / MiB).toFixed(0)} MiB of JSON, ${identity.documents} documents`,
    );
    console.log(
      `draw: ${count} samples of ${config.dataset.contextTokens}+${config.dataset.continuationTokens} tokens in ${seconds.toFixed(1)} s ` +
        `(${(jsonBytes / MiB / seconds).toFixed(1)} MiB of JSON/s), ${tokenized} documents tokenized, file sha256 ${identity.file?.sha256.slice(0, 16)}`,
    );
    console.log(
      `peak resident memory (the whole process, writing the file included): ${(peakRssBytes() / MiB).toFixed(0)} MiB`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
