/**
 * Each KV layer fingerprint against what its method's parameters give on the model's shapes
 * (src/kv/stored-layout.ts), without running the model: a producer who edits a method's
 * parameters after the run, or shrinks the slots and bytes it states (a higher ratio), fails
 * here and not only under replay.
 *
 *   - E_BUDGET_KEPT: the slots kept are not the budget's. Without local-window trimming the
 *     count is exact (heads × the per-head budget of the whole context). With it, a local
 *     layer keeps what its readable window allows, which the bundle does not state; but one
 *     model has one layout, so every sample keeps the same count on a (method, layer), every
 *     trimming method of a layer must agree on one readable window, and every layer that is
 *     not global must agree on one window (GPT-Neo has one window size).
 *   - E_BUDGET_BYTES: given its kept slots, the layer's bytes, bit histogram and
 *     full-precision heads are not the stored form's (exact for full, window-trim, streaming,
 *     quant and per-head eviction; bytes within the kept sets' encodings for per-layer
 *     selection; spg's stage 2 only its reserved heads, the rest following the scores).
 * Which slots a scorer keeps, and what spg's stage 2 stores per head, stay replay's to check.
 */
import {
  type EnvironmentFile,
  type FingerprintLine,
  isWeightFingerprint,
  type LayerFingerprint,
  MAX_BIT_WIDTH,
} from "../../bundle/types.js";
import type { MethodConfig, RunConfig } from "../../config/types.js";
import { type StoredForm, type StoredLayout, storedLayoutOf } from "../../kv/stored-layout.js";
import { FailureCollector } from "../collect.js";
import { type Finding, pass } from "../types.js";

const CHECK = "budget" as const;

/** Readable slots per head a trimming method's kept count allows on a layer: [lo, hi]. */
export type Window = readonly [number, number];

/** The eligible counts e in [0, max] with f(e) === value, f nondecreasing: an interval, or undefined. */
export function preimage(f: (e: number) => number, value: number, max: number): Window | undefined {
  let a = 0;
  let b = max;
  while (a < b) {
    const m = Math.floor((a + b) / 2);
    if (f(m) >= value) b = m;
    else a = m + 1;
  }
  if (f(a) !== value) return undefined;
  const lo = a;
  b = max;
  while (a < b) {
    const m = Math.ceil((a + b) / 2);
    if (f(m) <= value) a = m;
    else b = m - 1;
  }
  return [lo, a];
}

function intersect(a: Window, b: Window): Window | undefined {
  const lo = Math.max(a[0], b[0]);
  const hi = Math.min(a[1], b[1]);
  return lo <= hi ? [lo, hi] : undefined;
}

/**
 * An expected histogram's counts by width, 0 where it names none (zero counts say nothing);
 * null when it names a nonzero count at a width no schema-valid histogram can hold.
 */
function countsByWidth(histogram: Record<string, number>): Float64Array | null {
  const counts = new Float64Array(MAX_BIT_WIDTH + 1);
  for (const [width, count] of Object.entries(histogram)) {
    if (count === 0) continue;
    const index = Number(width);
    if (!Number.isInteger(index) || index < 1 || index > MAX_BIT_WIDTH || String(index) !== width)
      return null;
    counts[index] = count;
  }
  return counts;
}

/**
 * The stated histogram's nonzero counts are exactly `expected`'s. Read by width, not by its
 * keys (integer-like keys are an object's elements, which a walk turns into strings): it runs
 * per line, and a schema-valid histogram names only widths 1..MAX_BIT_WIDTH.
 */
function sameHistogram(stated: Record<string, number>, expected: Float64Array): boolean {
  for (let width = 1; width <= MAX_BIT_WIDTH; width++) {
    if ((stated[width] ?? 0) !== expected[width]) return false;
  }
  return true;
}

/** A layout's stored form for one kept total, with its histogram by width (undefined: none exact): the same for every sample. */
interface ExpectedForm {
  form: StoredForm;
  histogram: Float64Array | null | undefined;
}

/** `problems` with `text` added (the list made only for a failure: most lines fail nothing). */
function withProblem(problems: string[] | undefined, text: string): string[] {
  const list = problems ?? [];
  list.push(text);
  return list;
}

/** Where a fingerprint line is, for a failure's words (made only then: most lines fail nothing). */
function fingerprintWhere(line: LayerFingerprint): string {
  return `fingerprint ${line.sampleId}/${line.method}/layer ${line.layer}`;
}

/** The kept total a (method, layer)'s first sample states, and the readable windows it allows. */
interface FirstKept {
  total: number;
  sampleId: string;
  window?: Window;
}

/**
 * One (method, layer): its layout, what its first line fixed, and what the last kept total
 * gave (every sample keeps one total on a layer, so one entry is enough; a hostile bundle's
 * many totals cost a recomputation each, never memory).
 */
interface LayerSlot {
  key: string;
  layout: StoredLayout | string | undefined;
  first: FirstKept | undefined;
  last: { total: number; expected: ExpectedForm } | undefined;
  lastWindow: { perHead: number; window: Window | undefined } | undefined;
}

export class BudgetFold {
  private readonly failures = new FailureCollector(CHECK);
  private readonly methods: Map<string, MethodConfig>;
  /** Per method, per layer: its layout and what its lines so far fixed (found without building a key per line). */
  private readonly slots = new Map<string, (LayerSlot | undefined)[]>();
  /** Per (method, layer): the kept total the first sample states, and the readable windows it allows. */
  private readonly kept = new Map<string, FirstKept>();
  private readonly contextTokens: number;
  private checked = 0;

  constructor(
    private readonly config: RunConfig,
    private readonly environment: EnvironmentFile,
  ) {
    this.methods = new Map(config.methods.map((method) => [method.name, method]));
    this.contextTokens = config.dataset.contextTokens;
  }

  private slotOf(method: MethodConfig, layer: number): LayerSlot {
    let byLayer = this.slots.get(method.name);
    if (byLayer === undefined) {
      byLayer = [];
      this.slots.set(method.name, byLayer);
    }
    let slot = byLayer[layer];
    if (slot === undefined) {
      const { heads, hiddenSize } = this.environment.model;
      slot = {
        key: `${method.name}\u0000${layer}`,
        layout: storedLayoutOf(method, {
          heads,
          headDim: hiddenSize / heads,
          contextTokens: this.contextTokens,
          dtype: this.config.kv.baselineDtype,
          layer,
        }),
        first: undefined,
        last: undefined,
        lastWindow: undefined,
      };
      byLayer[layer] = slot;
    }
    return slot;
  }

  /** One fingerprints.jsonl line (schema-valid); others' problems (unknown method, layer) are consistency's. */
  fingerprint(line: FingerprintLine): void {
    if (isWeightFingerprint(line)) return;
    const method = this.methods.get(line.method);
    const { heads, layers } = this.environment.model;
    if (method === undefined || line.layer >= layers) return;
    const slot = this.slotOf(method, line.layer);
    const layout = slot.layout;
    if (layout === undefined) return;
    if (typeof layout === "string") {
      this.failures.add("E_BUDGET_KEPT", `${fingerprintWhere(line)}: ${layout}`);
      return;
    }
    this.checked += 1;
    const total = line.tokensKept;
    const first = slot.first;
    const c = this.contextTokens;
    if (first !== undefined && first.total !== total) {
      this.failures.add(
        "E_BUDGET_KEPT",
        `${fingerprintWhere(line)}: keeps ${total} slots, sample ${first.sampleId} keeps ${first.total} on the same layer; how many a method keeps follows from its params and the model, never the sample`,
      );
    }
    if (total % heads !== 0) {
      this.failures.add(
        "E_BUDGET_KEPT",
        `${fingerprintWhere(line)}: ${total} kept slots are not the same count for each of the ${heads} heads (per-layer selection too keeps heads × the per-head budget)`,
      );
      return;
    }
    const perHead = total / heads;
    if (!layout.trims) {
      const expected = layout.keptPerHead(c);
      if (perHead !== expected) {
        this.failures.add(
          "E_BUDGET_KEPT",
          `${fingerprintWhere(line)}: keeps ${perHead} slots per head; ${method.kind} with these params keeps ${expected} of a ${c}-token context`,
        );
      }
    } else {
      if (slot.lastWindow?.perHead !== perHead) {
        slot.lastWindow = { perHead, window: preimage(layout.keptPerHead, perHead, c) };
      }
      const window = slot.lastWindow.window;
      if (window === undefined) {
        this.failures.add(
          "E_BUDGET_KEPT",
          `${fingerprintWhere(line)}: keeps ${perHead} slots per head, which ${method.kind} with these params keeps for no readable window of a ${c}-token context (at most ${layout.keptPerHead(c)})`,
        );
      } else if (first === undefined) {
        this.setFirst(slot, { total, sampleId: line.sampleId, window });
      }
    }
    if (first === undefined && slot.first === undefined)
      this.setFirst(slot, { total, sampleId: line.sampleId });
    this.checkStored(line, layout, slot, total);
  }

  private setFirst(slot: LayerSlot, first: FirstKept): void {
    slot.first = first;
    this.kept.set(slot.key, first);
  }

  private expectedForm(layout: StoredLayout, slot: LayerSlot, total: number): ExpectedForm {
    if (slot.last?.total !== total) {
      const form = layout.stored(total);
      const histogram = form.bitsHistogram === undefined ? undefined : countsByWidth(form.bitsHistogram);
      slot.last = { total, expected: { form, histogram } };
    }
    return slot.last.expected;
  }

  private checkStored(
    fingerprint: LayerFingerprint,
    layout: StoredLayout,
    slot: LayerSlot,
    total: number,
  ): void {
    const { form, histogram } = this.expectedForm(layout, slot, total);
    // Made only for a failure (most lines fail nothing): no array per line.
    let problems: string[] | undefined;
    if (fingerprint.headsFullPrecision !== form.headsFullPrecision) {
      problems = withProblem(
        problems,
        `${fingerprint.headsFullPrecision} full-precision heads, the params give ${form.headsFullPrecision}`,
      );
    }
    if (
      form.bytes !== undefined &&
      (fingerprint.bytes < form.bytes.min || fingerprint.bytes > form.bytes.max)
    ) {
      const expected =
        form.bytes.min === form.bytes.max ? `${form.bytes.min}` : `${form.bytes.min}..${form.bytes.max}`;
      problems = withProblem(
        problems,
        `${fingerprint.bytes} bytes, its ${total} kept slots are stored in ${expected}`,
      );
    }
    if (
      histogram !== undefined &&
      (histogram === null || !sameHistogram(fingerprint.bitsHistogram, histogram))
    ) {
      problems = withProblem(
        problems,
        `bit histogram ${JSON.stringify(fingerprint.bitsHistogram)}, its ${total} kept slots are ${JSON.stringify(form.bitsHistogram)}`,
      );
    }
    if (form.bitsBounds !== undefined) {
      const { widths, atLeast } = form.bitsBounds;
      const stated = Object.entries(fingerprint.bitsHistogram).filter(([, count]) => count !== 0);
      const foreign = stated.filter(([width]) => !widths.includes(Number(width))).map(([width]) => width);
      if (foreign.length > 0) {
        problems = withProblem(
          problems,
          `bit histogram holds widths ${foreign.join(", ")}, the params store only ${widths.join(", ")}`,
        );
      }
      for (const [width, least] of Object.entries(atLeast)) {
        const count = fingerprint.bitsHistogram[width] ?? 0;
        if (count < least) {
          problems = withProblem(
            problems,
            `${count} values at ${width} bits, its reserved heads alone store ${least} at the baseline dtype`,
          );
        }
      }
    }
    if (problems !== undefined)
      this.failures.add("E_BUDGET_BYTES", `${fingerprintWhere(fingerprint)}: ${problems.join("; ")}`);
  }

  /**
   * Per layer, the readable slots per head its trimming methods' kept counts allow (what they
   * agree on), and the layers where they do not agree on any. The model check holds these to
   * the verifier's checkpoint, when it has one.
   */
  readableWindows(): {
    windows: Map<number, { window: Window; methods: string[] }>;
    conflicts: string[];
  } {
    const windows = new Map<number, { window: Window; methods: string[] }>();
    const conflicts: string[] = [];
    for (const [key, { window }] of this.kept) {
      if (window === undefined) continue;
      const [method, layerText] = key.split("\u0000");
      const layer = Number(layerText);
      const seen = windows.get(layer);
      if (seen === undefined) {
        windows.set(layer, { window, methods: [method] });
        continue;
      }
      const both = intersect(seen.window, window);
      if (both === undefined) {
        conflicts.push(
          `layer ${layer}: ${method}'s kept slots need a readable window of ${window[0]}..${window[1]} slots per head, ${seen.methods.join(", ")}'s ${seen.window[0]}..${seen.window[1]}: one model reads one window`,
        );
        continue;
      }
      windows.set(layer, { window: both, methods: [...seen.methods, method] });
    }
    return { windows, conflicts };
  }

  /** The findings, once every fingerprint is folded. */
  findings(): Finding[] {
    const { failures, contextTokens: c } = this;
    // One model, one layout: the trimming methods of a layer agree on its readable window.
    const { windows, conflicts } = this.readableWindows();
    for (const conflict of conflicts) failures.add("E_BUDGET_KEPT", conflict);
    // Every layer that is not global (its window short of the context) has the model's one window size.
    let local: { window: Window; layers: number[] } | undefined;
    for (const [layer, { window }] of [...windows].sort(([a], [b]) => a - b)) {
      if (window[1] >= c) continue;
      if (local === undefined) {
        local = { window, layers: [layer] };
        continue;
      }
      const both = intersect(local.window, window);
      if (both === undefined) {
        failures.add(
          "E_BUDGET_KEPT",
          `layer ${layer} keeps as if its readable window were ${window[0]}..${window[1]} slots per head, layers ${local.layers.join(", ")} as if ${local.window[0]}..${local.window[1]}: the model's local layers share one window size`,
        );
        continue;
      }
      local = { window: both, layers: [...local.layers, layer] };
    }
    if (failures.size > 0) return failures.findings();
    return [
      pass(
        CHECK,
        `${this.checked} layer fingerprints keep and store what their methods' params give on ${this.environment.model.heads} heads × ${c} slots` +
          (local === undefined ? "" : `; layers ${local.layers.join(", ")} read as local`),
      ),
    ];
  }
}
