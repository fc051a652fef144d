import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { readSecretKey } from "../../src/bundle/keys.js";
import { packageRoot } from "../../src/paths.js";

const run = promisify(execFile);

test("spg keygen writes to the default location, reports the key id, and refuses to overwrite", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "spg-keygen-"));
  const bin = path.join(packageRoot(), "bin", "run.js");
  const env = { ...process.env, XDG_CONFIG_HOME: home };
  try {
    const first = await run(process.execPath, [bin, "keygen", "--json"], { env });
    const printed = JSON.parse(first.stdout);
    const secretPath = path.join(home, "spg", "signing-key.json");
    assert.equal(printed.secretKey, secretPath);
    assert.equal(printed.publicKey, path.join(home, "spg", "signing-key.pub.json"));
    assert.equal((await readSecretKey(secretPath)).keyId, printed.keyId);
    if (process.platform !== "win32") assert.equal((await stat(secretPath)).mode & 0o777, 0o600);
    const before = await readFile(secretPath);
    await assert.rejects(
      run(process.execPath, [bin, "keygen"], { env }),
      (error: { code?: number; stderr?: string }) => {
        assert.equal(error.code, 2);
        assert.match(error.stderr ?? "", /E_FILE_EXISTS/);
        return true;
      },
    );
    assert.ok((await readFile(secretPath)).equals(before));
    const forced = await run(process.execPath, [bin, "keygen", "--out", path.join(home, "spg"), "--force"], {
      env,
    });
    assert.match(forced.stdout, /key id: +[0-9a-f]{64}/);
    assert.ok(!(await readFile(secretPath)).equals(before));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
