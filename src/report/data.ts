/**
 * What the report plots, derived from a bundle's (schema-valid) records and fingerprints.
 * Pure functions; the figures per method come from summarize() (src/measure/summary.ts),
 * these add the per-sample and per-layer views.
 */
import type { LayerFingerprint, SampleRecord, Summary } from "../bundle/types.js";
import { methodOfVariant } from "../config/sweep.js";
import { paretoFrontier, paretoFrontiersByGroup, type TradeoffPoint } from "../measure/pareto.js";

export interface SamplePoint {
  method: string;
  sampleId: string;
  sampleIndex: number;
  /** 100 · (exp((nllCompressed − nllBaseline) / scoredTokens) − 1): this sample's perplexity change. */
  pplIncreasePct: number;
  /** klSum / scoredTokens (nats per scored token). */
  klPerToken: number;
  top1Agreement: number;
  ratio: number;
}

/** One point per record; records with no scored tokens have no per-token figures and are left out. */
export function samplePoints(records: readonly SampleRecord[]): SamplePoint[] {
  return records
    .filter((r) => r.scoredTokens > 0 && r.kvBytesCompressed > 0)
    .map((r) => ({
      method: r.method,
      sampleId: r.sampleId,
      sampleIndex: r.sampleIndex,
      pplIncreasePct: 100 * (Math.exp((r.nllCompressed - r.nllBaseline) / r.scoredTokens) - 1),
      klPerToken: r.klSum / r.scoredTokens,
      top1Agreement: r.top1Matches / r.scoredTokens,
      ratio: r.kvBytesBaseline / r.kvBytesCompressed,
    }));
}

export interface LayerCell {
  method: string;
  layer: number;
  samples: number;
  /** Mean over samples of tokensKept / tokensTotal. */
  keptFraction: number;
  /** Mean bytes over samples. */
  meanBytes: number;
}

/** Per (method, layer): mean kept fraction and mean bytes over samples, in method order then layer. */
export function layerCells(
  fingerprints: readonly LayerFingerprint[],
  methodOrder: readonly string[],
): LayerCell[] {
  const sums = new Map<string, { method: string; layer: number; n: number; kept: number; bytes: number }>();
  for (const f of fingerprints) {
    const key = JSON.stringify([f.method, f.layer]);
    const cell = sums.get(key) ?? { method: f.method, layer: f.layer, n: 0, kept: 0, bytes: 0 };
    cell.n += 1;
    cell.kept += f.tokensTotal > 0 ? f.tokensKept / f.tokensTotal : 0;
    cell.bytes += f.bytes;
    sums.set(key, cell);
  }
  const rank = (method: string) => {
    const i = methodOrder.indexOf(method);
    return i < 0 ? methodOrder.length : i;
  };
  return [...sums.values()]
    .map((c) => ({
      method: c.method,
      layer: c.layer,
      samples: c.n,
      keptFraction: c.kept / c.n,
      meanBytes: c.bytes / c.n,
    }))
    .sort(
      (a, b) =>
        rank(a.method) - rank(b.method) ||
        (a.method < b.method ? -1 : a.method > b.method ? 1 : 0) ||
        a.layer - b.layer,
    );
}

export interface MethodPoint extends TradeoffPoint {
  /** The method a sweep variant belongs to ("spg" for "spg@ratio=8"); the method itself otherwise. */
  family: string;
  pplLow: number;
  pplHigh: number;
  /** On the frontier of all methods. */
  onFrontier: boolean;
  /** On the frontier of its family's points (its sweep). */
  onFamilyFrontier: boolean;
}

/** A sweep variant's method ("spg" for "spg@ratio=8"). */
export function familyOf(method: string): string {
  return methodOfVariant(method);
}

/** Every method's (ratio, perplexity increase) with its interval, and whether it is on the frontier. */
export function methodPoints(summary: Summary, methodOrder: readonly string[]): MethodPoint[] {
  const points = methodOrder
    .filter((m) => Object.hasOwn(summary.methods, m))
    .map((method) => {
      const s = summary.methods[method];
      return {
        method,
        ratio: s.compressionRatio,
        pplIncreasePct: s.perplexityIncreasePct,
        pplLow: s.intervals.perplexityIncreasePct.low,
        pplHigh: s.intervals.perplexityIncreasePct.high,
      };
    })
    .filter((p) => Number.isFinite(p.ratio) && Number.isFinite(p.pplIncreasePct));
  const frontier = new Set(paretoFrontier(points).map((p) => p.method));
  const familyFrontier = new Set(
    [...paretoFrontiersByGroup(points, (p) => familyOf(p.method)).values()].flat().map((p) => p.method),
  );
  return points.map((p) => ({
    ...p,
    family: familyOf(p.method),
    onFrontier: frontier.has(p.method),
    onFamilyFrontier: familyFrontier.has(p.method),
  }));
}

/** Methods in config order, then any the records name that the config does not (sorted). */
export function methodOrderOf(
  configMethods: readonly string[],
  records: readonly { method: string }[],
): string[] {
  const order = [...configMethods];
  const extra = [...new Set(records.map((r) => r.method))].filter((m) => !order.includes(m)).sort();
  return [...order, ...extra];
}
