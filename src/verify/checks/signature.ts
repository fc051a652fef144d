import { createHash, createPublicKey, verify } from "node:crypto";
import { isRecord, parseJsonEntry } from "../parse.js";
import { type BundleContents, type Finding, fail, pass } from "../types.js";

const CHECK = "signature" as const;

/** The exact message a bundle signature covers: the format's pre-authentication prefix, then manifest.json. */
export type SignedMessage = (manifestBytes: Uint8Array) => Uint8Array;

export interface SignatureOptions {
  signedMessage: SignedMessage;
}

/** Ed25519 sizes (RFC 8032), format constants. */
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

/**
 * Ed25519 verification (RFC 8032) through node:crypto (OpenSSL): the same answer as
 * tweetnacl's nacl.sign.detached.verify, at a fraction of the cost.
 */
export function verifyEd25519(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") },
    format: "jwk",
  });
  return verify(null, message, key, signature);
}

/** Key id: sha256 hex of the raw public key bytes. */
export function keyIdOf(publicKey: Uint8Array): string {
  return createHash("sha256").update(publicKey).digest("hex");
}

/** Strict base64: decodes only canonical padded base64 of exactly `length` bytes. */
export function decodeBase64Exact(text: unknown, length: number): Uint8Array | undefined {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.length !== length || bytes.toString("base64") !== text) return undefined;
  return new Uint8Array(bytes);
}

/**
 * signature.json holds a valid Ed25519 signature by its public key over the signed message
 * of manifest.json's exact bytes, and its keyId is that key's id. Who the signer is, and
 * whether they are trusted, is the trust check's question.
 */
export function checkSignature(contents: BundleContents, options: SignatureOptions): Finding[] {
  const manifestBytes = contents.entries.get("manifest.json");
  const parsed = parseJsonEntry(contents.entries.get("signature.json"), "signature.json");
  if (!parsed.ok) {
    const code = contents.entries.has("signature.json") ? "E_SIGNATURE_MALFORMED" : "E_SIGNATURE_MISSING";
    return [fail(CHECK, code, parsed.error)];
  }
  if (manifestBytes === undefined) {
    return [
      fail(
        CHECK,
        "E_SIGNATURE_MISSING",
        "manifest.json is missing, so there is nothing the signature covers",
      ),
    ];
  }
  const signature = parsed.value;
  if (!isRecord(signature)) return [fail(CHECK, "E_SIGNATURE_MALFORMED", "signature.json is not an object")];
  if (signature.algorithm !== "ed25519") {
    return [
      fail(
        CHECK,
        "E_SIGNATURE_ALGORITHM",
        `signature.json algorithm is ${JSON.stringify(signature.algorithm)}, not "ed25519"`,
      ),
    ];
  }
  const publicKey = decodeBase64Exact(signature.publicKey, ED25519_PUBLIC_KEY_BYTES);
  const signatureBytes = decodeBase64Exact(signature.signature, ED25519_SIGNATURE_BYTES);
  if (publicKey === undefined || signatureBytes === undefined) {
    return [
      fail(
        CHECK,
        "E_SIGNATURE_MALFORMED",
        `signature.json needs publicKey as base64 of ${ED25519_PUBLIC_KEY_BYTES} bytes and signature as base64 of ${ED25519_SIGNATURE_BYTES} bytes`,
      ),
    ];
  }
  const findings: Finding[] = [];
  const keyId = keyIdOf(publicKey);
  if (signature.keyId !== keyId) {
    findings.push(
      fail(CHECK, "E_SIGNATURE_KEY_ID", "signature.json keyId is not the sha256 of its public key", {
        stated: signature.keyId,
        actual: keyId,
      }),
    );
  }
  const message = options.signedMessage(new Uint8Array(manifestBytes));
  if (!verifyEd25519(message, signatureBytes, publicKey)) {
    findings.push(
      fail(CHECK, "E_SIGNATURE_INVALID", "the Ed25519 signature does not verify over manifest.json", {
        keyId,
      }),
    );
  }
  if (findings.length === 0)
    findings.push(pass(CHECK, `valid Ed25519 signature over manifest.json by key ${keyId}`, { keyId }));
  return findings;
}
