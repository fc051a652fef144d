/**
 * `spg merge` against hostile and careless input: every case a stable code, exit 2 and nothing
 * written at --out (nor anything of the shards changed), never a hang; and a dishonest merger
 * (re-signing with a key the verifier trusts: scripts/adversarial-bundles.ts
 * adversarialMergeCases) refused by `spg verify`.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import zlib from "node:zlib";
import { adversarialMergeCases, zipOf } from "../../scripts/adversarial-bundles.js";
import { zipEntries } from "../../src/bundle/write.js";
import { mergeShards } from "../../src/merge/merge.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { assertRefused } from "../helpers/hostile.js";
import { editJson, entriesOf, provedShardRun, SHARDS, type ShardRun } from "../helpers/shard-run.js";

let run: ShardRun;
let shards: string[];
/** Shard 2 of the same preset proved with another seed: another run. */
let foreign: string;
let merged: string;

before(async () => {
  run = await provedShardRun({ whole: false });
  shards = [1, 2, 3].map((k) => run.shardFile(k));
  foreign = join(run.dir, "foreign-2.zip");
  const other = run.spg([...run.proveArgs(), "--seed", "7", "--shard", `2/${SHARDS}`, "--out", foreign]);
  assert.equal(other.status, 0, other.stderr);
  merged = join(run.dir, "run.zip");
  await mergeShards(run.mergeOptions(shards, merged));
});

after(() => rmSync(run.dir, { recursive: true, force: true }));

const sha = (file: string) => readFileSync(file).toString("base64");

/** The three shards copied into a new folder as shard-K.zip (other files, same bytes). */
function shardCopiesIn(folder: string): string[] {
  mkdirSync(folder);
  return shards.map((file, at) => {
    const copy = join(folder, `shard-${at + 1}.zip`);
    copyFileSync(file, copy);
    return copy;
  });
}

test("the same file twice, by name or by hard link, is refused before it is read", async () => {
  await run.mergeFails([...shards, shards[1]], "E_MERGE_DUPLICATE_SHARD", /are the same file/);
  const link = join(run.dir, "hard-2.zip");
  linkSync(shards[1], link);
  await run.mergeFails([shards[0], link, shards[1], shards[2]], "E_MERGE_DUPLICATE_SHARD", /same file/);
});

test("a copy of a shard is a duplicate K", async () => {
  const copy = join(run.dir, "copy-3.zip");
  copyFileSync(shards[2], copy);
  await run.mergeFails([...shards, copy], "E_MERGE_DUPLICATE_SHARD", /both shard 3 of 3/);
});

test("a shard given as a symbolic link, inside the folder or out of it, is refused", async () => {
  const folder = join(run.dir, "linked");
  mkdirSync(folder);
  const inside = join(folder, "shard-2.zip");
  symlinkSync(shards[1], inside);
  await run.mergeFails([shards[0], inside, shards[2]], "E_MERGE_SHARD_UNREADABLE", /symbolic link/);
  // Pointing at a secret the merger can read: never opened.
  const outside = join(folder, "shard-4.zip");
  symlinkSync(run.mergerKeyFile, outside);
  await run.mergeFails([...shards, outside], "E_MERGE_SHARD_UNREADABLE", /symbolic link/);
});

test("a FIFO named like a shard is refused instead of blocking the merge (and verify)", {
  timeout: 60_000,
}, async () => {
  const fifo = join(run.dir, "fifo.zip");
  execFileSync("mkfifo", [fifo]);
  await run.mergeFails([...shards, fifo], "E_MERGE_SHARD_UNREADABLE", /not a regular file/);
  const verified = await verifyBundleFile(fifo, { requireTrusted: false, replay: false });
  assert.equal(verified.exitCode, 3);
  assert.match(verified.findings[0].message, /not a regular file/);
});

test("a directory named *.zip, a missing file and a file that is no zip are refused by name", async () => {
  const directory = join(run.dir, "dir.zip");
  mkdirSync(directory);
  await run.mergeFails([...shards, directory], "E_MERGE_SHARD_UNREADABLE", /dir\.zip is a directory/);
  await run.mergeFails([...shards, join(run.dir, "absent.zip")], "E_MERGE_SHARD_UNREADABLE", /ENOENT/);
  const text = join(run.dir, "text.zip");
  writeFileSync(text, "not a zip\n");
  await run.mergeFails([text, ...shards], "E_MERGE_SHARD_UNREADABLE", /E_ZIP_UNREADABLE/);
  // Only the cause, not every check it made skip.
  await assert.rejects(mergeShards(run.mergeOptions([text], join(run.dir, "x.zip"))), (error: Error) => {
    assert.doesNotMatch(error.message, /E_CHECK_SKIPPED/);
    return true;
  });
});

test("a zip bomb or an entry over the size limit in a shard is refused by the zip reader's code", async () => {
  const entries = await entriesOf(shards[2]);
  const bomb = join(run.dir, "bomb.zip");
  writeFileSync(
    bomb,
    zipOf(entries, {}, (list) => {
      const data = Buffer.alloc(8 * 1024 * 1024);
      const at = list.findIndex((entry) => entry.name === "report.md");
      list[at] = { name: "report.md", data, compressed: zlib.deflateRawSync(data, { level: 9 }) };
    }),
  );
  await run.mergeFails([shards[0], shards[1], bomb], "E_MERGE_SHARD_UNREADABLE", /E_ZIP_RATIO/);
  const records = entries.get("records.jsonl")!.length;
  await run.mergeFails(shards, "E_MERGE_SHARD_UNREADABLE", /E_ZIP_TOO_LARGE/, {
    limits: { maxEntryBytes: records - 1 },
  });
});

test("--out a directory, one of the shards (by name or hard link) or in no directory: refused, nothing touched", async () => {
  const before = shards.map(sha);
  const outDir = join(run.dir, "out-dir");
  mkdirSync(outDir);
  const refused = async (out: string, message: RegExp) =>
    assert.rejects(mergeShards(run.mergeOptions(shards, out)), (error: Error & { code?: string }) => {
      assert.equal(error.code, "E_MERGE_OUTPUT", error.message);
      assert.match(error.message, message);
      return true;
    });
  await refused(outDir, /is a directory/);
  assert.deepEqual(readdirSync(outDir), []);
  await refused(shards[2], /also given as a shard/);
  const alias = join(run.dir, "alias.zip");
  linkSync(shards[0], alias);
  await refused(alias, /also given as a shard/);
  await refused(join(run.dir, "no-such-dir", "run.zip"), /is not a directory/);
  assert.deepEqual(shards.map(sha), before, "no shard was changed");
});

test("merging again into the shard folder: the previous merge, globbed in as a shard, is the output", async () => {
  const folder = join(run.dir, "again");
  const copies = shardCopiesIn(folder);
  const out = join(folder, "run.zip");
  await mergeShards(run.mergeOptions(copies, out));
  const first = sha(out);
  // `spg merge again/*.zip --out again/run.zip` a second time.
  const glob = readdirSync(folder).map((name) => join(folder, name));
  await assert.rejects(mergeShards(run.mergeOptions(glob, out)), /E_MERGE_OUTPUT|also given as a shard/);
  assert.equal(sha(out), first);
});

test("a shard whose index is over its count, or a set whose count disagrees with its indices", async () => {
  const over = await run.resigned(
    shards[2],
    "k4-of-3.zip",
    (entries) =>
      editJson(entries, "shard.json", (marker) => {
        marker.index = 4;
      }),
    run.producer,
  );
  await run.mergeFails(
    [shards[0], shards[1], over],
    "E_MERGE_SHARD_INVALID",
    /shard\.json.*index 4 is over its count 3/,
  );
  // Every marker re-signed to say N = 4, over the 3-sample draw: refused at the first shard,
  // so no set of files can make the merge read more than draw-size + 1 of them.
  const four = await Promise.all(
    shards.map((file, at) =>
      run.resigned(
        file,
        `n4-${at + 1}.zip`,
        (entries) =>
          editJson(entries, "shard.json", (marker) => {
            marker.count = 4;
          }),
        run.producer,
      ),
    ),
  );
  await run.mergeFails(
    four,
    "E_MERGE_SHARD_INVALID",
    /n4-1\.zip: shard\.json says N = 4, over the 3 evaluation samples/,
  );
});

test("shards of another seed, model, dataset or signer", async () => {
  await run.mergeFails([shards[0], foreign, shards[2]], "E_MERGE_CONFIG_MISMATCH");
  for (const [field, edit] of [
    [
      "model",
      (environment: Record<string, unknown>) =>
        ((environment.model as Record<string, unknown>).sha256 = "0".repeat(64)),
    ],
    [
      "dataset",
      (environment: Record<string, unknown>) =>
        ((environment.dataset as Record<string, unknown>).sha256 = "0".repeat(64)),
    ],
  ] as const) {
    const other = await run.resigned(
      shards[2],
      `other-${field}.zip`,
      (entries) => editJson(entries, "environment.json", edit),
      run.producer,
    );
    await run.mergeFails(
      [shards[0], shards[1], other],
      "E_MERGE_INPUT_MISMATCH",
      new RegExp(`environment.json ${field}`),
    );
  }
  // A key per shard: another trusted signer is fine, and named in the result.
  const otherSigner = await run.resigned(shards[2], "merger-signed-3.zip", () => {}, run.merger);
  const out = join(run.dir, "two-signers.zip");
  const result = await mergeShards(run.mergeOptions([shards[0], shards[1], otherSigner], out));
  assert.deepEqual(
    result.shards.map((shard) => shard.keyId),
    [run.producer.keyId, run.producer.keyId, run.merger.keyId],
  );
});

test("a merge over verify's held-entry limit is refused before it is built", async () => {
  const sizes = await Promise.all(
    shards.map(async (file) => (await entriesOf(file)).get("records.jsonl")!.length),
  );
  const largestEntry = Math.max(
    ...(await Promise.all(
      shards.map(async (file) =>
        Math.max(...[...(await entriesOf(file)).values()].map((bytes) => bytes.length)),
      ),
    )),
  );
  const mergedRecords = sizes.reduce((sum, size) => sum + size, 0);
  // Each shard fits; their merged records.jsonl does not.
  assert.ok(largestEntry < mergedRecords);
  await run.mergeFails(
    shards,
    "E_MERGE_TOO_LARGE",
    /would be over verify's limits: its (records|shards)\.jsonl \(\d+ bytes\) over \d+ bytes/,
    {
      limits: { maxHeldEntryBytes: largestEntry },
    },
  );
});

test("10,000 shard files: the merge stops at the first that cannot belong, not after reading them all", {
  timeout: 300_000,
}, async () => {
  const folder = join(run.dir, "many");
  mkdirSync(folder);
  // Shards 1 to 3, then a fourth copy of shard 1, then 9,995 more, the last no zip at all.
  const files: string[] = [];
  for (let at = 0; at < 10_000; at++) {
    const file = join(folder, `s-${String(at).padStart(5, "0")}.zip`);
    if (at === 9_999) writeFileSync(file, "x");
    else copyFileSync(shards[at % SHARDS], file);
    files.push(file);
  }
  await run.mergeFails(
    files,
    "E_MERGE_DUPLICATE_SHARD",
    /s-00000\.zip and .*s-00003\.zip are both shard 1 of 3/,
  );
  rmSync(folder, { recursive: true, force: true });
});

test("spg merge: a bad --out exits 2 with its code and writes nothing", () => {
  const before = sha(shards[0]);
  const result = run.spg([
    "merge",
    ...shards,
    "--out",
    shards[0],
    "--key",
    run.mergerKeyFile,
    "--trusted-keys",
    run.trustBoth,
  ]);
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /E_MERGE_OUTPUT/);
  assert.equal(sha(shards[0]), before);
});

test("a dishonest merger holding a trusted key: every edit of the merge is refused by verify", async () => {
  const cases = adversarialMergeCases(await entriesOf(merged), await entriesOf(foreign));
  assert.ok(cases.length >= 8);
  for (const hostile of cases) {
    const file = join(run.dir, `${hostile.name}.zip`);
    writeFileSync(file, hostile.build());
    // No trust policy: the merger's key is as good as trusted; only the shards' own signatures can refuse.
    const result = await verifyBundleFile(file, { requireTrusted: false, replay: false });
    assertRefused(result, hostile, "any check");
  }
  assert.ok(statSync(merged).isFile());
});

test("--out an existing file: refused (E_FILE_EXISTS, the file untouched) unless overwrite (--force), then replaced whole", async () => {
  const folder = join(run.dir, "existing");
  mkdirSync(folder);
  const out = join(folder, "run.zip");
  writeFileSync(out, "an earlier run");
  await assert.rejects(mergeShards(run.mergeOptions(shards, out)), { code: "E_FILE_EXISTS" });
  assert.equal(readFileSync(out, "utf8"), "an earlier run");
  await mergeShards({ ...run.mergeOptions(shards, out), overwrite: true });
  assert.ok((await entriesOf(out)).has("shards.jsonl"), "the merged bundle replaced it");
  // Atomic: no temporary file left beside it.
  assert.deepEqual(readdirSync(folder), ["run.zip"]);
  // --force never reaches a shard.
  await assert.rejects(mergeShards({ ...run.mergeOptions(shards, shards[0]), overwrite: true }), {
    code: "E_MERGE_OUTPUT",
  });
  const cli = run.spg([
    "merge",
    ...shards,
    "--out",
    out,
    "--key",
    run.mergerKeyFile,
    "--trusted-keys",
    run.trustBoth,
  ]);
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, /^E_FILE_EXISTS: .*run\.zip already exists/m);
  assert.match(cli.stderr, /--force/);
});

test("a shard path swapped after its check (another file, or a link) is refused: the reader checks its open handle", async () => {
  const folder = join(run.dir, "swapped");
  const copies = shardCopiesIn(folder);
  const out = join(folder, "run.zip");
  // mergeShards checks every path before its first await; swap shard 3 right after, for a copy
  // with the same bytes (a different file): what is read must be what was checked.
  const pending = mergeShards(run.mergeOptions(copies, out));
  copyFileSync(shards[2], join(folder, "new-3"));
  renameSync(join(folder, "new-3"), copies[2]);
  await assert.rejects(pending, (error: Error & { code?: string }) => {
    assert.equal(error.code, "E_MERGE_SHARD_UNREADABLE", error.message);
    assert.match(error.message, /not the file that was checked/);
    return true;
  });
  // Swapped for a link to a file the merger may read: never followed.
  const linked = mergeShards(run.mergeOptions(copies, out));
  symlinkSync(run.mergerKeyFile, join(folder, "link-2"));
  renameSync(join(folder, "link-2"), copies[1]);
  await assert.rejects(linked, (error: Error & { code?: string }) => {
    assert.equal(error.code, "E_MERGE_SHARD_UNREADABLE", error.message);
    assert.match(error.message, /symbolic link/);
    return true;
  });
  assert.ok(!readdirSync(folder).includes("run.zip"));
});

test("trust roles: shard keys sign shards, the merger's key the merge; neither passes for the other", async () => {
  const roles = join(run.dir, "trusted-roles.txt");
  writeFileSync(roles, `# roles\n${run.producer.keyId} shard\n${run.merger.keyId} merge\n`);
  const folder = join(run.dir, "roles");
  mkdirSync(folder);
  const out = join(folder, "run.zip");
  await mergeShards({ ...run.mergeOptions(shards, out), trustedKeysFile: roles });
  const verified = await verifyBundleFile(out, {
    trustedKeysFile: roles,
    requireTrusted: true,
    replay: false,
  });
  assert.deepEqual(
    verified.findings
      .filter((finding) => finding.check === "trust" || finding.check === "shards")
      .map((f) => f.ok),
    [true, true],
    JSON.stringify(verified.findings.filter((finding) => !finding.ok)),
  );
  // A shard signed by the merger's key (trusted, but for merges only) cannot enter a merge.
  const byMerger = await run.resigned(shards[1], "merger-signed-2.zip", () => undefined, run.merger);
  await run.mergeFails([shards[0], byMerger, shards[2]], "E_MERGE_SHARD_UNTRUSTED", /E_KEY_ROLE/, {
    trustedKeysFile: roles,
  });
  // The merge verified under a file where the producer may sign whole runs only: every rebuilt shard fails trust.
  const runOnly = join(run.dir, "trusted-run-only.txt");
  writeFileSync(runOnly, `${run.producer.keyId} run\n${run.merger.keyId} merge\n`);
  const refused = await verifyBundleFile(out, {
    trustedKeysFile: runOnly,
    requireTrusted: true,
    replay: false,
  });
  assert.equal(refused.exitCode, 4);
  assert.ok(
    refused.findings.some((f) => !f.ok && f.code === "E_SHARD_UNTRUSTED" && /E_KEY_ROLE/.test(f.message)),
    JSON.stringify(refused.findings.filter((finding) => !finding.ok)),
  );
  // And the producer's shard key does not pass as the merger: a merge signed by it fails E_KEY_ROLE.
  const shardKeyMerge = await run.resigned(out, "merge-by-producer.zip", () => undefined, run.producer);
  const asMerger = await verifyBundleFile(shardKeyMerge, {
    trustedKeysFile: roles,
    requireTrusted: true,
    replay: false,
  });
  assert.ok(asMerger.findings.some((f) => !f.ok && f.check === "trust" && f.code === "E_KEY_ROLE"));
});

test("file and entry names with newlines, escape sequences and bidi marks reach stderr inert", async () => {
  const folder = join(run.dir, "names");
  mkdirSync(folder);
  // A zip whose one entry's name forges lines and reorders text, under a file name that does too.
  const forged = "records.jsonl\n\u001b[32mPASS\u202e\u009b";
  const crafted = join(folder, "shard\n\u001b[2KE_NONE: all shards verified\u202e.zip");
  writeFileSync(crafted, await zipEntries([{ name: forged, data: Buffer.from("{}") }]));
  const inert = (stream: string, what: string) => {
    assert.doesNotMatch(
      stream,
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/u,
      `${what}: ${JSON.stringify(stream)}`,
    );
    assert.ok(!stream.split("\n").some((line) => line.startsWith("E_NONE")), what);
  };
  const merge = run.spg([
    "merge",
    shards[0],
    crafted,
    "--out",
    join(folder, "run.zip"),
    "--key",
    run.mergerKeyFile,
    "--trusted-keys",
    run.trustBoth,
  ]);
  assert.equal(merge.status, 2, merge.stderr);
  assert.match(merge.stderr, /^E_MERGE_SHARD_UNREADABLE: /);
  assert.match(merge.stderr, /\\u001b\[2KE_NONE/);
  inert(merge.stderr, "spg merge");
  const inspect = run.spg(["inspect", crafted]);
  assert.notEqual(inspect.status, 0);
  assert.match(inspect.stderr, /\\u202e/);
  inert(inspect.stderr, "spg inspect");
  const verify = run.spg(["verify", crafted, "--no-require-trusted", "--no-replay"]);
  assert.notEqual(verify.status, 0);
  inert(verify.stdout + verify.stderr, "spg verify");
});
