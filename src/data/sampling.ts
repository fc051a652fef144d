/**
 * Deterministic sampling: seed -> (document, offset) windows of `context + continuation`
 * tokens, each hashed so a verifier can check calibration and evaluation never share one.
 *
 * Rule (documented, and what a verifier can redraw):
 * 1. Documents shorter than one window are skipped; the rest keep the order given (the
 *    split's order).
 * 2. Each eligible document of L tokens holds n = floor(L / W) non-overlapping windows of
 *    W tokens. Their offsets are k*W + c_k, where c_0 <= ... <= c_{n-1} are n uniform draws
 *    from [0, L - n*W], sorted: a random phase per window that never makes two overlap.
 * 3. All these windows form one pool, shuffled (Fisher-Yates); the first `count` are the
 *    samples, in that order.
 * 4. Only when `count` exceeds the pool are further windows drawn uniformly over every
 *    distinct (document, offset) not yet taken; these may overlap earlier ones.
 * All randomness comes from one Mulberry32 stream per role, seeded with the first four
 * bytes (little-endian uint32) of sha256("spg-sampling:<role>:<seed>"), so evaluation and
 * calibration draws with the same seed are independent of each other.
 */
import { createHash } from "node:crypto";
import { SpgError } from "../errors.js";
import { sha256Hex } from "../numeric/sha256.js";
import { Mulberry32 } from "./prng.js";
import type { Sample } from "./types.js";

export interface TokenizedDocument {
  id: string;
  tokens: readonly number[];
}

export interface DrawOptions {
  count: number;
  contextTokens: number;
  continuationTokens: number;
  seed: number;
  role: Sample["role"];
  /** Split name, for error messages. */
  split?: string;
}

/** sha256 hex of token ids written as little-endian uint32. */
export function tokenHash(tokens: readonly number[]): string {
  const bytes = new Uint8Array(tokens.length * 4);
  const view = new DataView(bytes.buffer);
  tokens.forEach((token, i) => {
    if (!Number.isInteger(token) || token < 0 || token > 0xffffffff) {
      throw new RangeError(`token id at ${i} is not a uint32: ${token}`);
    }
    view.setUint32(i * 4, token, true);
  });
  return sha256Hex(bytes);
}

/** The PRNG seed of one role's draw (see the rule above). */
export function streamSeed(seed: number, role: Sample["role"]): number {
  return createHash("sha256").update(`spg-sampling:${role}:${seed}`, "utf8").digest().readUInt32LE(0);
}

interface Window {
  documentIndex: number;
  offset: number;
}

function checkOptions(options: DrawOptions): void {
  const integers: [string, number, number][] = [
    ["count", options.count, 0],
    ["contextTokens", options.contextTokens, 1],
    ["continuationTokens", options.continuationTokens, 0],
  ];
  for (const [name, value, minimum] of integers) {
    if (!Number.isInteger(value) || value < minimum)
      throw new RangeError(`${name} must be an integer >= ${minimum}, got ${value}`);
  }
}

/** Draws `count` samples (see the rule above). E_DATASET_TOO_SHORT when the split cannot hold them. */
export function drawSamples(documents: readonly TokenizedDocument[], options: DrawOptions): Sample[] {
  checkOptions(options);
  const { count, contextTokens, continuationTokens, seed, role } = options;
  const split = options.split ?? role;
  const windowTokens = contextTokens + continuationTokens;
  if (count === 0) return [];
  const eligible = documents.filter((d) => d.tokens.length >= windowTokens);
  if (eligible.length === 0) {
    const longest = documents.reduce((max, d) => Math.max(max, d.tokens.length), 0);
    const fits = longest - continuationTokens;
    throw new SpgError(
      "E_DATASET_TOO_SHORT",
      `no document of split "${split}" (${documents.length} documents) is long enough for one sample: the longest has ${longest} tokens, a sample needs ${windowTokens} (context ${contextTokens} + continuation ${continuationTokens})`,
      {
        field: "dataset.contextTokens",
        fix:
          fits > 0
            ? `lower --context to at most ${fits} (or --continuation), or use a split with longer documents`
            : "use a split with longer documents (for text files, separate documents with two blank lines so paragraphs group)",
      },
    );
  }
  const rng = new Mulberry32(streamSeed(seed, role));
  const pool: Window[] = [];
  eligible.forEach((document, documentIndex) => {
    const length = document.tokens.length;
    const windows = Math.floor(length / windowTokens);
    const slack = length - windows * windowTokens;
    const phases = Array.from({ length: windows }, () => rng.nextBelow(slack + 1)).sort((a, b) => a - b);
    phases.forEach((phase, k) => {
      pool.push({ documentIndex, offset: k * windowTokens + phase });
    });
  });
  rng.shuffle(pool);
  const chosen = pool.slice(0, count);
  if (chosen.length < count)
    chosen.push(...overlappingWindows(eligible, windowTokens, count - chosen.length, chosen, rng, split));
  return chosen.map(({ documentIndex, offset }, index) => {
    const document = eligible[documentIndex];
    const tokens = document.tokens.slice(offset, offset + windowTokens);
    return {
      sampleId: `${role}-${String(index).padStart(4, "0")}`,
      role,
      index,
      document: document.id,
      offset,
      tokens,
      contextTokens,
      continuationTokens,
      tokenHash: tokenHash(tokens),
    };
  });
}

/** Step 4: more windows than fit without overlap; distinct (document, offset), uniform over all of them. */
function overlappingWindows(
  eligible: readonly TokenizedDocument[],
  windowTokens: number,
  needed: number,
  taken: readonly Window[],
  rng: Mulberry32,
  split: string,
): Window[] {
  const starts = eligible.map((d) => d.tokens.length - windowTokens + 1);
  const distinct = starts.reduce((a, b) => a + b, 0);
  if (taken.length + needed > distinct) {
    throw new SpgError(
      "E_DATASET_TOO_SHORT",
      `split "${split}" holds only ${distinct} distinct windows of ${windowTokens} tokens, ${taken.length + needed} samples were asked for`,
      { field: "dataset.samples", fix: `lower --samples to at most ${distinct}, or lower --context` },
    );
  }
  const seen = new Set(taken.map((w) => `${w.documentIndex}:${w.offset}`));
  const extra: Window[] = [];
  while (extra.length < needed) {
    let position = rng.nextBelow(distinct);
    let documentIndex = 0;
    while (position >= starts[documentIndex]) position -= starts[documentIndex++];
    const key = `${documentIndex}:${position}`;
    if (seen.has(key)) continue;
    seen.add(key);
    extra.push({ documentIndex, offset: position });
  }
  return extra;
}

/** Token hashes present in both sample lists (calibration vs evaluation must share none). */
export function sharedSampleHashes(a: readonly Sample[], b: readonly Sample[]): string[] {
  const inA = new Set(a.map((s) => s.tokenHash));
  return [...new Set(b.map((s) => s.tokenHash).filter((h) => inA.has(h)))];
}

/** E_SAMPLES_SHARED when a calibration sample is also an evaluation sample (same token hash). */
export function assertDisjointSamples(evaluation: readonly Sample[], calibration: readonly Sample[]): void {
  const shared = sharedSampleHashes(evaluation, calibration);
  if (shared.length > 0) {
    throw new SpgError(
      "E_SAMPLES_SHARED",
      `${shared.length} calibration sample(s) have the same tokens as evaluation samples (first sha256 ${shared[0]})`,
      { field: "dataset.calibrationSplit", fix: "draw calibration from a different split than evaluation" },
    );
  }
}
