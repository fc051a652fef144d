/**
 * `spg merge` as a library: verify every shard bundle exactly as `spg verify` would (the
 * same entry point, trust policy included), check they are the N parts of one run, and write
 * one bundle: records and fingerprints in the unsharded order, the summary recomputed over
 * every sample, each shard's own signed entries kept (shards.jsonl), signed by the merger.
 * Every failure is an SpgError with a stable code, and then nothing is written.
 *
 * Hostile input stays bounded: the output path and every input file are checked before any
 * zip is opened (a directory, a link, a FIFO or the same file twice never reaches the
 * reader); each shard is checked against the ones before it as soon as it verifies, so a set
 * that cannot be one run stops at the first shard that shows it (at most N + 1 verified, N at
 * most the draw's size); and the bytes the merge would hold are counted shard by shard against
 * the limits verify reads a merged bundle under, so a merge verify would refuse is refused
 * before it is built.
 */
import {
  closeSync,
  promises as fs,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  readlinkSync,
  type Stats,
} from "node:fs";
import path from "node:path";
import { refuseExisting } from "../bundle/atomic.js";
import { canonicalJson, canonicalJsonl } from "../bundle/canonical.js";
import { resolveZipReadLimits, SHARD_ENTRY, SHARDS_ENTRY, type ZipReadLimits } from "../bundle/format.js";
import type { SigningKey } from "../bundle/keys.js";
import type { ToolInfo } from "../bundle/manifest.js";
import {
  joinLines,
  KEPT_SHARD_ENTRIES,
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
import { fileKind } from "../paths.js";
import { shardMarkerOf } from "../verify/checks/shards.js";
import { isRecord } from "../verify/parse.js";
import { loadVerifyPolicy } from "../verify/policy.js";
import { EXIT_UNREADABLE, runChecks, type VerifyResult } from "../verify/runner.js";
import { loadSchemaValidators } from "../verify/schemas.js";
import type { Finding } from "../verify/types.js";
import { verifyBundleFile } from "../verify/verify-bundle.js";

export interface MergeOptions {
  /** Shard bundle files, in any order. */
  shards: readonly string[];
  /** Where the merged bundle goes (written atomically; nothing on failure; an existing file is refused unless `overwrite`). */
  out: string;
  /** Replace an existing file at `out` (--force); never one of the shards. */
  overwrite?: boolean;
  key: SigningKey;
  tool: ToolInfo;
  /** Trust policy every shard must meet, as in `spg verify`. */
  trustedKeysFile?: string;
  requireTrusted: boolean;
  /** Fixed creation time for reproducible bundles. */
  createdAt?: string;
  /** The verify policy whose limits the merged bundle must fit (default configs/verify/policy.yaml). */
  policyFile?: string;
  /** Tighten or loosen the zip reader's limits, for the shards and for the merged bundle alike. */
  limits?: Partial<ZipReadLimits>;
}

export interface MergeResult {
  path: string;
  sha256: string;
  bytes: number;
  summary: Summary;
  shards: { file: string; index: number; keyId: string | undefined }[];
}

/** A shard path as checked: the file it named then, which every later read must still be. */
interface CheckedInput {
  file: string;
  stats: Stats;
}

interface VerifiedShard {
  file: string;
  /** The entries the merge uses: config.json, the kept entries, records and fingerprints. */
  entries: Map<string, Buffer>;
  marker: ShardMarker;
  keyId: string | undefined;
  /** Failing findings that are not tampering or trust (judged after the set checks). */
  invalid: Finding[];
  records: OwnedLine[];
  fingerprints: OwnedLine[];
}

function failing(result: VerifyResult): Finding[] {
  return result.findings.filter((finding) => !finding.ok);
}

/** The failures as one line; checks skipped because of another failure only repeat it. */
function listed(findings: readonly Finding[]): string {
  return findings
    .filter((finding) => finding.code !== "E_CHECK_SKIPPED")
    .map((finding) => `${finding.code}: ${finding.message}`)
    .join("; ");
}

/**
 * Where the merged bundle goes: not a directory, not one of the shards, in a directory that
 * exists, not an existing file unless `overwrite`. The write itself places the file with a
 * rename (or, without overwrite, a link() that refuses an existing name): a shard's bytes are
 * never written through, whatever the path names by then.
 */
async function checkOutput(out: string, inputs: readonly CheckedInput[], overwrite: boolean): Promise<void> {
  const fix = "give --out a new file name outside the list of shards, e.g. --out run.zip";
  const existing = await fs.stat(out).catch(() => undefined);
  if (existing?.isDirectory() === true) {
    throw new SpgError("E_MERGE_OUTPUT", `--out ${out} is a directory`, { file: out, field: "--out", fix });
  }
  const same = inputs.find(
    ({ file, stats }) =>
      file === out || (existing !== undefined && stats.dev === existing.dev && stats.ino === existing.ino),
  );
  if (same !== undefined) {
    throw new SpgError(
      "E_MERGE_OUTPUT",
      `--out ${out} is also given as a shard (${same.file}): the merge would replace it`,
      { file: out, field: "--out", fix },
    );
  }
  const parent = await fs.stat(path.dirname(out)).catch(() => undefined);
  if (parent?.isDirectory() !== true) {
    throw new SpgError("E_MERGE_OUTPUT", `--out ${out}: ${path.dirname(out)} is not a directory`, {
      file: out,
      field: "--out",
      fix: `create ${path.dirname(out)} first, or write the merge elsewhere`,
    });
  }
  await refuseExisting(out, overwrite);
}

/** How a shard is opened, here and by the reader: a link is refused, a FIFO never blocks the open. */
const SHARD_OPEN_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0) | (fsConstants.O_NONBLOCK ?? 0);

/**
 * Every shard path names a regular, readable file, and no file is named twice, checked before
 * any zip is opened: each path is opened (O_NOFOLLOW, O_NONBLOCK) and the open handle is
 * checked (fstat), so a link (which could name any file the merger may read), a FIFO or device
 * (whose reading blocks or never ends) or a directory is refused by name. The device and inode
 * found are kept: the reader opens the path again the same way and refuses any other file
 * (a path swapped in between). Synchronous: a few microseconds a file, where 10,000 awaited
 * calls took seconds; each handle is closed at once, so any number of paths holds one descriptor.
 */
function checkInputFiles(files: readonly string[]): CheckedInput[] {
  const checked: CheckedInput[] = [];
  const byInode = new Map<string, string>();
  for (const file of files) {
    const unreadable = (what: string, fix: string, cause?: unknown) =>
      new SpgError("E_MERGE_SHARD_UNREADABLE", `${file} ${what}`, { file, fix, cause });
    let stats: Stats;
    try {
      const descriptor = openSync(file, SHARD_OPEN_FLAGS);
      try {
        stats = fstatSync(descriptor);
      } finally {
        closeSync(descriptor);
      }
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      // What the path is, for the message only: the decision was the open's.
      const named = lstatSync(file, { throwIfNoEntry: false });
      if (named?.isSymbolicLink() === true || code === "ELOOP") {
        let target = "?";
        try {
          target = readlinkSync(file);
        } catch {
          // The link is refused either way; its target only helps the message.
        }
        throw unreadable(
          // The target as a JSON string: whatever bytes it holds reach the terminal inert.
          `is a symbolic link (to ${JSON.stringify(target)}); spg merge reads only regular files`,
          "pass the shard file itself (its real path), not a link to it",
        );
      }
      if (named !== undefined && !named.isFile()) {
        throw unreadable(
          `is ${fileKind(named)}, not a regular file`,
          "pass the shard bundle files (.zip) spg prove --shard K/N wrote",
        );
      }
      throw unreadable(
        `cannot be read (${code})`,
        "check the path, and that the user running spg merge may read it",
        cause,
      );
    }
    if (!stats.isFile()) {
      throw unreadable(
        `is ${fileKind(stats)}, not a regular file`,
        "pass the shard bundle files (.zip) spg prove --shard K/N wrote",
      );
    }
    const inode = `${stats.dev}:${stats.ino}`;
    const twin = byInode.get(inode);
    if (twin !== undefined) {
      throw new SpgError("E_MERGE_DUPLICATE_SHARD", `${twin} and ${file} are the same file`, {
        file,
        fix: "pass each shard once",
      });
    }
    byInode.set(inode, file);
    checked.push({ file, stats });
  }
  return checked;
}

/** Verify one shard through verify's own entry point; tampered, untrusted or unreadable stops the merge. */
async function verifyShard({ file, stats }: CheckedInput, options: MergeOptions): Promise<VerifiedShard> {
  // Replay is verify's (of the merged bundle); merging checks everything else about each shard.
  const result = await verifyBundleFile(file, {
    // The file checked above, opened the same way (no link followed), or nothing.
    opening: { noFollow: true, identity: { dev: stats.dev, ino: stats.ino } },
    trustedKeysFile: options.trustedKeysFile,
    requireTrusted: options.requireTrusted,
    replay: false,
    policyFile: options.policyFile,
    limits: options.limits,
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
  const entries = result.entries;
  if (entries.has(SHARDS_ENTRY) || !entries.has(SHARD_ENTRY)) {
    throw new SpgError(
      "E_MERGE_NOT_A_SHARD",
      `${file} is ${entries.has(SHARDS_ENTRY) ? "a merged bundle" : "a whole-run bundle (no shard.json)"}, not a shard`,
      {
        file,
        fix: "merge the bundles `spg prove --shard K/N` wrote; a whole-run or merged bundle is not a shard",
      },
    );
  }
  const marker = shardMarkerOf({ entries }, loadSchemaValidators());
  if (marker === undefined) {
    const shardFindings = failures.filter((finding) => finding.check === "shards");
    throw new SpgError(
      "E_MERGE_SHARD_INVALID",
      `${file} has an invalid shard.json: ${listed(shardFindings)}`,
      {
        file,
        fix: "re-run this shard with spg prove --shard K/N; a shard.json is never edited by hand",
      },
    );
  }
  // K is at most N; N at most the draw's size, so no set of shards holds more than N + 1 distinct files.
  const drawSize = drawSizeOf(entries);
  if (marker.count > drawSize) {
    throw new SpgError(
      "E_MERGE_SHARD_INVALID",
      `${file}: shard.json says N = ${marker.count}, over the ${drawSize} evaluation samples its environment.json draws`,
      { file, fix: "re-run this shard with spg prove --shard K/N; a shard.json is never edited by hand" },
    );
  }
  const keyId = result.findings.find((finding) => finding.check === "signature" && finding.ok)?.details
    ?.keyId;
  const kept = new Map<string, Buffer>();
  for (const name of [
    "config.json",
    ...Object.values(KEPT_SHARD_ENTRIES),
    "records.jsonl",
    "fingerprints.jsonl",
  ]) {
    const bytes = entries.get(name);
    if (bytes !== undefined) kept.set(name, bytes);
  }
  return {
    file,
    entries: kept,
    marker,
    keyId: typeof keyId === "string" ? keyId : undefined,
    invalid: failures,
    records: linesOf(file, kept, "records.jsonl"),
    fingerprints: linesOf(file, kept, "fingerprints.jsonl"),
  };
}

function linesOf(file: string, entries: Map<string, Buffer>, entry: string): OwnedLine[] {
  const owned = ownedLines(entries.get(entry) ?? Buffer.alloc(0), entry);
  if ("error" in owned) {
    throw new SpgError("E_MERGE_SHARD_INVALID", `${file}: ${owned.error}`, {
      file,
      fix: "run `spg verify` on it and re-run the shard",
    });
  }
  return owned.lines;
}

/** How many evaluation samples environment.json draws (0 when it cannot be read). */
function drawSizeOf(entries: Map<string, Buffer>): number {
  try {
    const environment = JSON.parse(entries.get("environment.json")?.toString("utf8") ?? "null") as unknown;
    const evaluation = isRecord(environment) ? environment.evaluation : undefined;
    const samples = isRecord(evaluation) ? evaluation.samples : undefined;
    return Array.isArray(samples) ? samples.length : 0;
  } catch {
    return 0;
  }
}

function jsonField(entries: Map<string, Buffer>, entry: string, field: string): string {
  try {
    const value = JSON.parse(entries.get(entry)?.toString("utf8") ?? "null") as unknown;
    return JSON.stringify(isRecord(value) ? value[field] : null);
  } catch {
    return "null";
  }
}

/** `shard` agrees with the first shard on `describe(shard)`; else `code`. */
function requireSame(
  first: VerifiedShard,
  shard: VerifiedShard,
  code: InputErrorCode,
  what: string,
  describe: (shard: VerifiedShard) => string,
  fix: string,
): void {
  const expected = describe(first);
  if (describe(shard) !== expected) {
    throw new SpgError(
      code,
      `${shard.file} has ${what} ${describe(shard)}, but ${first.file} has ${expected}`,
      { file: shard.file, fix },
    );
  }
}

/**
 * `shard` belongs with the shards admitted before it: one run (N, config, tool, model and
 * dataset, the weight fingerprints), a K not seen yet, samples no other shard covers.
 */
function admit(
  shard: VerifiedShard,
  admitted: readonly VerifiedShard[],
  owner: Map<string, VerifiedShard>,
): void {
  const first = admitted[0];
  if (first !== undefined) {
    requireSame(
      first,
      shard,
      "E_MERGE_SHARD_COUNT",
      "shard count N =",
      (s) => String(s.marker.count),
      "merge shards of one run, all proved with the same N",
    );
    requireSame(
      first,
      shard,
      "E_MERGE_CONFIG_MISMATCH",
      "run config hash",
      (s) => s.marker.runConfigSha256,
      "merge shards proved from the same config (preset, file and flags)",
    );
    requireSame(
      first,
      shard,
      "E_MERGE_TOOL_MISMATCH",
      "tool",
      (s) => jsonField(s.entries, "manifest.json", "tool"),
      "prove every shard with the same spg version and commit",
    );
    for (const field of ["model", "dataset", "evaluation", "calibration"]) {
      requireSame(
        first,
        shard,
        "E_MERGE_INPUT_MISMATCH",
        `environment.json ${field}`,
        (s) => jsonField(s.entries, "environment.json", field),
        "prove every shard on the same model and dataset files",
      );
    }
    if (!joinLines(sharedLines(shard)).equals(joinLines(sharedLines(first)))) {
      throw new SpgError(
        "E_MERGE_INPUT_MISMATCH",
        `${shard.file} has other weight-tensor fingerprints in fingerprints.jsonl than ${first.file}`,
        { file: shard.file, fix: "prove every shard from the same config and checkpoint" },
      );
    }
  }
  const twin = admitted.find((other) => other.marker.index === shard.marker.index);
  if (twin !== undefined) {
    throw new SpgError(
      "E_MERGE_DUPLICATE_SHARD",
      `${twin.file} and ${shard.file} are both shard ${shard.marker.index} of ${shard.marker.count}`,
      { file: shard.file, fix: "pass each shard once (a retried shard replaces its first try)" },
    );
  }
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
  }
  for (const id of shard.marker.sampleIds) owner.set(id, shard);
}

/** Every K from 1 to N is there, and every shard passes every other check verify makes. */
function checkComplete(shards: readonly VerifiedShard[]): void {
  const count = shards[0].marker.count;
  const present = new Set(shards.map((shard) => shard.marker.index));
  const missing: number[] = [];
  for (let index = 1; index <= count; index++) if (!present.has(index)) missing.push(index);
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

function sharedLines(shard: VerifiedShard): Buffer[] {
  return shard.fingerprints.filter((line) => line.sampleId === undefined).map((line) => line.bytes);
}

/** Bytes a list of lines takes in a .jsonl entry (each with its newline). */
function linesBytes(lines: readonly OwnedLine[]): number {
  let bytes = 0;
  for (const line of lines) bytes += line.bytes.length + 1;
  return bytes;
}

/**
 * The bytes the merged bundle will hold, counted as each shard is admitted. verify reads a
 * merged bundle's records.jsonl, fingerprints.jsonl and shards.jsonl whole (it rebuilds every
 * shard from them), so each must fit the held-entry limit, and all of them the total limit:
 * a merge past them would never verify, and counting first keeps the merge's memory bounded.
 */
class MergedSize {
  private readonly held: number;
  private readonly total: number;
  private readonly bytes = new Map<string, number>([
    ["records.jsonl", 0],
    ["fingerprints.jsonl", 0],
    [SHARDS_ENTRY, 0],
  ]);

  constructor(options: MergeOptions) {
    const policy = loadVerifyPolicy(options.policyFile);
    const limits = resolveZipReadLimits({
      maxHeldEntryBytes: policy.bundle?.maxHeldEntryBytes,
      ...options.limits,
    });
    this.held = Math.min(limits.maxHeldEntryBytes, limits.maxEntryBytes);
    this.total = limits.maxTotalBytes;
  }

  add(shard: VerifiedShard, first: boolean): void {
    const sampleLines = (lines: readonly OwnedLine[]) => lines.filter((line) => line.sampleId !== undefined);
    this.grow(shard, "records.jsonl", linesBytes(shard.records));
    this.grow(
      shard,
      "fingerprints.jsonl",
      linesBytes(first ? shard.fingerprints : sampleLines(shard.fingerprints)),
    );
    this.grow(shard, SHARDS_ENTRY, canonicalJson(shardsLineOf(shard.entries)).length + 1);
    let sum = 0;
    for (const bytes of this.bytes.values()) sum += bytes;
    if (sum > this.total)
      this.refuse(shard, `its entries together (${sum} bytes)`, this.total, "maxTotalBytes");
  }

  private grow(shard: VerifiedShard, entry: string, bytes: number): void {
    const now = (this.bytes.get(entry) ?? 0) + bytes;
    this.bytes.set(entry, now);
    if (now > this.held)
      this.refuse(shard, `its ${entry} (${now} bytes)`, this.held, "bundle.maxHeldEntryBytes");
  }

  private refuse(shard: VerifiedShard, what: string, limit: number, field: string): never {
    throw new SpgError(
      "E_MERGE_TOO_LARGE",
      `with ${shard.file} the merged bundle would be over verify's limits: ${what} over ${limit} bytes`,
      {
        file: shard.file,
        field,
        fix: "verify reads a merged bundle's records whole: prove fewer samples or methods per run, or raise bundle.maxHeldEntryBytes in the verify policy (configs/verify/policy.yaml) for merge and verify alike",
      },
    );
  }
}

/** The run's lines in unsharded order: every sample's lines in draw order, then the weight-tensor lines. */
function mergeLines(
  shards: readonly VerifiedShard[],
  draw: readonly string[],
  entry: "records" | "fingerprints",
): Buffer[] {
  const position = new Map(draw.map((id, index) => [id, index]));
  const all: OwnedLine[] = [];
  for (const shard of shards)
    for (const line of shard[entry]) if (line.sampleId !== undefined) all.push(line);
  // Stable: a sample's lines keep their order (methods, then layers).
  return all
    .map((line, order) => ({ line, order, at: position.get(line.sampleId!) ?? Number.MAX_SAFE_INTEGER }))
    .sort((a, b) => a.at - b.at || a.order - b.order)
    .map(({ line }) => line.bytes);
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
  const inputs = checkInputFiles(options.shards);
  await checkOutput(options.out, inputs, options.overwrite === true);
  const size = new MergedSize(options);
  const shards: VerifiedShard[] = [];
  const owner = new Map<string, VerifiedShard>();
  for (const input of inputs) {
    const shard = await verifyShard(input, options);
    admit(shard, shards, owner);
    size.add(shard, shards.length === 0);
    shards.push(shard);
  }
  checkComplete(shards);
  shards.sort((a, b) => a.marker.index - b.marker.index);

  const first = shards[0];
  const config = first.entries.get("config.json")!;
  const draw = drawOf(first);
  const records = mergeLines(shards, draw, "records");
  const recordsBytes = joinLines(records);
  const runConfig = JSON.parse(config.toString("utf8")) as RunConfig;
  const parsedRecords = records.map((line) => JSON.parse(line.toString("utf8")) as SampleRecord);
  const summary = summarize(parsedRecords, runConfig);
  const environment = first.entries.get("environment.json")!;
  const modelSha256 = (JSON.parse(environment.toString("utf8")) as { model: { sha256: string } }).model
    .sha256;

  const contents = new Map<string, Uint8Array>([
    ["config.json", config],
    ["environment.json", environment],
    ["records.jsonl", recordsBytes],
    ["fingerprints.jsonl", joinLines([...mergeLines(shards, draw, "fingerprints"), ...sharedLines(first)])],
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
  const written = await writeZipAtomic(options.out, assembled.entries, { overwrite: options.overwrite });
  return {
    path: options.out,
    ...written,
    summary,
    shards: shards.map((shard) => ({ file: shard.file, index: shard.marker.index, keyId: shard.keyId })),
  };
}
