/**
 * manifest.json: what the signature covers. It names the format, the tool that wrote
 * the bundle, and every other entry (except the signature over it) with its sha256 and
 * length, in the fixed entry order.
 */

import { SpgError } from "../errors.js";
import { sha256Hex } from "../numeric/sha256.js";
import { canonicalJson } from "./canonical.js";
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  type BundleEntryName,
  type BundleFormatVersion,
  MANIFEST_LISTED_ENTRIES,
  OPTIONAL_BUNDLE_ENTRIES,
} from "./format.js";

export interface ToolInfo {
  name: string;
  version: string;
  /** Source commit the tool was built from, or null when unknown (e.g. installed from a tarball). */
  commit: string | null;
}

export interface ManifestEntry {
  name: string;
  sha256: string;
  bytes: number;
}

/** manifest.json (schemas/manifest.schema.json). */
export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  /** The version this tool writes (BUNDLE_FORMAT_VERSION) or one it reads (READABLE_FORMAT_VERSIONS). */
  version: BundleFormatVersion;
  tool: ToolInfo;
  /** ISO 8601 UTC time the bundle was written. */
  createdAt: string;
  entries: ManifestEntry[];
}

export { sha256Hex };

/**
 * Build the manifest over the listed entries (every entry but manifest.json and
 * signature.json), in format order. Throws when one is missing or unknown.
 */
export function buildManifest(
  contents: ReadonlyMap<string, Uint8Array>,
  tool: ToolInfo,
  createdAt: string,
): Manifest {
  const listable: readonly string[] = [...MANIFEST_LISTED_ENTRIES, ...OPTIONAL_BUNDLE_ENTRIES];
  for (const name of contents.keys()) {
    if (!listable.includes(name)) {
      throw new SpgError("E_BUNDLE_ENTRY", `${name} is not an entry the manifest lists`, {
        field: name,
        fix: `pass exactly: ${MANIFEST_LISTED_ENTRIES.join(", ")} (and at most one of ${OPTIONAL_BUNDLE_ENTRIES.join(", ")})`,
      });
    }
  }
  const optional = OPTIONAL_BUNDLE_ENTRIES.filter((name) => contents.has(name));
  if (optional.length > 1) {
    throw new SpgError("E_BUNDLE_ENTRY", `a bundle holds at most one of ${optional.join(", ")}`, {
      field: optional[1],
      fix: "a bundle is a shard (shard.json) or a merge of shards (shards.jsonl), not both",
    });
  }
  if (Number.isNaN(Date.parse(createdAt))) {
    throw new SpgError("E_BUNDLE_ENTRY", `createdAt ${JSON.stringify(createdAt)} is not a date`, {
      field: "createdAt",
      fix: "pass an ISO 8601 time, e.g. new Date().toISOString()",
    });
  }
  const entries: ManifestEntry[] = MANIFEST_LISTED_ENTRIES.map((name: BundleEntryName) => {
    const bytes = contents.get(name);
    if (bytes === undefined) {
      throw new SpgError("E_BUNDLE_ENTRY", `${name} is missing`, {
        field: name,
        fix: "a bundle needs every entry of the format",
      });
    }
    return { name, sha256: sha256Hex(bytes), bytes: bytes.byteLength };
  });
  for (const name of optional) {
    const bytes = contents.get(name)!;
    entries.push({ name, sha256: sha256Hex(bytes), bytes: bytes.byteLength });
  }
  return {
    format: BUNDLE_FORMAT,
    version: BUNDLE_FORMAT_VERSION,
    tool: { name: tool.name, version: tool.version, commit: tool.commit },
    createdAt,
    entries,
  };
}

export function manifestBytes(manifest: Manifest): Buffer {
  return canonicalJson(manifest);
}
