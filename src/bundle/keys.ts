/**
 * Ed25519 signing keys (tweetnacl). A key's id is the sha256 hex of its 32-byte public
 * key, so an id can be recomputed from a public key and never has to be trusted.
 *
 * Files:
 *   secret: {"type":"spg-ed25519-secret","publicKey":b64,"secretKey":b64(64 bytes),"keyId":hex}  mode 0600
 *   public: {"type":"spg-ed25519-public","publicKey":b64,"keyId":hex}
 */
import { promises as fs, constants as fsConstants, type Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import nacl from "tweetnacl";
import { boundedFileProblem, INPUT_FILE_LIMITS } from "../bounded-read.js";
import { SpgError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import { canonicalJson, parseJson } from "./canonical.js";
import { sha256Hex } from "./manifest.js";

export const SECRET_KEY_FILE_TYPE = "spg-ed25519-secret";
export const PUBLIC_KEY_FILE_TYPE = "spg-ed25519-public";
export const SECRET_KEY_FILE_NAME = "signing-key.json";
export const PUBLIC_KEY_FILE_NAME = "signing-key.pub.json";
export const SECRET_KEY_FILE_MODE = 0o600;
export const PUBLIC_KEY_FILE_MODE = 0o644;
export const ED25519_PUBLIC_KEY_BYTES = nacl.sign.publicKeyLength;
export const ED25519_SECRET_KEY_BYTES = nacl.sign.secretKeyLength;
export const ED25519_SIGNATURE_BYTES = nacl.sign.signatureLength;

export interface SigningKey {
  publicKey: Uint8Array;
  /** tweetnacl's 64-byte form: the 32-byte seed followed by the public key. */
  secretKey: Uint8Array;
  keyId: string;
  /** A throwaway key made for one bundle; the bundle's signature.json says so. */
  ephemeral: boolean;
}

export function keyIdOf(publicKey: Uint8Array): string {
  return sha256Hex(publicKey);
}

/** Base64 that round-trips exactly (Buffer.from(..., "base64") alone skips junk silently). */
export function decodeBase64Strict(text: unknown, expectedBytes?: number): Uint8Array | null {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) return null;
  if (expectedBytes !== undefined && bytes.length !== expectedBytes) return null;
  return new Uint8Array(bytes);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function fromSecretKey(secretKey: Uint8Array, ephemeral: boolean): SigningKey {
  // Re-derive from the seed rather than trusting the stored public half.
  const pair = nacl.sign.keyPair.fromSeed(secretKey.subarray(0, 32));
  return { publicKey: pair.publicKey, secretKey: pair.secretKey, keyId: keyIdOf(pair.publicKey), ephemeral };
}

export function generateKeyPair(): SigningKey {
  const pair = nacl.sign.keyPair();
  return fromSecretKey(pair.secretKey, false);
}

/** A fresh key for one bundle only; never written to disk. */
export function ephemeralKey(): SigningKey {
  return { ...generateKeyPair(), ephemeral: true };
}

/** A key from a 32-byte seed (RFC 8032's "secret key"); for tests and reproducible fixtures. */
export function keyFromSeed(seed: Uint8Array, ephemeral = false): SigningKey {
  if (seed.length !== 32) {
    throw new SpgError("E_KEY_INVALID", `an Ed25519 seed is 32 bytes, got ${seed.length}`, {
      fix: "pass the 32-byte seed",
    });
  }
  const pair = nacl.sign.keyPair.fromSeed(seed);
  return { publicKey: pair.publicKey, secretKey: pair.secretKey, keyId: keyIdOf(pair.publicKey), ephemeral };
}

export function secretKeyFileContents(key: SigningKey): Buffer {
  return canonicalJson({
    type: SECRET_KEY_FILE_TYPE,
    publicKey: encodeBase64(key.publicKey),
    secretKey: encodeBase64(key.secretKey),
    keyId: key.keyId,
  });
}

export function publicKeyFileContents(key: Pick<SigningKey, "publicKey" | "keyId">): Buffer {
  return canonicalJson({
    type: PUBLIC_KEY_FILE_TYPE,
    publicKey: encodeBase64(key.publicKey),
    keyId: key.keyId,
  });
}

export interface KeyPairPaths {
  secretPath: string;
  publicPath: string;
}

export function keyPairPathsIn(directory: string): KeyPairPaths {
  return {
    secretPath: path.join(directory, SECRET_KEY_FILE_NAME),
    publicPath: path.join(directory, PUBLIC_KEY_FILE_NAME),
  };
}

/** The user's spg config directory: $XDG_CONFIG_HOME/spg, else ~/.config/spg. */
export function defaultKeyDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base =
    xdg !== undefined && xdg !== "" && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), ".config");
  return path.join(base, "spg");
}

/** Where the user's default secret key lives. */
export function defaultKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return keyPairPathsIn(defaultKeyDirectory(env)).secretPath;
}

export interface WrittenKeyPair extends KeyPairPaths {
  key: SigningKey;
}

/**
 * Write a key pair: the secret file with mode 0600 (its directory created 0700), the
 * public file beside it. Each is written atomically; existing files are refused unless
 * `force`. `target` is a directory (standard file names) or explicit paths.
 */
export async function writeKeyPair(
  target: string | KeyPairPaths,
  options: { force?: boolean; key?: SigningKey } = {},
): Promise<WrittenKeyPair> {
  const paths = typeof target === "string" ? keyPairPathsIn(target) : target;
  const key = options.key ?? generateKeyPair();
  const force = options.force === true;
  if (!force) {
    for (const file of [paths.secretPath, paths.publicPath]) {
      if (await exists(file)) {
        throw new SpgError("E_FILE_EXISTS", `${file} already exists; refusing to replace a key`, {
          file,
          fix: "pass --force to replace it (bundles signed with the old key will no longer match it), or choose --out",
        });
      }
    }
  }
  let current = paths.secretPath;
  try {
    await fs.mkdir(path.dirname(paths.secretPath), { recursive: true, mode: 0o700 });
    await writeFileAtomic(paths.secretPath, secretKeyFileContents(key), {
      mode: SECRET_KEY_FILE_MODE,
      overwrite: force,
    });
    current = paths.publicPath;
    await fs.mkdir(path.dirname(paths.publicPath), { recursive: true, mode: 0o700 });
    await writeFileAtomic(paths.publicPath, publicKeyFileContents(key), {
      mode: PUBLIC_KEY_FILE_MODE,
      overwrite: force,
    });
  } catch (error) {
    if (error instanceof SpgError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new SpgError("E_KEY_WRITE", `cannot write the key file (${code ?? String(error)})`, {
      file: current,
      fix: "choose a writable directory with --out",
      cause: error,
    });
  }
  return { ...paths, key };
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    throw error;
  }
}

function invalidKey(file: string, field: string, message: string): SpgError {
  return new SpgError("E_KEY_INVALID", message, {
    file,
    field,
    fix: "the key file is damaged or not an spg key; make a new one with `spg keygen`",
  });
}

function unreadableKey(file: string, cause: unknown): SpgError {
  const code = (cause as NodeJS.ErrnoException).code;
  return new SpgError("E_KEY_READ", `cannot read key file (${code ?? String(cause)})`, {
    file,
    fix:
      code === "ENOENT"
        ? "check the path, or create a key with `spg keygen`"
        : "check the file's permissions",
    cause,
  });
}

/**
 * Open the key file once and do everything through that handle: `checkHandle` sees the file
 * that is then read (its fstat), so nothing can swap the path between a check and the read.
 * O_NONBLOCK: a FIFO is refused by its fstat instead of blocking the open.
 */
async function readKeyFile(
  file: string,
  checkHandle: (stats: Stats) => void = () => undefined,
): Promise<Record<string, unknown>> {
  let handle: FileHandle;
  try {
    handle = await fs.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (cause) {
    throw unreadableKey(file, cause);
  }
  let bytes: Buffer;
  try {
    let stats: Stats;
    try {
      stats = await handle.stat();
    } catch (cause) {
      throw unreadableKey(file, cause);
    }
    const problem = boundedFileProblem(stats, INPUT_FILE_LIMITS.keyFileBytes);
    if (problem !== undefined) {
      throw new SpgError("E_KEY_READ", `the key file cannot be read: ${problem}`, {
        file,
        fix: "give the path of the key file `spg keygen` wrote",
      });
    }
    checkHandle(stats);
    try {
      bytes = await handle.readFile();
    } catch (cause) {
      throw unreadableKey(file, cause);
    }
  } finally {
    await handle.close();
  }
  const value = parseJson(bytes, file);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidKey(file, "$", "a key file holds one JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * Read a secret key file. The file must not be readable or writable by group or others
 * (E_KEY_PERMISSIONS, as ssh does) unless `allowInsecurePermissions`; on Windows modes
 * are not meaningful and are not checked. The mode is the opened file's, the one read.
 */
export async function readSecretKey(
  file: string,
  options: { allowInsecurePermissions?: boolean } = {},
): Promise<SigningKey> {
  const checkMode = process.platform !== "win32" && options.allowInsecurePermissions !== true;
  const json = await readKeyFile(file, ({ mode }) => {
    if (checkMode && (mode & 0o077) !== 0) {
      throw new SpgError(
        "E_KEY_PERMISSIONS",
        `secret key file is accessible by other users (mode ${(mode & 0o777).toString(8).padStart(4, "0")})`,
        { file, fix: `chmod 600 ${file}` },
      );
    }
  });
  if (json.type !== SECRET_KEY_FILE_TYPE) {
    throw invalidKey(
      file,
      "type",
      `type is ${JSON.stringify(json.type)}, expected "${SECRET_KEY_FILE_TYPE}"`,
    );
  }
  const secretKey = decodeBase64Strict(json.secretKey, ED25519_SECRET_KEY_BYTES);
  if (secretKey === null) throw invalidKey(file, "secretKey", "secretKey is not 64 bytes of base64");
  const key = fromSecretKey(secretKey, false);
  const publicKey = decodeBase64Strict(json.publicKey, ED25519_PUBLIC_KEY_BYTES);
  if (publicKey === null || !Buffer.from(publicKey).equals(key.publicKey)) {
    throw invalidKey(file, "publicKey", "publicKey does not belong to secretKey");
  }
  if (json.keyId !== key.keyId) throw invalidKey(file, "keyId", "keyId is not the sha256 of publicKey");
  return key;
}

export interface PublicKeyInfo {
  publicKey: Uint8Array;
  keyId: string;
}

/** Read a public key file written by `spg keygen`. */
export async function readPublicKey(file: string): Promise<PublicKeyInfo> {
  const json = await readKeyFile(file);
  return publicKeyFromJson(json, file);
}

export function publicKeyFromJson(json: Record<string, unknown>, file: string): PublicKeyInfo {
  if (json.type !== PUBLIC_KEY_FILE_TYPE) {
    throw invalidKey(
      file,
      "type",
      `type is ${JSON.stringify(json.type)}, expected "${PUBLIC_KEY_FILE_TYPE}"`,
    );
  }
  const publicKey = decodeBase64Strict(json.publicKey, ED25519_PUBLIC_KEY_BYTES);
  if (publicKey === null) throw invalidKey(file, "publicKey", "publicKey is not 32 bytes of base64");
  const keyId = keyIdOf(publicKey);
  if (json.keyId !== undefined && json.keyId !== keyId) {
    throw invalidKey(file, "keyId", "keyId is not the sha256 of publicKey");
  }
  return { publicKey, keyId };
}

export interface DefaultKey {
  key: SigningKey;
  /** True when this call made the key (the caller should announce it). */
  created: boolean;
  path: string;
  publicPath: string;
}

/** The user's default signing key, created (0600, in the config directory) on first use. */
export async function loadOrCreateDefaultKey(env: NodeJS.ProcessEnv = process.env): Promise<DefaultKey> {
  const paths = keyPairPathsIn(defaultKeyDirectory(env));
  if (await exists(paths.secretPath)) {
    const key = await readSecretKey(paths.secretPath);
    if (!(await exists(paths.publicPath))) {
      // The public half is derivable; restore it so the user can hand it out.
      await writeFileAtomic(paths.publicPath, publicKeyFileContents(key), { mode: PUBLIC_KEY_FILE_MODE });
    }
    return { key, created: false, path: paths.secretPath, publicPath: paths.publicPath };
  }
  try {
    const key = generateKeyPair();
    await fs.mkdir(path.dirname(paths.secretPath), { recursive: true, mode: 0o700 });
    await writeFileAtomic(paths.secretPath, secretKeyFileContents(key), { mode: SECRET_KEY_FILE_MODE });
    // A public file without its secret is a stale leftover: replace it.
    await writeFileAtomic(paths.publicPath, publicKeyFileContents(key), {
      mode: PUBLIC_KEY_FILE_MODE,
      overwrite: true,
    });
    return { key, created: true, path: paths.secretPath, publicPath: paths.publicPath };
  } catch (error) {
    // Another process created it between our check and write: use theirs.
    if (error instanceof SpgError && error.code === "E_FILE_EXISTS" && (await exists(paths.secretPath))) {
      const key = await readSecretKey(paths.secretPath);
      return { key, created: false, path: paths.secretPath, publicPath: paths.publicPath };
    }
    throw error;
  }
}

export interface ResolvedSigningKey {
  key: SigningKey;
  /** Where the key came from: --key FILE, the user's default key, or a throwaway one. */
  source: "file" | "default" | "ephemeral";
  /** Secret key file, when there is one. */
  path: string | null;
  /** Public key file, when known (the default key's; a --key file's sibling is not guessed). */
  publicPath: string | null;
  /** True when the default key was created by this call: announce its id and public file. */
  created: boolean;
}

/**
 * The key `spg prove` signs with: `keyPath` (--key FILE), else a throwaway key when
 * `ephemeral` (--ephemeral-key), else the user's default key, created on first use.
 * Asking for both a file and an ephemeral key is an error, not a silent choice.
 */
export async function resolveSigningKey(
  options: { keyPath?: string; ephemeral?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<ResolvedSigningKey> {
  if (options.keyPath !== undefined && options.ephemeral === true) {
    throw new SpgError("E_KEY_OPTIONS", "--key and --ephemeral-key ask for different keys", {
      fix: "pass one of them: --key FILE to sign with your key, --ephemeral-key for a throwaway one",
    });
  }
  if (options.keyPath !== undefined) {
    const key = await readSecretKey(options.keyPath);
    return { key, source: "file", path: options.keyPath, publicPath: null, created: false };
  }
  if (options.ephemeral === true) {
    return { key: ephemeralKey(), source: "ephemeral", path: null, publicPath: null, created: false };
  }
  const found = await loadOrCreateDefaultKey(options.env);
  return {
    key: found.key,
    source: "default",
    path: found.path,
    publicPath: found.publicPath,
    created: found.created,
  };
}
