/**
 * `node dist/scripts/measure_replay_tolerance.js BUNDLE... [--threads 1,2] [--prefill-chunk N] [--samples N] [--head-layout in-place|transposed]`
 *
 * What the verify policy's replay tolerances (configs/verify/policy.yaml) are set from: every
 * sample of each bundle is replayed on the bundled model at each onnxruntime intra-op thread
 * count, with tolerances of zero, and the largest difference of any record from the stored
 * one is printed (NLL, KL and a weights method's logit cosine per scored token, agreement as a
 * fraction of tokens; `--samples N`: N samples chosen by seed 0 rather than all), with the
 * bytes and fingerprints that must be equal. Run on committed bundles measured on this machine.
 * `--prefill-chunk N` replays with the prefill in passes of N rows (kv.prefillChunkTokens)
 * against records proved in one pass: how far chunking moves the numbers, beside the same
 * replay without it. `--head-layout` replays with that head layout instead of the one the
 * bundle's format version was proved with (src/model/types.ts HeadLayout): how far reading the
 * head in place moves a version 3 bundle's numbers (its executed weight bytes then differ by
 * the copy, counted apart).
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { parseJsonl } from "../src/bundle/canonical.js";
import { headLayoutOfVersion, IN_PLACE_HEAD_FORMAT_VERSION } from "../src/bundle/format.js";
import { readBundleZip } from "../src/bundle/read.js";
import type { EnvironmentFile, FingerprintLine, SampleRecord } from "../src/bundle/types.js";
import type { RunConfig } from "../src/config/types.js";
import { checkDraw } from "../src/verify/checks/draw.js";
import { checkReplay, replayCheckpoint, storedLinesIn } from "../src/verify/checks/replay.js";

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      threads: { type: "string", default: "1,2" },
      "prefill-chunk": { type: "string" },
      samples: { type: "string" },
      "head-layout": { type: "string" },
    },
  });
  const threads = values.threads.split(",").map(Number);
  const checkpoint = await replayCheckpoint(undefined);
  for (const bundle of positionals) {
    const read = await readBundleZip(bundle);
    if (!read.ok) throw new Error(`${bundle}: ${read.findings[0]?.message}`);
    const text = (name: string) => read.entries.get(name)?.toString("utf8") ?? "";
    const config = JSON.parse(text("config.json")) as RunConfig;
    const chunk = values["prefill-chunk"];
    if (chunk !== undefined) config.kv.prefillChunkTokens = Number(chunk);
    const environment = JSON.parse(text("environment.json")) as EnvironmentFile;
    const records = parseJsonl(text("records.jsonl")) as unknown as SampleRecord[];
    const fingerprints = parseJsonl(text("fingerprints.jsonl")) as unknown as FingerprintLine[];
    const manifest = JSON.parse(text("manifest.json")) as { version: number };
    const layout = values["head-layout"];
    if (layout !== undefined && layout !== "in-place" && layout !== "transposed")
      throw new Error(`--head-layout ${layout}: use in-place or transposed`);
    // The version whose graph the replay runs: the bundle's, or the first with the layout asked for.
    const version =
      layout === undefined || headLayoutOfVersion(manifest.version) === layout
        ? manifest.version
        : layout === "in-place"
          ? IN_PLACE_HEAD_FORMAT_VERSION
          : IN_PLACE_HEAD_FORMAT_VERSION - 1;
    const draw = await checkDraw({ config, environment, records });
    if (draw.evaluation === undefined) throw new Error(`${bundle}: ${draw.findings[0]?.message}`);
    for (const intraOpThreads of threads) {
      const started = performance.now();
      const findings = await checkReplay(
        {
          config,
          environment,
          stored: storedLinesIn(records, fingerprints),
          evaluation: draw.evaluation,
          checkpoint,
          modelNamed: false,
          tolerances: { nllPerToken: 0, klPerToken: 0, agreementFraction: 0, logitCosinePerToken: 0 },
          version,
        },
        { samples: values.samples === undefined ? "all" : Number(values.samples), seed: "0", intraOpThreads },
      );
      const summary = findings[findings.length - 1];
      const problems = (f: (typeof findings)[number]) => (f.details?.problems ?? []) as string[];
      const bytesOrFingerprints = findings.filter(
        (f) =>
          f.code === "E_REPLAY_FINGERPRINT" ||
          (f.code === "E_REPLAY_RECORD" &&
            problems(f).some((p) => /^(kvBytes|weights |scoredTokens|generation\.compared)/.test(p))),
      ).length;
      const executedBytes = findings.filter((f) =>
        problems(f).some((p) => p.startsWith("executed bytes")),
      ).length;
      console.log(
        JSON.stringify({
          bundle,
          intraOpThreads,
          prefillChunkTokens: config.kv.prefillChunkTokens ?? null,
          records: records.length,
          seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
          largestDifferences: summary.details?.largestDifferences,
          bytesOrFingerprintsDiffering: bytesOrFingerprints,
          headLayout: headLayoutOfVersion(version),
          executedBytesDiffering: executedBytes,
          date: new Date().toISOString(),
        }),
      );
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
