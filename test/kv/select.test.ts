import assert from "node:assert/strict";
import { test } from "node:test";
import {
  kthSmallest,
  pool1d,
  readableMask,
  selectKept,
  sinkRecentMask,
  topMembers,
} from "../../src/kv/select.js";
import { rng } from "./helpers.js";

const ones = (n: number) => new Uint8Array(n).fill(1);
const zeros = (n: number) => new Uint8Array(n);

test("selectKept: highest scores, protected always kept, ineligible never", () => {
  const scores = [Float32Array.from([5, 1, 9, 3, 7, 2])];
  const protectedMask = Uint8Array.from([0, 1, 0, 0, 0, 0]);
  const eligible = Uint8Array.from([1, 1, 0, 1, 1, 1]);
  const kept = selectKept({ scores, keep: 3, protectedMask, eligible, mode: "per-head" });
  // slot 1 protected; slot 2 (score 9) not eligible; then 7 (slot 4), 5 (slot 0)
  assert.deepEqual([...kept[0]], [0, 1, 4]);
  // a budget below the protected count still keeps every protected slot
  const tight = selectKept({ scores, keep: 0, protectedMask, eligible, mode: "per-head" });
  assert.deepEqual([...tight[0]], [1]);
});

test("selectKept: ties go to the earlier slot, then the lower head; per-layer pools heads", () => {
  const scores = [Float32Array.from([1, 1, 1, 1]), Float32Array.from([1, 1, 1, 1])];
  const perHead = selectKept({
    scores,
    keep: 2,
    protectedMask: zeros(4),
    eligible: ones(4),
    mode: "per-head",
  });
  assert.deepEqual(
    perHead.map((k) => [...k]),
    [
      [0, 1],
      [0, 1],
    ],
  );
  const skewed = [Float32Array.from([4, 3, 0, 0]), Float32Array.from([2, 2, 2, 1])];
  const perLayer = selectKept({
    scores: skewed,
    keep: 2,
    protectedMask: zeros(4),
    eligible: ones(4),
    mode: "per-layer",
  });
  // four places over both heads: 4, 3 (head 0), then the tie at 2 -> head 1 slots 0, 1
  assert.deepEqual(
    perLayer.map((k) => [...k]),
    [
      [0, 1],
      [0, 1],
    ],
  );
  const repeat = selectKept({
    scores: skewed,
    keep: 2,
    protectedMask: zeros(4),
    eligible: ones(4),
    mode: "per-layer",
  });
  assert.deepEqual(repeat, perLayer);
  assert.throws(() =>
    selectKept({
      scores: [Float32Array.from([Number.NaN])],
      keep: 1,
      protectedMask: zeros(1),
      eligible: ones(1),
      mode: "per-head",
    }),
  );
});

test("masks and pooling", () => {
  const positions = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  // next query at 8, window 3: reads positions 6 and 7 (and itself)
  assert.deepEqual([...readableMask(positions, true, 3)], [0, 0, 0, 0, 0, 0, 1, 1]);
  assert.deepEqual([...readableMask(positions, false, 3)], [1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...sinkRecentMask(positions, 2, 1)], [1, 1, 0, 0, 0, 0, 0, 1]);
  const s = Float32Array.from([0, 3, 0, 0, 6]);
  assert.deepEqual([...pool1d(s, 3, "max")], [3, 3, 3, 6, 6]);
  assert.deepEqual([...pool1d(s, 3, "avg")], [1, 1, 1, 2, 2]);
  assert.throws(() => pool1d(s, 2, "max"), /odd/);
});

test("topMembers equals a comparator sort by (value descending, member ascending), ties and signed zeros included", () => {
  const next = rng(9);
  for (let trial = 0; trial < 200; trial++) {
    const size = 1 + Math.floor(next() * 60);
    // few distinct values, so ties are common; -0 and +0 compare equal
    const values = Float32Array.from({ length: size }, () => [0, -0, 0.5, 1, -1, 2][Math.floor(next() * 6)]);
    const members = Int32Array.from({ length: size }, (_, i) => i).filter(() => next() < 0.7);
    const take = Math.floor(next() * (members.length + 3));
    const reference = Array.from(members)
      .sort((a, b) => values[b] - values[a] || a - b)
      .slice(0, take)
      .sort((a, b) => a - b);
    assert.deepEqual(Array.from(topMembers(values, members, take)), reference, `trial ${trial}`);
  }
});

test("kthSmallest picks the value a numeric sort puts at k: ties, infinities, NaN", () => {
  const next = rng(11);
  const special = [0, -0, 1, 1, -1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (let trial = 0; trial < 500; trial++) {
    const size = 1 + Math.floor(next() * (trial < 400 ? 40 : 2000));
    const values = Float64Array.from({ length: size }, () =>
      next() < 0.3 ? special[Math.floor(next() * special.length)] : next() - 0.5,
    );
    if (trial % 7 === 0) values[Math.floor(next() * size)] = Number.NaN;
    const k = Math.floor(next() * size);
    const sorted = Float64Array.from(values).sort();
    const picked = kthSmallest(Float64Array.from(values), k);
    // -0 and +0 are one value to every comparison topMembers makes
    assert.ok(picked === sorted[k] || (Number.isNaN(picked) && Number.isNaN(sorted[k])), `trial ${trial}`);
  }
});
