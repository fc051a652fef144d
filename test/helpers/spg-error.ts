/** The SpgError a call throws, for tests that check its code, field and fix. */
import assert from "node:assert/strict";
import { isSpgError, type SpgError } from "../../src/errors.js";

/** Runs fn and returns the SpgError it throws; any other outcome fails the test. */
export function spgError(fn: () => unknown): SpgError {
  try {
    fn();
  } catch (error) {
    if (isSpgError(error)) return error;
    throw error;
  }
  assert.fail("expected an SpgError");
}

/** Awaits fn and returns the SpgError it rejects with; any other outcome fails the test. */
export async function spgErrorAsync(fn: () => Promise<unknown>): Promise<SpgError> {
  try {
    await fn();
  } catch (error) {
    if (isSpgError(error)) return error;
    throw error;
  }
  assert.fail("expected an SpgError");
}
