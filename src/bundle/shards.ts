/**
 * How sharded runs sit in the bundle format (version 2).
 *
 * A shard bundle is an ordinary bundle plus `shard.json` (ShardMarker): the whole run's
 * config hash, K, N and the evaluation samples it covers. Its records and fingerprints
 * are the unsharded run's lines for those samples, in the same order.
 *
 * A merged bundle holds the union of its shards' records and fingerprints in unsharded
 * order, and `shards.jsonl`: one line per shard (ShardsLine) with that shard's own
 * manifest.json, signature.json, shard.json, environment.json, summary.json and report.md,
 * as exact text. A shard's config.json is the merged config.json (same run config hash),
 * and its records.jsonl and fingerprints.jsonl are the merged lines of its samples, so the
 * shard bundle can be rebuilt byte for byte from the merged one and its producer's
 * signature checked again (shardBundleEntries).
 */
import { SpgError } from "../errors.js";
import { canonicalJson } from "./canonical.js";
import { SHARD_ENTRY } from "./format.js";
import { sha256Hex } from "./manifest.js";

/** shard.json (schemas/shard.schema.json). */
export interface ShardMarker {
  /** sha256 hex of the run's config.json bytes, the same in every shard and in the merge. */
  runConfigSha256: string;
  /** K, from 1 to count. */
  index: number;
  /** N. */
  count: number;
  /** The evaluation samples this shard covers, in draw order. */
  sampleIds: string[];
}

/** Which shard: K (`index`, 1-based) of N (`count`). */
export type ShardIndex = Pick<ShardMarker, "index" | "count">;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Shard `index` of `count` of a draw, given as draw positions (0-based): position p belongs
 * to shard (p mod count) + 1. Round robin, so shards differ in size by at most one sample and
 * each holds early and late draws alike.
 */
export function shardPositions(drawSize: number, shard: ShardIndex): number[] {
  const positions: number[] = [];
  for (let position = shard.index - 1; position < drawSize; position += shard.count) positions.push(position);
  return positions;
}

/** The items of `draw` (in draw order) that `shard` covers; E_SHARD_SPEC when a shard would be empty. */
export function selectShard<T>(draw: readonly T[], shard: ShardIndex): T[] {
  if (shard.count > draw.length) {
    throw new SpgError(
      "E_SHARD_SPEC",
      `${shard.count} shards of ${draw.length} evaluation samples would leave shards empty`,
      {
        field: "--shard",
        fix: `use at most ${draw.length} shards, or draw more samples (--samples)`,
      },
    );
  }
  return shardPositions(draw.length, shard).map((position) => draw[position]);
}

/** The entries of a shard kept in a merged bundle's shards.jsonl line, as text. */
export const KEPT_SHARD_ENTRIES = {
  manifest: "manifest.json",
  signature: "signature.json",
  shard: SHARD_ENTRY,
  environment: "environment.json",
  summary: "summary.json",
  report: "report.md",
} as const;

/** shards.jsonl line (schemas/shards.schema.json). */
export type ShardsLine = Record<keyof typeof KEPT_SHARD_ENTRIES, string>;

export function runConfigSha256(configBytes: Uint8Array): string {
  return sha256Hex(configBytes);
}

/** shard.json of shard `spec` of the run `config` describes, covering `sampleIds`. */
export function shardMarker(config: unknown, spec: ShardIndex, sampleIds: string[]): ShardMarker {
  return {
    runConfigSha256: runConfigSha256(canonicalJson(config)),
    index: spec.index,
    count: spec.count,
    sampleIds,
  };
}

/** A shard's kept entries as one shards.jsonl line. */
export function shardsLineOf(entries: ReadonlyMap<string, Uint8Array>): ShardsLine {
  const line = {} as ShardsLine;
  for (const [field, entry] of Object.entries(KEPT_SHARD_ENTRIES) as [keyof ShardsLine, string][]) {
    line[field] = Buffer.from(entries.get(entry) ?? []).toString("utf8");
  }
  return line;
}

/** The lines of a .jsonl entry as raw bytes (without their newlines). */
export function rawLines(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    lines.push(bytes.subarray(start, end));
    start = end + 1;
  }
  return lines;
}

export function joinLines(lines: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const line of lines) parts.push(Buffer.from(line), Buffer.from("\n"));
  return Buffer.concat(parts);
}

/** A records or fingerprints line: which sample it belongs to (undefined: a weight-tensor line, every sample's). */
export interface OwnedLine {
  bytes: Buffer;
  sampleId: string | undefined;
}

/**
 * Each line with the sample it belongs to. Records and KV fingerprints name a sampleId;
 * weight-tensor fingerprints (kind "weights") belong to the run, not a sample. Returns a
 * message when a line is not JSON or names no sample.
 */
export function ownedLines(bytes: Buffer, entry: string): { lines: OwnedLine[] } | { error: string } {
  const lines: OwnedLine[] = [];
  for (const [index, raw] of rawLines(bytes).entries()) {
    let value: unknown;
    try {
      value = JSON.parse(raw.toString("utf8"));
    } catch (error) {
      return { error: `${entry} line ${index + 1} is not JSON: ${(error as Error).message}` };
    }
    if (isObject(value) && typeof value.sampleId === "string") {
      lines.push({ bytes: raw, sampleId: value.sampleId });
    } else if (isObject(value) && value.kind === "weights" && !Object.hasOwn(value, "sampleId")) {
      lines.push({ bytes: raw, sampleId: undefined });
    } else {
      return { error: `${entry} line ${index + 1} names no sampleId` };
    }
  }
  return { lines };
}

/**
 * Lines by the shard that owns their sample (`owner`: sampleId -> K); weight-tensor lines,
 * which every shard holds, in `shared`; lines of samples no shard owns in `orphans`. One pass.
 */
export function groupLines(
  lines: readonly OwnedLine[],
  owner: ReadonlyMap<string, number>,
): { byShard: Map<number, Buffer[]>; shared: Buffer[]; orphans: OwnedLine[] } {
  const byShard = new Map<number, Buffer[]>();
  const shared: Buffer[] = [];
  const orphans: OwnedLine[] = [];
  for (const line of lines) {
    if (line.sampleId === undefined) {
      shared.push(line.bytes);
      continue;
    }
    const shard = owner.get(line.sampleId);
    if (shard === undefined) {
      orphans.push(line);
      continue;
    }
    let own = byShard.get(shard);
    if (own === undefined) {
      own = [];
      byShard.set(shard, own);
    }
    own.push(line.bytes);
  }
  return { byShard, shared, orphans };
}

/**
 * Rebuild a shard bundle's entries from a merged bundle: the shard's kept text, the merged
 * config.json, its samples' merged records lines, and its samples' merged fingerprint lines
 * followed by the run's weight-tensor lines (where a shard, like an unsharded run, puts them).
 */
export function shardBundleEntries(
  line: ShardsLine,
  merged: {
    config: Buffer;
    records: readonly Buffer[];
    fingerprints: readonly Buffer[];
    shared: readonly Buffer[];
  },
): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  for (const [field, entry] of Object.entries(KEPT_SHARD_ENTRIES) as [keyof ShardsLine, string][]) {
    entries.set(entry, Buffer.from(line[field], "utf8"));
  }
  entries.set("config.json", merged.config);
  entries.set("records.jsonl", joinLines(merged.records));
  entries.set("fingerprints.jsonl", joinLines([...merged.fingerprints, ...merged.shared]));
  return entries;
}
