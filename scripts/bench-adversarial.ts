/**
 * `npm run bench -- verify --adversarial [--scale N] [--max-seconds S] [--max-rss-mib M]`
 *
 * Time and peak resident memory of `spg verify` on each hostile bundle of the adversarial
 * corpus (scripts/adversarial-bundles.ts), derived from bundles/default.zip. `--scale`
 * sizes the resource cases (default 40: the largest zips come near the 64 MiB the
 * verifier must verify or refuse within the budget). Each case runs in its own process,
 * so its peak RSS is its own. Prints one line per case and whether it kept the budget.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readBundleZip } from "../src/bundle/read.js";
import { peakRssBytes } from "../src/measure/evaluate.js";
import { packageRoot } from "../src/paths.js";
import { verifyBundleFile } from "../src/verify/verify-bundle.js";
import { type AdversarialCase, adversarialCases, adversarialCheckpointCases } from "./adversarial-bundles.js";

const MiB = 1024 * 1024;

export interface AdversarialBenchOptions {
  scale: number;
  maxSeconds: number;
  maxRssMiB: number;
  /** Run only the cases with these names (default: all). */
  only?: string[];
}

/**
 * One verification in this process, with the case's own verifier settings (a JSON
 * AdversarialCase["verifyWith"]); prints {exitCode, codes, seconds, peakRssBytes} as JSON, every
 * failing code (a skip too: some cases are refused by what does not run).
 */
export async function verifyOnce(
  path: string,
  verifyWith: AdversarialCase["verifyWith"] = {},
): Promise<void> {
  const start = performance.now();
  const result = await verifyBundleFile(path, { requireTrusted: false, ...verifyWith });
  const seconds = (performance.now() - start) / 1000;
  const codes = result.findings.filter((f) => !f.ok).map((f) => `${f.check}:${f.code}`);
  process.stdout.write(
    `${JSON.stringify({ exitCode: result.exitCode, codes, seconds, peakRssBytes: peakRssBytes() })}\n`,
  );
}

export async function benchAdversarial(options: AdversarialBenchOptions): Promise<void> {
  const base = await readBundleZip(join(packageRoot(), "bundles", "default.zip"));
  if (!base.ok) throw new Error("bundles/default.zip does not read: the corpus needs a valid base");
  const dir = mkdtempSync(join(tmpdir(), "spg-bench-adversarial-"));
  const script = join(packageRoot(), "dist", "scripts", "bench-adversarial.js");
  let overBudget = 0;
  console.log(
    `adversarial corpus from bundles/default.zip, scale ${options.scale}; budget ${options.maxSeconds} s, ${options.maxRssMiB} MiB peak RSS per case`,
  );
  console.log(
    "case                           zip MiB  exit  refused with                      seconds  peak RSS MiB",
  );
  try {
    const cases = [
      ...adversarialCases(base.entries, options.scale),
      ...adversarialCheckpointCases(base.entries),
    ].filter((hostile) => options.only === undefined || options.only.includes(hostile.name));
    for (const hostile of cases) {
      const path = join(dir, `${hostile.name}.zip`);
      const zip = hostile.build();
      writeFileSync(path, zip);
      const run = spawnSync(
        process.execPath,
        [script, "--one", path, JSON.stringify(hostile.verifyWith ?? {})],
        {
          encoding: "utf8",
          maxBuffer: 16 * MiB,
          timeout: options.maxSeconds * 2 * 1000,
        },
      );
      rmSync(path);
      if (run.status !== 0 || run.stdout.trim() === "") {
        overBudget++;
        console.log(
          `${hostile.name.padEnd(30)} ${(zip.length / MiB).toFixed(1).padStart(7)}  CRASHED or killed (status ${run.status}, signal ${run.signal}): ${run.stderr.slice(-300)}`,
        );
        continue;
      }
      const measured = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as {
        exitCode: number;
        codes: string[];
        seconds: number;
        peakRssBytes: number;
      };
      const expected = `${hostile.check}:${hostile.code}`;
      const refused = measured.codes.includes(expected) && measured.exitCode === hostile.exitCode;
      const rssMiB = measured.peakRssBytes / MiB;
      const within = measured.seconds <= options.maxSeconds && rssMiB <= options.maxRssMiB;
      if (!refused || !within) overBudget++;
      console.log(
        `${hostile.name.padEnd(30)} ${(zip.length / MiB).toFixed(1).padStart(7)}  ${String(measured.exitCode).padStart(4)}  ${(refused ? expected : `NOT ${expected}: ${measured.codes.find((code) => !code.endsWith(":E_CHECK_SKIPPED")) ?? "passed"}`).padEnd(33)} ${measured.seconds.toFixed(2).padStart(7)}  ${rssMiB.toFixed(0).padStart(12)}${within ? "" : "  OVER BUDGET"}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    overBudget === 0
      ? "every case refused with its code, within budget"
      : `${overBudget} case(s) not refused as documented or over budget`,
  );
  if (overBudget > 0) process.exitCode = 1;
}

if (process.argv[2] === "--one" && process.argv[3] !== undefined)
  await verifyOnce(process.argv[3], JSON.parse(process.argv[4] ?? "{}") as AdversarialCase["verifyWith"]);
