/**
 * Replay's comparison of generated token lists (src/verify/checks/replay-generation.ts): equal
 * lists pass; a list that leaves the replay's passes only where the replay's own step was nearly
 * tied (the stored token its runner-up, within the record's NLL tolerance), and is compared up
 * to there; anything else fails. The runner-up and gap of a traced step are checked against a
 * row of logits written by hand.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { SampleRecord } from "../../src/bundle/types.js";
import { greedyStepOf } from "../../src/model/session.js";
import { compareGeneratedTokens, compareTokenList } from "../../src/verify/checks/replay-generation.js";
import { fixtureParts } from "../helpers/bundle-fixture.js";

test("a traced step names the logits' second best and how far it trails the chosen token", () => {
  const logits = Float32Array.from([0.5, 3, -1, 2.75, 2.5]);
  assert.deepEqual(greedyStepOf(logits, 1), { runnerUp: 3, gap: 0.25 });
  // Ties: the graph's argmax is the chosen one; the other tied token is the runner-up at gap 0.
  assert.deepEqual(greedyStepOf(Float32Array.from([1, 4, 4]), 2), { runnerUp: 1, gap: 0 });
});

test("lists compared up to their first difference, admitted only at the replay's near-tie", () => {
  const replayed = [10, 11, 12, 13];
  const steps = [
    { runnerUp: 20, gap: 5 },
    { runnerUp: 21, gap: 0.01 },
    { runnerUp: 22, gap: 0.5 },
    { runnerUp: 23, gap: 0.01 },
  ];
  assert.deepEqual(compareTokenList([10, 11, 12, 13], replayed, steps, 0.05), { kind: "identical" });
  // Token 1 flipped to the replay's runner-up with a gap of 0.01: what follows is another run's.
  assert.deepEqual(compareTokenList([10, 21, 99, 98], replayed, steps, 0.05), {
    kind: "near-tie",
    position: 1,
    gap: 0.01,
  });
  // The same flip with a tolerance below the gap, a token that is not the runner-up, a step the
  // replay was sure of, a list of another length, a first token no decode step chose: refused.
  for (const [stored, trace, allowed] of [
    [[10, 21, 12, 13], steps, 0.001],
    [[10, 11, 12, 77], steps, 0.05],
    [[20, 11, 12, 13], steps, 0.05],
    [[10, 11, 12], steps, 0.05],
    [[20, 11, 12, 13], [null, ...steps.slice(1)], 1e9],
  ] as const) {
    assert.equal(compareTokenList(stored, replayed, trace, allowed).kind, "differs", JSON.stringify(stored));
  }
});

test("records: the tolerance is the record's NLL tolerance times its scored tokens; lists not stored are not compared", () => {
  const [stored] = fixtureParts().records;
  const ids = Array.from({ length: stored.generation.compared }, (_, i) => 100 + i);
  const withIds = (baseline: number[], tokens: number[]): SampleRecord => ({
    ...stored,
    generation: { ...stored.generation, baselineTokens: baseline, tokens },
  });
  const flipped = [...ids];
  flipped[2] = 7;
  const step = (gap: number) => ids.map(() => ({ runnerUp: 7, gap }));
  const fresh = withIds(ids, ids);
  const justInside = (1e-3 * stored.scoredTokens) / 2;
  const inside = compareGeneratedTokens(
    [
      {
        stored: withIds(ids, flipped),
        fresh,
        trace: { baseline: step(justInside), tokens: step(justInside) },
      },
    ],
    1e-3,
  );
  assert.deepEqual(
    {
      compared: inside.compared,
      identical: inside.identical,
      ties: inside.nearTies.length,
      problems: inside.problems,
    },
    { compared: 2, identical: 1, ties: 1, problems: [] },
  );
  const outside = compareGeneratedTokens(
    [{ stored: withIds(ids, flipped), fresh, trace: { baseline: step(1), tokens: step(1) } }],
    1e-3,
  );
  assert.equal(outside.problems.length, 1);
  assert.match(outside.problems[0].problem, /more than/);
  const none = compareGeneratedTokens([{ stored, fresh, trace: undefined }], 1e-3);
  assert.deepEqual({ compared: none.compared, problems: none.problems }, { compared: 0, problems: [] });
});
