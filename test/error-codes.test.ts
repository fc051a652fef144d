import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CHECK_EXIT_CODE, ERROR_CODES, EXIT_BAD_INPUT, isErrorCode } from "../src/error-codes.js";
import { SpgError } from "../src/errors.js";
import { packageRoot } from "../src/paths.js";

const root = packageRoot();
const REGISTRY = join("src", "error-codes.ts");

/** Every .ts file under `dir`, relative to the package root. */
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join(dir, name));
}

/** Every E_* literal in the source tree (comments included: a documented code must exist too), by file. */
function codesInSource(): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  for (const file of [...sources("src"), ...sources("scripts")]) {
    if (file === REGISTRY) continue;
    for (const match of readFileSync(join(root, file), "utf8").matchAll(/\bE_[A-Z0-9_]+/g)) {
      const files = found.get(match[0]) ?? new Set<string>();
      files.add(file);
      found.set(match[0], files);
    }
  }
  return found;
}

test("every E_* code in src/ and scripts/ is registered in src/error-codes.ts", () => {
  const unregistered = [...codesInSource()]
    .filter(([code]) => !isErrorCode(code))
    .map(([code, files]) => `${code} (${[...files].join(", ")})`);
  assert.deepEqual(unregistered, [], "register each as one line in ERROR_CODES, then `npm run docs:errors`");
});

test("every registered code is used somewhere in src/ (no stale entries)", () => {
  const used = codesInSource();
  const stale = Object.keys(ERROR_CODES).filter((code) => !used.has(code));
  assert.deepEqual(stale, [], "remove codes nothing reports any more from ERROR_CODES");
});

test("a finding's exit code is its check's; a thrown code exits 2 through SpgError", () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    if (info.kind === "input") assert.equal(info.exit, EXIT_BAD_INPUT, code);
    else if (info.check === null) assert.equal(info.exit, null, code);
    else assert.equal(info.exit, CHECK_EXIT_CODE[info.check], code);
    assert.ok(info.meaning.length > 0 && !info.meaning.includes("\n"), `${code}: one line of meaning`);
  }
  assert.equal(ERROR_CODES.E_INTEGRITY_HASH.exit, 4);
  assert.equal(ERROR_CODES.E_CLAIM_FAILED.exit, 6);
  assert.equal(new SpgError("E_CONFIG_INVALID", "x").exitCode, EXIT_BAD_INPUT);
});

const docScript = join(root, "dist", "scripts", "errors-doc.js");

test("docs/errors.md is what `npm run docs:errors` generates from the registry", () => {
  const result = spawnSync(process.execPath, [docScript, "--check"], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  const doc = readFileSync(join(root, "docs", "errors.md"), "utf8");
  for (const code of Object.keys(ERROR_CODES)) assert.ok(doc.includes(`\`${code}\``), code);
});

test("the staleness check fails on an edited copy", () => {
  const dir = mkdtempSync(join(tmpdir(), "spg-errors-doc-"));
  try {
    const copy = join(dir, "errors.md");
    const current = readFileSync(join(root, "docs", "errors.md"), "utf8");
    writeFileSync(copy, current.replace("`E_INTEGRITY_HASH`", "`E_INTEGRITY_HASHED`"));
    const result = spawnSync(process.execPath, [docScript, "--check", "--file", copy], { encoding: "utf8" });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /stale/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const bin = join(root, "bin", "run.js");

test("the base command turns an SpgError into its message on stderr and the registry's exit code", () => {
  const missing = join(tmpdir(), "spg-no-such-checkpoint");
  const result = spawnSync(process.execPath, [bin, "model", "inspect", missing], { encoding: "utf8" });
  assert.equal(result.status, ERROR_CODES.E_CHECKPOINT_MISSING.exit);
  assert.match(result.stderr, /^E_CHECKPOINT_MISSING: /);
  assert.match(result.stderr, /\n {2}fix: /);
  assert.equal(result.stdout, "");
});
