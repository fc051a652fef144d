import assert from "node:assert/strict";
import { test } from "node:test";
import { isSpgError } from "../../src/errors.js";
import {
  compareTradeoffPoints,
  paretoFrontier,
  paretoFrontiersByGroup,
  type TradeoffPoint,
} from "../../src/measure/pareto.js";
import { mulberry32 } from "../../src/measure/prng.js";

/** Second implementation: the definition, checked pair by pair (O(n²)). */
function bruteForceFrontier(points: readonly TradeoffPoint[]): TradeoffPoint[] {
  const kept = points.filter(
    (p) =>
      !points.some(
        (q) =>
          q.ratio >= p.ratio &&
          q.pplIncreasePct <= p.pplIncreasePct &&
          (q.ratio > p.ratio || q.pplIncreasePct < p.pplIncreasePct),
      ),
  );
  return kept.sort(compareTradeoffPoints);
}

test("closed form: points on an increasing curve are the frontier, points above it are not", () => {
  // Increase = ratio², so more compression always costs more: every curve point is
  // Pareto-optimal; each point shifted up by 1 is dominated by the curve point at its ratio.
  const curve: TradeoffPoint[] = [];
  const above: TradeoffPoint[] = [];
  for (let r = 1; r <= 6; r++) {
    curve.push({ method: `curve@${r}`, ratio: r, pplIncreasePct: r * r });
    above.push({ method: `above@${r}`, ratio: r, pplIncreasePct: r * r + 1 });
  }
  assert.deepEqual(
    paretoFrontier([...above, ...curve].reverse()).map((p) => p.method),
    curve.map((p) => p.method),
  );
  // A point better than all: it alone is the frontier.
  const dominant = { method: "dominant", ratio: 7, pplIncreasePct: 0 };
  assert.deepEqual(paretoFrontier([...curve, dominant, ...above]), [dominant]);
  assert.deepEqual(paretoFrontier([]), []);
});

test("ties: identical points are kept together, order is deterministic", () => {
  const points: TradeoffPoint[] = [
    { method: "b", ratio: 2, pplIncreasePct: 1 },
    { method: "a", ratio: 2, pplIncreasePct: 1 },
    { method: "c", ratio: 2, pplIncreasePct: 3 }, // same ratio, worse quality
    { method: "d", ratio: 1, pplIncreasePct: 1 }, // same quality, less compression
    { method: "e", ratio: 4, pplIncreasePct: 5 },
  ];
  const expected = ["a", "b", "e"];
  assert.deepEqual(
    paretoFrontier(points).map((p) => p.method),
    expected,
  );
  assert.deepEqual(
    paretoFrontier([...points].reverse()).map((p) => p.method),
    expected,
  );
});

test("matches the brute-force definition on random point sets with many ties", () => {
  const random = mulberry32(20261123);
  for (let trial = 0; trial < 300; trial++) {
    const n = Math.floor(random() * 12);
    const points: TradeoffPoint[] = [];
    for (let i = 0; i < n; i++) {
      // Small integer grids force equal ratios and equal increases; negatives included.
      points.push({
        method: `m${i}`,
        ratio: 1 + Math.floor(random() * 5),
        pplIncreasePct: Math.floor(random() * 7) - 2,
      });
    }
    assert.deepEqual(paretoFrontier(points), bruteForceFrontier(points), JSON.stringify(points));
  }
});

test("non-finite figures are an error, not a silent frontier", () => {
  assert.throws(
    () => paretoFrontier([{ method: "x", ratio: Number.POSITIVE_INFINITY, pplIncreasePct: 0 }]),
    (error: unknown) => isSpgError(error) && error.code === "E_PARETO_NONFINITE",
  );
});

test("per-group frontiers: each group's own, equal to the frontier of that group alone", () => {
  const points: TradeoffPoint[] = [
    { method: "spg@ratio=2", ratio: 2, pplIncreasePct: 1 },
    { method: "h2o@ratio=2", ratio: 2, pplIncreasePct: 3 },
    { method: "spg@ratio=4", ratio: 4, pplIncreasePct: 5 },
    { method: "spg@ratio=8", ratio: 3.5, pplIncreasePct: 9 }, // dominated by spg@ratio=4
    { method: "h2o@ratio=4", ratio: 4, pplIncreasePct: 6 },
  ];
  const family = (p: TradeoffPoint) => p.method.split("@")[0];
  const frontiers = paretoFrontiersByGroup(points, family);
  assert.deepEqual([...frontiers.keys()], ["spg", "h2o"]);
  assert.deepEqual(
    frontiers.get("spg")!.map((p) => p.method),
    ["spg@ratio=2", "spg@ratio=4"],
  );
  // h2o alone: both points are on its frontier, though spg dominates both overall.
  assert.deepEqual(
    frontiers.get("h2o")!.map((p) => p.method),
    ["h2o@ratio=2", "h2o@ratio=4"],
  );
  for (const [name, frontier] of frontiers) {
    assert.deepEqual(frontier, bruteForceFrontier(points.filter((p) => family(p) === name)));
  }
  assert.deepEqual(
    paretoFrontier(points).map((p) => p.method),
    ["spg@ratio=2", "spg@ratio=4"],
  );
});
