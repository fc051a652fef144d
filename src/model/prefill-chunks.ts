/**
 * How a chunked prefill splits the context into passes (kv.prefillChunkTokens,
 * kv.prefillChunkSplit). No onnxruntime here: the hardware check sizes the widest pass with
 * it before anything loads.
 */
import { SpgError } from "../errors.js";

/**
 * "balanced": as few passes as chunks of `tokens` allow, of equal size (the later ones one
 * row larger where the context does not divide), so no pass holds more rows, nor reads more
 * keys, than the split needs (320 tokens in chunks of 256: two passes of 160, not 64 and 256).
 * "remainder-first": passes of `tokens`, the first one the remainder (what runs proved
 * before the field were split by).
 */
export type PrefillChunkSplit = "balanced" | "remainder-first";

export const PREFILL_CHUNK_SPLITS: readonly PrefillChunkSplit[] = ["balanced", "remainder-first"];

/**
 * A prefill run in query chunks against the growing cache: onnxruntime then holds one layer's
 * attention as [heads, chunk, context + chunk] instead of [heads, context, context], whose
 * copies (scores, bias sum, softmax, If output) dominate a long prefill's memory.
 */
export interface PrefillChunking {
  /** Most query rows per forward pass (kv.prefillChunkTokens). */
  tokens: number;
  /**
   * Rows the last pass must hold: the observation window, whose attention rows and window
   * sums come from the last pass only.
   */
  lastRows: number;
  /** Default "remainder-first" (kv.prefillChunkSplit absent). */
  split?: PrefillChunkSplit;
}

/** `total` rows in ceil(total / most) passes of equal size, the larger ones last. */
function evenPasses(total: number, most: number): number[] {
  const passes = Math.ceil(total / most);
  const base = Math.floor(total / passes);
  const larger = total - base * passes;
  return Array.from({ length: passes }, (_, i) => (i >= passes - larger ? base + 1 : base));
}

/**
 * Query rows per pass, in order; the last pass holds at least `lastRows` rows (capped at the
 * context). Balanced: equal passes of at most `tokens` rows, or, when those would be fewer
 * than `lastRows`, a last pass of `lastRows` after equal passes over the rest. Remainder
 * first: the last pass holds max(tokens, lastRows) rows, the passes before it `tokens` each,
 * the first one the remainder.
 */
export function prefillChunkSizes(count: number, chunks: PrefillChunking): number[] {
  for (const [field, value] of [
    ["tokens", chunks.tokens],
    ["lastRows", chunks.lastRows],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new SpgError(
        "E_RUNTIME_OPTION",
        `prefill chunk ${field} must be a positive integer, got ${value}`,
        {
          field: field === "tokens" ? "kv.prefillChunkTokens" : "kv.observationWindow",
          fix: "set kv.prefillChunkTokens (--prefill-chunk) to a positive number of tokens",
        },
      );
    }
  }
  const split = chunks.split ?? "remainder-first";
  if (!PREFILL_CHUNK_SPLITS.includes(split)) {
    throw new SpgError("E_RUNTIME_OPTION", `unknown prefill chunk split ${String(split)}`, {
      field: "kv.prefillChunkSplit",
      fix: `use one of ${PREFILL_CHUNK_SPLITS.join(", ")}`,
    });
  }
  if (split === "balanced") {
    const even = evenPasses(count, chunks.tokens);
    if (even[even.length - 1] >= chunks.lastRows) return even;
    const last = Math.min(count, chunks.lastRows);
    return last === count ? [count] : [...evenPasses(count - last, chunks.tokens), last];
  }
  const last = Math.min(count, Math.max(chunks.tokens, chunks.lastRows));
  const sizes = [last];
  let left = count - last;
  while (left > 0) {
    const size = Math.min(chunks.tokens, left);
    sizes.unshift(size);
    left -= size;
  }
  return sizes;
}
