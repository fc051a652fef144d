/**
 * signature.json: an Ed25519 signature over the exact bytes of manifest.json, wrapped in
 * a DSSE-style pre-authentication encoding (PAE) so the signed message is bound to this
 * format, version and payload type:
 *
 *   "SPGBUNDLEv1" SP len(type) SP type SP len(body) SP body     (lengths: ASCII decimal bytes)
 *
 * with the prefix and type of the manifest's own format version (SPGBUNDLEv2 ... for version 2).
 */
import { createPublicKey, verify } from "node:crypto";
import nacl from "tweetnacl";
import { INPUT_FILE_LIMITS, readBoundedFileSync } from "../bounded-read.js";
import type { FindingCode } from "../error-codes.js";
import { SpgError } from "../errors.js";
import { canonicalJson, parseJson } from "./canonical.js";
import {
  MANIFEST_PAYLOAD_TYPE,
  manifestPayloadType,
  READABLE_FORMAT_VERSIONS,
  SIGNATURE_ALGORITHM,
  SIGNING_PREFIX,
  signingPrefix,
} from "./format.js";
import {
  decodeBase64Strict,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  encodeBase64,
  keyIdOf,
  PUBLIC_KEY_FILE_TYPE,
  publicKeyFromJson,
  type SigningKey,
} from "./keys.js";

/** signature.json (schemas/signature.schema.json). */
export interface SignatureJson {
  algorithm: typeof SIGNATURE_ALGORITHM;
  /** base64 of the 32-byte public key. */
  publicKey: string;
  /** sha256 hex of the raw public key bytes. */
  keyId: string;
  /** base64 of the 64-byte detached signature. */
  signature: string;
  ephemeral: boolean;
}

/** The exact bytes signed for a manifest, in a given signing domain (default: version 1's). */
export function preAuthenticationEncoding(
  body: Uint8Array,
  payloadType = MANIFEST_PAYLOAD_TYPE,
  prefix = SIGNING_PREFIX,
): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  const header = Buffer.from(`${prefix} ${type.length} ${payloadType} ${body.length} `, "utf8");
  return Buffer.concat([header, body]);
}

/** The format version a manifest states, when it is one this tool reads; else 1. */
function statedVersion(manifestBytes: Uint8Array): number {
  try {
    const manifest = JSON.parse(Buffer.from(manifestBytes).toString("utf8")) as { version?: unknown };
    const version = manifest?.version;
    return typeof version === "number" && READABLE_FORMAT_VERSIONS.includes(version) ? version : 1;
  } catch {
    return 1;
  }
}

/**
 * The message a bundle's signature covers: the PAE of manifest.json in its own version's
 * domain. The version is read from the manifest the signature covers, so changing it
 * breaks the signature.
 */
export function manifestSignedMessage(manifestBytes: Uint8Array): Buffer {
  const version = statedVersion(manifestBytes);
  return preAuthenticationEncoding(manifestBytes, manifestPayloadType(version), signingPrefix(version));
}

export function signManifest(manifestBytes: Uint8Array, key: SigningKey): SignatureJson {
  const signature = nacl.sign.detached(manifestSignedMessage(manifestBytes), key.secretKey);
  return {
    algorithm: SIGNATURE_ALGORITHM,
    publicKey: encodeBase64(key.publicKey),
    keyId: key.keyId,
    signature: encodeBase64(signature),
    ephemeral: key.ephemeral,
  };
}

export function signatureJsonBytes(signature: SignatureJson): Buffer {
  return canonicalJson(signature);
}

/** The order L of Ed25519's base point (RFC 8032 section 5.1). */
const ED25519_GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

/**
 * Whether the signature's scalar S (its last 32 bytes, little-endian) is below L. RFC 8032
 * requires it; a verifier that skips the check (tweetnacl does) accepts S + L as a second
 * valid signature over the same message, so signatures would not be unique.
 */
export function hasCanonicalScalar(signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
  let scalar = 0n;
  for (let index = ED25519_SIGNATURE_BYTES - 1; index >= ED25519_SIGNATURE_BYTES / 2; index--) {
    scalar = (scalar << 8n) | BigInt(signature[index]);
  }
  return scalar < ED25519_GROUP_ORDER;
}

const ED25519_FIELD_PRIME = 2n ** 255n - 19n;

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = ((base % modulus) + modulus) % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

/** The curve's d = -121665/121666 mod p, computed once. */
let edwardsD: bigint | undefined;

/**
 * Whether a 32-byte Ed25519 public key is weak: not the canonical encoding of a curve point
 * (y not below p), not a point, or of small order (8·A is the identity: one of the 8 torsion
 * points). Under a small-order key a signature equation holds for any message with R and S
 * chosen once (the identity key with R = identity, S = 0 verifies everything in OpenSSL), so
 * such a key's signature binds nothing. RFC 8032 section 5.1.3 decoding, affine arithmetic.
 */
export function isWeakPublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return true;
  const p = ED25519_FIELD_PRIME;
  let y = 0n;
  for (let index = ED25519_PUBLIC_KEY_BYTES - 1; index >= 0; index--)
    y = (y << 8n) | BigInt(publicKey[index]);
  const sign = y >> 255n;
  y &= (1n << 255n) - 1n;
  if (y >= p) return true;
  edwardsD ??= (((-121665n * modPow(121666n, p - 2n, p)) % p) + p) % p;
  const d = edwardsD;
  const u = (y * y - 1n + p) % p;
  const v = (d * y * y + 1n) % p;
  let x = (u * modPow(v, 3n, p) * modPow(u * modPow(v, 7n, p), (p - 5n) / 8n, p)) % p;
  const check = (v * x * x) % p;
  if (check !== u) {
    if (check !== (p - u) % p) return true;
    x = (x * modPow(2n, (p - 1n) / 4n, p)) % p;
  }
  if (x === 0n && sign === 1n) return true;
  if ((x & 1n) !== sign) x = p - x;
  // Three doublings in projective coordinates (twisted Edwards, a = -1, dbl-2008-hwcd): 8·A,
  // the identity when X = 0 and Y = Z.
  let [X, Y, Z] = [x, y, 1n];
  for (let i = 0; i < 3; i++) {
    const A = (X * X) % p;
    const B = (Y * Y) % p;
    const C = (2n * Z * Z) % p;
    const E = ((((X + Y) * (X + Y) - A - B) % p) + 2n * p) % p;
    const G = (B - A + p) % p;
    const F = (G - C + p) % p;
    const H = (p - A - B + p) % p;
    [X, Y, Z] = [(E * F) % p, (G * H) % p, (F * G) % p];
  }
  return X === 0n && Y === Z;
}

/**
 * The one Ed25519 verifier of the project (RFC 8032, strict): non-canonical S is refused
 * here, then node:crypto (OpenSSL) checks the equation. Everything that verifies a
 * signature (the library's checkManifestSignature, spg verify's signature check) goes through it.
 */
export function verifyEd25519(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES || !hasCanonicalScalar(signature)) return false;
  if (isWeakPublicKey(publicKey)) return false;
  try {
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") },
      format: "jwk",
    });
    return verify(null, message, key, signature);
  } catch {
    // A public key that is not a curve point cannot have signed anything.
    return false;
  }
}

/** Stable codes of a failed signature check. */
export const SIGNATURE_CODES = [
  "E_SIGNATURE_MALFORMED",
  "E_SIGNATURE_ALGORITHM",
  "E_SIGNATURE_KEY_ID",
  "E_SIGNATURE_NON_CANONICAL",
  "E_SIGNATURE_WEAK_KEY",
  "E_SIGNATURE_INVALID",
] as const;
export type SignatureCode = (typeof SIGNATURE_CODES)[number];

export type SignatureCheck =
  | { ok: true; keyId: string; publicKey: Uint8Array; ephemeral: boolean }
  | {
      ok: false;
      code: Extract<FindingCode, SignatureCode>;
      message: string;
    };

/**
 * Check signature.json (bytes or parsed) against manifest bytes. The key id is
 * recomputed from the public key; a signature.json whose keyId disagrees is rejected,
 * so trust decisions can use the returned keyId.
 */
export function checkManifestSignature(
  manifestBytes: Uint8Array,
  signature: unknown,
  signedMessage: (manifestBytes: Uint8Array) => Uint8Array = manifestSignedMessage,
): SignatureCheck {
  let value: unknown = signature;
  if (value instanceof Uint8Array) {
    try {
      value = parseJson(value, "signature.json");
    } catch (error) {
      return { ok: false, code: "E_SIGNATURE_MALFORMED", message: (error as Error).message };
    }
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, code: "E_SIGNATURE_MALFORMED", message: "signature.json is not a JSON object" };
  }
  const json = value as Record<string, unknown>;
  if (json.algorithm !== SIGNATURE_ALGORITHM) {
    return {
      ok: false,
      code: "E_SIGNATURE_ALGORITHM",
      message: `algorithm is ${JSON.stringify(json.algorithm)}, only "${SIGNATURE_ALGORITHM}" is defined`,
    };
  }
  const publicKey = decodeBase64Strict(json.publicKey, ED25519_PUBLIC_KEY_BYTES);
  if (publicKey === null) {
    return { ok: false, code: "E_SIGNATURE_MALFORMED", message: "publicKey is not 32 bytes of base64" };
  }
  const signatureBytes = decodeBase64Strict(json.signature, ED25519_SIGNATURE_BYTES);
  if (signatureBytes === null) {
    return { ok: false, code: "E_SIGNATURE_MALFORMED", message: "signature is not 64 bytes of base64" };
  }
  if (typeof json.ephemeral !== "boolean") {
    return { ok: false, code: "E_SIGNATURE_MALFORMED", message: "ephemeral is not a boolean" };
  }
  const keyId = keyIdOf(publicKey);
  if (json.keyId !== keyId) {
    return { ok: false, code: "E_SIGNATURE_KEY_ID", message: "keyId is not the sha256 of publicKey" };
  }
  if (!hasCanonicalScalar(signatureBytes)) {
    return {
      ok: false,
      code: "E_SIGNATURE_NON_CANONICAL",
      message: "the signature's scalar S is not below the group order (a malleated signature)",
    };
  }
  if (isWeakPublicKey(publicKey)) {
    return {
      ok: false,
      code: "E_SIGNATURE_WEAK_KEY",
      message:
        "publicKey is a small-order (or non-canonical) Ed25519 point: a signature under it holds for any manifest, so it binds nothing",
    };
  }
  if (!verifyEd25519(signedMessage(manifestBytes), signatureBytes, publicKey)) {
    return { ok: false, code: "E_SIGNATURE_INVALID", message: "the signature does not match manifest.json" };
  }
  return { ok: true, keyId, publicKey, ephemeral: json.ephemeral };
}

export function verifySignature(manifestBytes: Uint8Array, signature: unknown): boolean {
  return checkManifestSignature(manifestBytes, signature).ok;
}

/**
 * What a trusted key may sign: `run` a whole-run bundle (`spg prove` without --shard), `shard`
 * a shard bundle (shard.json), `merge` a merged bundle (shards.jsonl). A key listed without
 * roles may sign all three (every file written before roles existed means that).
 */
export const SIGNER_ROLES = ["run", "shard", "merge"] as const;
export type SignerRole = (typeof SIGNER_ROLES)[number];

/** Trusted key ids, each with the roles it is trusted for. */
export type TrustedKeys = ReadonlyMap<string, ReadonlySet<SignerRole>>;

/**
 * Trusted keys file: a JSON array of public keys (base64) or key ids (64 hex), a public
 * key file written by `spg keygen` (or a JSON array of them), or a text file with one
 * key or id per line ("#" starts a comment). A key may be limited to roles (SIGNER_ROLES):
 * in text after the key (`KEY shard` or `KEY shard,merge`), in JSON as `{"key": KEY,
 * "roles": [...]}` or a `roles` array in a public key file. Listed twice, a key has the union.
 */
export async function readTrustedKeys(file: string): Promise<TrustedKeys> {
  const bytes = readBoundedFileSync(
    file,
    INPUT_FILE_LIMITS.trustedKeysBytes,
    (reason, cause) =>
      new SpgError("E_TRUSTED_KEYS", `cannot read trusted keys: ${reason}`, {
        file,
        fix: "give --trusted-keys a regular file listing one key per line",
        cause,
      }),
  );
  return parseTrustedKeys(bytes.toString("utf8"), file);
}

export function parseTrustedKeys(text: string, file = "trusted keys"): TrustedKeys {
  const trimmed = text.trim();
  const items: { value: unknown; roles: unknown; where: string }[] = [];
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    const parsed = parseJson(trimmed, file);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    list.forEach((value, index) => {
      const where = Array.isArray(parsed) ? `[${index}]` : "$";
      const json = value !== null && typeof value === "object" && !Array.isArray(value) ? value : undefined;
      const entry = json as Record<string, unknown> | undefined;
      // {"key": KEY, "roles": [...]}: the key is a string; a public key file is itself the key.
      const key = entry !== undefined && entry.type !== PUBLIC_KEY_FILE_TYPE ? entry.key : value;
      items.push({ value: key, roles: entry?.roles, where });
    });
  } else {
    text.split(/\r?\n/).forEach((line, index) => {
      const [key, ...roles] = line
        .replace(/#.*$/, "")
        .trim()
        .split(/[\s,]+/);
      if (key !== "")
        items.push({ value: key, roles: roles.length > 0 ? roles : undefined, where: `line ${index + 1}` });
    });
  }
  const keys = new Map<string, Set<SignerRole>>();
  for (const { value, roles, where } of items) {
    const id = trustedKeyId(value, where, file);
    const granted = keys.get(id) ?? new Set<SignerRole>();
    for (const role of trustedRoles(roles, where, file)) granted.add(role);
    keys.set(id, granted);
  }
  if (keys.size === 0) {
    throw new SpgError("E_TRUSTED_KEYS", "the trusted keys file lists no keys", {
      file,
      fix: "list at least one public key (base64) or key id (sha256 hex), or leave out --trusted-keys",
    });
  }
  return keys;
}

/** The roles listed for a key: all of them when none are listed. */
function trustedRoles(roles: unknown, where: string, file: string): readonly SignerRole[] {
  if (roles === undefined) return SIGNER_ROLES;
  const known = new Set<string>(SIGNER_ROLES);
  if (!Array.isArray(roles) || roles.length === 0 || !roles.every((role) => known.has(role))) {
    throw new SpgError(
      "E_TRUSTED_KEYS",
      `${where} lists roles ${JSON.stringify(roles)}; a role is one of ${SIGNER_ROLES.join(", ")}`,
      {
        file,
        field: where,
        fix: `after the key, list what it may sign: ${SIGNER_ROLES.join(", ")} (e.g. "KEY shard"); no roles: all of them`,
      },
    );
  }
  return roles as SignerRole[];
}

function trustedKeyId(value: unknown, where: string, file: string): string {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const json = value as Record<string, unknown>;
    if (json.type === PUBLIC_KEY_FILE_TYPE) {
      const key = publicKeyFromJson(json, file);
      if (isWeakPublicKey(key.publicKey)) {
        throw new SpgError("E_TRUSTED_KEYS", `${where} is a small-order (or non-canonical) Ed25519 point`, {
          file,
          field: where,
          fix: "remove it: a signature under such a key holds for any bundle, so trusting it trusts everyone",
        });
      }
      return key.keyId;
    }
  }
  if (typeof value === "string") {
    if (/^[0-9a-fA-F]{64}$/.test(value)) return value.toLowerCase();
    const publicKey = decodeBase64Strict(value, ED25519_PUBLIC_KEY_BYTES);
    if (publicKey !== null && isWeakPublicKey(publicKey)) {
      throw new SpgError("E_TRUSTED_KEYS", `${where} is a small-order (or non-canonical) Ed25519 point`, {
        file,
        field: where,
        fix: "remove it: a signature under such a key holds for any bundle, so trusting it trusts everyone",
      });
    }
    if (publicKey !== null) return keyIdOf(publicKey);
  }
  throw new SpgError("E_TRUSTED_KEYS", `${where} is neither a public key nor a key id`, {
    file,
    field: where,
    fix: "each entry is an Ed25519 public key in base64 (44 characters), a key id (64 hex), or an spg public key file",
  });
}
