/**
 * The bundled Brown splits' token ids, computed once by `npm run build`
 * (scripts/tokenize-brown.ts) instead of by every prove, verify and replay: GPT-2 byte-pair
 * encoding of a split's documents costs a few hundred milliseconds each time.
 *
 * Keyed, never trusted: a split's ids are used only for the split whose sha256 (its
 * documents' identity, computed from the corpus text every time it is read) and tokenizer
 * identity (gpt-tokenizer's version and merge ranks, and spg's own tokenizer module) are the
 * ones recorded, and only while the file's payload has the sha256 recorded with it. Anything
 * else (no file, another corpus or tokenizer, a damaged file) is a cache miss: the split is
 * tokenized here, as it was before the cache existed. The file is never read from a bundle.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sha256Hex } from "../numeric/sha256.js";
import { encode, vocabularySize } from "./tokenizer.js";
import type { DatasetSplit } from "./types.js";

/** Where the build writes the cache: beside this module, in dist. */
export const BROWN_TOKENS_FILE = join(dirname(fileURLToPath(import.meta.url)), "brown-tokens.bin");

/** The file's header (JSON, after a u32 little-endian byte length); the payload of uint16 little-endian ids follows. */
interface CacheHeader {
  tokenizer: string;
  payloadSha256: string;
  /** Per split sha256: each document's first id and id count in the payload, in split order. */
  splits: Record<string, { ids: string[]; offsets: number[]; lengths: number[] }>;
}

const HEADER_LENGTH_BYTES = 4;
const ID_BYTES = 2;

/**
 * What the ids depend on besides the text: gpt-tokenizer's version and its GPT-2 merge ranks,
 * and this package's tokenizer module (its encode options).
 */
export function tokenizerIdentity(): string {
  const require = createRequire(import.meta.url);
  const hash = createHash("sha256");
  const manifest = require.resolve("gpt-tokenizer/package.json");
  const { version } = JSON.parse(readFileSync(manifest, "utf8")) as { version: string };
  hash.update(`gpt-tokenizer@${version}\n`);
  // The merge ranks the ES module build of gpt-tokenizer/encoding/r50k_base (tokenizer.ts's import) reads.
  hash.update(readFileSync(join(dirname(manifest), "esm", "bpeRanks", "r50k_base.js")));
  hash.update(readFileSync(fileURLToPath(new URL("./tokenizer.js", import.meta.url))));
  return hash.digest("hex");
}

/** The cache file's bytes for these splits (tokenized here). */
export function brownTokensFile(splits: readonly DatasetSplit[]): Buffer {
  if (vocabularySize > 2 ** (8 * ID_BYTES)) throw new Error("GPT-2 ids do not fit in uint16");
  const ids: number[] = [];
  const header: CacheHeader = { tokenizer: tokenizerIdentity(), payloadSha256: "", splits: {} };
  for (const split of splits) {
    const entry = { ids: [] as string[], offsets: [] as number[], lengths: [] as number[] };
    for (const document of split.documents) {
      const tokens = encode(document.text);
      entry.ids.push(document.id);
      entry.offsets.push(ids.length);
      entry.lengths.push(tokens.length);
      for (const id of tokens) ids.push(id);
    }
    header.splits[split.sha256] = entry;
  }
  const payload = Buffer.alloc(ids.length * ID_BYTES);
  ids.forEach((id, index) => {
    payload.writeUInt16LE(id, index * ID_BYTES);
  });
  header.payloadSha256 = sha256Hex(payload);
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const length = Buffer.alloc(HEADER_LENGTH_BYTES);
  length.writeUInt32LE(headerBytes.length);
  return Buffer.concat([length, headerBytes, payload]);
}

type Cache = { header: CacheHeader; ids: Uint16Array };

/** Each cache file as read and checked once per process (undefined: no usable file). */
const caches = new Map<string, Cache | undefined>();

function readCache(file: string): Cache | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const bytes = readFileSync(file);
    const headerLength = bytes.readUInt32LE(0);
    const header = JSON.parse(
      bytes.toString("utf8", HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + headerLength),
    ) as CacheHeader;
    const payload = bytes.subarray(HEADER_LENGTH_BYTES + headerLength);
    if (payload.length % ID_BYTES !== 0 || sha256Hex(payload) !== header.payloadSha256) return undefined;
    if (header.tokenizer !== tokenizerIdentity()) return undefined;
    const ids = new Uint16Array(payload.length / ID_BYTES);
    for (let index = 0; index < ids.length; index++) ids[index] = payload.readUInt16LE(index * ID_BYTES);
    return { header, ids };
  } catch {
    // A damaged file is a miss: the split is tokenized here.
    return undefined;
  }
}

/**
 * Each document's token ids, in split order, from the cache `file` when it holds this exact
 * split (by sha256, document ids) for this tokenizer; undefined when it does not.
 */
export function cachedSplitTokens(
  split: DatasetSplit,
  file: string = BROWN_TOKENS_FILE,
): number[][] | undefined {
  if (!caches.has(file)) caches.set(file, readCache(file));
  const cache = caches.get(file);
  const entry = cache?.header.splits[split.sha256];
  if (cache === undefined || entry === undefined || entry.ids.length !== split.documents.length)
    return undefined;
  const tokens: number[][] = [];
  for (let index = 0; index < split.documents.length; index++) {
    const from = entry.offsets[index];
    const to = from + entry.lengths[index];
    if (entry.ids[index] !== split.documents[index].id || !(from >= 0 && to <= cache.ids.length))
      return undefined;
    tokens.push(Array.from(cache.ids.subarray(from, to)));
  }
  return tokens;
}

/** Each document's token ids, in split order: from the build's cache (cachedSplitTokens), else encoded here. */
export function brownSplitTokens(split: DatasetSplit): number[][] {
  return cachedSplitTokens(split) ?? split.documents.map((document) => encode(document.text));
}
