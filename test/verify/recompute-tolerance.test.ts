/**
 * The recompute check's slack admits another implementation's last-bit rounding, and no more:
 * a percent change 100 (a/b - 1) near zero carries the ratio's rounding times 100.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { numbersAgree, RECOMPUTE_RELATIVE_TOLERANCE } from "../../src/verify/checks/recompute.js";

test("a perplexity increase near zero agrees when only exp()'s last bit differs", () => {
  // Two perplexities one ulp apart give percent changes that differ by ~100 * 2^-52 (a closed form).
  const baseline = Math.exp(6.7);
  const compressed = baseline * (1 + 2.9e-8);
  const nextUp = compressed + compressed * Number.EPSILON;
  const ours = 100 * (compressed / baseline - 1);
  const theirs = 100 * (nextUp / baseline - 1);
  assert.notEqual(ours, theirs);
  // Relative to the figure itself this is far above 1e-9 ...
  assert.equal(numbersAgree(theirs, ours, RECOMPUTE_RELATIVE_TOLERANCE), false);
  // ... but within the ratio's rounding once the scale is the percent's 100.
  assert.equal(numbersAgree(theirs, ours, RECOMPUTE_RELATIVE_TOLERANCE, 100), true);
});

test("the percent scale still refuses a real change", () => {
  // A producer shaving 1e-6 points off a 2.9e-6 % increase is caught.
  assert.equal(numbersAgree(1.9e-6, 2.9e-6, RECOMPUTE_RELATIVE_TOLERANCE, 100), false);
  assert.equal(numbersAgree(0.5, 0.4, RECOMPUTE_RELATIVE_TOLERANCE, 100), false);
  // Large figures keep their relative tolerance.
  assert.equal(numbersAgree(148.0, 148.0 * (1 + 1e-8), RECOMPUTE_RELATIVE_TOLERANCE, 100), false);
});
