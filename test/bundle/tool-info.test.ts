import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { gitHead, readToolInfo } from "../../src/bundle/tool-info.js";
import { packageRoot } from "../../src/paths.js";

test("tool info names spg's package and version", () => {
  const info = readToolInfo({ SPG_COMMIT: "A".repeat(40) });
  assert.equal(info.name, "spg");
  assert.match(info.version, /^\d+\.\d+\.\d+/);
  assert.equal(info.commit, "a".repeat(40));
});

test("the commit read from .git equals what git itself reports", (t) => {
  let expected: string;
  try {
    expected = execFileSync("git", ["rev-parse", "HEAD"], { cwd: packageRoot(), encoding: "utf8" }).trim();
  } catch {
    t.skip("not a git checkout (or git absent)");
    return;
  }
  assert.equal(gitHead(packageRoot()), expected);
  assert.equal(readToolInfo({}).commit, expected);
});

test("no git metadata gives a null commit, not a guess", async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), "spg-nogit-"));
  try {
    assert.equal(gitHead(directory), null);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
