/**
 * Version gates against a dishonest producer holding a trusted key: a field every producer of
 * the bundle's format version records cannot be dropped, nor restated as an older producer's,
 * to pick another check (docs/THREAT-MODEL.md "Downgrades" says which older combinations are
 * accepted, and why). Each lie is made again into summary.json and report.md and re-signed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RunParts } from "../../scripts/adversarial-bundles.js";
import { drawRuleProblem } from "../../src/verify/checks/protocol.js";
import { EXIT_INVALID, EXIT_PASS } from "../../src/verify/runner.js";
import { remadeDefaultBundles } from "../helpers/remade-default.js";

const lies = remadeDefaultBundles("spg-downgrade-", 29);

async function verifyLie(name: string, change: (parts: RunParts) => void) {
  const result = await lies.verifyNoReplay(name, change);
  return { result, codes: lies.failingCodes(result) };
}

test("the default bundle (version 3, Brown, drawn by pool) re-signed unchanged passes", async () => {
  const { result, codes } = await verifyLie("honest", () => {});
  assert.deepEqual(codes, []);
  assert.equal(result.exitCode, EXIT_PASS);
});

for (const [name, sampling] of [
  ["the draw rule restated as stream", "stream"],
  ["the draw rule dropped (as if made before it was recorded)", undefined],
] as const) {
  test(`version 3: ${name}: refused (E_PROTOCOL_DRAW_RULE)`, async () => {
    const { result, codes } = await verifyLie(name.replaceAll(/\W+/g, "-"), ({ environment }) => {
      if (sampling === undefined) delete environment.dataset.sampling;
      else environment.dataset.sampling = sampling;
    });
    // The draw would redraw with the stated rule, the model check and replay trust the run's
    // facts: none of them runs on a bundle whose protocol failed.
    assert.deepEqual(codes, [
      "protocol:E_PROTOCOL_DRAW_RULE",
      "model:E_CHECK_SKIPPED",
      "draw:E_CHECK_SKIPPED",
      "replay:E_CHECK_SKIPPED",
    ]);
    assert.equal(result.exitCode, EXIT_INVALID);
  });
}

test("the draw rules a producer of each version could have recorded, by source", () => {
  // version 3: exactly the source's rule, recorded.
  assert.equal(drawRuleProblem("brown", "pool", 3), undefined);
  assert.equal(drawRuleProblem("jsonl", "stream", 3), undefined);
  assert.match(drawRuleProblem("jsonl", "pool", 3) ?? "", /drawn by "stream" and records it/);
  assert.match(drawRuleProblem("parquet", undefined, 3) ?? "", /undefined/);
  assert.match(drawRuleProblem("brown", "stream", 3) ?? "", /drawn by "pool"/);
  // older: unrecorded, or pool before local sources streamed, or stream after; never stream for Brown.
  assert.equal(drawRuleProblem("brown", undefined, 1), undefined);
  assert.equal(drawRuleProblem("text", "pool", 2), undefined);
  assert.equal(drawRuleProblem("text", "stream", 2), undefined);
  assert.equal(drawRuleProblem("text", undefined, 2), undefined);
  assert.match(drawRuleProblem("brown", "stream", 2) ?? "", /drawn by "pool"/);
});
