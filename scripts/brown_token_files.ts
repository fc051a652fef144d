/**
 * The Brown train and eval splits as GPT-2 token ids for scripts/train_gpt_neo.py: `<split>.bin`
 * (uint16 little-endian, documents in split order, each followed by <|endoftext|>) and
 * `manifest.json` (paragraph break, split hashes, token counts, sha256 of each .bin).
 */
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type BrownSplitName, loadBrownSplit, type ParagraphBreak } from "../src/data/brown.js";
import { encode, endOfTextId, vocabularySize } from "../src/data/tokenizer.js";

const bytesPerId = 2;
const exportedSplits: readonly BrownSplitName[] = ["train", "eval"];

export interface TokenSplitEntry {
  file: string;
  documents: number;
  documentIds: string[];
  splitSha256: string;
  tokens: number;
  fileSha256: string;
}

export interface TokenManifest {
  tokenizer: string;
  vocabularySize: number;
  endOfTextId: number;
  dtype: "uint16-le";
  layout: string;
  paragraphBreak: ParagraphBreak;
  splits: Record<string, TokenSplitEntry>;
}

/** One split's token file, in memory. */
export function brownSplitTokenFile(
  name: BrownSplitName,
  paragraphBreak: ParagraphBreak,
): { bytes: Uint8Array; entry: TokenSplitEntry } {
  if (vocabularySize > 2 ** (8 * bytesPerId)) throw new Error("vocabulary does not fit in uint16");
  const split = loadBrownSplit(name, undefined, paragraphBreak);
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
  return {
    bytes,
    entry: {
      file: `${name}.bin`,
      documents: split.documents.length,
      documentIds: split.documents.map((document) => document.id),
      splitSha256: split.sha256,
      tokens: ids.length,
      fileSha256: createHash("sha256").update(bytes).digest("hex"),
    },
  };
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

/** Writes every exported split's .bin, then manifest.json (last, so a manifest names only written files). */
export function writeBrownTokenFiles(outDir: string, paragraphBreak: ParagraphBreak): TokenManifest {
  mkdirSync(outDir, { recursive: true });
  const manifest: TokenManifest = {
    tokenizer: "gpt2 (gpt-tokenizer r50k_base)",
    vocabularySize,
    endOfTextId,
    dtype: "uint16-le",
    layout: "documents in split order, each followed by endOfTextId",
    paragraphBreak,
    splits: {},
  };
  for (const name of exportedSplits) {
    const { bytes, entry } = brownSplitTokenFile(name, paragraphBreak);
    writeAtomic(join(outDir, entry.file), bytes);
    manifest.splits[name] = entry;
  }
  writeAtomic(join(outDir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
