import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { packageRoot } from "../../src/paths.js";
import { writeRandomGptNeo } from "../helpers/random-gpt-neo.js";

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

test("prove --device cuda on a machine without an NVIDIA GPU stops before loading the model", async () => {
  const modelDir = await writeRandomGptNeo({
    hidden: 8,
    layers: 2,
    heads: 2,
    window: 4,
    maxPositions: 64,
    seed: 2,
  });
  const cwd = mkdtempSync(join(tmpdir(), "spg-prove-cuda-"));
  try {
    const result = spg(
      [
        "prove",
        "--model",
        modelDir,
        "--device",
        "cuda",
        "--ephemeral-key",
        "--preset",
        "ci-smoke",
        "--context",
        "32",
        "--continuation",
        "8",
      ],
      cwd,
    );
    if (result.status === 0) return; // a machine with a large enough NVIDIA GPU and the CUDA provider
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /E_NO_GPU|E_GPU_MEMORY_UNKNOWN|E_HARDWARE_INSUFFICIENT|E_DEVICE_UNAVAILABLE/);
    assert.deepEqual(readdirSync(cwd), []);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
    rmSync(modelDir, { recursive: true, force: true });
  }
});

test("prove --out an existing file exits 2 (E_FILE_EXISTS) before measuring, and leaves the file as it was", () => {
  const cwd = mkdtempSync(join(tmpdir(), "spg-prove-cli-"));
  try {
    const out = join(cwd, "earlier.zip");
    writeFileSync(out, "an earlier proof");
    const result = spg(["prove", "--preset", "ci-smoke", "--ephemeral-key", "--json", "--out", out], cwd);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /^E_FILE_EXISTS: .*earlier\.zip already exists/m);
    assert.match(result.stderr, /--force/);
    // Refused before the run: no hardware check, model or samples were reported.
    assert.equal(result.stdout, "");
    assert.equal(readFileSync(out, "utf8"), "an earlier proof");
    assert.deepEqual(readdirSync(cwd), ["earlier.zip"]);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
