/**
 * The README's tables in Markdown, from verified bundles:
 *
 *   npx tsc -p . && node dist/scripts/readme_tables.js BUNDLE.zip [--trusted-keys FILE]
 *       prints a KV bundle's methods table and Pareto frontier (and its run-cost table)
 *   node dist/scripts/readme_tables.js --readme README.md --bundles bundles [--trusted-keys FILE]
 *       rewrites README's generated blocks (between `<!-- readme-tables:NAME -->` and
 *       `<!-- /readme-tables:NAME -->`) from bundles/ablation-sweep.zip, default.zip and
 *       weights.zip: tables and the readings that follow from their numbers
 *
 * Each bundle is verified first (every check, as `spg verify` runs them) and the figures are
 * recomputed from its records; a bundle that does not verify prints its failing findings to
 * stderr and nothing is written (exit code as the verifier's).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { writeFileAtomic } from "../src/bundle/atomic.js";
import { readBundleZip } from "../src/bundle/read.js";
import { readTrustedKeys, type TrustedKeys } from "../src/bundle/sign.js";
import type { SampleRecord, Summary } from "../src/bundle/types.js";
import type { RunConfig } from "../src/config/types.js";
import { isSpgError } from "../src/errors.js";
import { methodOrderOf } from "../src/report/data.js";
import { formatNumber, formatPercent } from "../src/report/html.js";
import {
  frontierMarkdown,
  kvReading,
  methodsMarkdown,
  runCostMarkdown,
  speedReading,
  weightsMarkdown,
  weightsReading,
} from "../src/report/markdown.js";
import { EXIT_UNREADABLE, runChecks } from "../src/verify/runner.js";
import { weightPresetsDir } from "../src/weights/policy.js";

interface VerifiedBundle {
  config: RunConfig;
  summary: Summary;
  order: string[];
}

class BundleRefused extends Error {
  constructor(readonly exitCode: number) {
    super("bundle did not verify");
  }
}

async function verified(path: string, trusted: TrustedKeys | undefined): Promise<VerifiedBundle> {
  const read = await readBundleZip(path);
  if (!read.ok) {
    for (const f of read.findings) process.stderr.write(`${path}: ${f.code}: ${f.message}\n`);
    throw new BundleRefused(EXIT_UNREADABLE);
  }
  const result = runChecks(
    { entries: read.entries },
    { trustedKeyIds: trusted, requireTrusted: trusted !== undefined },
  );
  if (!result.passed || result.recomputed === undefined) {
    for (const f of result.findings.filter((finding) => !finding.ok)) {
      process.stderr.write(`${path}: ${f.check}: ${f.code}: ${f.message}\n`);
    }
    throw new BundleRefused(result.exitCode);
  }
  // Verified: config.json and records.jsonl parsed and passed their schemas.
  const config = JSON.parse(read.entries.get("config.json")!.toString("utf8")) as RunConfig;
  const records = read.entries
    .get("records.jsonl")!
    .toString("utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as SampleRecord);
  const order = methodOrderOf(
    config.methods.map((m) => m.name),
    records,
  );
  return { config, summary: result.recomputed, order };
}

function ablationBlock(bundle: VerifiedBundle): string {
  return [
    methodsMarkdown(bundle.summary, bundle.config, bundle.order),
    "",
    "Pareto frontier (compression ratio against perplexity increase):",
    "",
    frontierMarkdown(bundle.summary, bundle.order),
  ].join("\n");
}

function defaultBlock(bundle: VerifiedBundle): string {
  const lines: string[] = [];
  const spg = bundle.summary.methods.spg;
  if (spg !== undefined) {
    const ci = spg.intervals.perplexityIncreasePct;
    lines.push(
      `\`bundles/default.zip\` (${bundle.config.dataset.samples} samples, the default preset) gives SPG ` +
        `${formatNumber(spg.compressionRatio)}x at ${formatNumber(spg.perplexityIncreasePct)}% perplexity ` +
        `[${formatNumber(ci.low)}, ${formatNumber(ci.high)}], mean KL ${formatNumber(spg.meanKl)}, ` +
        `top-1 agreement ${formatPercent(spg.top1Agreement)}, generation agreement ${formatPercent(spg.generationAgreement)}. ` +
        "What each method costs when it runs (executed memory per sample, baseline → method; tokens per second, " +
        "baseline → method, this run's timings on the machine that made the bundle):",
      "",
    );
  }
  lines.push(runCostMarkdown(bundle.summary, bundle.config, bundle.order));
  const reading = kvReading(bundle.summary, bundle.order);
  if (reading !== undefined) lines.push("", reading);
  const speeds = speedReading(bundle.summary);
  if (speeds !== undefined) lines.push("", speeds);
  return lines.join("\n");
}

/** A weights method's policy description, from its configs/weights/ preset. */
function policyDescription(config: RunConfig, method: string): string {
  const policy = (config.methods.find((m) => m.name === method)?.params as { policy?: unknown } | undefined)
    ?.policy;
  if (typeof policy !== "string") return "";
  const file = parseYaml(readFileSync(join(weightPresetsDir(), `${policy}.yaml`), "utf8")) as {
    description?: unknown;
  };
  return typeof file.description === "string" ? file.description : policy;
}

function weightsBlock(bundle: VerifiedBundle): string {
  const lines = [
    weightsMarkdown(bundle.summary, bundle.order, (method) => policyDescription(bundle.config, method)),
  ];
  const naive = bundle.summary.methods.naive;
  const reading = naive === undefined ? undefined : weightsReading("naive", naive);
  if (reading !== undefined) lines.push("", reading);
  const speeds = speedReading(bundle.summary);
  if (speeds !== undefined) lines.push("", speeds);
  return lines.join("\n");
}

/** README with each `<!-- readme-tables:NAME -->` block's body replaced; every block must exist. */
export function replaceBlocks(readme: string, blocks: Record<string, string>): string {
  let text = readme;
  for (const [name, body] of Object.entries(blocks)) {
    const open = `<!-- readme-tables:${name} -->`;
    const close = `<!-- /readme-tables:${name} -->`;
    const start = text.indexOf(open);
    const end = text.indexOf(close);
    if (start < 0 || end < start) throw new Error(`README has no ${open} ... ${close} block`);
    text = `${text.slice(0, start + open.length)}\n${body}\n${text.slice(end)}`;
  }
  return text;
}

async function main(argv: string[]): Promise<number> {
  const option = (name: string) => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const keysFile = option("--trusted-keys");
  const trusted = keysFile === undefined ? undefined : await readTrustedKeys(keysFile);
  const readme = option("--readme");
  try {
    if (readme !== undefined) {
      const dir = option("--bundles") ?? "bundles";
      const blocks = {
        ablation: ablationBlock(await verified(join(dir, "ablation-sweep.zip"), trusted)),
        default: defaultBlock(await verified(join(dir, "default.zip"), trusted)),
        weights: weightsBlock(await verified(join(dir, "weights.zip"), trusted)),
      };
      await writeFileAtomic(readme, replaceBlocks(readFileSync(readme, "utf8"), blocks), { overwrite: true });
      process.stderr.write(`${readme}: ${Object.keys(blocks).join(", ")} tables rewritten\n`);
      return 0;
    }
    const bundle = argv[0];
    if (bundle === undefined || bundle.startsWith("-")) {
      process.stderr.write(
        "usage: node dist/scripts/readme_tables.js BUNDLE.zip [--trusted-keys FILE]\n" +
          "       node dist/scripts/readme_tables.js --readme README.md [--bundles DIR] [--trusted-keys FILE]\n",
      );
      return 2;
    }
    const result = await verified(bundle, trusted);
    process.stdout.write(
      `${ablationBlock(result)}\n\n${runCostMarkdown(result.summary, result.config, result.order)}\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof BundleRefused) return error.exitCode;
    throw error;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${isSpgError(error) ? error.describe() : String(error)}\n`);
    process.exitCode = isSpgError(error) ? error.exitCode : 1;
  },
);
