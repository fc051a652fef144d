/**
 * Writes the Brown train and eval splits as GPT-2 token ids for scripts/train_gpt_neo.py:
 * `<split>.bin` (uint16 little-endian, documents in split order, each followed by
 * <|endoftext|>) and `manifest.json` (split hashes, token counts, sha256 of each .bin).
 *
 * Usage: node dist/scripts/export_brown_tokens.js [outDir]   (default tmp/train-data)
 */
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type BrownSplitName, loadBrownSplit } from "../src/data/brown.js";
import { encode, endOfTextId, vocabularySize } from "../src/data/tokenizer.js";
import { packageRoot } from "../src/paths.js";

const bytesPerId = 2;

function writeAtomic(path: string, data: string | Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

function main(): void {
  if (vocabularySize > 2 ** (8 * bytesPerId)) throw new Error("vocabulary does not fit in uint16");
  const outDir = resolve(process.argv[2] ?? join(packageRoot(), "tmp", "train-data"));
  mkdirSync(outDir, { recursive: true });
  const manifest: Record<string, unknown> = {
    tokenizer: "gpt2 (gpt-tokenizer r50k_base)",
    vocabularySize,
    endOfTextId,
    dtype: "uint16-le",
    layout: "documents in split order, each followed by endOfTextId",
    splits: {},
  };
  const splits: BrownSplitName[] = ["train", "eval"];
  for (const name of splits) {
    const split = loadBrownSplit(name);
    const ids: number[] = [];
    for (const document of split.documents) {
      for (const id of encode(document.text)) ids.push(id);
      ids.push(endOfTextId);
    }
    const bytes = new Uint8Array(ids.length * bytesPerId);
    const view = new DataView(bytes.buffer);
    ids.forEach((id, index) => {
      view.setUint16(index * bytesPerId, id, true);
    });
    writeAtomic(join(outDir, `${name}.bin`), bytes);
    (manifest.splits as Record<string, unknown>)[name] = {
      file: `${name}.bin`,
      documents: split.documents.length,
      documentIds: split.documents.map((document) => document.id),
      splitSha256: split.sha256,
      tokens: ids.length,
      fileSha256: createHash("sha256").update(bytes).digest("hex"),
    };
    console.log(`${name}: ${split.documents.length} documents, ${ids.length} tokens`);
  }
  writeAtomic(join(outDir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${outDir}`);
}

main();
