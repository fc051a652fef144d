import { isRecord, parseJsonEntry } from "../parse.js";
import { type BundleContents, type Finding, fail, pass } from "../types.js";
import { decodeBase64Exact, ED25519_PUBLIC_KEY_BYTES, keyIdOf } from "./signature.js";

const CHECK = "trust" as const;

export interface TrustOptions {
  /** Key ids (sha256 hex of public keys) the verifier trusts; undefined = no trust policy. */
  trustedKeyIds?: ReadonlySet<string>;
  /** Fail unless the signer is one of `trustedKeyIds` (on by default under CI). */
  requireTrusted: boolean;
}

/**
 * Who signed. Under a trust policy (trusted keys given, or required) the signer's key,
 * identified by the hash of the public key itself (never the stated keyId), must be trusted
 * and must not be an ephemeral throwaway key. Without one, the signer is reported, not judged.
 */
export function checkTrust(contents: BundleContents, options: TrustOptions): Finding[] {
  const trusted = options.trustedKeyIds;
  const policy = trusted !== undefined || options.requireTrusted;
  const parsed = parseJsonEntry(contents.entries.get("signature.json"), "signature.json");
  const signature = parsed.ok && isRecord(parsed.value) ? parsed.value : undefined;
  const publicKey = signature && decodeBase64Exact(signature.publicKey, ED25519_PUBLIC_KEY_BYTES);
  if (signature === undefined || publicKey === undefined) {
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

/**
 * A trusted-keys file: one key per line, either a key id (64 hex) or a base64 Ed25519 public
 * key; blank lines and lines starting with # are ignored. A JSON public key file
 * ({"publicKey": ...}) or a JSON list of such entries is accepted too. Returns key ids.
 */
export function parseTrustedKeys(text: string): { keyIds: Set<string>; errors: string[] } {
  const keyIds = new Set<string>();
  const errors: string[] = [];
  const addOne = (entry: string, where: string): void => {
    if (/^[0-9a-f]{64}$/.test(entry)) {
      keyIds.add(entry);
      return;
    }
    const publicKey = decodeBase64Exact(entry, ED25519_PUBLIC_KEY_BYTES);
    if (publicKey === undefined)
      errors.push(`${where}: neither a 64-hex key id nor a base64 Ed25519 public key`);
    else keyIds.add(keyIdOf(publicKey));
  };
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      return { keyIds, errors: [`not valid JSON: ${(error as Error).message}`] };
    }
    const list = Array.isArray(value) ? value : [value];
    list.forEach((item, index) => {
      if (typeof item === "string") addOne(item, `entry ${index}`);
      else if (isRecord(item) && typeof item.publicKey === "string") addOne(item.publicKey, `entry ${index}`);
      else if (isRecord(item) && typeof item.keyId === "string") addOne(item.keyId, `entry ${index}`);
      else errors.push(`entry ${index}: expected a key string or an object with publicKey or keyId`);
    });
    return { keyIds, errors };
  }
  text.split(/\r?\n/).forEach((line, index) => {
    const entry = line.trim();
    if (entry === "" || entry.startsWith("#")) return;
    addOne(entry, `line ${index + 1}`);
  });
  return { keyIds, errors };
}
