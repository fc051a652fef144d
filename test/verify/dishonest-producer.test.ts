/**
 * A dishonest producer holding a trusted key, on a tiny random GPT-Neo (seconds): each lie is
 * made consistent (summary.json and report.md made again from the edited files, re-signed by
 * the trusted key: scripts/adversarial-bundles.ts remadeRun), so no arithmetic check catches
 * it; only replay on the verifier's model, or the rule the test names, can.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { type RunParts, remadeRun } from "../../scripts/adversarial-bundles.js";
import { readBundleZip } from "../../src/bundle/read.js";
import type { EnvironmentFile, SampleRecord } from "../../src/bundle/types.js";
import { zipEntries } from "../../src/bundle/write.js";
import { resolveConfig } from "../../src/config/load.js";
import type { RunConfig } from "../../src/config/types.js";
import { prove } from "../../src/measure/prove.js";
import {
  checkReplay,
  compareRecords,
  replayCheckpoint,
  storedLinesIn,
} from "../../src/verify/checks/replay.js";
import { loadVerifyPolicy } from "../../src/verify/policy.js";
import { EXIT_INVALID, EXIT_PASS } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { fixtureKey, resign } from "../helpers/bundle-fixture.js";
import { tinyModelWorkspace } from "../helpers/random-gpt-neo.js";

const { modelDir, outDir } = await tinyModelWorkspace(31, "spg-dishonest-");
const bundle = join(outDir, "run.zip");
const cacheDir = join(outDir, "graphs");
const key = fixtureKey(12);
const keysFile = join(outDir, "trusted.txt");
const lossyWeights = "int4";

before(async () => {
  const config = resolveConfig({
    preset: "ci-smoke",
    overrides: { model: modelDir, context: 48, continuation: 8, samples: 2, calibrationSamples: 1 },
  });
  config.claims = [];
  // A lossy weights method beside the KV methods: its logit cosine is a figure replay must hold.
  config.methods.push({
    name: lossyWeights,
    kind: "weights",
    params: {
      policy: lossyWeights,
      baselineDtype: "fp16",
      rules: [
        {
          modules: ["q_proj", "k_proj", "v_proj", "out_proj", "c_fc", "c_proj", "wte", "wpe"],
          quantize: { bits: 4, scheme: "asymmetric", groupSize: 32 },
        },
      ],
      keepDense: [],
    },
  } as (typeof config.methods)[number]);
  await prove({ config, out: bundle, key: { ...key, ephemeral: false }, cacheDir });
  writeFileSync(keysFile, `${key.keyId}\n`);
});
/** The honest bundle with `change` applied and everything else made consistent with it. */
async function lie(name: string, change: (parts: RunParts) => void): Promise<string> {
  const read = await readBundleZip(bundle);
  if (!read.ok) throw new Error("the honest bundle is unreadable");
  const entries = new Map(read.entries);
  remadeRun(entries, change);
  resign(entries, key);
  const path = join(outDir, `${name}.zip`);
  writeFileSync(path, await zipEntries([...entries].map(([entry, data]) => ({ name: entry, data }))));
  return path;
}

async function verifyReplayed(path: string) {
  const result = await verifyBundleFile(path, {
    trustedKeysFile: keysFile,
    requireTrusted: true,
    replay: { samples: "all", modelDir, cacheDir },
  });
  const failing = result.findings.filter((f) => !f.ok);
  return { result, failing, codes: failing.map((f) => `${f.check}:${f.code}`) };
}

test("the honest bundle (KV and weights methods) passes with a full replay", async () => {
  const { result, codes } = await verifyReplayed(await lie("honest", () => {}));
  assert.deepEqual(codes, []);
  assert.equal(result.exitCode, EXIT_PASS);
});

test("a weights method's logit cosine raised toward 1: replay refuses the records", async () => {
  let raised = 0;
  const path = await lie("cosine", ({ records }) => {
    for (const record of records) {
      if (record.method !== lossyWeights || record.logitCosineSum === undefined) continue;
      // Halfway to a perfect cosine: within consistency's bound (|sum| <= scored tokens).
      record.logitCosineSum += (record.scoredTokens - record.logitCosineSum) / 2;
      raised++;
    }
  });
  assert.ok(raised > 0);
  const { result, failing, codes } = await verifyReplayed(path);
  assert.deepEqual(
    [...new Set(codes)].sort(),
    ["replay:E_REPLAY_DIFFERS", "replay:E_REPLAY_RECORD"],
    codes.join(),
  );
  assert.ok(
    failing.some((f) => f.code === "E_REPLAY_RECORD" && /logit cosine/.test(f.message)),
    failing.map((f) => f.message).join("\n"),
  );
  assert.equal(result.exitCode, EXIT_INVALID);
});

test("model shapes other than the checkpoint's (a version 2 bundle states no architecture): replay refuses", async () => {
  const read = await readBundleZip(bundle);
  if (!read.ok) throw new Error("the honest bundle is unreadable");
  const json = (name: string) => JSON.parse(read.entries.get(name)!.toString("utf8"));
  const environment = json("environment.json") as EnvironmentFile;
  delete environment.model.architecture;
  const stated = (change: (model: EnvironmentFile["model"]) => void) => {
    const copy = structuredClone(environment);
    change(copy.model);
    return copy;
  };
  const checkpoint = await replayCheckpoint(modelDir);
  for (const lied of [
    stated((model) => (model.layers += 1)),
    stated((model) => (model.heads *= 2)),
    stated((model) => (model.hiddenSize *= 2)),
  ]) {
    const findings = await checkReplay(
      {
        config: json("config.json") as RunConfig,
        environment: lied,
        stored: storedLinesIn([], []),
        evaluation: [],
        checkpoint,
        modelNamed: true,
        tolerances: loadVerifyPolicy().replay.tolerances,
        version: json("manifest.json").version,
      },
      { samples: "all", cacheDir },
    );
    assert.deepEqual(
      findings.map((f) => f.code),
      ["E_REPLAY_MODEL_MISMATCH"],
    );
  }
});

test("replay compares the number of generated tokens compared, exactly", () => {
  const tolerances = loadVerifyPolicy().replay.tolerances;
  const stored = {
    scoredTokens: 7,
    nllBaseline: 1,
    nllCompressed: 1,
    klSum: 0,
    top1Matches: 7,
    generation: { compared: 4, matches: 4, firstDivergence: null },
    kvBytesBaseline: 1,
    kvBytesCompressed: 1,
  } as unknown as SampleRecord;
  assert.deepEqual(compareRecords(stored, structuredClone(stored), tolerances), []);
  const fresh = structuredClone(stored);
  fresh.generation = { compared: 8, matches: 4, firstDivergence: 4 };
  assert.match(compareRecords(stored, fresh, tolerances).join(), /generation\.compared 4 vs 8/);
});

test("the best shard handed over as the run: claims not judged is a warning, never a pass; its report says how many samples", async () => {
  const config = resolveConfig({
    preset: "ci-smoke",
    overrides: { model: modelDir, context: 48, continuation: 8, samples: 3, calibrationSamples: 1 },
  });
  config.claims = [
    { method: "quant", metric: "compression_ratio", op: ">=", threshold: 1, judge: "point" },
    { method: "quant", metric: "mean_kl", op: "<=", threshold: 1, judge: "point" },
  ];
  const shard = join(outDir, "shard-2-of-3.zip");
  await prove({
    config,
    out: shard,
    key: { ...key, ephemeral: false },
    cacheDir,
    shard: { index: 2, count: 3 },
  });
  const { result } = await verifyReplayed(shard);
  const claims = result.findings.filter((f) => f.check === "claims");
  assert.deepEqual(
    claims.map((f) => [f.ok, f.warning, f.code]),
    [[true, true, "W_SHARD_CLAIMS_NOT_JUDGED"]],
  );
  const read = await readBundleZip(shard);
  if (!read.ok) throw new Error("the shard is unreadable");
  assert.match(read.entries.get("report.md")!.toString("utf8"), /, 1 of the run's 3 samples of 48 context/);
});
