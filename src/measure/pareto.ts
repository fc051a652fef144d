/**
 * The trade-off frontier between compression and quality: a method's point is on the
 * frontier when no other point compresses at least as much with at most the same
 * perplexity increase and is strictly better in one of the two.
 *
 * Ties are deterministic: points with identical (ratio, increase) are either all on the
 * frontier or all off it (neither dominates the other), and the result is ordered by
 * ratio ascending, then increase ascending, then method name (code-unit order).
 */
import { SpgError } from "../errors.js";

export interface TradeoffPoint {
  method: string;
  /** Compression ratio: baseline bytes / compressed bytes (higher is better). */
  ratio: number;
  /** Perplexity increase in percent (lower is better). */
  pplIncreasePct: number;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Ratio ascending, then increase ascending, then method name. */
export function compareTradeoffPoints(a: TradeoffPoint, b: TradeoffPoint): number {
  return a.ratio - b.ratio || a.pplIncreasePct - b.pplIncreasePct || compareNames(a.method, b.method);
}

/**
 * The points no other point dominates. One pass over the points grouped by ratio,
 * highest first: a point survives when it has its group's lowest increase and that
 * increase is strictly below every increase seen at a strictly higher ratio.
 */
export function paretoFrontier<T extends TradeoffPoint>(points: readonly T[]): T[] {
  for (const point of points) {
    if (!Number.isFinite(point.ratio) || !Number.isFinite(point.pplIncreasePct)) {
      throw new SpgError(
        "E_PARETO_NONFINITE",
        `method ${JSON.stringify(point.method)}: ratio ${point.ratio} and perplexity increase ${point.pplIncreasePct} must be finite`,
        { field: "ratio/pplIncreasePct", fix: "compute the frontier from measured, finite summary figures" },
      );
    }
  }
  const byRatioDescending = [...points].sort(
    (a, b) => b.ratio - a.ratio || a.pplIncreasePct - b.pplIncreasePct,
  );
  const frontier: T[] = [];
  let lowestAtHigherRatio = Number.POSITIVE_INFINITY;
  let start = 0;
  while (start < byRatioDescending.length) {
    let end = start;
    while (end < byRatioDescending.length && byRatioDescending[end].ratio === byRatioDescending[start].ratio)
      end++;
    // Sorted by increase within the group: the first holds the group's lowest.
    const groupLowest = byRatioDescending[start].pplIncreasePct;
    if (groupLowest < lowestAtHigherRatio) {
      for (let i = start; i < end && byRatioDescending[i].pplIncreasePct === groupLowest; i++) {
        frontier.push(byRatioDescending[i]);
      }
      lowestAtHigherRatio = groupLowest;
    }
    start = end;
  }
  return frontier.sort(compareTradeoffPoints);
}

/** Whether `a` dominates `b` (at least as good in both, strictly better in one). */
export function dominates(a: TradeoffPoint, b: TradeoffPoint): boolean {
  return (
    a.ratio >= b.ratio &&
    a.pplIncreasePct <= b.pplIncreasePct &&
    (a.ratio > b.ratio || a.pplIncreasePct < b.pplIncreasePct)
  );
}

/**
 * One frontier per group (e.g. per method across its sweep variants), groups in order of
 * first appearance. `groupOf` names a point's group.
 */
export function paretoFrontiersByGroup<T extends TradeoffPoint>(
  points: readonly T[],
  groupOf: (point: T) => string,
): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const point of points) {
    const group = groupOf(point);
    const members = groups.get(group);
    if (members === undefined) groups.set(group, [point]);
    else members.push(point);
  }
  const frontiers = new Map<string, T[]>();
  for (const [group, members] of groups) frontiers.set(group, paretoFrontier(members));
  return frontiers;
}
