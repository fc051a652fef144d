import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import {
  defaultKeyDirectory,
  defaultKeyPath,
  ephemeralKey,
  generateKeyPair,
  loadOrCreateDefaultKey,
  readPublicKey,
  readSecretKey,
  resolveSigningKey,
  writeKeyPair,
} from "../../src/bundle/keys.js";
import { checkManifestSignature, signManifest } from "../../src/bundle/sign.js";
import { SpgError } from "../../src/errors.js";

const posix = process.platform !== "win32";

async function withTempDir(run: (directory: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "spg-keys-"));
  try {
    await run(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

test("writeKeyPair writes a 0600 secret and a public file that read back as the same key", async () => {
  await withTempDir(async (directory) => {
    const written = await writeKeyPair(path.join(directory, "keys"));
    if (posix) {
      assert.equal(await modeOf(written.secretPath), 0o600);
      assert.equal(await modeOf(written.publicPath), 0o644);
      assert.equal(await modeOf(path.join(directory, "keys")), 0o700);
    }
    const secret = JSON.parse(await readFile(written.secretPath, "utf8"));
    assert.equal(secret.type, "spg-ed25519-secret");
    assert.equal(Buffer.from(secret.secretKey, "base64").length, 64);
    const publicJson = JSON.parse(await readFile(written.publicPath, "utf8"));
    assert.deepEqual(Object.keys(publicJson).sort(), ["keyId", "publicKey", "type"]);
    const key = await readSecretKey(written.secretPath);
    assert.equal(key.keyId, written.key.keyId);
    assert.equal(key.ephemeral, false);
    assert.equal((await readPublicKey(written.publicPath)).keyId, key.keyId);
    // A key read from disk signs what the public file verifies.
    const manifest = Buffer.from("{}");
    const result = checkManifestSignature(manifest, signManifest(manifest, key));
    assert.ok(result.ok && result.keyId === publicJson.keyId);
    assert.deepEqual((await readdir(path.join(directory, "keys"))).sort(), [
      "signing-key.json",
      "signing-key.pub.json",
    ]);
  });
});

test("existing keys are never replaced without force", async () => {
  await withTempDir(async (directory) => {
    const first = await writeKeyPair(directory);
    const before = await readFile(first.secretPath);
    await assert.rejects(writeKeyPair(directory), (error: unknown) => {
      return error instanceof SpgError && error.code === "E_FILE_EXISTS" && error.file === first.secretPath;
    });
    assert.ok((await readFile(first.secretPath)).equals(before));
    const second = await writeKeyPair(directory, { force: true });
    assert.notEqual(second.key.keyId, first.key.keyId);
    assert.equal((await readSecretKey(first.secretPath)).keyId, second.key.keyId);
    if (posix) assert.equal(await modeOf(first.secretPath), 0o600);
    assert.deepEqual((await readdir(directory)).sort(), ["signing-key.json", "signing-key.pub.json"]);
  });
});

test("an unwritable key location is a clear error (E_KEY_WRITE)", async () => {
  await withTempDir(async (directory) => {
    const blocker = path.join(directory, "file");
    await writeFile(blocker, "not a directory");
    await assert.rejects(writeKeyPair(path.join(blocker, "keys")), (error: unknown) => {
      return error instanceof SpgError && error.code === "E_KEY_WRITE" && error.file !== undefined;
    });
  });
});

test("a secret key readable by others is refused (E_KEY_PERMISSIONS)", { skip: !posix }, async () => {
  await withTempDir(async (directory) => {
    const { secretPath } = await writeKeyPair(directory);
    await chmod(secretPath, 0o644);
    await assert.rejects(readSecretKey(secretPath), (error: unknown) => {
      return (
        error instanceof SpgError && error.code === "E_KEY_PERMISSIONS" && /chmod 600/.test(error.fix ?? "")
      );
    });
    await chmod(secretPath, 0o620);
    await assert.rejects(readSecretKey(secretPath), { code: "E_KEY_PERMISSIONS" });
    assert.ok((await readSecretKey(secretPath, { allowInsecurePermissions: true })).keyId);
  });
});

test("a secret key path that is a FIFO is refused, not waited on (one open, checked on the handle)", {
  skip: !posix,
  timeout: 20000,
}, async () => {
  await withTempDir(async (directory) => {
    const fifo = path.join(directory, "signing-key.json");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    // A stat-then-read reader passes the mode check and then blocks on the FIFO until a writer comes.
    await assert.rejects(readSecretKey(fifo), (error: unknown) => {
      return (
        error instanceof SpgError &&
        error.code === "E_KEY_READ" &&
        /FIFO|not a regular file/.test(error.message)
      );
    });
    await assert.rejects(readPublicKey(fifo), { code: "E_KEY_READ" });
  });
});

test("damaged or mismatched key files are refused (E_KEY_INVALID), missing ones E_KEY_READ", async () => {
  await withTempDir(async (directory) => {
    const { secretPath, publicPath } = await writeKeyPair(directory);
    const other = generateKeyPair();
    const secret = JSON.parse(await readFile(secretPath, "utf8"));
    const variants: [string, Record<string, unknown>][] = [
      ["publicKey", { ...secret, publicKey: Buffer.from(other.publicKey).toString("base64") }],
      ["keyId", { ...secret, keyId: other.keyId }],
      ["secretKey", { ...secret, secretKey: "AAAA" }],
      ["type", { ...secret, type: "spg-ed25519-public" }],
    ];
    for (const [field, json] of variants) {
      await writeFile(secretPath, JSON.stringify(json), { mode: 0o600 });
      await assert.rejects(readSecretKey(secretPath), (error: unknown) => {
        return error instanceof SpgError && error.code === "E_KEY_INVALID" && error.field === field;
      });
    }
    await writeFile(secretPath, "{not json", { mode: 0o600 });
    await assert.rejects(readSecretKey(secretPath), { code: "E_JSON_PARSE" });
    await assert.rejects(readSecretKey(path.join(directory, "absent.json")), { code: "E_KEY_READ" });
    const publicJson = JSON.parse(await readFile(publicPath, "utf8"));
    await writeFile(publicPath, JSON.stringify({ ...publicJson, keyId: other.keyId }));
    await assert.rejects(readPublicKey(publicPath), { code: "E_KEY_INVALID" });
  });
});

test("the default key lives in XDG_CONFIG_HOME/spg (else ~/.config/spg) and is created once", async () => {
  await withTempDir(async (directory) => {
    const env = { XDG_CONFIG_HOME: directory };
    assert.equal(defaultKeyDirectory(env), path.join(directory, "spg"));
    assert.equal(defaultKeyPath(env), path.join(directory, "spg", "signing-key.json"));
    assert.equal(defaultKeyDirectory({ XDG_CONFIG_HOME: "" }), path.join(os.homedir(), ".config", "spg"));
    assert.equal(
      defaultKeyDirectory({ XDG_CONFIG_HOME: "relative/dir" }),
      path.join(os.homedir(), ".config", "spg"),
    );
    const first = await loadOrCreateDefaultKey(env);
    assert.equal(first.created, true);
    assert.equal(first.path, defaultKeyPath(env));
    if (posix) {
      assert.equal(await modeOf(first.path), 0o600);
      assert.equal(await modeOf(path.join(directory, "spg")), 0o700);
    }
    const second = await loadOrCreateDefaultKey(env);
    assert.equal(second.created, false);
    assert.equal(second.key.keyId, first.key.keyId);
    // The public half is restored if someone deleted it.
    await rm(first.publicPath);
    const third = await loadOrCreateDefaultKey(env);
    assert.equal((await readPublicKey(third.publicPath)).keyId, first.key.keyId);
  });
});

test("ephemeral keys are fresh each time and marked in the signature", () => {
  const one = ephemeralKey();
  const two = ephemeralKey();
  assert.notEqual(one.keyId, two.keyId);
  assert.equal(one.ephemeral, true);
  assert.equal(signManifest(Buffer.from("{}"), one).ephemeral, true);
  assert.equal(signManifest(Buffer.from("{}"), generateKeyPair()).ephemeral, false);
});

test("resolveSigningKey: --key file, --ephemeral-key, else the default key; both at once is an error", async () => {
  await withTempDir(async (directory) => {
    const env = { XDG_CONFIG_HOME: path.join(directory, "config") };
    const { secretPath, key } = await writeKeyPair(path.join(directory, "mine"));
    const fromFile = await resolveSigningKey({ keyPath: secretPath, env });
    assert.equal(fromFile.source, "file");
    assert.equal(fromFile.key.keyId, key.keyId);
    const ephemeral = await resolveSigningKey({ ephemeral: true, env });
    assert.equal(ephemeral.source, "ephemeral");
    assert.equal(ephemeral.key.ephemeral, true);
    const created = await resolveSigningKey({ env });
    assert.equal(created.source, "default");
    assert.equal(created.created, true);
    assert.equal(created.path, defaultKeyPath(env));
    const again = await resolveSigningKey({ env });
    assert.equal(again.created, false);
    assert.equal(again.key.keyId, created.key.keyId);
    await assert.rejects(resolveSigningKey({ keyPath: secretPath, ephemeral: true, env }), {
      code: "E_KEY_OPTIONS",
    });
  });
});
