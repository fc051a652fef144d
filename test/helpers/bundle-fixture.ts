/**
 * A small, consistent, valid bundle built by hand: 2 methods ("full", "stream") × 3 evaluation
 * samples × 2 layers, 2 calibration samples. Every figure is chosen so the invariants the
 * verifier checks hold (see the comments), and summary.json comes from summarize(). The
 * samples are the real draw from the bundled Brown corpus (so verify's draw check re-derives
 * them) and report.md is rendered from the summary (so the report-md check passes).
 *
 * Use: `const fixture = bundleFixture()` for the entries as a zip would hold them, or
 * `fixtureParts()` to edit the objects and `buildEntries(parts, options)` to re-serialize,
 * re-hash and re-sign them (the "edited and re-signed" adversarial cases).
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign } from "node:crypto";
import { type FixtureParts, fixtureParts } from "../../scripts/synthetic-run.js";
import { canonicalJsonl, canonicalJsonString } from "../../src/bundle/canonical.js";
import { BUNDLE_FORMAT_VERSION } from "../../src/bundle/format.js";
import { keyIdOf } from "../../src/bundle/keys.js";
import type { Manifest } from "../../src/bundle/manifest.js";
import type { BundleEntries } from "../../src/bundle/read.js";
import { manifestSignedMessage, type SignatureJson } from "../../src/bundle/sign.js";
import { renderReportMarkdown } from "../../src/measure/report-md.js";
import { summarize } from "../../src/measure/summary.js";
import { loadSchemaValidators, type SchemaValidators } from "../../src/verify/schemas.js";

export { type FixtureParts, fixtureParts } from "../../scripts/synthetic-run.js";

/** What a bundle signature covers: the format's pre-authentication encoding of manifest.json. */
export function fixtureSignedMessage(manifestBytes: Uint8Array): Uint8Array {
  // The manifest's own version's domain, so resign() also re-signs version 2 bundles spg prove wrote.
  return manifestSignedMessage(manifestBytes);
}

export interface FixtureKey {
  /** The 32 raw public key bytes. */
  publicKey: Uint8Array;
  /** tweetnacl's 64-byte secret key (seed then public key), for cross-checks. */
  secretKey: Uint8Array;
  privateKey: KeyObject;
  keyId: string;
}

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** A deterministic Ed25519 key pair from a one-byte seed (different seeds, different keys). */
export function fixtureKey(seedByte = 7): FixtureKey {
  const seed = Buffer.alloc(32, seedByte);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = new Uint8Array(
    createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(12),
  );
  return {
    publicKey,
    secretKey: new Uint8Array(Buffer.concat([seed, publicKey])),
    privateKey,
    keyId: keyIdOf(publicKey),
  };
}

/** The bundle's canonical JSON (src/bundle/canonical.ts), as a string. */
export function canonicalJson(value: unknown): string {
  return canonicalJsonString(value);
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export interface BuildOptions {
  key?: FixtureKey;
  ephemeral?: boolean;
  createdAt?: string;
  /** manifest.json's version (default BUNDLE_FORMAT_VERSION, what spg writes). */
  version?: Manifest["version"];
}

/** Serialize, hash, manifest and sign the parts the way `spg prove` does. */
export function buildEntries(parts: FixtureParts, options: BuildOptions = {}): Map<string, Buffer> {
  const key = options.key ?? fixtureKey();
  const summary = parts.summary ?? summarize(parts.records, parts.config);
  const jsonl = (items: unknown[]): Buffer => canonicalJsonl(items);
  const files: [string, Buffer][] = [
    ["config.json", Buffer.from(canonicalJson(parts.config))],
    ["environment.json", Buffer.from(canonicalJson(parts.environment))],
    ["records.jsonl", Buffer.from(jsonl(parts.records))],
    ["fingerprints.jsonl", Buffer.from(jsonl(parts.fingerprints))],
    ["summary.json", Buffer.from(canonicalJson(summary))],
    [
      "report.md",
      // A test may delete the model hash: the report then shows an empty one.
      Buffer.from(
        parts.reportMd ??
          renderReportMarkdown(parts.config, summary, {
            model: { sha256: parts.environment.model?.sha256 ?? "" },
          }),
      ),
    ],
  ];
  const manifest: Manifest = {
    format: "spg-bundle",
    version: options.version ?? BUNDLE_FORMAT_VERSION,
    tool: { name: "spg", version: "0.1.0", commit: null },
    createdAt: options.createdAt ?? "2026-11-23T12:00:00.000Z",
    entries: files.map(([name, bytes]) => ({ name, sha256: sha256Hex(bytes), bytes: bytes.length })),
  };
  const entries = new Map<string, Buffer>();
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  entries.set("manifest.json", manifestBytes);
  entries.set("signature.json", signatureEntry(manifestBytes, key, options.ephemeral ?? false));
  for (const [name, bytes] of files) entries.set(name, bytes);
  return entries;
}

export function signatureEntry(manifestBytes: Uint8Array, key: FixtureKey, ephemeral: boolean): Buffer {
  const signature: SignatureJson = {
    algorithm: "ed25519",
    publicKey: Buffer.from(key.publicKey).toString("base64"),
    keyId: key.keyId,
    signature: sign(null, fixtureSignedMessage(manifestBytes), key.privateKey).toString("base64"),
    ephemeral,
  };
  return Buffer.from(canonicalJson(signature));
}

/** Re-hash the manifest for the current entries and re-sign it: a forger holding `key`. */
export function resign(
  entries: Map<string, Buffer>,
  key: FixtureKey = fixtureKey(),
  ephemeral = false,
): void {
  const manifest = JSON.parse(entries.get("manifest.json")!.toString("utf8")) as Manifest;
  manifest.entries = manifest.entries.map((entry) => {
    const bytes = entries.get(entry.name);
    return bytes === undefined ? entry : { name: entry.name, sha256: sha256Hex(bytes), bytes: bytes.length };
  });
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  entries.set("manifest.json", manifestBytes);
  entries.set("signature.json", signatureEntry(manifestBytes, key, ephemeral));
}

export interface BundleFixture {
  contents: BundleEntries;
  parts: FixtureParts;
  key: FixtureKey;
}

let defaultEntries: Map<string, Buffer> | undefined;
let defaultKey: FixtureKey | undefined;

/**
 * The valid fixture bundle, signed by fixtureKey() (trust it via `new Set([key.keyId])`).
 * Each call returns fresh copies (edit them freely); the default build is done once.
 */
export function bundleFixture(options: BuildOptions = {}): BundleFixture {
  const parts = fixtureParts();
  if (options.key === undefined && options.ephemeral === undefined && options.createdAt === undefined) {
    defaultKey ??= fixtureKey();
    defaultEntries ??= buildEntries(parts, { key: defaultKey });
    const entries = new Map([...defaultEntries].map(([name, bytes]) => [name, Buffer.from(bytes)]));
    return { contents: { entries }, parts, key: defaultKey };
  }
  const key = options.key ?? fixtureKey();
  return { contents: { entries: buildEntries(parts, { ...options, key }) }, parts, key };
}

/** The package's compiled schema validators (schemas/), for tests. */
export function fixtureValidators(): SchemaValidators {
  return loadSchemaValidators();
}
