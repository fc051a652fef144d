import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { packageRoot } from "../../src/paths.js";

const bin = join(packageRoot(), "bin", "run.js");

function spg(args: string[], cwd?: string) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd });
}

test("prove --dry-run prints the resolved config with flags applied", () => {
  const result = spg(["prove", "--preset", "ci-smoke", "--samples", "3", "--dry-run"]);
  assert.equal(result.status, 0, result.stderr);
  const config = parse(result.stdout.replace(/^#.*$/gm, ""));
  assert.equal(config.dataset.samples, 3);
  assert.equal(config.name, "ci-smoke");
});

test("prove with a missing model exits 2 naming the checkpoint, and writes nothing", () => {
  const cwd = mkdtempSync(join(tmpdir(), "spg-prove-cli-"));
  try {
    const missing = join(cwd, "no-such-model");
    const result = spg(["prove", "--model", missing, "--ephemeral-key", "--out", join(cwd, "b.zip")], cwd);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /E_CHECKPOINT_MISSING/);
    assert.match(result.stderr, /no-such-model/);
    assert.equal(existsSync(join(cwd, "b.zip")), false);
    assert.deepEqual(readdirSync(cwd), []);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("prove refuses an unknown preset with the list of presets", () => {
  const result = spg(["prove", "--preset", "no-such-preset", "--dry-run"]);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /E_PRESET_UNKNOWN/);
  assert.match(result.stderr, /default/);
});
