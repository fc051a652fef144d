/**
 * Replay on a tiny random GPT-Neo (seconds): the verifier's model, matched by sha256; samples
 * chosen from the verifier's seed; tolerances the bundle cannot loosen; nothing replayed before
 * integrity, signature and trust hold. Forged bundles are re-signed with a trusted key so only
 * replay can catch them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { canonicalJson, canonicalJsonString } from "../../src/bundle/canonical.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { zipEntries } from "../../src/bundle/write.js";
import { resolveConfig } from "../../src/config/load.js";
import { prove } from "../../src/measure/prove.js";
import { newReplaySeed, replayIndices } from "../../src/verify/checks/replay.js";
import { EXIT_INVALID, EXIT_PASS, EXIT_TAMPERED } from "../../src/verify/runner.js";
import { type VerifyFileOptions, verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { fixtureKey, resign } from "../helpers/bundle-fixture.js";
import { writeRandomGptNeo } from "../helpers/random-gpt-neo.js";

const shape = { hidden: 16, layers: 2, heads: 2, window: 16, maxPositions: 128 };
const modelDir = await writeRandomGptNeo({ ...shape, seed: 3 });
const otherModelDir = await writeRandomGptNeo({ ...shape, seed: 4 });
const outDir = mkdtempSync(join(tmpdir(), "spg-replay-"));
const bundle = join(outDir, "run.zip");
const cacheDir = join(outDir, "graphs");
const key = fixtureKey(9);
const keysFile = join(outDir, "trusted.txt");

before(async () => {
  const config = resolveConfig({
    preset: "ci-smoke",
    overrides: { model: modelDir, context: 48, continuation: 8, samples: 3, calibrationSamples: 1 },
  });
  config.claims = [];
  await prove({
    config,
    out: bundle,
    key: { publicKey: key.publicKey, secretKey: key.secretKey, keyId: key.keyId, ephemeral: false },
    cacheDir,
  });
  writeFileSync(keysFile, `${key.keyId}\n`);
});
after(() => {
  for (const dir of [modelDir, otherModelDir, outDir]) rmSync(dir, { recursive: true, force: true });
});

const trusted = (replay: VerifyFileOptions["replay"]): VerifyFileOptions => ({
  trustedKeysFile: keysFile,
  requireTrusted: true,
  replay,
});

/** The bundle's entries with `edit` applied to each JSONL line of `entry`, re-signed by the trusted key. */
async function forged(name: string, edit: (entries: Map<string, Buffer>) => void): Promise<string> {
  const read = await readBundleZip(bundle);
  assert.ok(read.ok);
  if (!read.ok) throw new Error("unreadable");
  const entries = new Map(read.entries);
  edit(entries);
  resign(entries, key);
  const path = join(outDir, name);
  writeFileSync(path, await zipEntries([...entries].map(([entry, data]) => ({ name: entry, data }))));
  return path;
}

function editJson(
  entries: Map<string, Buffer>,
  name: string,
  edit: (value: Record<string, unknown>) => void,
) {
  const text = entries.get(name)!.toString("utf8");
  if (name.endsWith(".jsonl")) {
    const lines = text
      .trim()
      .split("\n")
      .map((line) => {
        const value = JSON.parse(line);
        edit(value);
        return canonicalJsonString(value);
      });
    entries.set(name, Buffer.from(`${lines.join("\n")}\n`));
  } else {
    const value = JSON.parse(text);
    edit(value);
    entries.set(name, canonicalJson(value));
  }
}

const failing = (result: { findings: { ok: boolean; code: string }[] }) =>
  result.findings.filter((f) => !f.ok).map((f) => f.code);

test("replay indices: distinct, sorted, reproducible from the seed, all when asked", () => {
  const seed = newReplaySeed();
  assert.match(seed, /^[0-9a-f]{32}$/);
  assert.notEqual(seed, newReplaySeed());
  const a = replayIndices(10, 4, seed);
  assert.deepEqual(a, replayIndices(10, 4, seed));
  assert.equal(new Set(a).size, 4);
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  assert.deepEqual(replayIndices(5, 9, "1"), [0, 1, 2, 3, 4]);
  // Different seeds choose differently (over 20 seeds, 1 of 10: not all alike).
  const firsts = new Set(Array.from({ length: 20 }, (_, i) => replayIndices(10, 1, i.toString(16))[0]));
  assert.ok(firsts.size > 1);
  assert.throws(() => replayIndices(3, 1, "not hex"), RangeError);
});

test("an honest bundle replays every sample on the verifier's model, named by --model", async () => {
  const result = await verifyBundleFile(bundle, trusted({ samples: "all", modelDir, cacheDir }));
  assert.deepEqual(failing(result), []);
  const replay = result.findings.find((f) => f.check === "replay")!;
  assert.ok(replay.ok && !replay.warning, replay.message);
  assert.deepEqual(replay.details?.samples, ["eval-0000", "eval-0001", "eval-0002"]);
  assert.equal(result.exitCode, EXIT_PASS);
});

test("--replay N with a seed re-runs the same samples for a second verifier", async () => {
  const seed = "5eed";
  const first = await verifyBundleFile(bundle, trusted({ samples: 1, seed, modelDir, cacheDir }));
  const second = await verifyBundleFile(bundle, trusted({ samples: 1, seed, modelDir, cacheDir }));
  const chosen = (r: typeof first) => r.findings.find((f) => f.check === "replay")!.details!;
  assert.equal(chosen(first).seed, seed);
  assert.deepEqual(chosen(first).samples, chosen(second).samples);
  assert.equal((chosen(first).samples as string[]).length, 1);
});

test("fabricated records fail replay even with the bundle's tolerances loosened to 1e9", async () => {
  const path = await forged("fabricated.zip", (entries) => {
    editJson(entries, "config.json", (config) => {
      config.tolerances = { nllPerToken: 1e9, klPerToken: 1e9, agreementFraction: 1 };
    });
    editJson(entries, "records.jsonl", (record) => {
      if (record.method !== "full" && record.sampleId === "eval-0002") {
        record.klSum = 0;
        record.top1Matches = record.scoredTokens;
      }
    });
  });
  const result = await verifyBundleFile(path, trusted({ samples: "all", modelDir, cacheDir }));
  const codes = failing(result);
  // The summary was not re-made, so recompute fails too; replay names the records.
  assert.ok(codes.includes("E_REPLAY_RECORD"), codes.join());
  assert.ok(codes.includes("E_REPLAY_DIFFERS"), codes.join());
  assert.equal(result.exitCode, EXIT_INVALID);
  const policy = result.findings.find((f) => f.check === "policy")!;
  assert.match(policy.message, /looser than this verifier's/);
});

test("the model is matched by sha256: another model named fails; none here is a warning", async () => {
  const wrong = await verifyBundleFile(bundle, trusted({ samples: 1, modelDir: otherModelDir, cacheDir }));
  assert.deepEqual(failing(wrong), ["E_REPLAY_MODEL_MISMATCH"]);
  assert.equal(wrong.exitCode, EXIT_INVALID);

  // No --model: the bundled model is tried, and it is not this bundle's.
  const absent = await verifyBundleFile(bundle, trusted({ samples: "all", cacheDir }));
  assert.deepEqual(failing(absent), []);
  const replay = absent.findings.find((f) => f.check === "replay")!;
  assert.equal(replay.warning, true);
  assert.equal(replay.code, "W_REPLAY_NOT_CHECKED");
  assert.match(replay.message, /^not checked: .*signer's word/);

  const off = await verifyBundleFile(bundle, trusted(false));
  assert.equal(off.findings.find((f) => f.check === "replay")?.code, "W_REPLAY_OFF");
});

test("nothing is replayed on an untrusted bundle", async () => {
  const other = join(outDir, "other-keys.txt");
  writeFileSync(other, `${fixtureKey(10).keyId}\n`);
  const untrusted = await verifyBundleFile(bundle, {
    trustedKeysFile: other,
    requireTrusted: true,
    replay: { samples: "all", modelDir, cacheDir },
  });
  assert.equal(untrusted.exitCode, EXIT_TAMPERED);
  const replay = untrusted.findings.find((f) => f.check === "replay")!;
  // Skipped, which fails: nothing past trust runs on a signer the policy refuses.
  assert.equal(replay.code, "E_CHECK_SKIPPED");
  assert.match(replay.message, /^skipped because .*trust/);
});
