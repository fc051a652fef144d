/**
 * Sharded runs (format version 2). A shard bundle (shard.json) is checked as a shard: its
 * marker names this run's config, and it covers exactly its deterministic part of the draw.
 * A merged bundle (shards.jsonl) is checked as the union of its shards: N shards, each index
 * once, disjoint samples, one run config, one tool, one model and dataset; every merged line
 * belongs to a shard and sits in unsharded order; and each shard bundle, rebuilt from the
 * merged one, passes every check verify makes (its producer's signature and the trust policy
 * included), so the merged records and fingerprints are exactly the shards' signed ones.
 */
import { SHARD_ENTRY, SHARDS_ENTRY } from "../../bundle/format.js";
import type { BundleEntries } from "../../bundle/read.js";
import {
  groupLines,
  KEPT_SHARD_ENTRIES,
  type OwnedLine,
  ownedLines,
  runConfigSha256,
  type ShardMarker,
  type ShardsLine,
  shardBundleEntries,
  shardPositions,
} from "../../bundle/shards.js";
import type { FindingCode } from "../../error-codes.js";
import { FailureCollector } from "../collect.js";
import { isRecord, parseJsonEntry, parseJsonLinesEntry } from "../parse.js";
import { describeSchemaErrors, type SchemaValidators } from "../schemas.js";
import { type CheckName, type Finding, fail, pass, warn } from "../types.js";

const CHECK = "shards" as const;

/** Stable codes of the shards check. */
export const SHARD_CODES = {
  /** shard.json is unreadable or invalid, or a bundle has both shard.json and shards.jsonl. */
  marker: "E_SHARD_MARKER",
  /** shards.jsonl is unreadable, a line does not match schemas/shards.schema.json, or the lines are not in K order. */
  layout: "E_SHARD_LAYOUT",
  /** A shard's run config hash is not that of this config.json. */
  config: "E_SHARD_CONFIG",
  /** A shard covers other samples than its part of the draw (or its records do). */
  subset: "E_SHARD_SUBSET",
  /** Shards disagree on N, or N is not the number of shards. */
  count: "E_SHARD_COUNT",
  /** A shard index appears more than once. */
  duplicate: "E_SHARD_DUPLICATE",
  /** A shard index from 1 to N is absent. */
  missing: "E_SHARD_MISSING",
  /** Two shards cover the same sample. */
  overlap: "E_SHARD_OVERLAP",
  /** Shards were written by different tool versions. */
  tool: "E_SHARD_TOOL",
  /** Shards ran different models, datasets or draws, or environment.json is not shard 1's. */
  inputs: "E_SHARD_INPUTS",
  /** A merged line belongs to no shard, or the lines are not in unsharded order. */
  records: "E_SHARD_RECORDS",
  /** A rebuilt shard fails integrity or signature: the merged lines are not what its producer signed. */
  tampered: "E_SHARD_TAMPERED",
  /** A shard's signer fails the trust policy. */
  untrusted: "E_SHARD_UNTRUSTED",
  /** A rebuilt shard fails any other check. */
  invalid: "E_SHARD_INVALID",
} as const;

export interface ShardsCheckOptions {
  validators: SchemaValidators;
  /** Every check verify makes, with its trust policy, over a rebuilt shard bundle (the runner's runChecks). */
  verifyShard: (contents: BundleEntries) => { findings: Finding[] };
}

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

function validated<T>(value: unknown, entry: string, validators: SchemaValidators): Parsed<T> {
  const validate = validators.get(entry)?.validate;
  if (validate === undefined) return { ok: false, error: `no schema for ${entry}` };
  if (validate(value)) return { ok: true, value: value as T };
  return { ok: false, error: describeSchemaErrors(validate.errors)[0] ?? "does not match its schema" };
}

function parseMarker(bytes: Buffer | undefined, validators: SchemaValidators): Parsed<ShardMarker> {
  const parsed = parseJsonEntry(bytes, SHARD_ENTRY);
  if (!parsed.ok) return parsed;
  const marker = validated<ShardMarker>(parsed.value, SHARD_ENTRY, validators);
  if (!marker.ok) return { ok: false, error: `${SHARD_ENTRY} ${marker.error}` };
  if (marker.value.index > marker.value.count) {
    return {
      ok: false,
      error: `${SHARD_ENTRY} index ${marker.value.index} is over its count ${marker.value.count}`,
    };
  }
  return marker;
}

/** The bundle's shard marker when it is a shard bundle with a valid shard.json. */
export function shardMarkerOf(
  contents: BundleEntries,
  validators: SchemaValidators,
): ShardMarker | undefined {
  if (!contents.entries.has(SHARD_ENTRY)) return undefined;
  const marker = parseMarker(contents.entries.get(SHARD_ENTRY), validators);
  return marker.ok ? marker.value : undefined;
}

/**
 * The claims finding of a shard bundle: its claims are not judged on a part of the run (a
 * bound over a third of the samples says nothing about the whole); the merged bundle's are.
 * Undefined when the bundle is not a shard.
 */
export function claimsOnShard(contents: BundleEntries, validators: SchemaValidators): Finding | undefined {
  if (!contents.entries.has(SHARD_ENTRY)) return undefined;
  const marker = shardMarkerOf(contents, validators);
  if (marker === undefined) {
    return fail("claims", "E_CHECK_SKIPPED", `not judged: ${SHARD_ENTRY} is invalid (see the shards check)`);
  }
  // A warning, never a pass: a shard's summary and report.md (claims included) are figures of a
  // part of the run, and a producer could otherwise hand over its best shard as the run.
  return warn(
    "claims",
    "W_SHARD_CLAIMS_NOT_JUDGED",
    `not judged on a part: shard ${marker.index} of ${marker.count} covers ${marker.sampleIds.length} samples; ` +
      "its figures and report.md are of those samples only; claims are judged on the merged bundle (spg merge)",
    { shard: marker.index, count: marker.count },
  );
}

/** Evaluation sample ids of an environment.json, in draw order (undefined when unreadable). */
function drawOf(environment: unknown): string[] | undefined {
  if (!isRecord(environment) || !isRecord(environment.evaluation)) return undefined;
  const samples = environment.evaluation.samples;
  if (!Array.isArray(samples)) return undefined;
  const ids = samples.map((sample) => (isRecord(sample) ? sample.sampleId : undefined));
  return ids.every((id): id is string => typeof id === "string") ? ids : undefined;
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, index) => id === b[index]);
}

/** The marker names this config and exactly its round-robin part of the draw. */
function checkMarkerAgainstRun(
  marker: ShardMarker,
  config: Buffer | undefined,
  draw: readonly string[] | undefined,
  failures: FailureCollector,
  where: string,
): void {
  if (config === undefined || runConfigSha256(config) !== marker.runConfigSha256) {
    failures.add(
      SHARD_CODES.config,
      `${where}: run config hash ${marker.runConfigSha256} is not the sha256 of this config.json`,
    );
  }
  if (draw === undefined) {
    failures.add(
      SHARD_CODES.subset,
      `${where}: environment.json lists no evaluation draw to check the shard against`,
    );
    return;
  }
  const expected =
    marker.count > draw.length
      ? undefined
      : shardPositions(draw.length, marker).map((position) => draw[position]);
  if (expected === undefined || !sameIds(expected, marker.sampleIds)) {
    failures.add(
      SHARD_CODES.subset,
      `${where}: covers ${JSON.stringify(marker.sampleIds)}, but shard ${marker.index} of ${marker.count} of the ${draw.length}-sample draw is ${JSON.stringify(expected ?? [])}`,
    );
  }
}

function linesOf(
  contents: BundleEntries,
  entry: string,
  failures: FailureCollector,
): OwnedLine[] | undefined {
  const bytes = contents.entries.get(entry);
  if (bytes === undefined) return undefined;
  const owned = ownedLines(bytes, entry);
  if ("error" in owned) {
    failures.add(SHARD_CODES.records, owned.error);
    return undefined;
  }
  return owned.lines;
}

function checkShardBundle(contents: BundleEntries, validators: SchemaValidators): Finding[] {
  const failures = new FailureCollector(CHECK);
  const marker = parseMarker(contents.entries.get(SHARD_ENTRY), validators);
  if (!marker.ok) return [fail(CHECK, SHARD_CODES.marker, marker.error)];
  const { index, count, sampleIds } = marker.value;
  const where = `shard ${index} of ${count}`;
  const environment = parseJsonEntry(contents.entries.get("environment.json"), "environment.json");
  const draw = environment.ok ? drawOf(environment.value) : undefined;
  checkMarkerAgainstRun(marker.value, contents.entries.get("config.json"), draw, failures, where);
  const covered = new Set(sampleIds);
  for (const entry of ["records.jsonl", "fingerprints.jsonl"]) {
    const lines = linesOf(contents, entry, failures) ?? [];
    const seen = new Set<string>();
    for (const line of lines) {
      if (line.sampleId === undefined) continue;
      seen.add(line.sampleId);
      if (!covered.has(line.sampleId)) {
        failures.add(
          SHARD_CODES.subset,
          `${where}: ${entry} has lines of sample ${line.sampleId}, which it does not cover`,
        );
      }
    }
    const uncovered = sampleIds.filter((id) => !seen.has(id));
    if (entry === "records.jsonl" && uncovered.length > 0) {
      failures.add(SHARD_CODES.subset, `${where}: no records for covered samples ${uncovered.join(", ")}`);
    }
  }
  if (failures.size > 0) return failures.findings();
  return [
    pass(
      CHECK,
      `shard ${index} of ${count} of run config ${marker.value.runConfigSha256.slice(0, 12)}: ` +
        `${sampleIds.length} of ${draw?.length} evaluation samples, its part of the draw`,
      { shard: index, count, samples: sampleIds.length },
    ),
  ];
}

/** Which check and code a failing finding of a rebuilt shard becomes in the merged bundle's report. */
function shardFailure(
  finding: Finding,
  marker: ShardMarker,
): { check: CheckName; code: FindingCode; message: string } {
  let check: CheckName = CHECK;
  let code: FindingCode = SHARD_CODES.invalid;
  if (finding.check === "integrity" || finding.check === "signature" || finding.check === "zip-safety") {
    check = finding.check === "zip-safety" ? "integrity" : finding.check;
    code = SHARD_CODES.tampered;
  } else if (finding.check === "trust") {
    check = "trust";
    code = SHARD_CODES.untrusted;
  }
  return {
    check,
    code,
    message: `shard ${marker.index} of ${marker.count}: ${finding.code}: ${finding.message}`,
  };
}

interface ShardInMerge {
  line: ShardsLine;
  marker: ShardMarker;
}

function compareShards(shards: readonly ShardInMerge[], lineCount: number, failures: FailureCollector): void {
  const counts = [...new Set(shards.map((shard) => shard.marker.count))];
  if (counts.length > 1 || (counts.length === 1 && counts[0] !== lineCount)) {
    failures.add(
      SHARD_CODES.count,
      `the shards say N = ${counts.join(", ")}, and ${lineCount} shards are merged`,
    );
  }
  const count = counts[0] ?? lineCount;
  // One merge, one layout: K ascending, as spg merge writes it (no second bundle of the same shards).
  const order = shards.map((shard) => shard.marker.index);
  if (order.some((index, at) => at > 0 && index < order[at - 1])) {
    failures.add(SHARD_CODES.layout, `${SHARDS_ENTRY} lists shards ${order.join(", ")}, not in K order`);
  }
  const indices = new Map<number, number>();
  for (const { marker } of shards) indices.set(marker.index, (indices.get(marker.index) ?? 0) + 1);
  for (const [index, times] of indices) {
    if (times > 1) failures.add(SHARD_CODES.duplicate, `shard ${index} is merged ${times} times`);
  }
  const missing: number[] = [];
  for (let index = 1; index <= count; index++) if (!indices.has(index)) missing.push(index);
  if (missing.length > 0) {
    failures.add(
      SHARD_CODES.missing,
      `shard${missing.length > 1 ? "s" : ""} ${missing.join(", ")} of ${count} missing`,
    );
  }
  const owner = new Map<string, number>();
  for (const { marker } of shards) {
    for (const id of marker.sampleIds) {
      const other = owner.get(id);
      if (other !== undefined && other !== marker.index) {
        failures.add(SHARD_CODES.overlap, `sample ${id} is in shards ${other} and ${marker.index}`);
      }
      owner.set(id, marker.index);
    }
  }
  const tools = new Set(
    shards.map(({ line }) => {
      const manifest = parseJsonEntry(Buffer.from(line.manifest, "utf8"), "manifest.json");
      return JSON.stringify(manifest.ok && isRecord(manifest.value) ? manifest.value.tool : null);
    }),
  );
  if (tools.size > 1)
    failures.add(SHARD_CODES.tool, `the shards were written by different tools: ${[...tools].join(", ")}`);
}

/** What every shard must share with the merged environment.json: model, dataset and draws. */
const SHARED_INPUTS = ["model", "dataset", "evaluation", "calibration"] as const;

function compareEnvironments(
  shards: readonly ShardInMerge[],
  merged: Buffer | undefined,
  failures: FailureCollector,
): void {
  const first = shards.find((shard) => shard.marker.index === 1);
  if (
    first !== undefined &&
    merged !== undefined &&
    !merged.equals(Buffer.from(first.line.environment, "utf8"))
  ) {
    failures.add(SHARD_CODES.inputs, "environment.json is not shard 1's environment.json");
  }
  const mergedEnvironment = parseJsonEntry(merged, "environment.json");
  if (!mergedEnvironment.ok || !isRecord(mergedEnvironment.value)) return;
  for (const { line, marker } of shards) {
    const environment = parseJsonEntry(Buffer.from(line.environment, "utf8"), "environment.json");
    for (const field of SHARED_INPUTS) {
      const theirs = environment.ok && isRecord(environment.value) ? environment.value[field] : undefined;
      if (JSON.stringify(theirs) !== JSON.stringify(mergedEnvironment.value[field])) {
        failures.add(
          SHARD_CODES.inputs,
          `shard ${marker.index}: environment.json ${field} differs from the merged run's`,
        );
      }
    }
  }
}

/** Every merged line belongs to a shard, sample lines in draw order, weight-tensor lines last. */
function checkMergedOrder(
  entry: string,
  lines: readonly OwnedLine[],
  owner: ReadonlyMap<string, number>,
  draw: readonly string[],
  failures: FailureCollector,
): void {
  const position = new Map(draw.map((id, index) => [id, index]));
  let last = -1;
  let sharedSeen = false;
  for (const [index, line] of lines.entries()) {
    if (line.sampleId === undefined) {
      if (entry === "records.jsonl")
        failures.add(SHARD_CODES.records, `${entry} line ${index + 1} names no sample`);
      sharedSeen = true;
      continue;
    }
    const at = position.get(line.sampleId);
    if (!owner.has(line.sampleId) || at === undefined) {
      failures.add(SHARD_CODES.records, `${entry} line ${index + 1}: sample ${line.sampleId} is in no shard`);
      continue;
    }
    if (at < last || sharedSeen) {
      failures.add(SHARD_CODES.records, `${entry} line ${index + 1}: not in the unsharded run's order`);
    }
    last = at;
  }
}

function checkMergedBundle(contents: BundleEntries, options: ShardsCheckOptions): Finding[] {
  const failures = new FailureCollector(CHECK);
  const parsed = parseJsonLinesEntry(contents.entries.get(SHARDS_ENTRY), SHARDS_ENTRY);
  if (!parsed.ok) return [fail(CHECK, SHARD_CODES.layout, parsed.error)];
  const shards: ShardInMerge[] = [];
  for (const [index, value] of parsed.value.entries()) {
    const line = validated<ShardsLine>(value, SHARDS_ENTRY, options.validators);
    if (!line.ok) {
      failures.add(SHARD_CODES.layout, `${SHARDS_ENTRY} line ${index + 1}: ${line.error}`);
      continue;
    }
    const marker = parseMarker(Buffer.from(line.value.shard, "utf8"), options.validators);
    if (!marker.ok) {
      failures.add(SHARD_CODES.marker, `${SHARDS_ENTRY} line ${index + 1}: ${marker.error}`);
      continue;
    }
    shards.push({ line: line.value, marker: marker.value });
  }
  if (parsed.value.length === 0) failures.add(SHARD_CODES.layout, `${SHARDS_ENTRY} lists no shards`);
  compareShards(shards, parsed.value.length, failures);
  compareEnvironments(shards, contents.entries.get("environment.json"), failures);

  const config = contents.entries.get("config.json");
  const environment = parseJsonEntry(contents.entries.get("environment.json"), "environment.json");
  const draw = (environment.ok ? drawOf(environment.value) : undefined) ?? [];
  const owner = new Map<string, number>();
  for (const { marker } of shards) for (const id of marker.sampleIds) owner.set(id, marker.index);
  const records = linesOf(contents, "records.jsonl", failures);
  const fingerprints = linesOf(contents, "fingerprints.jsonl", failures);
  if (records !== undefined) checkMergedOrder("records.jsonl", records, owner, draw, failures);
  if (fingerprints !== undefined) checkMergedOrder("fingerprints.jsonl", fingerprints, owner, draw, failures);
  const uncovered = draw.filter((id) => !owner.has(id));
  if (uncovered.length > 0 && shards.length === parsed.value.length) {
    failures.add(SHARD_CODES.missing, `no shard covers samples ${uncovered.join(", ")} of the draw`);
  }

  // Rebuilding costs a full verification per shard: never more shards than the draw has samples.
  const rebuildable = shards.length <= Math.max(draw.length, 1);
  if (!rebuildable) {
    failures.add(SHARD_CODES.count, `${shards.length} shards of a ${draw.length}-sample draw: not rebuilt`);
  }
  const nested = new Map<CheckName, FailureCollector>();
  const signers = new Set<string>();
  if (rebuildable && config !== undefined && records !== undefined && fingerprints !== undefined) {
    const groupedRecords = groupLines(records, owner);
    const groupedFingerprints = groupLines(fingerprints, owner);
    for (const shard of shards) {
      const entries = shardBundleEntries(shard.line, {
        config,
        records: groupedRecords.byShard.get(shard.marker.index) ?? [],
        fingerprints: groupedFingerprints.byShard.get(shard.marker.index) ?? [],
        shared: groupedFingerprints.shared,
      });
      for (const finding of options.verifyShard({ entries }).findings) {
        if (finding.ok) {
          if (finding.check === "signature" && typeof finding.details?.keyId === "string") {
            signers.add(finding.details.keyId);
          }
          continue;
        }
        // A check the shard's run skipped only repeats the failure that made it skip.
        if (finding.code === "E_CHECK_SKIPPED") continue;
        const { check, code, message } = shardFailure(finding, shard.marker);
        let collector = nested.get(check);
        if (collector === undefined) {
          collector = new FailureCollector(check);
          nested.set(check, collector);
        }
        collector.add(code, message);
      }
    }
  }
  const findings = [
    ...[...nested.values()].flatMap((collector) => collector.findings()),
    ...failures.findings(),
  ];
  if (findings.length > 0) return findings;
  return [
    pass(
      CHECK,
      `${shards.length} shards, each rebuilt and verified as its producer signed it (signers ${[...signers].map((id) => id.slice(0, 12)).join(", ")}); ` +
        "records and fingerprints are exactly their union, in unsharded order",
      { shards: shards.length, signers: [...signers], kept: Object.values(KEPT_SHARD_ENTRIES) },
    ),
  ];
}

/** The shards check: nothing for a whole-run bundle, a shard checked as a shard, a merge as its shards' union. */
export function checkShards(contents: BundleEntries, options: ShardsCheckOptions): Finding[] {
  const isShard = contents.entries.has(SHARD_ENTRY);
  const isMerge = contents.entries.has(SHARDS_ENTRY);
  if (isShard && isMerge) {
    return [fail(CHECK, SHARD_CODES.marker, `a bundle holds ${SHARD_ENTRY} or ${SHARDS_ENTRY}, not both`)];
  }
  if (isShard) return checkShardBundle(contents, options.validators);
  if (isMerge) return checkMergedBundle(contents, options);
  return [];
}
