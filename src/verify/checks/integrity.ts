import { BUNDLE_ENTRY_ORDER, MANIFEST_LISTED_ENTRIES, optionalEntriesOf } from "../../bundle/format.js";
import type { BundleEntries } from "../../bundle/read.js";
import { bundleContext } from "../context.js";
import { isRecord } from "../parse.js";
import { type Finding, fail, pass } from "../types.js";

const CHECK = "integrity" as const;

/**
 * Every entry's sha256 and byte length match manifest.json; the manifest lists exactly the
 * bundle's entries (all but itself and signature.json); nothing unlisted, nothing missing.
 * Runs on raw bytes: the manifest is the signed root, so nothing else is trusted yet.
 */
export function checkIntegrity(contents: BundleEntries): Finding[] {
  const findings: Finding[] = [];
  const context = bundleContext(contents);
  const parsed = context.json("manifest.json");
  if (!parsed.ok) {
    const code = context.has("manifest.json") ? parsed.code : "E_INTEGRITY_MISSING";
    return [fail(CHECK, code, parsed.error, { entry: "manifest.json" })];
  }
  const manifest = parsed.value;
  if (!isRecord(manifest) || !Array.isArray(manifest.entries)) {
    return [
      fail(CHECK, "E_INTEGRITY_MANIFEST", "manifest.json has no entries list", { entry: "manifest.json" }),
    ];
  }

  // Version 2 may add shard.json or shards.jsonl (the shards check judges which and whether).
  const listable = [...MANIFEST_LISTED_ENTRIES, ...optionalEntriesOf(manifest.version)];
  const listed = new Map<string, { sha256: unknown; bytes: unknown }>();
  for (const [index, entry] of manifest.entries.entries()) {
    if (!isRecord(entry) || typeof entry.name !== "string") {
      findings.push(
        fail(CHECK, "E_INTEGRITY_MANIFEST", `manifest.json entries[${index}] has no name`, { index }),
      );
      continue;
    }
    if (listed.has(entry.name)) {
      findings.push(
        fail(CHECK, "E_INTEGRITY_DUPLICATE", `manifest.json lists ${entry.name} twice`, {
          entry: entry.name,
        }),
      );
      continue;
    }
    listed.set(entry.name, { sha256: entry.sha256, bytes: entry.bytes });
  }

  for (const [name, claimed] of listed) {
    if (!listable.includes(name)) {
      findings.push(
        fail(CHECK, "E_INTEGRITY_UNEXPECTED", `manifest.json lists ${name}, which is not a bundle entry`, {
          entry: name,
          allowed: listable,
        }),
      );
      continue;
    }
    // Streamed entries were hashed as they were read (lines.ts); the others are hashed here.
    const digest = context.digest(name);
    if (digest === undefined) {
      findings.push(
        fail(CHECK, "E_INTEGRITY_MISSING", `${name} is listed in manifest.json but not in the bundle`, {
          entry: name,
        }),
      );
      continue;
    }
    if (claimed.bytes !== digest.bytes) {
      findings.push(
        fail(
          CHECK,
          "E_INTEGRITY_SIZE",
          `${name} is ${digest.bytes} bytes; manifest.json says ${String(claimed.bytes)}`,
          {
            entry: name,
            expected: claimed.bytes,
            actual: digest.bytes,
          },
        ),
      );
    }
    const actual = digest.sha256;
    if (claimed.sha256 !== actual) {
      findings.push(
        fail(
          CHECK,
          "E_INTEGRITY_HASH",
          `${name} has sha256 ${actual}; manifest.json says ${String(claimed.sha256)}`,
          {
            entry: name,
            expected: claimed.sha256,
            actual,
          },
        ),
      );
    }
  }

  for (const name of MANIFEST_LISTED_ENTRIES) {
    if (!listed.has(name)) {
      const where = context.has(name) ? "is in the bundle but not listed in manifest.json" : "is missing";
      const code = context.has(name) ? "E_INTEGRITY_UNLISTED" : "E_INTEGRITY_MISSING";
      findings.push(fail(CHECK, code, `${name} ${where}`, { entry: name }));
    }
  }
  for (const name of context.names()) {
    if (!(BUNDLE_ENTRY_ORDER as readonly string[]).includes(name) && !listed.has(name)) {
      findings.push(
        fail(CHECK, "E_INTEGRITY_UNLISTED", `${name} is in the bundle but is not a bundle entry`, {
          entry: name,
        }),
      );
    }
  }
  if (!context.has("signature.json")) {
    findings.push(
      fail(CHECK, "E_INTEGRITY_MISSING", "signature.json is missing", { entry: "signature.json" }),
    );
  }

  if (findings.length === 0) {
    findings.push(pass(CHECK, `${listed.size} entries match manifest.json (sha256 and bytes)`));
  }
  return findings;
}
