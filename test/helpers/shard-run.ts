/**
 * A real sharded run for the merge tests: the ci-smoke preset (3 samples) proved as 3 shards
 * in separate processes (JOB_COMPLETION_INDEX set, as a Kubernetes Indexed Job would), and
 * optionally whole, with a producer and a merger key; plus the edits an adversary makes to
 * its bundles (re-signed with a key it holds, or not re-signed at all).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair, type SigningKey, writeKeyPair } from "../../src/bundle/keys.js";
import type { ToolInfo } from "../../src/bundle/manifest.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { assembleBundle, zipEntries } from "../../src/bundle/write.js";
import { isSpgError } from "../../src/errors.js";
import { type MergeOptions, mergeShards } from "../../src/merge/merge.js";
import { packageRoot } from "../../src/paths.js";

const bin = join(packageRoot(), "bin", "run.js");
export const SHARDS = 3;

export async function entriesOf(file: string): Promise<Map<string, Buffer>> {
  const read = await readBundleZip(file);
  assert.ok(read.ok, file);
  return new Map(read.entries);
}

export function json(bytes: Buffer | undefined): Record<string, unknown> {
  return JSON.parse(bytes!.toString("utf8")) as Record<string, unknown>;
}

export function editJson(
  entries: Map<string, Buffer>,
  entry: string,
  edit: (value: Record<string, unknown>) => void,
) {
  const value = json(entries.get(entry));
  edit(value);
  entries.set(entry, Buffer.from(JSON.stringify(value)));
}

/** The environment of one Indexed Job pod: its index, and no other scheduler's variables. */
export function podEnv(index: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, JOB_COMPLETION_INDEX: String(index) };
  for (const name of ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"])
    delete env[name];
  return env;
}

export class ShardRun {
  readonly producer = generateKeyPair();
  readonly merger = generateKeyPair();
  producerKeyFile = "";
  mergerKeyFile = "";
  /** Trusts the shard producer and the merger. */
  trustBoth = "";
  trustMergerOnly = "";
  trustProducerOnly = "";
  tool: ToolInfo | undefined;

  constructor(readonly dir: string) {}

  shardFile(k: number): string {
    return join(this.dir, `shard-${k}.zip`);
  }

  spg(args: string[], env: NodeJS.ProcessEnv = process.env) {
    return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd: this.dir, env });
  }

  /** prove's arguments for this run (ci-smoke, SHARDS samples, the producer's key). */
  proveArgs(): string[] {
    const samples = String(SHARDS);
    return ["prove", "--preset", "ci-smoke", "--samples", samples, "--key", this.producerKeyFile, "--json"];
  }

  /** Copy a bundle with its entries edited, re-signed by `key` (as a dishonest or other producer could). */
  async resigned(
    source: string,
    name: string,
    edit: (entries: Map<string, Buffer>) => void,
    key: SigningKey,
    tool?: (tool: ToolInfo) => ToolInfo,
  ): Promise<string> {
    const entries = await entriesOf(source);
    edit(entries);
    const manifest = json(entries.get("manifest.json")) as { tool: ToolInfo; createdAt: string };
    const assembled = assembleBundle(
      entries,
      key,
      tool ? tool(manifest.tool) : manifest.tool,
      manifest.createdAt,
    );
    const file = join(this.dir, name);
    writeFileSync(file, await zipEntries(assembled.entries));
    return file;
  }

  /** Copy a bundle with its entries edited and NOT re-signed (tampering in transit). */
  async tampered(source: string, name: string, edit: (entries: Map<string, Buffer>) => void) {
    const entries = await entriesOf(source);
    edit(entries);
    const file = join(this.dir, name);
    writeFileSync(
      file,
      await zipEntries([...entries].map(([entryName, data]) => ({ name: entryName, data }))),
    );
    return file;
  }

  /** The library's merge options: the merger signs, both keys trusted and required. */
  mergeOptions(shards: readonly string[], out: string): MergeOptions {
    return {
      shards,
      out,
      key: this.merger,
      tool: this.tool!,
      trustedKeysFile: this.trustBoth,
      requireTrusted: true,
    };
  }

  /** Merge with the library; the code it fails with; and that nothing was written. */
  async mergeFails(
    shards: string[],
    code: string,
    message?: RegExp,
    options: Partial<MergeOptions> = {},
  ): Promise<void> {
    const outDir = mkdtempSync(join(this.dir, "out-"));
    const out = join(outDir, "run.zip");
    await assert.rejects(mergeShards({ ...this.mergeOptions(shards, out), ...options }), (error: unknown) => {
      assert.ok(isSpgError(error), String(error));
      assert.equal(error.code, code, error.message);
      if (message !== undefined) assert.match(error.message, message);
      return true;
    });
    assert.deepEqual(readdirSync(outDir), [], "a failed merge writes nothing");
  }
}

/**
 * Keys, trust files and SHARDS shards proved in separate processes (and the whole run when
 * `whole`), under a new temporary directory.
 */
export async function provedShardRun(options: { whole: boolean }): Promise<ShardRun> {
  const run = new ShardRun(mkdtempSync(join(tmpdir(), "spg-shard-")));
  run.producerKeyFile = (await writeKeyPair(join(run.dir, "producer"), { key: run.producer })).secretPath;
  run.mergerKeyFile = (await writeKeyPair(join(run.dir, "merger"), { key: run.merger })).secretPath;
  run.trustBoth = join(run.dir, "trusted-both.txt");
  run.trustMergerOnly = join(run.dir, "trusted-merger.txt");
  run.trustProducerOnly = join(run.dir, "trusted-producer.txt");
  writeFileSync(run.trustBoth, `${run.producer.keyId}\n${run.merger.keyId}\n`);
  writeFileSync(run.trustMergerOnly, `${run.merger.keyId}\n`);
  writeFileSync(run.trustProducerOnly, `${run.producer.keyId}\n`);
  if (options.whole) {
    const whole = run.spg([...run.proveArgs(), "--out", join(run.dir, "whole.zip")]);
    assert.equal(whole.status, 0, whole.stderr);
  }
  for (let index = 0; index < SHARDS; index++) {
    const shard = run.spg(
      [
        ...run.proveArgs(),
        "--shard-from-env",
        "--shard-count",
        String(SHARDS),
        "--out",
        run.shardFile(index + 1),
      ],
      podEnv(index),
    );
    assert.equal(shard.status, 0, shard.stderr);
    assert.deepEqual(JSON.parse(shard.stdout).shard, { index: index + 1, count: SHARDS });
  }
  run.tool = (json((await entriesOf(run.shardFile(1))).get("manifest.json")) as { tool: ToolInfo }).tool;
  return run;
}
