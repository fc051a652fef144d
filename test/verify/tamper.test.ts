import assert from "node:assert/strict";
import { test } from "node:test";
import nacl from "tweetnacl";
import { BUNDLE_ENTRY_ORDER } from "../../src/bundle/format.js";
import { verifyEd25519 } from "../../src/bundle/sign.js";
import { checkIntegrity } from "../../src/verify/checks/integrity.js";
import { checkSignature } from "../../src/verify/checks/signature.js";
import { checkTrust } from "../../src/verify/checks/trust.js";
import { EXIT_TAMPERED, runChecks, type VerifyOptions } from "../../src/verify/runner.js";
import type { Finding } from "../../src/verify/types.js";
import {
  bundleFixture,
  canonicalJson,
  fixtureKey,
  fixtureSignedMessage,
  fixtureValidators,
  resign,
  sha256Hex,
} from "../helpers/bundle-fixture.js";

const trusted = fixtureKey();
const options: VerifyOptions = {
  signedMessage: fixtureSignedMessage,
  trustedKeyIds: new Set([trusted.keyId]),
  requireTrusted: true,
  validators: fixtureValidators(),
};
const codes = (findings: Finding[]) =>
  findings.filter((finding) => !finding.ok).map((finding) => finding.code);

test("any single byte flipped in any entry is rejected as tampering, without a crash", () => {
  const masks = [0x01, 0x20, 0x80];
  let cases = 0;
  for (const name of BUNDLE_ENTRY_ORDER) {
    const original = bundleFixture().contents.entries.get(name)!;
    const offsets = new Set<number>([0, original.length - 1]);
    for (let k = 1; k <= 10; k++) offsets.add(Math.floor((k * original.length) / 11));
    for (const offset of offsets) {
      const { contents } = bundleFixture();
      const bytes = Buffer.from(original);
      bytes[offset] ^= masks[offset % masks.length];
      contents.entries.set(name, bytes);
      const result = runChecks(contents, options);
      const failed = codes(result.findings);
      assert.ok(!failed.includes("E_CHECK_CRASHED"), `${name}@${offset}: ${failed}`);
      assert.equal(result.exitCode, EXIT_TAMPERED, `${name}@${offset}: ${failed}`);
      if (name === "manifest.json") {
        assert.ok(failed.includes("E_SIGNATURE_INVALID"), `${name}@${offset}: ${failed}`);
      } else if (name !== "signature.json") {
        assert.ok(failed.includes("E_INTEGRITY_HASH"), `${name}@${offset}: ${failed}`);
      } else {
        const signatureFailures = result.findings.filter(
          (finding) => !finding.ok && (finding.check === "signature" || finding.check === "trust"),
        );
        assert.ok(signatureFailures.length > 0, `${name}@${offset}: ${failed}`);
      }
      cases += 1;
    }
  }
  assert.ok(cases >= 80, `only ${cases} cases`);
});

test("integrity: size, missing, unlisted, unexpected and duplicate entries have their own codes", () => {
  const sized = bundleFixture().contents;
  sized.entries.set("report.md", Buffer.concat([sized.entries.get("report.md")!, Buffer.from("x")]));
  assert.deepEqual(codes(checkIntegrity(sized)), ["E_INTEGRITY_SIZE", "E_INTEGRITY_HASH"]);

  const missing = bundleFixture().contents;
  missing.entries.delete("fingerprints.jsonl");
  assert.deepEqual(codes(checkIntegrity(missing)), ["E_INTEGRITY_MISSING"]);

  const extra = bundleFixture().contents;
  extra.entries.set("payload.bin", Buffer.from("x"));
  assert.deepEqual(codes(checkIntegrity(extra)), ["E_INTEGRITY_UNLISTED"]);

  const relisted = bundleFixture().contents;
  const manifest = JSON.parse(relisted.entries.get("manifest.json")!.toString("utf8"));
  manifest.entries.push(manifest.entries[0]);
  manifest.entries.push({ name: "payload.bin", sha256: sha256Hex("x"), bytes: 1 });
  manifest.entries = manifest.entries.filter((entry: { name: string }) => entry.name !== "report.md");
  relisted.entries.set("manifest.json", Buffer.from(canonicalJson(manifest)));
  assert.deepEqual(codes(checkIntegrity(relisted)).sort(), [
    "E_INTEGRITY_DUPLICATE",
    "E_INTEGRITY_UNEXPECTED",
    "E_INTEGRITY_UNLISTED",
  ]);

  const noManifest = bundleFixture().contents;
  noManifest.entries.delete("manifest.json");
  assert.deepEqual(codes(checkIntegrity(noManifest)), ["E_INTEGRITY_MISSING"]);
  noManifest.entries.set("manifest.json", Buffer.from("{not json"));
  assert.deepEqual(codes(checkIntegrity(noManifest)), ["E_JSON_SYNTAX"]);
  noManifest.entries.set("manifest.json", Buffer.from('{"entries":[]}'));
  assert.ok(codes(checkIntegrity(noManifest)).includes("E_INTEGRITY_UNLISTED"));
  noManifest.entries.set("manifest.json", Buffer.from('{"format":1}'));
  assert.deepEqual(codes(checkIntegrity(noManifest)), ["E_INTEGRITY_MANIFEST"]);
});

test("signature: a valid bundle re-signed by another key still verifies, but trust refuses it", () => {
  const { contents } = bundleFixture();
  resign(contents.entries, fixtureKey(99));
  assert.deepEqual(codes(checkSignature(contents, { signedMessage: fixtureSignedMessage })), []);
  const trust = checkTrust(contents, { trustedKeyIds: new Set([trusted.keyId]), requireTrusted: true });
  assert.deepEqual(codes(trust), ["E_UNTRUSTED_KEY"]);
  const result = runChecks(contents, options);
  // Nothing past trust runs on an untrusted signer's bundle: each later check says why.
  assert.deepEqual(codes(result.findings), ["E_UNTRUSTED_KEY", ...Array(11).fill("E_CHECK_SKIPPED")]);
  assert.equal(result.exitCode, EXIT_TAMPERED);
});

test("signature: a signature made over another prefix, a wrong key id, a bad algorithm", () => {
  const { contents } = bundleFixture();
  assert.deepEqual(codes(checkSignature(contents, { signedMessage: (bytes) => bytes })), [
    "E_SIGNATURE_INVALID",
  ]);

  const signature = JSON.parse(contents.entries.get("signature.json")!.toString("utf8"));
  contents.entries.set(
    "signature.json",
    Buffer.from(JSON.stringify({ ...signature, keyId: "0".repeat(64) })),
  );
  assert.deepEqual(codes(checkSignature(contents, { signedMessage: fixtureSignedMessage })), [
    "E_SIGNATURE_KEY_ID",
  ]);

  // The stated key id is never what trust goes by: it hashes the public key itself.
  const forged = { ...signature, keyId: trusted.keyId };
  const otherKey = bundleFixture({ key: fixtureKey(3) }).contents;
  const otherSignature = JSON.parse(otherKey.entries.get("signature.json")!.toString("utf8"));
  otherKey.entries.set(
    "signature.json",
    Buffer.from(JSON.stringify({ ...otherSignature, keyId: forged.keyId })),
  );
  assert.deepEqual(
    codes(checkTrust(otherKey, { trustedKeyIds: new Set([trusted.keyId]), requireTrusted: true })),
    ["E_UNTRUSTED_KEY"],
  );

  contents.entries.set("signature.json", Buffer.from(JSON.stringify({ ...signature, algorithm: "rsa" })));
  assert.deepEqual(codes(checkSignature(contents, { signedMessage: fixtureSignedMessage })), [
    "E_SIGNATURE_ALGORITHM",
  ]);
  contents.entries.set("signature.json", Buffer.from(JSON.stringify({ ...signature, publicKey: "AAAA" })));
  assert.deepEqual(codes(checkSignature(contents, { signedMessage: fixtureSignedMessage })), [
    "E_SIGNATURE_MALFORMED",
  ]);
  contents.entries.delete("signature.json");
  assert.deepEqual(codes(checkSignature(contents, { signedMessage: fixtureSignedMessage })), [
    "E_SIGNATURE_MISSING",
  ]);
});

test("trust: ephemeral keys fail under a policy; no policy reports the signer; required without keys fails", () => {
  const ephemeral = bundleFixture({ ephemeral: true }).contents;
  assert.deepEqual(
    codes(checkTrust(ephemeral, { trustedKeyIds: new Set([trusted.keyId]), requireTrusted: false })),
    ["E_EPHEMERAL_KEY"],
  );
  const open = checkTrust(ephemeral, { requireTrusted: false });
  assert.equal(open.length, 1);
  assert.equal(open[0].ok, true);
  assert.match(open[0].message, /no trust policy/);
  const { contents } = bundleFixture();
  assert.deepEqual(codes(checkTrust(contents, { requireTrusted: true })), ["E_NO_TRUSTED_KEYS"]);
  assert.deepEqual(
    codes(checkTrust(contents, { requireTrusted: true, trustedKeyIds: new Set([trusted.keyId]) })),
    [],
  );
});

test("Ed25519 through node:crypto agrees with tweetnacl both ways", () => {
  const key = fixtureKey(11);
  const message = fixtureSignedMessage(Buffer.from("manifest bytes"));
  const naclPair = nacl.sign.keyPair.fromSecretKey(key.secretKey);
  assert.deepEqual(Buffer.from(naclPair.publicKey), Buffer.from(key.publicKey));
  const naclSignature = nacl.sign.detached(message, key.secretKey);
  assert.equal(verifyEd25519(message, naclSignature, key.publicKey), true);
  const tampered = Buffer.from(message);
  tampered[0] ^= 1;
  assert.equal(verifyEd25519(tampered, naclSignature, key.publicKey), false);
  const { contents } = bundleFixture({ key });
  const signature = JSON.parse(contents.entries.get("signature.json")!.toString("utf8"));
  const signed = fixtureSignedMessage(contents.entries.get("manifest.json")!);
  assert.equal(
    nacl.sign.detached.verify(
      signed,
      Buffer.from(signature.signature, "base64"),
      Buffer.from(signature.publicKey, "base64"),
    ),
    true,
  );
});
