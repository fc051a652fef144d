/** Records' generated token ids (optional): consistency recounts the agreement figures from them. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkConsistency } from "../../src/verify/checks/consistency.js";
import { fixtureParts } from "../helpers/bundle-fixture.js";

const codes = (parts: ReturnType<typeof fixtureParts>) =>
  checkConsistency(parts)
    .filter((f) => !f.ok)
    .map((f) => f.code);

test("generated token ids that match the record's agreement figures pass; ids that do not fail", () => {
  const honest = fixtureParts();
  for (const record of honest.records) {
    const { compared, matches, firstDivergence } = record.generation;
    const baseline = Array.from({ length: compared }, (_, i) => 100 + i);
    // Differ at firstDivergence, then at the last positions until only `matches` agree.
    const tokens = baseline.map((id, i) =>
      firstDivergence !== null && (i === firstDivergence || i >= compared - (compared - matches - 1))
        ? id + 1
        : id,
    );
    record.generation = { ...record.generation, baselineTokens: baseline, tokens };
  }
  assert.deepEqual(codes(honest), []);

  const forged = fixtureParts();
  const { compared } = forged.records[0].generation;
  forged.records[0].generation = {
    ...forged.records[0].generation,
    baselineTokens: Array.from({ length: compared }, () => 1),
    tokens: Array.from({ length: compared }, () => 2),
  };
  assert.deepEqual(codes(forged), ["E_CONSISTENCY_GENERATION"]);
});
