/**
 * The verification context: the bundle's entries, parsed once (strictly: parse.ts) on first
 * use, and what earlier checks established for later ones (schema-valid values, the
 * recomputed summary). Every check reads the bundle through it, so no entry is parsed
 * twice and no two checks can read the same entry differently.
 */

import type { BundleEntries } from "../bundle/read.js";
import type { Summary } from "../bundle/types.js";
import type { Sample } from "../data/types.js";
import { sha256Hex } from "../numeric/sha256.js";
import type { LineFolds } from "./checks/lines.js";
import { type Parsed, parseJsonEntry, parseJsonLinesEntry } from "./parse.js";

/** An entry's length and sha256 (hex), what manifest.json lists for it. */
export interface EntryDigest {
  bytes: number;
  sha256: string;
}

export class BundleContext implements BundleEntries {
  /** Entries held in memory: every entry, or all but the streamed ones (checks/lines.ts). */
  readonly entries: Map<string, Buffer>;
  private readonly parsed = new Map<string, Parsed<unknown>>();
  private readonly digests = new Map<string, EntryDigest>();
  /** records.jsonl and fingerprints.jsonl folded line by line (checks/lines.ts), once made. */
  lineFolds: LineFolds | undefined;
  /** Entries that parsed and matched their schema (the schemas check fills it). */
  readonly valid = new Map<string, unknown>();
  /** summarize(records, config), once the recompute check has computed it. */
  recomputed: Summary | undefined;
  /** The evaluation samples the draw check re-derived here (a shard's own part), for replay. */
  evaluation: Sample[] | undefined;

  constructor(entries: Map<string, Buffer> = new Map()) {
    this.entries = entries;
  }

  /** Whether the bundle holds this entry (in memory or streamed). */
  has(name: string): boolean {
    return this.entries.has(name) || this.digests.has(name);
  }

  /** Every entry name the bundle holds. */
  names(): string[] {
    return [...new Set([...this.entries.keys(), ...this.digests.keys()])];
  }

  /** An entry's length and sha256: as hashed while it streamed, or hashed now from memory. */
  digest(name: string): EntryDigest | undefined {
    let digest = this.digests.get(name);
    const bytes = this.entries.get(name);
    if (digest === undefined && bytes !== undefined) {
      digest = { bytes: bytes.length, sha256: sha256Hex(bytes) };
      this.digests.set(name, digest);
    }
    return digest;
  }

  /** The digest of an entry hashed as it passed (checks/lines.ts). */
  recordDigest(name: string, digest: EntryDigest): void {
    this.digests.set(name, digest);
  }

  /** The entry parsed strictly (.jsonl: the array of its lines); the same object on every call. */
  json(name: string): Parsed<unknown> {
    let result = this.parsed.get(name);
    if (result === undefined) {
      const bytes = this.entries.get(name);
      result = name.endsWith(".jsonl") ? parseJsonLinesEntry(bytes, name) : parseJsonEntry(bytes, name);
      this.parsed.set(name, result);
    }
    return result;
  }

  /** The parsed value, or undefined when the entry is missing or did not parse. */
  value(name: string): unknown {
    const result = this.json(name);
    return result.ok ? result.value : undefined;
  }

  /** manifest.json's format version (1 when it states none: the checks judge it as version 1). */
  version(): number {
    const manifest = this.value("manifest.json") as { version?: unknown } | undefined;
    return typeof manifest?.version === "number" ? manifest.version : 1;
  }
}

/** The context of these contents: itself when it already is one, else a fresh one over its entries. */
export function bundleContext(contents: BundleEntries): BundleContext {
  return contents instanceof BundleContext ? contents : new BundleContext(contents.entries);
}
