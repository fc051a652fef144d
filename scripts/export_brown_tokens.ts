/**
 * Writes the Brown train and eval splits as GPT-2 token ids for scripts/train_gpt_neo.py
 * (scripts/brown_token_files.ts: `<split>.bin` and `manifest.json`).
 *
 * Usage: node dist/scripts/export_brown_tokens.js [outDir] [--paragraph-break newline|blank-line]
 *   outDir            default tmp/train-data
 *   --paragraph-break newline (default): the text as spg reads it. blank-line: paragraphs joined by
 *                     "\n\n", the layout before spg switched to one line break; only to reproduce
 *                     training phases that used it (the model card names the layout of each phase).
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultParagraphBreak, type ParagraphBreak, paragraphBreaks } from "../src/data/brown.js";
import { SpgError } from "../src/errors.js";
import { packageRoot } from "../src/paths.js";
import { writeBrownTokenFiles } from "./brown_token_files.js";
import { runScript } from "./run-script.js";

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { "paragraph-break": { type: "string", default: defaultParagraphBreak } },
  });
  const paragraphBreak = values["paragraph-break"];
  if (!Object.hasOwn(paragraphBreaks, paragraphBreak)) {
    throw new SpgError("E_BROWN_PARAGRAPH_BREAK", `--paragraph-break "${paragraphBreak}" is not a layout`, {
      field: "--paragraph-break",
      fix: `use one of ${Object.keys(paragraphBreaks).join(", ")}`,
    });
  }
  if (positionals.length > 1) throw new Error(`one output directory at most, got ${positionals.join(" ")}`);
  const outDir = resolve(positionals[0] ?? join(packageRoot(), "tmp", "train-data"));
  const manifest = writeBrownTokenFiles(outDir, paragraphBreak as ParagraphBreak);
  for (const [name, entry] of Object.entries(manifest.splits)) {
    console.log(`${name}: ${entry.documents} documents, ${entry.tokens} tokens`);
  }
  console.log(`wrote ${outDir} (paragraph break: ${paragraphBreak})`);
}

runScript(main);
