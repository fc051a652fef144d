/**
 * Prints the README's ablation table and Pareto frontier in Markdown, from a bundle:
 *
 *   npx tsc -p . && node dist/scripts/readme_tables.js BUNDLE.zip [--trusted-keys FILE]
 *
 * The bundle is verified first (every check, as `spg verify` runs them) and the figures are
 * recomputed from its records; a bundle that does not verify prints its failing findings to
 * stderr and nothing to stdout (exit code as the verifier's).
 */
import { readBundleZip } from "../src/bundle/read.js";
import { readTrustedKeys } from "../src/bundle/sign.js";
import type { SampleRecord } from "../src/bundle/types.js";
import type { RunConfig } from "../src/config/types.js";
import { isSpgError } from "../src/errors.js";
import { methodOrderOf } from "../src/report/data.js";
import { frontierMarkdown, methodsMarkdown } from "../src/report/markdown.js";
import { EXIT_UNREADABLE, runChecks } from "../src/verify/runner.js";

async function main(argv: string[]): Promise<number> {
  const bundle = argv[0];
  if (bundle === undefined || bundle.startsWith("-")) {
    process.stderr.write("usage: node dist/scripts/readme_tables.js BUNDLE.zip [--trusted-keys FILE]\n");
    return 2;
  }
  const keysAt = argv.indexOf("--trusted-keys");
  const trusted = keysAt >= 0 ? await readTrustedKeys(argv[keysAt + 1] ?? "") : undefined;
  const read = await readBundleZip(bundle);
  if (!read.ok) {
    for (const f of read.findings) process.stderr.write(`${f.code}: ${f.message}\n`);
    return EXIT_UNREADABLE;
  }
  const result = runChecks(
    { entries: read.entries },
    {
      trustedKeyIds: trusted,
      requireTrusted: trusted !== undefined,
    },
  );
  if (!result.passed || result.recomputed === undefined) {
    for (const f of result.findings.filter((finding) => !finding.ok)) {
      process.stderr.write(`${f.check}: ${f.code}: ${f.message}\n`);
    }
    return result.exitCode;
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
  process.stdout.write(`${methodsMarkdown(result.recomputed, config, order)}\n\n`);
  process.stdout.write(`Pareto frontier (compression ratio against perplexity increase):\n\n`);
  process.stdout.write(`${frontierMarkdown(result.recomputed, order)}\n`);
  return 0;
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
