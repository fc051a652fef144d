import assert from "node:assert/strict";
import { test } from "node:test";
import { isSpgError, SpgError } from "../src/errors.js";

test("SpgError carries a stable code, the file, the field and the fix", () => {
  const error = new SpgError("E_CONFIG_INVALID", "samples must be a positive integer", {
    file: "configs/default.yaml",
    field: "dataset.samples",
    fix: "set dataset.samples to 1 or more",
  });
  assert.ok(isSpgError(error));
  assert.equal(error.exitCode, 2);
  assert.equal(
    error.describe(),
    [
      "E_CONFIG_INVALID: samples must be a positive integer",
      "  file: configs/default.yaml",
      "  field: dataset.samples",
      "  fix: set dataset.samples to 1 or more",
    ].join("\n"),
  );
  assert.equal(isSpgError(new Error("plain")), false);
});
