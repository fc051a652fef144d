/**
 * `npm run bench -- verify [--samples N] [--layers L] [--resamples B] [--repeats K] [--max-ratio R] [--max-rss-mib M] [--keep DIR]`
 *
 * Verify time and memory for a large synthetic bundle (synthetic-run.ts scaled to N samples
 * x 2 methods x L layers, written by spg's own bundle writer: hundreds of MB of records and
 * fingerprints), against `sha256sum` of the same entries: what verifying costs beyond reading
 * and hashing them once. Verify runs in a child process, so its peak RSS is its own (the
 * parent holds the bundle it built), timed from its call (the target's figure) and as the whole
 * `spg verify` command (node, oclif and the imports included). K interleaved runs (default 3;
 * the machine is shared and its load moves) print the entries' size, the times, their medians'
 * ratios (to sha256sum of the entries, and of the zip), the CPU times of verify's call, its whole
 * process and sha256sum of the entries (Linux: /proc), and the largest peak, each against its
 * target (flags; issue 19: 5x by wall and by CPU time, 1 GiB), and exit 1 when one is missed.
 *
 * Defaults: 15000 samples (at 20000 the bundled Brown eval split's draw repeats a token window,
 * which the protocol check refuses), 24 layers (GPT-Neo 1.3B's count: fingerprints dominate, as
 * they do for real models), 200 resamples (6e6 bootstrap draws, within the policy's maximum).
 */
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { ephemeralKey } from "../src/bundle/keys.js";
import { readToolInfo } from "../src/bundle/tool-info.js";
import { writeBundle } from "../src/bundle/write.js";
import { peakRssBytes } from "../src/measure/evaluate.js";
import { renderReportMarkdown } from "../src/measure/report-md.js";
import { summarize } from "../src/measure/summary.js";
import { packageRoot } from "../src/paths.js";
import { verifyBundleFile } from "../src/verify/verify-bundle.js";
import { fixtureParts } from "./synthetic-run.js";

const MiB = 1024 * 1024;

export interface VerifyBenchOptions {
  samples: number;
  layers: number;
  resamples: number;
  /** Target: verify time at most this many times sha256sum of the entries. */
  maxRatio: number;
  /** Target: verify's peak resident memory. */
  maxRssMiB: number;
  /**
   * Keep the bundle here (for profiling) instead of a temporary folder; a bundle kept there
   * by an earlier run with the same samples, layers and resamples is verified again, not rebuilt.
   */
  keep?: string;
  /** Interleaved runs of sha256sum and verify; the medians are compared. */
  repeats: number;
}

/** One verification in this process (the child): prints {passed, seconds, cpuSeconds, peakRssBytes, failing} as JSON. */
async function verifyChild(path: string): Promise<void> {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const result = await verifyBundleFile(path, { requireTrusted: false });
  const cpu = process.cpuUsage(cpuStart);
  const seconds = (performance.now() - start) / 1000;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const failing = result.findings.filter((finding) => !finding.ok);
  process.stdout.write(
    `${JSON.stringify({ passed: result.passed, seconds, cpuSeconds, peakRssBytes: peakRssBytes(), failing })}\n`,
  );
}

/** Clock ticks per second of /proc's CPU times (getconf CLK_TCK), or undefined where there is no /proc. */
const clockTicks = (() => {
  if (!existsSync("/proc/self/stat")) return undefined;
  const ticks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout);
  return Number.isFinite(ticks) && ticks > 0 ? ticks : undefined;
})();

/**
 * CPU seconds (user + system) of this process's finished children so far (Linux: /proc/self/stat's
 * cutime and cstime), or undefined elsewhere: a child's CPU time is the difference around its run.
 */
function childrenCpuSeconds(): number | undefined {
  if (clockTicks === undefined) return undefined;
  const stat = readFileSync("/proc/self/stat", "utf8");
  // Fields after the command name's closing parenthesis: the 3rd field (state) first, so cutime
  // (the 16th) and cstime (the 17th) are at 13 and 14.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / clockTicks;
}

/** A child's wall seconds, and its CPU seconds where this system says them. */
function timedChild(run: () => void): { seconds: number; cpuSeconds: number | undefined } {
  const cpuBefore = childrenCpuSeconds();
  const begin = performance.now();
  run();
  const seconds = (performance.now() - begin) / 1000;
  const cpuAfter = childrenCpuSeconds();
  return {
    seconds,
    cpuSeconds: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore,
  };
}

function sha256sumTimes(path: string): { seconds: number; cpuSeconds: number | undefined } {
  return timedChild(() => {
    const hashed = spawnSync("sha256sum", [path], { encoding: "utf8" });
    if (hashed.status !== 0) throw new Error(`sha256sum failed: ${hashed.stderr}`);
  });
}

/** The large bundle and its inflated entries side by side in `dir`, with a line describing them. */
async function writeBenchBundle(
  dir: string,
  options: VerifyBenchOptions,
): Promise<{ zipPath: string; entriesPath: string; description: string }> {
  const zipPath = join(dir, "large.zip");
  // The inflated entries side by side: verify hashes each, so hashing them is the floor.
  const entriesPath = join(dir, "entries.bin");
  const describedPath = join(dir, "bundle.json");
  const parameters = { samples: options.samples, layers: options.layers, resamples: options.resamples };
  if (
    options.keep !== undefined &&
    existsSync(describedPath) &&
    existsSync(zipPath) &&
    existsSync(entriesPath)
  ) {
    const described = JSON.parse(readFileSync(describedPath, "utf8")) as typeof parameters & {
      description: string;
    };
    if (isDeepStrictEqual({ ...parameters, description: described.description }, described)) {
      return { zipPath, entriesPath, description: `${described.description} (kept in ${dir})` };
    }
  }
  const { config, environment, records, fingerprints } = fixtureParts({
    samples: options.samples,
    layers: options.layers,
  });
  config.bootstrap.resamples = options.resamples;
  const summary = summarize(records, config);
  const reportMd = renderReportMarkdown(config, summary, { model: { sha256: environment.model.sha256 } });
  const written = await writeBundle(
    zipPath,
    { config, environment, records, fingerprints, summary, reportMd },
    ephemeralKey(),
    readToolInfo(),
    // --keep DIR is the bench's own folder: a second run replaces its bundle.
    { overwrite: true },
  );
  const size = (name: string) => written.entries.find((entry) => entry.name === name)?.data.length ?? 0;
  const entriesBytes = written.entries.reduce((sum, entry) => sum + entry.data.length, 0);
  writeFileSync(entriesPath, Buffer.concat(written.entries.map((entry) => entry.data)));
  const description =
    `${options.samples} samples x 2 methods x ${options.layers} layers, ${options.resamples} bootstrap resamples; ` +
    `entries ${(entriesBytes / MiB).toFixed(1)} MiB (records ${(size("records.jsonl") / MiB).toFixed(1)}, ` +
    `fingerprints ${(size("fingerprints.jsonl") / MiB).toFixed(1)}), zip ${(written.bytes / MiB).toFixed(1)} MiB`;
  writeFileSync(describedPath, `${JSON.stringify({ ...parameters, description })}\n`);
  return { zipPath, entriesPath, description };
}

/** `spg verify ZIP` as a user runs it (a new process: node, oclif and the imports included); it must pass. */
function verifyCommandSeconds(zipPath: string): number {
  const begin = performance.now();
  const run = spawnSync(process.execPath, [join(packageRoot(), "bin", "run.js"), "verify", zipPath], {
    encoding: "utf8",
    maxBuffer: 16 * MiB,
    env: { ...process.env, CI: "false" },
  });
  const seconds = (performance.now() - begin) / 1000;
  if (run.status !== 0) {
    throw new Error(
      `spg verify ${zipPath} exited ${run.status}: ${run.stdout.slice(-1500)}${run.stderr.slice(-500)}`,
    );
  }
  return seconds;
}

export async function benchVerify(options: VerifyBenchOptions): Promise<void> {
  const dir = options.keep ?? mkdtempSync(join(tmpdir(), "spg-bench-verify-"));
  // A --keep folder that does not exist yet is made now, not found missing after minutes of building.
  if (options.keep !== undefined) mkdirSync(options.keep, { recursive: true });
  try {
    const { zipPath, entriesPath, description } = await writeBenchBundle(dir, options);
    console.log(`bundle: ${description}`);

    const script = join(packageRoot(), "dist", "scripts", "bench-verify.js");
    const runs: {
      verify: number;
      command: number;
      entriesHash: number;
      zipHash: number;
      peakRssBytes: number;
      /** CPU seconds: sha256sum of the entries, verify's call, verify's whole child process (node's start included). */
      entriesHashCpu: number | undefined;
      verifyCpu: number;
      verifyProcessCpu: number | undefined;
    }[] = [];
    // Interleaved, so a burst of load on a shared machine hits both sides of one run alike.
    for (let run = 0; run < options.repeats; run++) {
      const entriesHash = sha256sumTimes(entriesPath);
      let child: SpawnSyncReturns<string> | undefined;
      const childTimes = timedChild(() => {
        child = spawnSync(process.execPath, [script, "--one", zipPath], {
          encoding: "utf8",
          maxBuffer: 16 * MiB,
        });
      });
      if (child === undefined || child.status !== 0 || child.stdout.trim() === "") {
        throw new Error(
          `verify crashed (status ${child?.status}, signal ${child?.signal}): ${child?.stderr.slice(-500)}`,
        );
      }
      const verified = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "{}") as {
        passed: boolean;
        seconds: number;
        cpuSeconds: number;
        peakRssBytes: number;
        failing: unknown[];
      };
      if (!verified.passed) {
        console.error(verified.failing);
        throw new Error("the synthetic bundle did not verify");
      }
      const command = verifyCommandSeconds(zipPath);
      const zipHash = sha256sumTimes(zipPath).seconds;
      runs.push({
        verify: verified.seconds,
        command,
        entriesHash: entriesHash.seconds,
        zipHash,
        peakRssBytes: verified.peakRssBytes,
        entriesHashCpu: entriesHash.cpuSeconds,
        verifyCpu: verified.cpuSeconds,
        verifyProcessCpu: childTimes.cpuSeconds,
      });
      const cpuText = (seconds: number | undefined) =>
        seconds === undefined ? "n/a" : `${seconds.toFixed(2)} s`;
      console.log(
        `run ${run + 1}: sha256sum of the entries ${entriesHash.seconds.toFixed(2)} s (CPU ${cpuText(entriesHash.cpuSeconds)}), of the zip ${zipHash.toFixed(2)} s; ` +
          `spg verify ${verified.seconds.toFixed(2)} s (CPU ${verified.cpuSeconds.toFixed(2)} s, its process ${cpuText(childTimes.cpuSeconds)}; passed; the whole command ${command.toFixed(2)} s), ` +
          `peak RSS ${(verified.peakRssBytes / MiB).toFixed(0)} MiB`,
      );
    }
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const middle = Math.floor(sorted.length / 2);
      return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    };
    /** The median where every run has the figure (CPU times where /proc says them), else undefined. */
    const medianOf = (values: (number | undefined)[]) =>
      values.every((value) => value !== undefined) ? median(values as number[]) : undefined;
    const entriesHash = median(runs.map((run) => run.entriesHash));
    const zipHash = median(runs.map((run) => run.zipHash));
    const verifySeconds = median(runs.map((run) => run.verify));
    const commandSeconds = median(runs.map((run) => run.command));
    const entriesHashCpu = medianOf(runs.map((run) => run.entriesHashCpu));
    const verifyCpu = median(runs.map((run) => run.verifyCpu));
    const verifyProcessCpu = medianOf(runs.map((run) => run.verifyProcessCpu));
    const ratio = verifySeconds / entriesHash;
    const cpuRatio = entriesHashCpu === undefined ? undefined : verifyCpu / entriesHashCpu;
    const rssMiB = Math.max(...runs.map((run) => run.peakRssBytes)) / MiB;
    const verdict = (ok: boolean) => (ok ? "within target" : "OVER TARGET");
    console.log(`medians of ${runs.length} run(s):`);
    console.log(
      `sha256sum of the entries: ${entriesHash.toFixed(2)} s   (of the zip: ${zipHash.toFixed(2)} s)`,
    );
    console.log(
      `spg verify:               ${verifySeconds.toFixed(2)} s   (the whole command, node and imports included: ${commandSeconds.toFixed(2)} s)`,
    );
    console.log(
      `ratio:                    ${ratio.toFixed(1)}x sha256sum of the entries   target <= ${options.maxRatio}x: ${verdict(ratio <= options.maxRatio)}`,
    );
    console.log(
      `                          (${(verifySeconds / zipHash).toFixed(1)}x sha256sum of the zip; the whole command ${(commandSeconds / entriesHash).toFixed(1)}x of the entries)`,
    );
    if (cpuRatio === undefined || entriesHashCpu === undefined) {
      console.log(
        `CPU:                      verify ${verifyCpu.toFixed(2)} s; sha256sum's CPU time is not available here (no /proc)`,
      );
    } else {
      console.log(
        `CPU:                      verify ${verifyCpu.toFixed(2)} s against ${entriesHashCpu.toFixed(2)} s for sha256sum of the entries: ${cpuRatio.toFixed(1)}x   target <= ${options.maxRatio}x: ${verdict(cpuRatio <= options.maxRatio)}`,
      );
      if (verifyProcessCpu !== undefined) {
        console.log(
          `                          (verify's whole process, node's start and imports included: ${verifyProcessCpu.toFixed(2)} s, ${(verifyProcessCpu / entriesHashCpu).toFixed(1)}x)`,
        );
      }
    }
    console.log(
      `peak RSS of verify:       ${rssMiB.toFixed(0)} MiB (largest run)   target <= ${options.maxRssMiB} MiB: ${verdict(rssMiB <= options.maxRssMiB)}`,
    );
    if (ratio > options.maxRatio || (cpuRatio ?? 0) > options.maxRatio || rssMiB > options.maxRssMiB)
      process.exitCode = 1;
  } finally {
    if (options.keep === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href && process.argv[2] === "--one") {
  await verifyChild(process.argv[3] ?? "");
}
