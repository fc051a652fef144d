/**
 * Deterministic sampling in one pass over a document stream (JSONL and parquet sources), so a
 * multi-GB shard is read once and never held in memory to draw a few samples.
 *
 * Rule (documented, and what a verifier can redraw from the same file):
 * 1. A document of L tokens holds n = floor(L / W) non-overlapping window slots of
 *    W = context + continuation tokens; documents shorter than W hold none. Slot k starts at
 *    k*W + c_k, where c_0 <= ... <= c_{n-1} are n uniform draws from [0, L - n*W], sorted
 *    (as in src/data/sampling.ts), from a Mulberry32 stream seeded with the first four bytes
 *    (little-endian uint32) of sha256("spg-sampling-stream:<role>:<seed>:<document id>").
 * 2. Slot k of a document has the priority given by the first six bytes (big-endian) of
 *    sha256("spg-sampling-stream:<role>:<seed>:<document id>:<k>"); ties, if any, go to the
 *    smaller (document id, k) in byte order.
 * 3. The samples are the `count` slots of smallest priority, in priority order. A split
 *    with fewer slots is an error (E_DATASET_TOO_SHORT): windows never overlap.
 * Each slot is a uniform random choice among all slots, independent of the order documents
 * come in. Only documents that could still place a slot among the `count` best are tokenized:
 * a document of B UTF-8 bytes has at most floor(B / W) slots (a GPT-2 token spans at least one
 * byte), so its best possible priority is known before tokenizing it.
 */
import { createHash } from "node:crypto";
import { SpgError } from "../errors.js";
import { Mulberry32 } from "./prng.js";
import { type DrawOptions, tokenHash } from "./sampling.js";
import type { DatasetDocument, Sample } from "./types.js";

interface Slot {
  priority: number;
  documentId: string;
  k: number;
  offset: number;
  tokens: number[];
}

function digest(role: string, seed: number, documentId: string, k?: number): Buffer {
  const key = `spg-sampling-stream:${role}:${seed}:${documentId}${k === undefined ? "" : `:${k}`}`;
  return createHash("sha256").update(key, "utf8").digest();
}

/** Priority of slot k of a document (rule 2). */
export function slotPriority(role: string, seed: number, documentId: string, k: number): number {
  return digest(role, seed, documentId, k).readUIntBE(0, 6);
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function before(
  a: Pick<Slot, "priority" | "documentId" | "k">,
  b: Pick<Slot, "priority" | "documentId" | "k">,
): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority;
  const ids = byteOrder(a.documentId, b.documentId);
  return ids !== 0 ? ids < 0 : a.k < b.k;
}

/**
 * Draws `count` samples from a stream of documents in one pass (rule above); `tokenize` turns
 * a document's text into token ids.
 */
export async function drawStreamedSamples(
  documents: AsyncIterable<DatasetDocument>,
  options: DrawOptions,
  tokenize: (text: string) => number[],
): Promise<Sample[]> {
  const { count, contextTokens, continuationTokens, seed, role } = options;
  const split = options.split ?? role;
  const windowTokens = contextTokens + continuationTokens;
  if (!Number.isInteger(count) || count < 0)
    throw new RangeError(`count must be an integer >= 0, got ${count}`);
  if (!Number.isInteger(windowTokens) || windowTokens < 1)
    throw new RangeError(`context + continuation must be a positive integer, got ${windowTokens}`);
  // The `count` best slots so far, best first.
  const best: Slot[] = [];
  let documentsSeen = 0;
  let longest = 0;
  // The longest document skipped by its byte count, tokenized only if the error message needs it.
  let longestSkipped = "";
  const admits = (slot: Pick<Slot, "priority" | "documentId" | "k">) =>
    best.length < count || before(slot, best[best.length - 1]);
  for await (const document of documents) {
    documentsSeen++;
    if (count === 0) continue;
    const possibleSlots = Math.floor(Buffer.byteLength(document.text, "utf8") / windowTokens);
    if (possibleSlots === 0) {
      if (document.text.length > longestSkipped.length) longestSkipped = document.text;
      continue;
    }
    const priorities = Array.from({ length: possibleSlots }, (_, k) =>
      slotPriority(role, seed, document.id, k),
    );
    if (!priorities.some((priority, k) => admits({ priority, documentId: document.id, k }))) continue;
    const tokens = tokenize(document.text);
    longest = Math.max(longest, tokens.length);
    const slots = Math.floor(tokens.length / windowTokens);
    if (slots === 0) continue;
    const slack = tokens.length - slots * windowTokens;
    const rng = new Mulberry32(digest(role, seed, document.id).readUInt32LE(0));
    const phases = Array.from({ length: slots }, () => rng.nextBelow(slack + 1)).sort((a, b) => a - b);
    for (let k = 0; k < slots; k++) {
      const candidate = { priority: priorities[k], documentId: document.id, k };
      if (!admits(candidate)) continue;
      const offset = k * windowTokens + phases[k];
      let at = best.length;
      while (at > 0 && before(candidate, best[at - 1])) at--;
      best.splice(at, 0, { ...candidate, offset, tokens: tokens.slice(offset, offset + windowTokens) });
      if (best.length > count) best.pop();
    }
  }
  if (best.length < count) {
    if (best.length === 0) longest = Math.max(longest, tokenize(longestSkipped).length);
    throw new SpgError(
      "E_DATASET_TOO_SHORT",
      `split "${split}" (${documentsSeen} documents) holds ${best.length} non-overlapping windows of ${windowTokens} tokens (context ${contextTokens} + continuation ${continuationTokens}), ${count} samples were asked for`,
      {
        field: "dataset.samples",
        fix:
          best.length > 0
            ? `lower --samples to at most ${best.length}, or lower --context, or use a larger split`
            : longest > continuationTokens
              ? `lower --context to at most ${longest - continuationTokens}, or use a split with longer documents`
              : "use a split with longer documents",
      },
    );
  }
  return best.map((slot, index) => ({
    sampleId: `${role}-${String(index).padStart(4, "0")}`,
    role,
    index,
    document: slot.documentId,
    offset: slot.offset,
    tokens: slot.tokens,
    contextTokens,
    continuationTokens,
    tokenHash: tokenHash(slot.tokens),
  }));
}
