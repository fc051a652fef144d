/**
 * Write a bundle: canonical JSON for every entry, the manifest over them, the signature
 * over the manifest, zipped (archiver) in the fixed entry order with fixed timestamps
 * and modes, to a temporary file that is renamed into place only when complete.
 * Identical inputs (including createdAt) give identical zip bytes.
 */
import { createHash } from "node:crypto";
import { createWriteStream, promises as fs, rmSync } from "node:fs";
import { PassThrough, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ZipArchive } from "archiver";
import { SpgError } from "../errors.js";
import { placeTemporary, removeQuietly, temporarySibling } from "./atomic.js";
import { canonicalJson, canonicalJsonl } from "./canonical.js";
import {
  BUNDLE_ENTRY_ORDER,
  type BundleEntryName,
  OPTIONAL_BUNDLE_ENTRIES,
  type OptionalBundleEntryName,
  SHARD_ENTRY,
  ZIP_DEFLATE_LEVEL,
  ZIP_FILE_MODE,
  ZIP_FIXED_DATE,
} from "./format.js";
import type { SigningKey } from "./keys.js";
import { buildManifest, type Manifest, manifestBytes, type ToolInfo } from "./manifest.js";
import { type SignatureJson, signatureJsonBytes, signManifest } from "./sign.js";
import type { FingerprintLine, SampleRecord, Summary } from "./types.js";

/** What a bundle holds, as values; writeBundle serializes them canonically. */
export interface BundleContents {
  /** The fully resolved run configuration (RunConfig). */
  config: unknown;
  environment: unknown;
  records: readonly SampleRecord[];
  fingerprints: readonly FingerprintLine[];
  summary: Summary;
  reportMd: string;
  /** Version 2: present when the bundle is one shard of a run (written as shard.json). */
  shard?: unknown;
}

export interface BundleEntry {
  name: BundleEntryName | OptionalBundleEntryName;
  data: Buffer;
}

export interface AssembledBundle {
  /** Every entry, in format order, ready to zip. */
  entries: BundleEntry[];
  manifest: Manifest;
  signature: SignatureJson;
}

export interface BundleWriteOptions {
  /** ISO 8601 creation time recorded in the manifest; default now. Fix it for reproducible bytes. */
  createdAt?: string;
  /** Replace an existing file at the destination (--force); default: refuse with E_FILE_EXISTS. */
  overwrite?: boolean;
}

/** Serialize the contents canonically (throws E_NON_FINITE naming the path of a NaN/Infinity). */
export function serializeContents(
  contents: BundleContents,
): Map<BundleEntryName | OptionalBundleEntryName, Buffer> {
  const serialized = new Map<BundleEntryName | OptionalBundleEntryName, Buffer>([
    ["config.json", canonicalJson(contents.config)],
    ["environment.json", canonicalJson(contents.environment)],
    ["records.jsonl", canonicalJsonl(contents.records)],
    ["fingerprints.jsonl", canonicalJsonl(contents.fingerprints)],
    ["summary.json", canonicalJson(contents.summary)],
    ["report.md", Buffer.from(contents.reportMd, "utf8")],
  ]);
  if (contents.shard !== undefined) serialized.set(SHARD_ENTRY, canonicalJson(contents.shard));
  return serialized;
}

/**
 * Manifest and signature over already-serialized entries. Any manifest.json or
 * signature.json in `contents` is ignored and replaced, so the entries of a bundle that
 * was read can be edited and re-signed (how tests build tampered-but-signed bundles).
 */
export function assembleBundle(
  contents: ReadonlyMap<string, Uint8Array>,
  key: SigningKey,
  tool: ToolInfo,
  createdAt: string,
): AssembledBundle {
  const listed = new Map(
    [...contents].filter(([name]) => name !== "manifest.json" && name !== "signature.json"),
  );
  const manifest = buildManifest(listed, tool, createdAt);
  const manifestData = manifestBytes(manifest);
  const signature = signManifest(manifestData, key);
  const all = new Map<string, Uint8Array>(listed);
  all.set("manifest.json", manifestData);
  all.set("signature.json", signatureJsonBytes(signature));
  const names = [...BUNDLE_ENTRY_ORDER, ...OPTIONAL_BUNDLE_ENTRIES.filter((name) => all.has(name))];
  const entries = names.map((name) => ({ name, data: Buffer.from(all.get(name)!) }));
  return { entries, manifest, signature };
}

/** Zip entries in the given order with fixed dates and modes into `output`. */
export async function zipEntriesTo(
  entries: readonly { name: string; data: Uint8Array }[],
  output: Writable,
): Promise<void> {
  const archive = new ZipArchive({ zlib: { level: ZIP_DEFLATE_LEVEL } });
  // archiver reports problems such as a missing stat as "warning"; none are acceptable here.
  const warned = new Promise<never>((_, reject) => {
    archive.on("warning", (warning) => reject(warning));
  });
  // A warning after the archive is done must not surface as an unhandled rejection.
  warned.catch(() => undefined);
  const done = pipeline(archive, output);
  for (const entry of entries) {
    archive.append(Buffer.from(entry.data), { name: entry.name, date: ZIP_FIXED_DATE, mode: ZIP_FILE_MODE });
  }
  await Promise.race([Promise.all([archive.finalize(), done]), warned]);
}

/** Zip entries into memory (same bytes as writeBundle would put on disk). */
export async function zipEntries(entries: readonly { name: string; data: Uint8Array }[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on("data", (chunk: Buffer) => chunks.push(chunk));
  await zipEntriesTo(entries, sink);
  return Buffer.concat(chunks);
}

export interface WrittenBundle extends AssembledBundle {
  path: string;
  /** sha256 hex and length of the zip file. */
  sha256: string;
  bytes: number;
}

/**
 * Write `entries` as a zip at `destination`, atomically: into a temporary sibling file,
 * flushed, then moved into place (placeTemporary: an existing file is refused with
 * E_FILE_EXISTS unless `overwrite`). On any failure nothing appears at the destination and
 * the temporary file is removed; so it is when SIGINT/SIGTERM ends the process mid-write.
 * Returns the zip's sha256 hex and length.
 */
export async function writeZipAtomic(
  destination: string,
  entries: readonly { name: string; data: Uint8Array }[],
  options: { overwrite?: boolean } = {},
): Promise<{ sha256: string; bytes: number }> {
  const temporary = temporarySibling(destination);
  const removeOnSignal = (signal: NodeJS.Signals) => {
    rmSync(temporary, { force: true });
    detach();
    // Re-raise so the default behaviour (ending the process) happens when nobody else listens.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const removeOnExit = () => rmSync(temporary, { force: true });
  const detach = () => {
    process.removeListener("SIGINT", removeOnSignal);
    process.removeListener("SIGTERM", removeOnSignal);
    process.removeListener("exit", removeOnExit);
  };
  process.once("SIGINT", removeOnSignal);
  process.once("SIGTERM", removeOnSignal);
  process.once("exit", removeOnExit);
  try {
    const hash = createHash("sha256");
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const file = createWriteStream(temporary, { flags: "wx", mode: 0o644 });
    await Promise.all([zipEntriesTo(entries, tap), pipeline(tap, file)]);
    const handle = await fs.open(temporary, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await placeTemporary(temporary, destination, options.overwrite === true);
    return { sha256: hash.digest("hex"), bytes };
  } catch (error) {
    await removeQuietly(temporary);
    if (error instanceof SpgError) throw error;
    throw new SpgError("E_BUNDLE_WRITE", `could not write the bundle: ${(error as Error).message}`, {
      file: destination,
      fix: "check that the directory exists, is writable and has free space",
      cause: error,
    });
  } finally {
    detach();
  }
}

/**
 * Write a signed bundle. Serializes `contents` canonically (a NaN or Infinity anywhere
 * throws E_NON_FINITE naming its path, and nothing is written), builds the manifest and
 * signature, and zips everything atomically to `destination`.
 */
export async function writeBundle(
  destination: string,
  contents: BundleContents,
  key: SigningKey,
  tool: ToolInfo,
  options: BundleWriteOptions = {},
): Promise<WrittenBundle> {
  const createdAt = options.createdAt ?? new Date().toISOString();
  const assembled = assembleBundle(serializeContents(contents), key, tool, createdAt);
  const zip = await writeZipAtomic(destination, assembled.entries, { overwrite: options.overwrite });
  return { ...assembled, path: destination, ...zip };
}
