/**
 * `spg inspect`: what a bundle says about itself, without judging it. Everything shown is
 * as stated in the bundle (nothing recomputed, nothing verified); `spg verify` judges.
 */

import type { BundleEntries } from "../bundle/read.js";
import { terminalSafe } from "../terminal-safe.js";
import { isRecord, parseJsonEntry } from "./parse.js";

export interface BundleDescription {
  manifest: unknown;
  signer: { keyId: unknown; ephemeral: unknown } | null;
  config: unknown;
  summary: unknown;
  entries: { name: string; bytes: number }[];
}

function parsed(contents: BundleEntries, name: string): unknown {
  const result = parseJsonEntry(contents.entries.get(name), name);
  return result.ok ? result.value : undefined;
}

function at(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const key of path) {
    if (Array.isArray(current) && typeof key === "number") current = current[key];
    else if (isRecord(current) && typeof key === "string" && Object.hasOwn(current, key))
      current = current[key];
    else return undefined;
  }
  return current;
}

/** The parts of a bundle a reader wants first, parsed leniently (unreadable parts are null). */
export function describeBundle(contents: BundleEntries): BundleDescription {
  const signature = parsed(contents, "signature.json");
  return {
    manifest: parsed(contents, "manifest.json") ?? null,
    signer: isRecord(signature) ? { keyId: signature.keyId, ephemeral: signature.ephemeral } : null,
    config: parsed(contents, "config.json") ?? null,
    summary: parsed(contents, "summary.json") ?? null,
    entries: [...contents.entries].map(([name, bytes]) => ({ name, bytes: bytes.length })),
  };
}

function show(value: unknown): string {
  if (value === undefined || value === null) return "?";
  // Counts, seeds and byte sizes are shown exactly; measured fractions to 5 significant digits.
  if (typeof value === "number")
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(5)));
  // Text the bundle chose reaches the terminal inert.
  return terminalSafe(typeof value === "string" ? value : JSON.stringify(value));
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) =>
    `  ${row.map((cell, column) => cell.padEnd(widths[column])).join("  ")}`.trimEnd(),
  );
}

/** Human rendering of describeBundle(). */
export function renderDescription(bundle: string, description: BundleDescription): string {
  const { manifest, signer, config, summary } = description;
  const lines = [
    `${terminalSafe(bundle)}  (as stated by the bundle; not verified — run \`spg verify\`)`,
    `  format    ${show(at(manifest, "format"))} v${show(at(manifest, "version"))}, written ${show(at(manifest, "createdAt"))} by ${show(at(manifest, "tool", "name"))} ${show(at(manifest, "tool", "version"))} (commit ${show(at(manifest, "tool", "commit"))})`,
    `  signer    ${signer === null ? "?" : `${show(signer.keyId)}${signer.ephemeral === true ? " (ephemeral key)" : ""}`}`,
    `  run       ${show(at(config, "name"))}: model ${show(at(config, "model", "path"))} on ${show(at(config, "model", "device"))}`,
    `  dataset   ${show(at(config, "dataset", "source"))} split ${show(at(config, "dataset", "split"))}, ${show(at(config, "dataset", "samples"))} samples of ${show(at(config, "dataset", "contextTokens"))} + ${show(at(config, "dataset", "continuationTokens"))} tokens, seed ${show(at(config, "dataset", "seed"))}; calibration ${show(at(config, "dataset", "calibrationSplit"))} (${show(at(config, "dataset", "calibrationSamples"))})`,
  ];
  const methods = at(summary, "methods");
  if (isRecord(methods)) {
    const kinds = new Map<string, string>();
    const configured = at(config, "methods");
    if (Array.isArray(configured))
      for (const method of configured) kinds.set(show(at(method, "name")), show(at(method, "kind")));
    lines.push("", "  methods (summary.json)");
    const rows = [["method", "kind", "ratio", "ppl +%", "mean KL", "top-1", "generation", "samples"]];
    for (const [name, figures] of Object.entries(methods)) {
      rows.push([
        terminalSafe(name),
        kinds.get(name) ?? "?",
        show(at(figures, "compressionRatio")),
        show(at(figures, "perplexityIncreasePct")),
        show(at(figures, "meanKl")),
        show(at(figures, "top1Agreement")),
        show(at(figures, "generationAgreement")),
        show(at(figures, "samples")),
      ]);
    }
    lines.push(...table(rows));
  }
  const claims = at(summary, "claims");
  if (Array.isArray(claims)) {
    lines.push(
      "",
      `  claims (summary.json says ${at(summary, "allClaimsPass") === true ? "all pass" : "not all pass"})`,
    );
    if (claims.length === 0) lines.push("  none");
    else {
      const rows = [["method", "claim", "judge", "value", "judged", "pass"]];
      for (const claim of claims) {
        rows.push([
          show(at(claim, "method")),
          `${show(at(claim, "metric"))} ${show(at(claim, "op"))} ${show(at(claim, "threshold"))}`,
          show(at(claim, "judge")),
          show(at(claim, "value")),
          show(at(claim, "judged")),
          show(at(claim, "pass")),
        ]);
      }
      lines.push(...table(rows));
    }
  }
  lines.push("", "  entries");
  lines.push(
    ...table([
      ["name", "bytes"],
      ...description.entries.map((entry) => [terminalSafe(entry.name), String(entry.bytes)]),
    ]),
  );
  return `${lines.join("\n")}\n`;
}
