/**
 * docs/errors.md from the error registry (src/error-codes.ts):
 *
 *   npm run docs:errors                                   # rewrite docs/errors.md
 *   node dist/scripts/errors-doc.js --check [--file PATH]  # exit 1 when PATH is stale
 *
 * test/error-codes.test.ts runs the --check form, so a registry change without the
 * regenerated page fails the tests.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CHECK_EXIT_CODE,
  ERROR_CODES,
  type ErrorCode,
  type ErrorCodeInfo,
  EXIT_BAD_INPUT,
  EXIT_CLAIMS,
  EXIT_INVALID,
  EXIT_PASS,
  EXIT_TAMPERED,
  EXIT_UNREADABLE,
} from "../src/error-codes.js";
import { packageRoot } from "../src/paths.js";
import { CHECK_ORDER } from "../src/verify/types.js";

function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

function table(codes: [ErrorCode, ErrorCodeInfo][]): string[] {
  return [
    "| code | meaning |",
    "|---|---|",
    ...codes.map(([code, info]) => `| \`${code}\` | ${cell(info.meaning)} |`),
  ];
}

function renderErrorsDoc(): string {
  const entries = (Object.entries(ERROR_CODES) as [ErrorCode, ErrorCodeInfo][]).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const lines = [
    "# Error codes",
    "",
    "<!-- Generated from src/error-codes.ts by `npm run docs:errors`; do not edit by hand. -->",
    "",
    "Every failure spg reports carries one of these stable codes. A command that stops on bad",
    "input or environment prints the code, the message, the file and field concerned and the fix",
    "on stderr. `spg verify` reports every failing check as a finding with its code; the exit",
    "code is that of the lowest failing kind.",
    "",
    "| exit code | meaning |",
    "|---|---|",
    `| ${EXIT_PASS} | success: every check passed, every claim holds |`,
    `| ${EXIT_BAD_INPUT} | bad input or environment (the codes under "Errors") |`,
    `| ${EXIT_UNREADABLE} | unreadable or unsafe zip |`,
    `| ${EXIT_TAMPERED} | tampered or untrusted (integrity, signature, trust) |`,
    `| ${EXIT_INVALID} | invalid (schemas, consistency, recompute, protocol, replay) |`,
    `| ${EXIT_CLAIMS} | claims not met (\`spg verify\`, and \`spg prove\` after writing the bundle) |`,
    "",
    `## Errors (exit ${EXIT_BAD_INPUT})`,
    "",
    ...table(entries.filter(([, info]) => info.kind === "input")),
    "",
    "## Verification findings",
  ];
  for (const check of CHECK_ORDER) {
    const codes = entries.filter(([, info]) => info.kind === "finding" && info.check === check);
    if (codes.length === 0) continue;
    lines.push("", `### ${check} (exit ${CHECK_EXIT_CODE[check]})`, "", ...table(codes));
  }
  lines.push(
    "",
    "### any check (exit of that check)",
    "",
    ...table(entries.filter(([, info]) => info.kind === "finding" && info.check === null)),
    "",
  );
  return lines.join("\n");
}

function main(argv: string[]): number {
  const at = argv.indexOf("--file");
  const file = at >= 0 ? argv[at + 1] : join(packageRoot(), "docs", "errors.md");
  const rendered = renderErrorsDoc();
  if (argv.includes("--check")) {
    let current: string;
    try {
      current = readFileSync(file, "utf8");
    } catch {
      current = "";
    }
    if (current === rendered) return 0;
    process.stderr.write(`${file} is stale: run \`npm run docs:errors\` and commit it\n`);
    return 1;
  }
  writeFileSync(file, rendered);
  process.stdout.write(`wrote ${file} (${Object.keys(ERROR_CODES).length} codes)\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
