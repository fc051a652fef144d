import { SpgError } from "../errors.js";
import type { HeadLayout } from "../model/types.js";

/**
 * Bundle format: names, order, signing domain and the limits a reader enforces. These
 * are format constants (part of what a version means), not run parameters; readers may
 * tighten or loosen the limits through options.
 *
 * Version 2 (sharded runs) adds two optional entries: `shard.json` marks a bundle as one
 * shard of a run, `shards.jsonl` carries the shards a merged bundle was built from.
 * Version 1 bundles (neither entry) are still read and verified.
 *
 * Version 3 (run cost, issue 21) has version 2's entries; its records must carry `runCost`,
 * its KV fingerprints `slotsRead` and its environment `model.architecture` (verify's
 * executed-cost check). Versions 1 and 2 verify as before, their run-cost figures absent.
 *
 * Version 4 (issue 19) has version 3's entries; its runs read the head's matrix in place
 * (src/model/types.ts HeadLayout), so executed weights hold wte once. Versions 1-3 were proved
 * with the head's transposed copy: their replay runs that graph and their executed bytes count it.
 */

export const BUNDLE_FORMAT = "spg-bundle";
/** The versions this tool reads: 1, 2 (sharded runs: optional shard.json / shards.jsonl), 3 (run cost), 4 (head in place). */
export type BundleFormatVersion = 1 | 2 | 3 | 4;
/** The version this tool writes. */
export const BUNDLE_FORMAT_VERSION: BundleFormatVersion = 4;
/** The versions this tool reads. */
export const READABLE_FORMAT_VERSIONS: readonly number[] = [
  1, 2, 3, 4,
] satisfies readonly BundleFormatVersion[];
/** The first version whose records must state their run cost (runCost, slotsRead, model.architecture). */
export const RUN_COST_FORMAT_VERSION = 3;
/**
 * The first version every producer records the rule that drew its samples
 * (environment.json dataset.sampling: "pool" for the Brown corpus, "stream" for local
 * sources). The field came before version 3, so a version 3 bundle without it, or with the
 * other rule, was not written by any spg prove; older bundles may lack it ("pool").
 */
export const RECORDED_DRAW_RULE_FORMAT_VERSION: BundleFormatVersion = 3;
/** The first version proved with the head reading its matrix in place. */
export const IN_PLACE_HEAD_FORMAT_VERSION = 4;

/** The head layout a bundle of this format version was proved with (its replay and executed bytes use it). */
export function headLayoutOfVersion(version: number): HeadLayout {
  return version >= IN_PLACE_HEAD_FORMAT_VERSION ? "in-place" : "transposed";
}

/** Every entry of a bundle, in the order the writer stores them. Nothing else is allowed. */
export const BUNDLE_ENTRY_ORDER = [
  "manifest.json",
  "signature.json",
  "config.json",
  "environment.json",
  "records.jsonl",
  "fingerprints.jsonl",
  "summary.json",
  "report.md",
] as const;

export type BundleEntryName = (typeof BUNDLE_ENTRY_ORDER)[number];

/** Version 2: marks a shard bundle (shards.ts). */
export const SHARD_ENTRY = "shard.json";
/** Version 2: a merged bundle's shards, one line each (shards.ts). */
export const SHARDS_ENTRY = "shards.jsonl";
/** Entries a version 2 bundle may add (at most one of them), stored after the others. */
export const OPTIONAL_BUNDLE_ENTRIES = [SHARD_ENTRY, SHARDS_ENTRY] as const;
export type OptionalBundleEntryName = (typeof OPTIONAL_BUNDLE_ENTRIES)[number];

/** Every entry name a bundle of some readable version may hold. */
export const ALL_BUNDLE_ENTRY_NAMES: readonly string[] = [...BUNDLE_ENTRY_ORDER, ...OPTIONAL_BUNDLE_ENTRIES];

/** The entries a manifest of this version may list besides the required ones. */
export function optionalEntriesOf(version: unknown): readonly string[] {
  return version === 1 ? [] : OPTIONAL_BUNDLE_ENTRIES;
}

/** Entries the manifest lists (all but itself and the signature over it). */
export const MANIFEST_LISTED_ENTRIES: readonly BundleEntryName[] = BUNDLE_ENTRY_ORDER.filter(
  (name) => name !== "manifest.json" && name !== "signature.json",
);

export function isBundleEntryName(name: string): name is BundleEntryName {
  return (BUNDLE_ENTRY_ORDER as readonly string[]).includes(name);
}

/**
 * Domain separation for the signature (DSSE-style pre-authentication encoding): the
 * signed message names the format, version and payload type and carries explicit
 * lengths, so a signature over a manifest can never be replayed as one over other bytes
 * or another format version. Each version has its own prefix and payload type.
 */
export function signingPrefix(version: number): string {
  return `SPGBUNDLEv${version}`;
}

export function manifestPayloadType(version: number): string {
  return `application/vnd.spg.manifest+json;version=${version}`;
}

/** Version 1's signing domain. */
export const SIGNING_PREFIX = signingPrefix(1);
export const MANIFEST_PAYLOAD_TYPE = manifestPayloadType(1);

/** Only Ed25519 is defined for version 1. */
export const SIGNATURE_ALGORITHM = "ed25519";

/**
 * Zip entries carry this fixed modification time so identical content gives identical
 * bytes (1980-01-01 is the earliest date a DOS timestamp can hold).
 */
export const ZIP_FIXED_DATE = new Date(Date.UTC(1980, 0, 1, 0, 0, 0));
/** Regular file, rw-r--r--. */
export const ZIP_FILE_MODE = 0o100644;
/** zlib's default level: fixed so the compressed bytes do not vary between runs. */
export const ZIP_DEFLATE_LEVEL = 6;

export interface ZipReadLimits {
  /** Most entries the central directory may declare. */
  maxEntries: number;
  /** Most bytes one entry may inflate to. */
  maxEntryBytes: number;
  /**
   * Most bytes one entry may inflate to when it is kept whole in memory (not streamed to a
   * sink: read.ts EntryStreaming); verify sets it from its policy.
   */
  maxHeldEntryBytes: number;
  /** Most bytes all entries together may inflate to. */
  maxTotalBytes: number;
  /** Largest inflated/compressed ratio allowed for an entry (deflate itself tops out near 1032). */
  maxCompressionRatio: number;
  /** Entries that inflate to at most this many bytes are exempt from the ratio limit (tiny files compress oddly). */
  ratioExemptBytes: number;
  /** Largest archive file the reader opens at all. */
  maxArchiveBytes: number;
}

const MiB = 1024 * 1024;

/**
 * Version 1 reading limits. The entry count allows a little over the 8 defined entries
 * so extra ones are reported by name rather than by count; the byte limits leave room
 * for records files of several hundred MB.
 */
export const DEFAULT_ZIP_READ_LIMITS: Readonly<ZipReadLimits> = Object.freeze({
  maxEntries: 64,
  maxEntryBytes: 1024 * MiB,
  maxHeldEntryBytes: 1024 * MiB,
  maxTotalBytes: 1536 * MiB,
  maxCompressionRatio: 200,
  ratioExemptBytes: 1 * MiB,
  maxArchiveBytes: 1536 * MiB,
});

/**
 * Version 1 JSON reading limit: no bundle file nests deeper than a handful of levels
 * (config method params are the deepest, under 10), so anything past this is hostile;
 * refusing it early keeps recursive serializers and validators off the stack limit.
 */
export const MAX_JSON_NESTING = 64;

export function resolveZipReadLimits(overrides: Partial<ZipReadLimits> = {}): ZipReadLimits {
  const limits = { ...DEFAULT_ZIP_READ_LIMITS };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new SpgError("E_ZIP_LIMITS", `zip read limit ${key} must be a finite non-negative number`, {
        field: key,
        fix: `pass a number >= 0 for ${key} (got ${String(value)})`,
      });
    }
    (limits as Record<string, number>)[key] = value;
  }
  return limits;
}
