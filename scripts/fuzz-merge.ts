/**
 * The fuzzer's merge level (scripts/fuzz-verify.ts `--levels merge`): hostile inputs of
 * `spg merge`. A real sharded run (the ci-smoke preset, 3 shards proved in separate processes:
 * test/helpers/shard-run.ts) is proved once; each mutant changes one shard (its zip bytes, one
 * entry, or a semantic lie re-signed with the producer's key, which the merge trusts) or the
 * list of shards (one repeated, dropped, reordered), then merges them in the worker. Only an
 * SpgError of the verifier's input table (exit 2) may stop the merge, and it leaves nothing at
 * --out; a merge that succeeds is verified, and must end in verify's exit table.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { keyFromSeed } from "../src/bundle/keys.js";
import type { ToolInfo } from "../src/bundle/manifest.js";
import { readBundleZipBuffer } from "../src/bundle/read.js";
import { isSpgError } from "../src/errors.js";
import { mergeShards } from "../src/merge/merge.js";
import { verifyBundleFile } from "../src/verify/verify-bundle.js";
import { provedShardRun, type ShardRun } from "../test/helpers/shard-run.js";
import { type ForgerKey, seededForgerKey } from "./adversarial-bundles.js";
import { semanticMutant } from "./fuzz-semantic.js";
import type { Draw } from "./fuzz-verify.js";
import { buildRawZip } from "./raw-zip.js";

/** The zip and entry mutators this level borrows from fuzz-verify.ts. */
export interface MergeMutators {
  zip(draw: Draw, base: Buffer): Promise<{ bytes: Buffer; what: string }>;
  entry(
    draw: Draw,
    entries: Map<string, Buffer>,
    key: ForgerKey,
  ): { entries: Map<string, Buffer>; what: string };
}

/** The proved shards, their bytes and entries, and the keys (the producer's as a forger's key: same key id). */
export interface MergeBase {
  run: ShardRun;
  shards: { file: string; zip: Buffer; entries: Map<string, Buffer> }[];
  producer: ForgerKey;
}

export async function mergeBase(): Promise<MergeBase> {
  const run = await provedShardRun({ whole: false });
  const shards = [];
  for (let k = 1; k <= 3; k++) {
    const file = run.shardFile(k);
    const zip = readFileSync(file);
    const read = await readBundleZipBuffer(zip);
    if (!read.ok) throw new Error(`${file} does not read: the merge level needs valid shards`);
    shards.push({ file, zip, entries: read.entries });
  }
  return { run, shards, producer: seededForgerKey(Buffer.from(run.producer.secretKey.subarray(0, 32))) };
}

/** The job the worker runs: merge these files, then verify what was written. */
export interface MergeJob {
  shards: string[];
  out: string;
  trustedKeysFile: string;
  /** The merger's 32-byte seed, hex (the worker makes the key again). */
  mergerSeed: string;
  tool: ToolInfo;
}

/** One merge mutant: the shard files written under `dir`, and the job. */
export async function mergeMutant(
  draw: Draw,
  base: MergeBase,
  dir: string,
  mutators: MergeMutators,
): Promise<{ job: MergeJob; what: string; files: Map<string, Buffer> }> {
  const k = draw.int(base.shards.length);
  const shard = base.shards[k];
  let bytes: Buffer = shard.zip;
  let what: string;
  const kind = draw.int(4);
  if (kind === 0) {
    const made = await mutators.zip(draw, shard.zip);
    bytes = made.bytes;
    what = `shard ${k + 1} zip: ${made.what}`;
  } else if (kind === 1) {
    const made = mutators.entry(draw, shard.entries, base.producer);
    bytes = buildRawZip([...made.entries].map(([name, data]) => ({ name, data })));
    what = `shard ${k + 1} entry, re-signed by the producer: ${made.what}`;
  } else if (kind === 2) {
    let made: ReturnType<typeof semanticMutant>;
    for (let attempt = 0; attempt < 20 && made === undefined; attempt++)
      made = semanticMutant(draw, shard.entries, base.producer);
    if (made !== undefined) bytes = buildRawZip([...made.entries].map(([name, data]) => ({ name, data })));
    what = `shard ${k + 1} semantic, re-signed by the producer: ${made?.what ?? "no change"}`;
  } else {
    what = "shards unchanged";
  }
  const mutated = join(dir, `mutant-${k + 1}.zip`);
  writeFileSync(mutated, bytes);
  let list = base.shards.map((s, at) => (at === k ? mutated : s.file));
  const op = draw.int(5);
  if (op === 1) {
    list.push(draw.pick(list));
    what += "; one shard given twice";
  } else if (op === 2) {
    list.splice(draw.int(list.length), 1);
    what += "; one shard dropped";
  } else if (op === 3) {
    list = list.reverse();
    what += "; shards reversed";
  } else if (op === 4) {
    list.push(shard.file);
    what += `; the unchanged shard ${k + 1} too`;
  }
  return {
    job: {
      shards: list,
      out: join(dir, "merged.zip"),
      trustedKeysFile: base.run.trustBoth,
      mergerSeed: Buffer.from(base.run.merger.secretKey.subarray(0, 32)).toString("hex"),
      tool: base.run.tool as ToolInfo,
    },
    what,
    files: new Map([["mutant-shard.zip", bytes]]),
  };
}

/** Merge in this process and judge it: the problems, the exit code, the codes. */
export async function runMergeJob(
  job: MergeJob,
): Promise<{ problems: string[]; exitCode: number; codes: string[] }> {
  const problems: string[] = [];
  // The previous mutant's merge: gone, so a file there after a failed merge is this one's.
  rmSync(job.out, { force: true });
  try {
    await mergeShards({
      shards: job.shards,
      out: job.out,
      key: keyFromSeed(Buffer.from(job.mergerSeed, "hex")),
      tool: job.tool,
      trustedKeysFile: job.trustedKeysFile,
      requireTrusted: true,
    });
  } catch (error) {
    if (!isSpgError(error)) {
      const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
      return {
        problems: [`merge crash (uncaught): ${stack.split("\n").slice(0, 4).join(" | ")}`],
        exitCode: 1,
        codes: [],
      };
    }
    if (error.exitCode !== 2) problems.push(`merge: SpgError ${error.code} exit ${error.exitCode}`);
    if (existsSync(job.out)) problems.push("merge failed but left a file at --out");
    return { problems, exitCode: error.exitCode, codes: [`merge:${error.code}`] };
  }
  const result = await verifyBundleFile(job.out, {
    trustedKeysFile: job.trustedKeysFile,
    requireTrusted: true,
    replay: false,
  });
  const failing = result.findings.filter((finding) => !finding.ok);
  for (const finding of failing)
    if (finding.code === "E_CHECK_CRASHED")
      problems.push(`verify of the merge: check crashed: ${finding.check}`);
  if (![0, 3, 4, 5, 6].includes(result.exitCode))
    problems.push(`verify of the merge: exit ${result.exitCode}`);
  return {
    problems,
    exitCode: result.exitCode,
    codes: ["merged", ...new Set(failing.map((finding) => `${finding.check}:${finding.code}`))],
  };
}
