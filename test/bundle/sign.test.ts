import assert from "node:assert/strict";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
} from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import nacl from "tweetnacl";
import { malleate } from "../../scripts/adversarial-bundles.js";
import { encodeBase64, generateKeyPair, keyFromSeed, publicKeyFileContents } from "../../src/bundle/keys.js";
import {
  checkManifestSignature,
  hasCanonicalScalar,
  manifestSignedMessage,
  parseTrustedKeys,
  preAuthenticationEncoding,
  readTrustedKeys,
  SIGNER_ROLES,
  type SignatureJson,
  signManifest,
  type TrustedKeys,
  verifyEd25519,
  verifySignature,
} from "../../src/bundle/sign.js";
import { SpgError } from "../../src/errors.js";
import { packageRoot } from "../../src/paths.js";
import { checkTrust } from "../../src/verify/checks/trust.js";

const hex = (text: string) => new Uint8Array(Buffer.from(text, "hex"));

// RFC 8032 section 7.1, TEST 1 and TEST 2.
const RFC8032 = [
  {
    secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    public: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    message: "",
    signature:
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    public: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    message: "72",
    signature:
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
];

test("Ed25519 keys and signatures match the RFC 8032 test vectors", () => {
  for (const vector of RFC8032) {
    const key = keyFromSeed(hex(vector.secret));
    assert.equal(Buffer.from(key.publicKey).toString("hex"), vector.public);
    const signature = nacl.sign.detached(hex(vector.message), key.secretKey);
    assert.equal(Buffer.from(signature).toString("hex"), vector.signature);
  }
});

/** Node's own Ed25519 (OpenSSL), an independent implementation. */
function nodeKeys(seed: Uint8Array) {
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const privateKey = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

test("the pre-authentication encoding binds format, payload type and lengths", () => {
  assert.equal(
    preAuthenticationEncoding(Buffer.from("{}")).toString("utf8"),
    "SPGBUNDLEv1 43 application/vnd.spg.manifest+json;version=1 2 {}",
  );
  assert.equal(preAuthenticationEncoding(Buffer.from("é")).toString("utf8").split(" ")[3], "2");
});

test("a version 2 manifest is signed in version 2's domain, and a version 1-domain signature of it fails", () => {
  const seed = hex(RFC8032[0].secret);
  const key = keyFromSeed(seed);
  const manifest = Buffer.from('{"format":"spg-bundle","version":2}');
  assert.equal(
    manifestSignedMessage(manifest).toString("utf8"),
    'SPGBUNDLEv2 43 application/vnd.spg.manifest+json;version=2 35 {"format":"spg-bundle","version":2}',
  );
  const node = nodeKeys(seed);
  const signature = signManifest(manifest, key);
  assert.equal(
    signature.signature,
    nodeSign(
      null,
      Buffer.from(`SPGBUNDLEv2 43 application/vnd.spg.manifest+json;version=2 35 ${manifest}`),
      node.privateKey,
    ).toString("base64"),
  );
  assert.ok(verifySignature(manifest, signature));
  const v1Domain = nodeSign(null, preAuthenticationEncoding(manifest), node.privateKey).toString("base64");
  assert.equal(verifySignature(manifest, { ...signature, signature: v1Domain }), false);
});

test("a manifest signature is Ed25519 over the PAE bytes, as OpenSSL computes it too", () => {
  const seed = hex(RFC8032[0].secret);
  const key = keyFromSeed(seed);
  const manifest = Buffer.from('{"format":"spg-bundle","version":1}');
  const signature = signManifest(manifest, key);
  const node = nodeKeys(seed);
  const expected = nodeSign(null, preAuthenticationEncoding(manifest), node.privateKey);
  assert.equal(signature.signature, expected.toString("base64"));
  assert.ok(nodeVerify(null, preAuthenticationEncoding(manifest), node.publicKey, expected));
  assert.equal(signature.algorithm, "ed25519");
  assert.equal(signature.publicKey, encodeBase64(hex(RFC8032[0].public)));
  assert.equal(signature.ephemeral, false);
});

test("sign then verify round trip; the key id is the sha256 of the public key", () => {
  const key = generateKeyPair();
  const manifest = Buffer.from('{"entries":[],"format":"spg-bundle"}');
  const signature = signManifest(manifest, key);
  const result = checkManifestSignature(manifest, signature);
  assert.ok(result.ok);
  assert.equal(result.keyId, key.keyId);
  assert.equal(key.keyId, createHash("sha256").update(key.publicKey).digest("hex"));
  assert.ok(verifySignature(manifest, Buffer.from(JSON.stringify(signature))));
});

test("any altered manifest byte makes the signature fail", () => {
  const key = generateKeyPair();
  const manifest = Buffer.from(
    JSON.stringify({
      entries: [{ name: "records.jsonl", sha256: "ab".repeat(32), bytes: 1234 }],
      format: "spg-bundle",
    }),
  );
  const signature = signManifest(manifest, key);
  const step = Math.max(1, Math.floor(manifest.length / 12));
  for (let offset = 0; offset < manifest.length; offset += step) {
    const tampered = Buffer.from(manifest);
    tampered[offset] ^= 0x01;
    const result = checkManifestSignature(tampered, signature);
    assert.equal(result.ok, false, `flip at ${offset} accepted`);
    assert.equal(result.ok ? "" : result.code, "E_SIGNATURE_INVALID");
  }
  assert.equal(checkManifestSignature(Buffer.concat([manifest, Buffer.from(" ")]), signature).ok, false);
});

test("altered signatures, swapped keys, lying key ids and raw (non-PAE) signatures are rejected", () => {
  const key = generateKeyPair();
  const other = generateKeyPair();
  const manifest = Buffer.from('{"format":"spg-bundle"}');
  const good = signManifest(manifest, key);
  const codeOf = (signature: unknown) => {
    const result = checkManifestSignature(manifest, signature);
    return result.ok ? "OK" : result.code;
  };
  const flipped = Buffer.from(good.signature, "base64");
  flipped[10] ^= 0x80;
  assert.equal(codeOf({ ...good, signature: flipped.toString("base64") }), "E_SIGNATURE_INVALID");
  // Another key's public half with its correct id: a valid-looking signature by the wrong signer.
  assert.equal(
    codeOf({ ...good, publicKey: encodeBase64(other.publicKey), keyId: other.keyId }),
    "E_SIGNATURE_INVALID",
  );
  assert.equal(codeOf({ ...good, keyId: other.keyId }), "E_SIGNATURE_KEY_ID");
  assert.equal(codeOf({ ...good, algorithm: "rsa" }), "E_SIGNATURE_ALGORITHM");
  assert.equal(codeOf({ ...good, publicKey: "not base64!" }), "E_SIGNATURE_MALFORMED");
  assert.equal(codeOf({ ...good, signature: good.signature.slice(4) }), "E_SIGNATURE_MALFORMED");
  assert.equal(codeOf({ ...good, ephemeral: "no" }), "E_SIGNATURE_MALFORMED");
  assert.equal(codeOf(Buffer.from("{garbage")), "E_SIGNATURE_MALFORMED");
  assert.equal(codeOf([good]), "E_SIGNATURE_MALFORMED");
  // Domain separation: a plain Ed25519 signature over the manifest bytes is not a bundle signature.
  const raw = nacl.sign.detached(manifest, key.secretKey);
  assert.equal(
    codeOf({ ...good, signature: encodeBase64(raw) } satisfies SignatureJson),
    "E_SIGNATURE_INVALID",
  );
  assert.equal(codeOf(good), "OK");
});

test("trusted keys: JSON arrays, public key files and line lists of keys or ids, each trusted for every role", async () => {
  const first = generateKeyPair();
  const second = generateKeyPair();
  const third = generateKeyPair();
  const ids = (keys: TrustedKeys) => new Set(keys.keys());
  const expected = new Set([first.keyId, second.keyId]);
  const everyRole = (keys: TrustedKeys) =>
    [...keys.values()].every((roles) => SIGNER_ROLES.every((role) => roles.has(role)));
  const fromJson = parseTrustedKeys(
    JSON.stringify([encodeBase64(first.publicKey), second.keyId.toUpperCase()]),
  );
  assert.deepEqual(ids(fromJson), expected);
  assert.ok(everyRole(fromJson));
  const fromLines = parseTrustedKeys(
    `# project keys\n${encodeBase64(first.publicKey)}\n\n  ${second.keyId}  # ci\n`,
  );
  assert.deepEqual(ids(fromLines), expected);
  assert.ok(everyRole(fromLines));
  assert.deepEqual(
    ids(parseTrustedKeys(publicKeyFileContents(third).toString("utf8"))),
    new Set([third.keyId]),
  );
  assert.deepEqual(
    ids(parseTrustedKeys(`[${publicKeyFileContents(third).toString("utf8")}, "${first.keyId}"]`)),
    new Set([third.keyId, first.keyId]),
  );
  const invalid = (text: string, field?: string) =>
    assert.throws(
      () => parseTrustedKeys(text, "keys.txt"),
      (error: unknown) =>
        error instanceof SpgError &&
        error.code === "E_TRUSTED_KEYS" &&
        error.file === "keys.txt" &&
        (field === undefined || error.field === field),
    );
  invalid(`${first.keyId}\nnot-a-key\n`, "line 2");
  invalid(`["${first.keyId}", 42]`, "[1]");
  invalid("abcd".repeat(11));
  invalid("# nothing here\n");
  const directory = await mkdtemp(path.join(os.tmpdir(), "spg-trust-"));
  try {
    const file = path.join(directory, "trusted.txt");
    await writeFile(file, `${first.keyId}\n`);
    assert.deepEqual(ids(await readTrustedKeys(file)), new Set([first.keyId]));
    await assert.rejects(readTrustedKeys(path.join(directory, "absent")), { code: "E_TRUSTED_KEYS" });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  // The committed file (no roles) keeps trusting the project key for everything.
  const committed = await readTrustedKeys(path.join(packageRoot(), "bundles", "trusted-keys.txt"));
  assert.equal(committed.size, 1);
  assert.ok(everyRole(committed));
});

test("trusted keys with roles: text after the key or JSON roles; listed twice, the union; unknown roles refused", () => {
  const shardKey = generateKeyPair();
  const mergeKey = generateKeyPair();
  const roles = (keys: TrustedKeys, id: string) => [...(keys.get(id) ?? [])].sort();
  const text = parseTrustedKeys(`${shardKey.keyId} shard  # a shard job\n${mergeKey.keyId}\tmerge,run\n`);
  assert.deepEqual(roles(text, shardKey.keyId), ["shard"]);
  assert.deepEqual(roles(text, mergeKey.keyId), ["merge", "run"]);
  const json = parseTrustedKeys(
    JSON.stringify([
      { key: encodeBase64(shardKey.publicKey), roles: ["shard"] },
      { ...JSON.parse(publicKeyFileContents(mergeKey).toString("utf8")), roles: ["merge"] },
      { key: shardKey.keyId, roles: ["run"] },
    ]),
  );
  assert.deepEqual(roles(json, shardKey.keyId), ["run", "shard"]);
  assert.deepEqual(roles(json, mergeKey.keyId), ["merge"]);
  for (const [bad, field] of [
    [`${shardKey.keyId} shards\n`, "line 1"],
    [JSON.stringify([{ key: shardKey.keyId, roles: [] }]), "[0]"],
    [JSON.stringify([{ key: shardKey.keyId, roles: "shard" }]), "[0]"],
  ]) {
    assert.throws(
      () => parseTrustedKeys(bad, "keys.txt"),
      (error: unknown) =>
        error instanceof SpgError && error.code === "E_TRUSTED_KEYS" && error.field === field,
      bad,
    );
  }
});

test("the trust check asks for the role the bundle needs: run, shard (shard.json) or merge (shards.jsonl)", () => {
  const key = generateKeyPair();
  const signature = Buffer.from(JSON.stringify({ ephemeral: false, publicKey: encodeBase64(key.publicKey) }));
  const bundle = (...extra: string[]) => ({
    entries: new Map<string, Buffer>([
      ["signature.json", signature],
      ...extra.map((name): [string, Buffer] => [name, Buffer.from("{}")]),
    ]),
  });
  const verdict = (contents: { entries: Map<string, Buffer> }, line: string) =>
    checkTrust(contents, { trustedKeyIds: parseTrustedKeys(line), requireTrusted: true })
      .filter((finding) => !finding.ok)
      .map((finding) => finding.code);
  assert.deepEqual(verdict(bundle(), `${key.keyId} run`), []);
  assert.deepEqual(verdict(bundle(), `${key.keyId} shard,merge`), ["E_KEY_ROLE"]);
  assert.deepEqual(verdict(bundle("shard.json"), `${key.keyId} shard`), []);
  assert.deepEqual(verdict(bundle("shard.json"), `${key.keyId} run merge`), ["E_KEY_ROLE"]);
  assert.deepEqual(verdict(bundle("shards.jsonl"), `${key.keyId} merge`), []);
  assert.deepEqual(verdict(bundle("shards.jsonl"), `${key.keyId} run,shard`), ["E_KEY_ROLE"]);
  // No roles listed: every role, as before roles existed; a plain set of ids likewise.
  assert.deepEqual(verdict(bundle("shards.jsonl"), key.keyId), []);
  assert.deepEqual(
    checkTrust(bundle("shard.json"), { trustedKeyIds: new Set([key.keyId]), requireTrusted: true }).map(
      (f) => f.ok,
    ),
    [true],
  );
});
test("a malleated signature (S + L) is refused by the one verifier, though tweetnacl accepts it", () => {
  const key = generateKeyPair();
  const manifest = Buffer.from('{"format":"spg-bundle"}');
  const good = signManifest(manifest, key);
  const bad = malleate(Buffer.from(good.signature, "base64"));
  // The premise: tweetnacl's verify skips the S < L check, so this is a live attack on it.
  assert.equal(nacl.sign.detached.verify(preAuthenticationEncoding(manifest), bad, key.publicKey), true);
  assert.equal(verifyEd25519(preAuthenticationEncoding(manifest), bad, key.publicKey), false);
  assert.equal(hasCanonicalScalar(Buffer.from(good.signature, "base64")), true);
  assert.equal(hasCanonicalScalar(bad), false);
  const result = checkManifestSignature(manifest, { ...good, signature: bad.toString("base64") });
  assert.equal(result.ok ? "OK" : result.code, "E_SIGNATURE_NON_CANONICAL");
  assert.equal(verifySignature(manifest, { ...good, signature: bad.toString("base64") }), false);
});
