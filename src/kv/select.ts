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
  // Candidates in tie order: per head the slot; per layer slot * heads + head (the earlier
  // slot, then the lower head).
  const candidates: number[] = [];
  for (let slot = 0; slot < slots; slot++) if (eligible[slot] && !protectedMask[slot]) candidates.push(slot);
  if (mode === "per-head") {
    const rest = Math.max(0, input.keep - protectedCount);
    const members = Int32Array.from(candidates);
    scores.forEach((s, head) => {
      for (const slot of topMembers(s, members, rest)) kept[head][slot] = 1;
    });
  } else {
    const heads = scores.length;
    const rest = Math.max(0, input.keep * heads - protectedCount * heads);
    const members = new Int32Array(candidates.length * heads);
    const flat = new Float32Array(slots * heads);
    candidates.forEach((slot, i) => {
      for (let head = 0; head < heads; head++) {
        members[i * heads + head] = slot * heads + head;
        flat[slot * heads + head] = scores[head][slot];
      }
    });
    for (const member of topMembers(flat, members, rest)) kept[member % heads][(member / heads) | 0] = 1;
  }
  return kept.map((mask) => {
    const out: number[] = [];
    for (let i = 0; i < slots; i++) if (mask[i]) out.push(i);
    return Int32Array.from(out);
  });
}

/**
 * The `take` members (ascending indices into `values`) with the highest values, ties to the
 * earlier member: the same set as sorting by (value descending, member ascending) and taking
 * a prefix, found from the take-th largest value (selected, not sorted) instead of a
 * comparator sort. Returned in ascending order.
 */
export function topMembers(values: ArrayLike<number>, members: Int32Array, take: number): Int32Array {
  const count = Math.min(take, members.length);
  if (count <= 0) return new Int32Array(0);
  if (count === members.length) return members.slice();
  const picked = new Float64Array(members.length);
  for (let i = 0; i < members.length; i++) picked[i] = values[members[i]];
  const cut = kthSmallest(picked, members.length - count);
  let above = 0;
  for (let i = 0; i < members.length; i++) if (values[members[i]] > cut) above++;
  let ties = count - above;
  const out = new Int32Array(count);
  let n = 0;
  for (let i = 0; i < members.length; i++) {
    const v = values[members[i]];
    if (v > cut || (v === cut && ties-- > 0)) out[n++] = members[i];
  }
  return out;
}

/**
 * The k-th smallest (0-based) of `a`, as a numeric sort would place it (quickselect, median of
 * three; reorders `a`). With a NaN present it sorts instead, so NaN ranks last as in a sort.
 */
export function kthSmallest(a: Float64Array, k: number): number {
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i])) return a.sort()[k];
  }
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // median of a[lo], a[mid], a[hi] as the pivot
    const x = a[lo];
    const y = a[mid];
    const z = a[hi];
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    // [lo, j] <= pivot <= [i, hi], and anything strictly between equals the pivot
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return pivot;
  }
  return a[k];
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
  // one loop per mode: a mode test per element was most of the cost
  if (mode === "max") {
    for (let i = 0; i < n; i++) {
      let acc = Number.NEGATIVE_INFINITY;
      const to = Math.min(n - 1, i + half);
      for (let j = Math.max(0, i - half); j <= to; j++) acc = Math.max(acc, scores[j]);
      out[i] = acc;
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    let acc = 0;
    const to = Math.min(n - 1, i + half);
    for (let j = Math.max(0, i - half); j <= to; j++) acc += scores[j];
    out[i] = acc / kernel;
  }
  return out;
}
