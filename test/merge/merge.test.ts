/**
 * Sharded runs end to end: the ci-smoke preset (3 samples) proved whole and as 3 shards in
 * separate processes (JOB_COMPLETION_INDEX set, as a Kubernetes Indexed Job would), merged,
 * verified, and compared with the whole run; then every bad input `spg merge` must refuse,
 * and merged bundles whose shards do not add up, which `spg verify` must refuse.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { canonicalJson } from "../../src/bundle/canonical.js";
import { BUNDLE_FORMAT_VERSION } from "../../src/bundle/format.js";
import { generateKeyPair, type SigningKey } from "../../src/bundle/keys.js";
import type { ToolInfo } from "../../src/bundle/manifest.js";
import { signatureJsonBytes, signManifest } from "../../src/bundle/sign.js";
import { zipEntries } from "../../src/bundle/write.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { editJson, entriesOf, json, provedShardRun, type ShardRun } from "../helpers/shard-run.js";

/** Record fields a re-run measures anew: wall-clock timings and the process's peak memory. */
const MEASURED_FIELDS = ["timingsMs", "peakRssBytes"];

let run: ShardRun;
let dir: string;
let producer: SigningKey;
let merger: SigningKey;
let mergerKeyFile: string;
let trustBoth: string;
let trustMergerOnly: string;
let trustProducerOnly: string;
const shardFile = (k: number) => run.shardFile(k);
const spg = (args: string[]) => run.spg(args);
const resigned = (
  source: string,
  name: string,
  edit: (entries: Map<string, Buffer>) => void,
  key: SigningKey,
  tool?: (tool: ToolInfo) => ToolInfo,
) => run.resigned(source, name, edit, key, tool);
const tampered = (source: string, name: string, edit: (entries: Map<string, Buffer>) => void) =>
  run.tampered(source, name, edit);
const mergeFails = (shards: string[], code: string, message?: RegExp) =>
  run.mergeFails(shards, code, message);

function jsonl(bytes: Buffer | undefined): Record<string, unknown>[] {
  return bytes!
    .toString("utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function withoutMeasured(record: Record<string, unknown>): Record<string, unknown> {
  const kept = Object.fromEntries(
    Object.entries(record).filter(([field]) => !MEASURED_FIELDS.includes(field)),
  );
  // runCost: executed bytes and token counts are the run's; its timings and speeds are measured anew.
  const cost = kept.runCost as Record<string, unknown> | undefined;
  if (cost !== undefined) {
    const {
      baselineTimingsMs: _timings,
      tokensPerSecond: _speeds,
      intraOpThreads: _threads,
      ...counted
    } = cost;
    kept.runCost = counted;
  }
  return kept;
}

/** summary.json without the figures of wall-clock timings (tokens per second and their ratio). */
function withoutSpeeds(summary: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(summary) as { methods: Record<string, Record<string, unknown>> };
  for (const method of Object.values(copy.methods)) {
    delete method.decodeSpeedRatio;
    delete (method.intervals as Record<string, unknown>).decodeSpeedRatio;
    const cost = method.runCost as Record<string, unknown> | undefined;
    if (cost !== undefined)
      for (const field of Object.keys(cost)) if (field.endsWith("PerSecond")) delete cost[field];
  }
  return copy as unknown as Record<string, unknown>;
}

/** report.md up to its run-cost section (whose speeds are timings). */
function reportWithoutSpeeds(bytes: Buffer | undefined): string {
  const text = bytes!.toString("utf8");
  const at = text.indexOf("\n## Run cost");
  return at < 0 ? text : text.slice(0, at);
}

before(async () => {
  run = await provedShardRun({ whole: true });
  ({ dir, producer, merger, mergerKeyFile, trustBoth, trustMergerOnly, trustProducerOnly } = run);
  const merged = spg([
    "merge",
    shardFile(3),
    shardFile(1),
    shardFile(2),
    "--out",
    join(dir, "run.zip"),
    "--key",
    mergerKeyFile,
    "--trusted-keys",
    trustProducerOnly,
    "--require-trusted",
  ]);
  assert.equal(merged.status, 0, merged.stderr);
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test("3 shards proved in separate processes and merged equal the whole run, timings and memory aside", async () => {
  const verified = spg([
    "verify",
    join(dir, "run.zip"),
    "--trusted-keys",
    trustBoth,
    "--require-trusted",
    "--json",
  ]);
  assert.equal(verified.status, 0, verified.stdout);
  const report = JSON.parse(verified.stdout) as {
    findings: { check: string; ok: boolean; message: string }[];
  };
  assert.match(report.findings.find((f) => f.check === "shards")!.message, /3 shards/);

  const whole = await entriesOf(join(dir, "whole.zip"));
  const merged = await entriesOf(join(dir, "run.zip"));
  assert.equal(json(merged.get("manifest.json")).version, BUNDLE_FORMAT_VERSION);
  assert.deepEqual(
    jsonl(merged.get("records.jsonl")).map(withoutMeasured),
    jsonl(whole.get("records.jsonl")).map(withoutMeasured),
  );
  assert.ok(merged.get("fingerprints.jsonl")!.equals(whole.get("fingerprints.jsonl")!));
  // Every figure but the speeds (timings), bootstrap intervals included, is the whole run's.
  assert.deepEqual(
    withoutSpeeds(json(merged.get("summary.json"))),
    withoutSpeeds(json(whole.get("summary.json"))),
  );
  assert.ok(merged.get("config.json")!.equals(whole.get("config.json")!));
  assert.equal(reportWithoutSpeeds(merged.get("report.md")), reportWithoutSpeeds(whole.get("report.md")));
  const shardsLines = jsonl(merged.get("shards.jsonl"));
  assert.deepEqual(
    shardsLines.map((line) => (JSON.parse(line.shard as string) as { index: number }).index),
    [1, 2, 3],
  );
  const drawWhole = json(whole.get("environment.json")).evaluation;
  assert.deepEqual(json(merged.get("environment.json")).evaluation, drawWhole);
});

test("a shard verifies as a shard: its part of the draw, claims not judged on it", async () => {
  const result = await verifyBundleFile(shardFile(2), {
    trustedKeysFile: trustProducerOnly,
    requireTrusted: true,
  });
  assert.equal(result.exitCode, 0, JSON.stringify(result.findings.filter((f) => !f.ok)));
  const claims = result.findings.filter((f) => f.check === "claims");
  assert.equal(claims.length, 1);
  assert.match(claims[0].message, /not judged on a part: shard 2 of 3/);
  assert.match(result.findings.find((f) => f.check === "shards")!.message, /shard 2 of 3/);
  const marker = json((await entriesOf(shardFile(2))).get("shard.json"));
  assert.deepEqual(marker.sampleIds, ["eval-0001"]);
});

test("verify applies the trust policy to the shard signers and to the merger", async () => {
  const run = join(dir, "run.zip");
  const mergerOnly = await verifyBundleFile(run, { trustedKeysFile: trustMergerOnly, requireTrusted: true });
  assert.equal(mergerOnly.exitCode, 4);
  const untrusted = mergerOnly.findings.filter((f) => !f.ok);
  assert.deepEqual([...new Set(untrusted.map((f) => `${f.check}:${f.code}`))], ["trust:E_SHARD_UNTRUSTED"]);
  const producerOnly = await verifyBundleFile(run, {
    trustedKeysFile: trustProducerOnly,
    requireTrusted: true,
  });
  assert.equal(producerOnly.exitCode, 4);
  // Nothing past trust runs on an untrusted merger's bundle: the later checks say they were skipped.
  const refused = producerOnly.findings.filter((f) => !f.ok).map((f) => f.code);
  assert.equal(refused[0], "E_UNTRUSTED_KEY");
  assert.ok(refused.slice(1).every((code) => code === "E_CHECK_SKIPPED"));
});

test("merged records that are not a shard's signed records fail verify as tampering, even re-signed by the merger", async () => {
  const file = await resigned(
    join(dir, "run.zip"),
    "run-edited.zip",
    (entries) => {
      const text = entries.get("records.jsonl")!.toString("utf8");
      const lines = text.split("\n");
      // Line 8 is the second sample's (shard 2's) first record.
      lines[7] = lines[7].replace(/"top1Matches":(\d+)/, (_, n: string) => `"top1Matches":${Number(n) - 1}`);
      entries.set("records.jsonl", Buffer.from(lines.join("\n")));
    },
    merger,
  );
  const result = await verifyBundleFile(file, { trustedKeysFile: trustBoth, requireTrusted: true });
  assert.equal(result.exitCode, 4);
  const tamper = result.findings.find((f) => f.code === "E_SHARD_TAMPERED");
  assert.ok(tamper !== undefined, JSON.stringify(result.findings.filter((f) => !f.ok)));
  assert.match(tamper.message, /shard 2 of 3/);
});

test("a merged bundle with a shard and its records left out fails verify naming the missing shard", async () => {
  const file = await resigned(
    join(dir, "run.zip"),
    "run-short.zip",
    (entries) => {
      const lines = entries.get("shards.jsonl")!.toString("utf8").split("\n");
      entries.set("shards.jsonl", Buffer.from([lines[0], lines[2], ""].join("\n")));
      for (const entry of ["records.jsonl", "fingerprints.jsonl"]) {
        const kept = entries
          .get(entry)!
          .toString("utf8")
          .split("\n")
          .filter((line) => !line.includes('"sampleId":"eval-0001"'));
        entries.set(entry, Buffer.from(kept.join("\n")));
      }
    },
    merger,
  );
  const result = await verifyBundleFile(file, { trustedKeysFile: trustBoth, requireTrusted: true });
  assert.notEqual(result.exitCode, 0);
  const missing = result.findings.find((f) => f.code === "E_SHARD_MISSING");
  assert.ok(missing !== undefined, JSON.stringify(result.findings.filter((f) => !f.ok)));
  assert.match(missing.message, /shard 2 of 3 missing/);
});

test("merged lines out of the unsharded order fail verify, even re-signed by the merger", async () => {
  const file = await resigned(
    join(dir, "run.zip"),
    "run-reordered.zip",
    (entries) => {
      const lines = entries.get("records.jsonl")!.toString("utf8").split("\n");
      // The first sample's first record moved after the second sample's.
      const [first] = lines.splice(0, 1);
      lines.splice(7, 0, first);
      entries.set("records.jsonl", Buffer.from(lines.join("\n")));
    },
    merger,
  );
  const result = await verifyBundleFile(file, { trustedKeysFile: trustBoth, requireTrusted: true });
  assert.ok(
    result.findings.some((f) => f.code === "E_SHARD_RECORDS" && /unsharded run's order/.test(f.message)),
    JSON.stringify(result.findings.filter((f) => !f.ok)),
  );
  assert.notEqual(result.exitCode, 0);
});

test("a shard covering other samples than its part of the draw fails verify, even re-signed", async () => {
  const file = await resigned(
    shardFile(3),
    "wrong-part.zip",
    (entries) =>
      editJson(entries, "shard.json", (marker) => {
        marker.sampleIds = ["eval-0001"];
      }),
    producer,
  );
  const result = await verifyBundleFile(file, { trustedKeysFile: trustProducerOnly, requireTrusted: true });
  assert.equal(result.exitCode, 5);
  assert.ok(result.findings.some((f) => f.code === "E_SHARD_SUBSET"));
});

test("a version 1 manifest may not list shard.json", async () => {
  const entries = await entriesOf(shardFile(1));
  const manifest = json(entries.get("manifest.json"));
  manifest.version = 1;
  const manifestBytes = canonicalJson(manifest);
  entries.set("manifest.json", manifestBytes);
  entries.set("signature.json", signatureJsonBytes(signManifest(manifestBytes, producer)));
  const file = join(dir, "v1-shard.zip");
  writeFileSync(file, await zipEntries([...entries].map(([name, data]) => ({ name, data }))));
  const result = await verifyBundleFile(file, { trustedKeysFile: trustProducerOnly, requireTrusted: true });
  assert.equal(result.exitCode, 4);
  assert.ok(
    result.findings.some((f) => f.code === "E_INTEGRITY_UNEXPECTED" && /shard\.json/.test(f.message)),
  );
});

test("merge refuses a missing shard, naming it", async () => {
  await mergeFails([shardFile(1), shardFile(3)], "E_MERGE_MISSING_SHARD", /shard 2 of 3 missing/);
});

test("merge refuses a duplicated shard", async () => {
  await mergeFails([shardFile(1), shardFile(2), shardFile(2), shardFile(3)], "E_MERGE_DUPLICATE_SHARD");
});

test("merge refuses overlapping shards", async () => {
  const overlapping = await resigned(
    shardFile(3),
    "overlap.zip",
    (entries) =>
      editJson(entries, "shard.json", (marker) => {
        marker.sampleIds = ["eval-0001", "eval-0002"];
      }),
    producer,
  );
  await mergeFails([shardFile(1), shardFile(2), overlapping], "E_MERGE_OVERLAP", /eval-0001/);
});

test("merge refuses shards of different configs", async () => {
  const other = await resigned(
    shardFile(3),
    "other-config.zip",
    (entries) => {
      editJson(entries, "config.json", (config) => {
        config.name = "ci-smoke-other";
      });
      editJson(entries, "shard.json", (marker) => {
        marker.runConfigSha256 = "0".repeat(64);
      });
    },
    producer,
  );
  await mergeFails([shardFile(1), shardFile(2), other], "E_MERGE_CONFIG_MISMATCH");
});

test("merge refuses shards written by different tool versions", async () => {
  const newer = await resigned(
    shardFile(3),
    "newer-tool.zip",
    () => {},
    producer,
    (t) => ({ ...t, version: "99.0.0" }),
  );
  await mergeFails([shardFile(1), shardFile(2), newer], "E_MERGE_TOOL_MISMATCH", /99\.0\.0/);
});

test("merge refuses shards that disagree on N", async () => {
  // Shard 2 re-signed as "2 of 2": a valid marker on its own (K <= N <= the draw), not this run's N.
  const twoShards = await resigned(
    shardFile(2),
    "n2.zip",
    (entries) =>
      editJson(entries, "shard.json", (marker) => {
        marker.count = 2;
      }),
    producer,
  );
  await mergeFails([shardFile(1), twoShards, shardFile(3)], "E_MERGE_SHARD_COUNT", /shard count N = 2/);
});

test("merge refuses a shard signed by an untrusted key", async () => {
  const stranger = await resigned(shardFile(3), "stranger.zip", () => {}, generateKeyPair());
  await mergeFails([shardFile(1), shardFile(2), stranger], "E_MERGE_SHARD_UNTRUSTED");
});

test("merge refuses a tampered shard", async () => {
  const edited = await tampered(shardFile(3), "tampered.zip", (entries) => {
    const text = entries.get("records.jsonl")!.toString("utf8");
    entries.set(
      "records.jsonl",
      Buffer.from(text.replace(/"top1Matches":(\d+)/, (_, n: string) => `"top1Matches":${Number(n) - 1}`)),
    );
  });
  await mergeFails([shardFile(1), shardFile(2), edited], "E_MERGE_SHARD_TAMPERED");
});

test("merge refuses a whole-run bundle as a shard", async () => {
  await mergeFails([shardFile(1), shardFile(2), shardFile(3), join(dir, "whole.zip")], "E_MERGE_NOT_A_SHARD");
});

test("spg merge exits non-zero with the code and writes nothing; prove refuses a bad --shard", () => {
  const outDir = join(dir, "cli-out");
  mkdirSync(outDir);
  const result = spg([
    "merge",
    shardFile(1),
    shardFile(3),
    "--out",
    join(outDir, "run.zip"),
    "--key",
    mergerKeyFile,
    "--trusted-keys",
    trustBoth,
  ]);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /E_MERGE_MISSING_SHARD: shard 2 of 3 missing/);
  assert.deepEqual(readdirSync(outDir), []);
  const bad = spg([
    "prove",
    "--preset",
    "ci-smoke",
    "--shard",
    "4/3",
    "--ephemeral-key",
    "--out",
    join(outDir, "x.zip"),
  ]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /E_SHARD_SPEC/);
  assert.deepEqual(readdirSync(outDir), []);
});
