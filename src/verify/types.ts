import type { FindingCode } from "../error-codes.js";

/**
 * What the verifier works on and what it reports. Checks take plain inputs (the zip's
 * entries as bytes, or files already parsed and schema-validated) and return findings;
 * the runner (runner.ts) strings them together and reports every finding, not the first.
 */

/**
 * The verification steps in report order. "zip-safety" is the safe reader's
 * (src/bundle/read.ts) and runs before the runner; the runner runs the rest, in order.
 */
export type CheckName =
  | "zip-safety"
  | "integrity"
  | "signature"
  | "trust"
  | "schemas"
  | "consistency"
  | "recompute"
  | "claims"
  | "policy"
  | "protocol"
  | "shards"
  | "draw"
  | "report-md"
  | "replay";

export const CHECK_ORDER: readonly CheckName[] = [
  "zip-safety",
  "integrity",
  "signature",
  "trust",
  "schemas",
  "consistency",
  "recompute",
  "claims",
  "policy",
  "protocol",
  "shards",
  "report-md",
  // The draw is re-derived after the synchronous checks (runAllChecks), replay last.
  "draw",
  "replay",
];

/**
 * What this verifier could not check here (a warning finding): never a failure of the
 * bundle, never a pass. Listed in verify/README.md.
 */
export type WarningCode = "W_DRAW_NOT_CHECKED" | "W_REPLAY_NOT_CHECKED" | "W_REPLAY_OFF";

/**
 * One result of one check. Failing findings carry a registered E_... code (src/error-codes.ts);
 * passing ones "OK". A warning (ok, `warning: true`, a W_... code) is something this verifier
 * could not check here, e.g. replay without the model.
 */
export interface Finding {
  check: CheckName;
  code: FindingCode | WarningCode | "OK";
  ok: boolean;
  warning?: true;
  message: string;
  details?: Record<string, unknown>;
}

/** The entries of a bundle zip, already read safely (src/bundle/read.ts), by name. */
export interface BundleContents {
  entries: Map<string, Buffer>;
}

/** Every entry of a version 1 bundle, nothing else (docs/bundle-format.md §2). */
export const BUNDLE_ENTRY_NAMES = [
  "manifest.json",
  "signature.json",
  "config.json",
  "environment.json",
  "records.jsonl",
  "fingerprints.jsonl",
  "summary.json",
  "report.md",
] as const;

/** The entries the manifest lists (all but itself and the signature over it). */
export const MANIFEST_LISTED_ENTRY_NAMES: readonly string[] = BUNDLE_ENTRY_NAMES.filter(
  (name) => name !== "manifest.json" && name !== "signature.json",
);

/** manifest.json (schemas/manifest.schema.json). */
export interface ManifestFile {
  format: "spg-bundle";
  /** 1, or 2 (sharded runs: optional shard.json / shards.jsonl). */
  version: 1 | 2;
  tool: { name: string; version: string; commit: string | null };
  createdAt: string;
  entries: { name: string; sha256: string; bytes: number }[];
}

/** signature.json (schemas/signature.schema.json). */
export interface SignatureFile {
  algorithm: "ed25519";
  /** base64 of the 32-byte public key. */
  publicKey: string;
  /** sha256 hex of the raw public key bytes. */
  keyId: string;
  /** base64 of the 64-byte detached signature. */
  signature: string;
  ephemeral: boolean;
}

export interface SampleHash {
  sampleId: string;
  tokenHash: string;
}

/** environment.json (schemas/environment.schema.json). */
export interface EnvironmentFile {
  os: Record<string, unknown>;
  cpu: Record<string, unknown>;
  memory: Record<string, unknown>;
  gpus: Record<string, unknown>[];
  node: string;
  onnxruntime: string;
  executionProvider: "cpu" | "cuda" | "webgpu";
  packages: Record<string, string>;
  hardwareCheck: {
    device: "cpu" | "cuda" | "webgpu";
    requiredBytes: number;
    availableBytes: number;
    marginFraction: number;
    verdict: "pass" | "fail";
    inputs: Record<string, number | string | boolean | null>;
  };
  model: {
    path: string;
    sha256: string;
    files: { name: string; sha256: string; bytes: number }[];
    layers: number;
    heads: number;
    hiddenSize: number;
  };
  dataset: {
    source: "brown" | "text" | "jsonl" | "dir";
    split: string;
    calibrationSplit: string;
    sha256: string;
    calibrationSha256: string;
    documents: number;
  };
  calibration: { samples: SampleHash[] };
  evaluation: { samples: SampleHash[] };
}

export function pass(check: CheckName, message: string, details?: Record<string, unknown>): Finding {
  return details === undefined
    ? { check, code: "OK", ok: true, message }
    : { check, code: "OK", ok: true, message, details };
}

/** "not checked: ...": not a failure of the bundle, never a pass (see Finding). */
export function warn(
  check: CheckName,
  code: WarningCode,
  message: string,
  details?: Record<string, unknown>,
): Finding {
  return details === undefined
    ? { check, code, ok: true, warning: true, message }
    : { check, code, ok: true, warning: true, message, details };
}

export function fail(
  check: CheckName,
  code: FindingCode,
  message: string,
  details?: Record<string, unknown>,
): Finding {
  return details === undefined
    ? { check, code, ok: false, message }
    : { check, code, ok: false, message, details };
}
