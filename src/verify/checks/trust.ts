import { decodeBase64Strict, ED25519_PUBLIC_KEY_BYTES, keyIdOf } from "../../bundle/keys.js";
import type { BundleEntries } from "../../bundle/read.js";
import { bundleContext } from "../context.js";
import { isRecord } from "../parse.js";
import { type Finding, fail, pass } from "../types.js";

const CHECK = "trust" as const;

export interface TrustOptions {
  /** Key ids (sha256 hex of public keys) the verifier trusts, e.g. from readTrustedKeys()
   * (src/bundle/sign.ts); undefined = no trust policy. */
  trustedKeyIds?: ReadonlySet<string>;
  /** Fail unless the signer is one of `trustedKeyIds` (on by default under CI). */
  requireTrusted: boolean;
}

/**
 * Who signed. Under a trust policy (trusted keys given, or required) the signer's key,
 * identified by the hash of the public key itself (never the stated keyId), must be trusted
 * and must not be an ephemeral throwaway key. Without one, the signer is reported, not judged.
 */
export function checkTrust(contents: BundleEntries, options: TrustOptions): Finding[] {
  const trusted = options.trustedKeyIds;
  const policy = trusted !== undefined || options.requireTrusted;
  const parsed = bundleContext(contents).json("signature.json");
  const signature = parsed.ok && isRecord(parsed.value) ? parsed.value : undefined;
  const publicKey = signature && decodeBase64Strict(signature.publicKey, ED25519_PUBLIC_KEY_BYTES);
  if (signature === undefined || publicKey === null || publicKey === undefined) {
    return [
      fail(CHECK, "E_UNTRUSTED_KEY", "no readable signer in signature.json, so the signer cannot be trusted"),
    ];
  }
  const keyId = keyIdOf(publicKey);
  const ephemeral = signature.ephemeral === true;
  if (!policy) {
    return [
      pass(
        CHECK,
        `no trust policy given: signer ${keyId}${ephemeral ? " (ephemeral key)" : ""} not checked`,
        {
          keyId,
          ephemeral,
        },
      ),
    ];
  }
  const findings: Finding[] = [];
  if (trusted === undefined || trusted.size === 0) {
    findings.push(
      fail(CHECK, "E_NO_TRUSTED_KEYS", "a trusted signer is required but no trusted keys were given", {
        keyId,
        fix: "pass --trusted-keys FILE with the public keys or key ids you trust",
      }),
    );
  } else if (!trusted.has(keyId)) {
    findings.push(
      fail(CHECK, "E_UNTRUSTED_KEY", `signer ${keyId} is not among the ${trusted.size} trusted keys`, {
        keyId,
      }),
    );
  }
  if (ephemeral || signature.ephemeral !== false) {
    findings.push(
      fail(
        CHECK,
        "E_EPHEMERAL_KEY",
        `signer ${keyId} is an ephemeral (throwaway) key, which a trust policy refuses`,
        {
          keyId,
        },
      ),
    );
  }
  if (findings.length === 0) findings.push(pass(CHECK, `signer ${keyId} is trusted`, { keyId }));
  return findings;
}
