/**
 * `spg merge` as a library: verify every shard bundle exactly as `spg verify` would (the
 * same entry point, trust policy included), check they are the N parts of one run, and write
 * one bundle: records and fingerprints in the unsharded order, the summary recomputed over
 * every sample, each shard's own signed entries kept (shards.jsonl), signed by the merger.
 * Every failure is an SpgError with a stable code, and then nothing is written.
 */
import { canonicalJson, canonicalJsonl } from "../bundle/canonical.js";
import { SHARDS_ENTRY } from "../bundle/format.js";
import type { SigningKey } from "../bundle/keys.js";
import type { ToolInfo } from "../bundle/manifest.js";
import {
  groupLines,
  joinLines,
  type OwnedLine,
  ownedLines,
  type ShardMarker,
  shardsLineOf,
} from "../bundle/shards.js";
import type { SampleRecord, Summary } from "../bundle/types.js";
import { assembleBundle, writeZipAtomic } from "../bundle/write.js";
import type { RunConfig } from "../config/types.js";
import type { InputErrorCode } from "../error-codes.js";
import { SpgError } from "../errors.js";
import { renderReportMarkdown } from "../measure/report-md.js";
import { summarize } from "../measure/summary.js";
import { shardMarkerOf } from "../verify/checks/shards.js";
import { isRecord } from "../verify/parse.js";
import { EXIT_UNREADABLE, runChecks, type VerifyResult } from "../verify/runner.js";
import { loadSchemaValidators } from "../verify/schemas.js";
import type { Finding } from "../verify/types.js";
import { verifyBundleFile } from "../verify/verify-bundle.js";

export interface MergeOptions {
  /** Shard bundle files, in any order. */
  shards: readonly string[];
  /** Where the merged bundle goes (written atomically; nothing on failure). */
  out: string;
  key: SigningKey;
  tool: ToolInfo;
  /** Trust policy every shard must meet, as in `spg verify`. */
  trustedKeysFile?: string;
  requireTrusted: boolean;
  /** Fixed creation time for reproducible bundles. */
  createdAt?: string;
}

export interface MergeResult {
  path: string;
  sha256: string;
  bytes: number;
  summary: Summary;
  shards: { file: string; index: number; keyId: string | undefined }[];
}

interface VerifiedShard {
  file: string;
  entries: Map<string, Buffer>;
  marker: ShardMarker;
  keyId: string | undefined;
  /** Failing findings that are not tampering or trust (judged after the set checks). */
  invalid: Finding[];
}

function failing(result: VerifyResult): Finding[] {
  return result.findings.filter((finding) => !finding.ok);
}

function listed(findings: readonly Finding[]): string {
  return findings.map((finding) => `${finding.code}: ${finding.message}`).join("; ");
}

/** Verify one shard through verify's own entry point; tampered, untrusted or unreadable stops the merge. */
async function verifyShard(file: string, options: MergeOptions): Promise<VerifiedShard> {
  // Replay is verify's (of the merged bundle); merging checks everything else about each shard.
  const result = await verifyBundleFile(file, {
    trustedKeysFile: options.trustedKeysFile,
    requireTrusted: options.requireTrusted,
    replay: false,
  });
  const failures = failing(result);
  if (result.exitCode === EXIT_UNREADABLE || result.entries === undefined) {
    throw new SpgError("E_MERGE_SHARD_UNREADABLE", `${file} is not a readable bundle: ${listed(failures)}`, {
      file,
      fix: "re-download or re-run this shard",
    });
  }
  const untrusted = failures.filter((finding) => finding.check === "trust");
  const tampered = failures.filter(
    (finding) => finding.check === "integrity" || finding.check === "signature",
  );
  if (tampered.length > 0) {
    throw new SpgError(
      "E_MERGE_SHARD_TAMPERED",
      `${file} fails its integrity or signature: ${listed(tampered)}`,
      {
        file,
        fix: "re-run this shard: its bytes are not what its producer signed",
      },
    );
  }
  if (untrusted.length > 0) {
    throw new SpgError("E_MERGE_SHARD_UNTRUSTED", `${file}: ${listed(untrusted)}`, {
      file,
      field: "--trusted-keys",
      fix: "sign every shard with a key in --trusted-keys (see docs/distributed.md on keys)",
    });
  }
  const marker = markerOf(result.entries);
  if (marker === undefined) {
    throw new SpgError("E_MERGE_NOT_A_SHARD", `${file} is not a shard bundle (no valid shard.json)`, {
      file,
      fix: "merge the bundles `spg prove --shard K/N` wrote; a whole-run or merged bundle is not a shard",
    });
  }
  const keyId = result.findings.find((finding) => finding.check === "signature" && finding.ok)?.details
    ?.keyId;
  return {
    file,
    entries: result.entries,
    marker,
    keyId: typeof keyId === "string" ? keyId : undefined,
    invalid: failures,
  };
}

/** The shard's marker (shard.json), read as verify reads it; undefined for a whole-run or merged bundle. */
function markerOf(entries: Map<string, Buffer>): ShardMarker | undefined {
  if (entries.has(SHARDS_ENTRY)) return undefined;
  return shardMarkerOf({ entries }, loadSchemaValidators());
}

function jsonField(entries: Map<string, Buffer>, entry: string, field: string): string {
  try {
    const value = JSON.parse(entries.get(entry)?.toString("utf8") ?? "null") as unknown;
    return JSON.stringify(isRecord(value) ? value[field] : null);
  } catch {
    return "null";
  }
}

/** Every shard agrees with the first on `describe(shard)`; else `code`. */
function requireSame(
  shards: readonly VerifiedShard[],
  code: InputErrorCode,
  what: string,
  describe: (shard: VerifiedShard) => string,
  fix: string,
): void {
  const first = shards[0];
  const expected = describe(first);
  const other = shards.find((shard) => describe(shard) !== expected);
  if (other !== undefined) {
    throw new SpgError(
      code,
      `${other.file} has ${what} ${describe(other)}, but ${first.file} has ${expected}`,
      { file: other.file, fix },
    );
  }
}

/** The shards are the N distinct parts of one run, by one tool, on one model and dataset. */
function checkShardSet(shards: readonly VerifiedShard[]): void {
  requireSame(
    shards,
    "E_MERGE_SHARD_COUNT",
    "shard count N =",
    (shard) => String(shard.marker.count),
    "merge shards of one run, all proved with the same N",
  );
  requireSame(
    shards,
    "E_MERGE_CONFIG_MISMATCH",
    "run config hash",
    (shard) => shard.marker.runConfigSha256,
    "merge shards proved from the same config (preset, file and flags)",
  );
  requireSame(
    shards,
    "E_MERGE_TOOL_MISMATCH",
    "tool",
    (shard) => jsonField(shard.entries, "manifest.json", "tool"),
    "prove every shard with the same spg version and commit",
  );
  for (const field of ["model", "dataset", "evaluation", "calibration"]) {
    requireSame(
      shards,
      "E_MERGE_INPUT_MISMATCH",
      `environment.json ${field}`,
      (shard) => jsonField(shard.entries, "environment.json", field),
      "prove every shard on the same model and dataset files",
    );
  }
  const byIndex = new Map<number, VerifiedShard>();
  for (const shard of shards) {
    const other = byIndex.get(shard.marker.index);
    if (other !== undefined) {
      throw new SpgError(
        "E_MERGE_DUPLICATE_SHARD",
        `${other.file} and ${shard.file} are both shard ${shard.marker.index} of ${shard.marker.count}`,
        { file: shard.file, fix: "pass each shard once (a retried shard replaces its first try)" },
      );
    }
    byIndex.set(shard.marker.index, shard);
  }
  const owner = new Map<string, VerifiedShard>();
  for (const shard of shards) {
    for (const id of shard.marker.sampleIds) {
      const other = owner.get(id);
      if (other !== undefined) {
        throw new SpgError(
          "E_MERGE_OVERLAP",
          `sample ${id} is in both ${other.file} (shard ${other.marker.index}) and ${shard.file} (shard ${shard.marker.index})`,
          {
            file: shard.file,
            fix: "merge shards whose samples are disjoint: the N shards `spg prove --shard K/N` wrote",
          },
        );
      }
      owner.set(id, shard);
    }
  }
  const count = shards[0].marker.count;
  const missing: number[] = [];
  for (let index = 1; index <= count; index++) if (!byIndex.has(index)) missing.push(index);
  if (missing.length > 0) {
    throw new SpgError(
      "E_MERGE_MISSING_SHARD",
      `shard${missing.length > 1 ? "s" : ""} ${missing.join(", ")} of ${count} missing`,
      {
        fix: `prove and pass shard${missing.length > 1 ? "s" : ""} ${missing.map((k) => `${k}/${count}`).join(", ")}`,
      },
    );
  }
  const invalid = shards.find((shard) => shard.invalid.length > 0);
  if (invalid !== undefined) {
    throw new SpgError(
      "E_MERGE_SHARD_INVALID",
      `${invalid.file} does not verify: ${listed(invalid.invalid)}`,
      {
        file: invalid.file,
        fix: "run `spg verify` on it and re-run the shard",
      },
    );
  }
}

function linesOf(shard: VerifiedShard, entry: string): OwnedLine[] {
  const owned = ownedLines(shard.entries.get(entry) ?? Buffer.alloc(0), entry);
  // The shard verified, so its lines parse; this guards the invariant, not user input.
  if ("error" in owned) throw new SpgError("E_MERGE_SHARD_INVALID", `${shard.file}: ${owned.error}`);
  return owned.lines;
}

/** The run's lines in unsharded order: every sample's lines in draw order, then the weight-tensor lines. */
function mergeLines(
  shards: readonly VerifiedShard[],
  draw: readonly string[],
  entry: string,
): { merged: Buffer[]; shared: Buffer[] } {
  const owner = new Map<string, number>();
  const all: OwnedLine[] = [];
  let shared: Buffer[] | undefined;
  for (const shard of shards) {
    for (const id of shard.marker.sampleIds) owner.set(id, shard.marker.index);
    const lines = linesOf(shard, entry);
    const grouped = groupLines(lines, owner);
    const sharedText = joinLines(grouped.shared);
    if (shared !== undefined && !joinLines(shared).equals(sharedText)) {
      throw new SpgError(
        "E_MERGE_INPUT_MISMATCH",
        `${shard.file} has other weight-tensor fingerprints in ${entry} than ${shards[0].file}`,
        { file: shard.file, fix: "prove every shard from the same config and checkpoint" },
      );
    }
    shared = grouped.shared;
    all.push(...lines.filter((line) => line.sampleId !== undefined));
  }
  const position = new Map(draw.map((id, index) => [id, index]));
  // Stable: a sample's lines keep their order (methods, then layers).
  const merged = all
    .map((line, order) => ({ line, order, at: position.get(line.sampleId!) ?? Number.MAX_SAFE_INTEGER }))
    .sort((a, b) => a.at - b.at || a.order - b.order)
    .map(({ line }) => line.bytes);
  return { merged, shared: shared ?? [] };
}

function drawOf(shard: VerifiedShard): string[] {
  const environment = JSON.parse(shard.entries.get("environment.json")!.toString("utf8")) as {
    evaluation: { samples: { sampleId: string }[] };
  };
  return environment.evaluation.samples.map((sample) => sample.sampleId);
}

export async function mergeShards(options: MergeOptions): Promise<MergeResult> {
  if (options.shards.length === 0) {
    throw new SpgError("E_MERGE_NO_SHARDS", "no shard bundles to merge", {
      fix: "pass the shard bundles, e.g. spg merge shard-*.zip --out run.zip",
    });
  }
  const shards: VerifiedShard[] = [];
  for (const file of options.shards) shards.push(await verifyShard(file, options));
  checkShardSet(shards);
  shards.sort((a, b) => a.marker.index - b.marker.index);

  const first = shards[0];
  const config = first.entries.get("config.json")!;
  const draw = drawOf(first);
  const records = mergeLines(shards, draw, "records.jsonl");
  const fingerprints = mergeLines(shards, draw, "fingerprints.jsonl");
  const recordsBytes = joinLines(records.merged);
  const runConfig = JSON.parse(config.toString("utf8")) as RunConfig;
  const parsedRecords = records.merged.map((line) => JSON.parse(line.toString("utf8")) as SampleRecord);
  const summary = summarize(parsedRecords, runConfig);
  const environment = first.entries.get("environment.json")!;
  const modelSha256 = (JSON.parse(environment.toString("utf8")) as { model: { sha256: string } }).model
    .sha256;

  const contents = new Map<string, Uint8Array>([
    ["config.json", config],
    ["environment.json", environment],
    ["records.jsonl", recordsBytes],
    ["fingerprints.jsonl", joinLines([...fingerprints.merged, ...fingerprints.shared])],
    ["summary.json", canonicalJson(summary)],
    [
      "report.md",
      Buffer.from(renderReportMarkdown(runConfig, summary, { model: { sha256: modelSha256 } }), "utf8"),
    ],
    [SHARDS_ENTRY, canonicalJsonl(shards.map((shard) => shardsLineOf(shard.entries)))],
  ]);
  const assembled = assembleBundle(
    contents,
    options.key,
    options.tool,
    options.createdAt ?? new Date().toISOString(),
  );

  // Never write a merge verify would refuse (claims aside: they are the run's to meet or not).
  // The shards met the trust policy above; the merger's own key is the reader's to trust.
  const self = runChecks(
    { entries: new Map(assembled.entries.map((entry) => [entry.name, entry.data])) },
    { trustedKeyIds: undefined, requireTrusted: false },
  );
  const problems = failing(self).filter((finding) => finding.check !== "claims");
  if (problems.length > 0) {
    throw new SpgError("E_MERGE_SELF_CHECK", `the merged bundle would not verify: ${listed(problems)}`, {
      fix: "report this: the shards verified but their merge did not",
    });
  }
  const written = await writeZipAtomic(options.out, assembled.entries);
  return {
    path: options.out,
    ...written,
    summary,
    shards: shards.map((shard) => ({ file: shard.file, index: shard.marker.index, keyId: shard.keyId })),
  };
}
