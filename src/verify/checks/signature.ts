import type { BundleEntries } from "../../bundle/read.js";
import { checkManifestSignature, SIGNATURE_CODES } from "../../bundle/sign.js";
import { bundleContext } from "../context.js";
import { type Finding, fail, pass } from "../types.js";

const CHECK = "signature" as const;

/** The exact message a bundle signature covers: the format's pre-authentication prefix, then manifest.json. */
export type SignedMessage = (manifestBytes: Uint8Array) => Uint8Array;

export interface SignatureOptions {
  signedMessage: SignedMessage;
}

/** Codes this check reports. */
export const SIGNATURE_CHECK_CODES = ["E_SIGNATURE_MISSING", ...SIGNATURE_CODES] as const;

/**
 * signature.json holds a valid Ed25519 signature by its public key over the signed message
 * of manifest.json's exact bytes, and its keyId is that key's id. The decision is the
 * bundle library's one verifier (src/bundle/sign.ts: strict RFC 8032, canonical S). Who
 * the signer is, and whether they are trusted, is the trust check's question.
 */
export function checkSignature(contents: BundleEntries, options: SignatureOptions): Finding[] {
  const manifestBytes = contents.entries.get("manifest.json");
  const parsed = bundleContext(contents).json("signature.json");
  if (!parsed.ok) {
    const code = contents.entries.has("signature.json") ? parsed.code : "E_SIGNATURE_MISSING";
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
  const result = checkManifestSignature(new Uint8Array(manifestBytes), parsed.value, options.signedMessage);
  if (!result.ok) return [fail(CHECK, result.code, `signature.json: ${result.message}`)];
  return [
    pass(CHECK, `valid Ed25519 signature over manifest.json by key ${result.keyId}`, { keyId: result.keyId }),
  ];
}
