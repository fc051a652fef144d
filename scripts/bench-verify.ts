/**
 * `node dist/scripts/bench-verify.js [--samples N] [--resamples B]` (wire as `npm run bench -- verify`)
 *
 * Verify time for a large synthetic bundle (synthetic-run.ts scaled to N samples, written by
 * spg's own bundle writer: records and fingerprints of hundreds of MB), next to `sha256sum` of the same zip bytes, as a
 * ratio: what verifying costs beyond reading and hashing the file once. Prints peak RSS.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ephemeralKey } from "../src/bundle/keys.js";
import { readToolInfo } from "../src/bundle/tool-info.js";
import { writeBundle } from "../src/bundle/write.js";
import { peakRssBytes } from "../src/measure/evaluate.js";
import { renderReportMarkdown } from "../src/measure/report-md.js";
import { summarize } from "../src/measure/summary.js";
import { verifyBundleFile } from "../src/verify/verify-bundle.js";
import { fixtureParts } from "./synthetic-run.js";

const MiB = 1024 * 1024;

export async function benchVerify(samples: number, resamples: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "spg-bench-verify-"));
  try {
    const { config, environment, records, fingerprints } = fixtureParts({ samples });
    config.bootstrap.resamples = resamples;
    const summary = summarize(records, config);
    const reportMd = renderReportMarkdown(config, summary, { model: { sha256: environment.model.sha256 } });
    const zipPath = join(dir, "large.zip");
    const written = await writeBundle(
      zipPath,
      { config, environment, records, fingerprints, summary, reportMd },
      ephemeralKey(),
      readToolInfo(),
    );
    const entries = new Map(written.entries.map((entry) => [entry.name, entry.data]));
    const inflated = written.entries.reduce((sum, entry) => sum + entry.data.length, 0);
    const zipBytes = written.bytes;
    console.log(
      `bundle: ${samples} samples x 2 methods x 2 layers, records ${(entries.get("records.jsonl")!.length / MiB).toFixed(1)} MiB, ` +
        `fingerprints ${(entries.get("fingerprints.jsonl")!.length / MiB).toFixed(1)} MiB, ` +
        `${(inflated / MiB).toFixed(1)} MiB inflated, zip ${(zipBytes / MiB).toFixed(1)} MiB, ${resamples} bootstrap resamples`,
    );

    const start = performance.now();
    const result = await verifyBundleFile(zipPath, { requireTrusted: false });
    const verifySeconds = (performance.now() - start) / 1000;
    if (!result.passed) {
      console.error(result.findings.filter((finding) => !finding.ok));
      throw new Error("the synthetic bundle did not verify");
    }

    // The inflated entries too: verify hashes those, so this is the floor for reading them.
    const inflatedPath = join(dir, "inflated.bin");
    writeFileSync(inflatedPath, Buffer.concat(written.entries.map((entry) => entry.data)));
    const sha256sum = (path: string): number => {
      const begin = performance.now();
      const hashed = spawnSync("sha256sum", [path], { encoding: "utf8" });
      if (hashed.status !== 0) throw new Error(`sha256sum failed: ${hashed.stderr}`);
      return (performance.now() - begin) / 1000;
    };
    const zipHashSeconds = sha256sum(zipPath);
    const inflatedHashSeconds = sha256sum(inflatedPath);

    console.log(
      `spg verify:            ${verifySeconds.toFixed(2)} s (passed, ${result.findings.length} findings)`,
    );
    console.log(
      `sha256sum of the zip:  ${zipHashSeconds.toFixed(3)} s  -> verify is ${(verifySeconds / zipHashSeconds).toFixed(1)}x`,
    );
    console.log(
      `sha256sum of entries:  ${inflatedHashSeconds.toFixed(3)} s  -> verify is ${(verifySeconds / inflatedHashSeconds).toFixed(1)}x`,
    );
    console.log(`peak RSS:   ${(peakRssBytes() / 2 ** 20).toFixed(0)} MiB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      samples: { type: "string", default: "200000" },
      resamples: { type: "string", default: "200" },
    },
  });
  await benchVerify(Number(values.samples), Number(values.resamples));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
