import { SHARD_ENTRY, SHARDS_ENTRY } from "../../bundle/format.js";
import { decodeBase64Strict, ED25519_PUBLIC_KEY_BYTES, keyIdOf } from "../../bundle/keys.js";
import type { BundleEntries } from "../../bundle/read.js";
import type { SignerRole, TrustedKeys } from "../../bundle/sign.js";
import { bundleContext } from "../context.js";
import { isRecord } from "../parse.js";
import { type Finding, fail, pass } from "../types.js";

const CHECK = "trust" as const;

export interface TrustOptions {
  /** Key ids (sha256 hex of public keys) the verifier trusts: from readTrustedKeys()
   * (src/bundle/sign.ts) each with the roles it may sign; a plain set trusts each for every
   * role; undefined = no trust policy. */
  trustedKeyIds?: ReadonlySet<string> | TrustedKeys;
  /** Fail unless the signer is one of `trustedKeyIds` (on by default under CI). */
  requireTrusted: boolean;
}

/**
 * Who signed. Under a trust policy (trusted keys given, or required) the signer's key,
 * identified by the hash of the public key itself (never the stated keyId), must be trusted
 * and must not be an ephemeral throwaway key. Without one, the signer is reported, not judged.
 */
/** What the bundle is, so what its signer must be trusted to sign (a bundle holding both markers needs both roles). */
export function signerRolesNeeded(contents: BundleEntries): SignerRole[] {
  const roles: SignerRole[] = [];
  if (contents.entries.has(SHARD_ENTRY)) roles.push("shard");
  if (contents.entries.has(SHARDS_ENTRY)) roles.push("merge");
  return roles.length > 0 ? roles : ["run"];
}

const ROLE_WORDS: Record<SignerRole, string> = {
  run: "a whole-run bundle",
  shard: "a shard bundle",
  merge: "a merged bundle",
};

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
  } else if (trusted instanceof Map) {
    const granted = trusted.get(keyId) as ReadonlySet<SignerRole>;
    for (const role of signerRolesNeeded(contents).filter((needed) => !granted.has(needed))) {
      findings.push(
        fail(
          CHECK,
          "E_KEY_ROLE",
          `signer ${keyId} is trusted to sign ${[...granted].map((g) => ROLE_WORDS[g]).join(" or ")}, not ${ROLE_WORDS[role]}`,
          {
            keyId,
            role,
            roles: [...granted],
            fix: `list the key with the role ${role} in --trusted-keys if it may sign ${ROLE_WORDS[role]}`,
          },
        ),
      );
    }
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
