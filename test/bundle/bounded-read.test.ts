/**
 * spg's own small input files (a key file, --trusted-keys, --policy): a FIFO, a device or a file
 * over its limit is refused at once with the file's code (exit 2), never read until a writer
 * comes or memory fills.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { INPUT_FILE_LIMITS } from "../../src/bounded-read.js";
import { readPublicKey, readSecretKey } from "../../src/bundle/keys.js";
import { readTrustedKeys } from "../../src/bundle/sign.js";
import { loadVerifyPolicy } from "../../src/verify/policy.js";
import { spgError, spgErrorAsync } from "../helpers/spg-error.js";

const dir = mkdtempSync(join(tmpdir(), "spg-bounded-read-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A sparse file one byte over `limit` (no disk written). */
function oversized(name: string, limit: number): string {
  const file = join(dir, name);
  const fd = openSync(file, "w", 0o600);
  writeFileSync(fd, "#");
  closeSync(fd);
  execFileSync("truncate", ["-s", String(limit + 1), file]);
  return file;
}

const fifo = join(dir, "fifo");
execFileSync("mkfifo", [fifo]);

const readers = [
  {
    what: "--trusted-keys",
    code: "E_TRUSTED_KEYS",
    limit: INPUT_FILE_LIMITS.trustedKeysBytes,
    read: readTrustedKeys,
  },
  { what: "a secret key", code: "E_KEY_READ", limit: INPUT_FILE_LIMITS.keyFileBytes, read: readSecretKey },
  { what: "a public key", code: "E_KEY_READ", limit: INPUT_FILE_LIMITS.keyFileBytes, read: readPublicKey },
  {
    what: "--policy",
    code: "E_VERIFY_POLICY",
    limit: INPUT_FILE_LIMITS.policyBytes,
    read: async (file: string) => loadVerifyPolicy(file),
  },
] as const;

for (const reader of readers) {
  test(`${reader.what}: a FIFO, a device and a file over ${reader.limit} bytes are refused at once (${reader.code})`, {
    timeout: 30_000,
  }, async () => {
    for (const [file, message] of [
      [fifo, /a FIFO, not a regular file/],
      ["/dev/zero", /a device, not a regular file/],
      [
        oversized(`big-${reader.code}-${reader.what.replaceAll(/\W/g, "")}`, reader.limit),
        /over the \d+-byte limit/,
      ],
    ] as const) {
      const error = await spgErrorAsync(() => reader.read(file));
      assert.equal(error.code, reader.code, error.message);
      assert.equal(error.exitCode, 2);
      assert.match(error.message, message);
      assert.equal(error.file, file);
    }
  });
}

test("a policy file at its limit is read (the limit is inclusive), then judged by its contents", () => {
  const file = oversized("at-limit.yaml", INPUT_FILE_LIMITS.policyBytes - 1);
  // Read whole: "#" and NUL padding is no policy, refused for what it holds, not its size.
  const error = spgError(() => loadVerifyPolicy(file));
  assert.doesNotMatch(error.message, /limit/);
});
