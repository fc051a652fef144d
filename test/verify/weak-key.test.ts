/**
 * Small-order Ed25519 public keys: under the identity point, R = identity and S = 0 verify
 * for every message in OpenSSL, so a bundle "signed" by it can be edited after signing and
 * still verify. The signature check refuses such keys (E_SIGNATURE_WEAK_KEY), and a trusted
 * keys file cannot list one.
 */
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { adversarialCases, zipOf } from "../../scripts/adversarial-bundles.js";
import { isWeakPublicKey, parseTrustedKeys } from "../../src/bundle/sign.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { bundleFixture, fixtureKey } from "../helpers/bundle-fixture.js";

const dir = mkdtempSync(join(tmpdir(), "spg-weak-key-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const hex = (text: string) => Buffer.from(text, "hex");
const identity = Buffer.alloc(32);
identity[0] = 1;
/** Torsion points by their encodings: the identity (order 1), y = -1 (order 2), y = 0 (order 4). */
const SMALL_ORDER = [
  identity,
  hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
  Buffer.alloc(32),
];

test("the attack: OpenSSL accepts the identity key's (R = identity, S = 0) over any message", () => {
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: identity.toString("base64url") },
    format: "jwk",
  });
  const signature = Buffer.concat([identity, Buffer.alloc(32)]);
  for (const message of ["one manifest", "any other manifest"])
    assert.equal(verify(null, Buffer.from(message), key, signature), true);
});

test("small-order and non-canonical keys are weak; generated keys are not", () => {
  for (const key of SMALL_ORDER) assert.equal(isWeakPublicKey(key), true, key.toString("hex"));
  // y = p: a non-canonical encoding of y = 0.
  assert.equal(
    isWeakPublicKey(hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")),
    true,
  );
  assert.equal(isWeakPublicKey(fixtureKey().publicKey), false);
  for (let i = 0; i < 20; i++) {
    const raw = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(12);
    assert.equal(isWeakPublicKey(raw), false);
  }
});

test("a bundle signed under the identity key is refused (exit 4), however it was edited", async () => {
  const hostile = adversarialCases(bundleFixture().contents.entries).find(
    (c) => c.name === "small-order-signing-key",
  );
  assert.ok(hostile !== undefined);
  const path = join(dir, "weak.zip");
  writeFileSync(path, hostile.build());
  const result = await verifyBundleFile(path, { requireTrusted: false, replay: false });
  assert.ok(result.findings.some((f) => f.check === "signature" && f.code === "E_SIGNATURE_WEAK_KEY"));
  assert.equal(result.exitCode, 4);
  // The honest fixture still verifies.
  const honest = join(dir, "honest.zip");
  writeFileSync(honest, zipOf(bundleFixture().contents.entries));
  assert.equal((await verifyBundleFile(honest, { requireTrusted: false, replay: false })).exitCode, 0);
});

test("a trusted keys file listing a small-order key is the verifier's bad input (E_TRUSTED_KEYS)", () => {
  for (const key of SMALL_ORDER) {
    assert.throws(
      () => parseTrustedKeys(`# weak\n${key.toString("base64")}\n`),
      (error: Error & { code?: string }) =>
        error.code === "E_TRUSTED_KEYS" && /small-order/.test(error.message),
    );
  }
  const good = Buffer.from(fixtureKey().publicKey).toString("base64");
  assert.equal(parseTrustedKeys(`  ${good}  # trusted\n\n`).size, 1);
});
