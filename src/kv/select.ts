/**
 * Score-to-keep, shared by every eviction method (the kvpress pattern): a method computes
 * per-head scores over the slots; this turns them into kept slots. Protected slots (sinks,
 * recent window, observation window) are always kept; ineligible slots (unreadable by any
 * future query) never are. Ties go to the earlier slot (then the lower head), so the
 * result is deterministic.
 */
import { SpgError } from "../errors.js";

export type SelectionMode = "per-head" | "per-layer";

export interface SelectionInput {
  /** Per head, one score per slot (higher = keep). */
  scores: Float32Array[];
  /** Slots kept per head including protected ones; per-layer mode keeps keep*heads in all. */
  keep: number;
  /** [slots] 1 = always kept (when eligible). */
  protectedMask: Uint8Array;
  /** [slots] 1 = may be kept. */
  eligible: Uint8Array;
  mode: SelectionMode;
}

/** Kept slot indices per head, ascending. */
export function selectKept(input: SelectionInput): Int32Array[] {
  const { scores, protectedMask, eligible, mode } = input;
  const slots = eligible.length;
  if (!Number.isInteger(input.keep) || input.keep < 0) {
    throw new SpgError("E_KV_SELECT", `keep count ${input.keep} is not a non-negative integer`);
  }
  if (protectedMask.length !== slots) throw new SpgError("E_KV_SELECT", "protected mask length != slots");
  const kept: Uint8Array[] = scores.map((s, h) => {
    if (s.length !== slots)
      throw new SpgError("E_KV_SELECT", `head ${h}: ${s.length} scores for ${slots} slots`);
    const mask = new Uint8Array(slots);
    for (let i = 0; i < slots; i++) {
      if (Number.isNaN(s[i])) throw new SpgError("E_KV_SELECT", `head ${h} slot ${i}: score is NaN`);
      if (eligible[i] && protectedMask[i]) mask[i] = 1;
    }
    return mask;
  });
  const protectedCount = kept.length === 0 ? 0 : kept[0].reduce((a, b) => a + b, 0);
  // Candidates as slot indices (per-layer: head * slots + slot), ordered by score, then the
  // earlier slot, then the lower head.
  const candidates: number[] = [];
  for (let slot = 0; slot < slots; slot++) if (eligible[slot] && !protectedMask[slot]) candidates.push(slot);
  if (mode === "per-head") {
    const rest = Math.max(0, input.keep - protectedCount);
    scores.forEach((s, head) => {
      const order = Int32Array.from(candidates).sort((a, b) => s[b] - s[a] || a - b);
      for (let i = 0; i < Math.min(rest, order.length); i++) kept[head][order[i]] = 1;
    });
  } else {
    const rest = Math.max(0, input.keep * scores.length - protectedCount * scores.length);
    const all: number[] = [];
    scores.forEach((_, head) => {
      for (const slot of candidates) all.push(head * slots + slot);
    });
    const order = Int32Array.from(all).sort((a, b) => {
      const sa = scores[(a / slots) | 0][a % slots];
      const sb = scores[(b / slots) | 0][b % slots];
      return sb - sa || (a % slots) - (b % slots) || ((a / slots) | 0) - ((b / slots) | 0);
    });
    for (let i = 0; i < Math.min(rest, order.length); i++) kept[(order[i] / slots) | 0][order[i] % slots] = 1;
  }
  return kept.map((mask) => {
    const out: number[] = [];
    for (let i = 0; i < slots; i++) if (mask[i]) out.push(i);
    return Int32Array.from(out);
  });
}

/** Slot count for a keep ratio of the layer's slots (rounded to nearest). */
export function keepCount(ratio: number, slots: number): number {
  return Math.round(ratio * slots);
}

/**
 * Slots a future query can still read. On a local layer a query at position p reads keys
 * with p - pos < window; the next query sits at (last cached position + 1) and every later
 * one reads even less, so keeping these is lossless. Global layers: everything.
 */
export function readableMask(positions: Int32Array, local: boolean, windowSize: number): Uint8Array {
  const mask = new Uint8Array(positions.length);
  if (positions.length === 0) return mask;
  const next = positions[positions.length - 1] + 1;
  for (let i = 0; i < positions.length; i++) mask[i] = !local || next - positions[i] < windowSize ? 1 : 0;
  return mask;
}

/** Slots whose true position is among the first `sinks` positions or the last `recent` slots. */
export function sinkRecentMask(positions: Int32Array, sinks: number, recent: number): Uint8Array {
  const n = positions.length;
  const mask = new Uint8Array(n);
  for (let i = 0; i < Math.min(sinks, n); i++) mask[i] = 1;
  for (let i = Math.max(0, n - recent); i < n; i++) mask[i] = 1;
  return mask;
}

/** Elementwise AND of two masks. */
export function andMask(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] & b[i];
  return out;
}

/**
 * 1D pooling over slots with an odd kernel, stride 1, "same" length (SnapKV's smoothing).
 * avg divides by the kernel size (zero padding counted, as PyTorch's avg_pool1d default);
 * max ignores the padding.
 */
export function pool1d(scores: Float32Array, kernel: number, mode: "max" | "avg"): Float32Array {
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) {
    throw new SpgError("E_KV_SELECT", `pooling kernel ${kernel} must be an odd positive integer`);
  }
  const n = scores.length;
  const half = (kernel - 1) / 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let acc = mode === "max" ? Number.NEGATIVE_INFINITY : 0;
    for (let j = Math.max(0, i - half); j <= Math.min(n - 1, i + half); j++) {
      acc = mode === "max" ? Math.max(acc, scores[j]) : acc + scores[j];
    }
    out[i] = mode === "max" ? acc : acc / kernel;
  }
  return out;
}
