import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ephemeralKey } from "../../src/bundle/keys.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { resolveConfig } from "../../src/config/load.js";
import { prove } from "../../src/measure/prove.js";
import { checkReplay, replayIndices } from "../../src/verify/checks/replay.js";
import { EXIT_INVALID } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { writeRandomGptNeo } from "../helpers/random-gpt-neo.js";

const shape = { hidden: 16, layers: 2, heads: 2, window: 16, maxPositions: 128 };
const modelDir = writeRandomGptNeo({ ...shape, seed: 3 });
const otherModelDir = writeRandomGptNeo({ ...shape, seed: 4 });
const outDir = mkdtempSync(join(tmpdir(), "spg-replay-"));
const bundle = join(outDir, "run.zip");
const cacheDir = join(outDir, "graphs");

before(async () => {
  const config = resolveConfig({
    preset: "ci-smoke",
    overrides: { model: modelDir, context: 48, continuation: 8, samples: 2, calibrationSamples: 1 },
  });
  config.claims = [];
  await prove({ config, out: bundle, key: ephemeralKey(), cacheDir });
});
after(() => {
  for (const dir of [modelDir, otherModelDir, outDir]) rmSync(dir, { recursive: true, force: true });
});

test("replay indices are distinct, sorted, deterministic and cover everything when asked for all", () => {
  const a = replayIndices(10, 4, 42);
  assert.deepEqual(a, replayIndices(10, 4, 42));
  assert.equal(new Set(a).size, 4);
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  assert.deepEqual(replayIndices(5, 9, 1), [0, 1, 2, 3, 4]);
});

test("an honest bundle replays within tolerance", async () => {
  const result = await verifyBundleFile(bundle, {
    requireTrusted: false,
    replay: { samples: 2, modelDir, cacheDir },
  });
  assert.deepEqual(
    result.findings.filter((f) => !f.ok),
    [],
  );
  assert.ok(result.findings.some((f) => f.check === "replay" && f.ok));
  assert.equal(result.exitCode, 0);
});

test("records that were not measured do not replay; nor does another model", async () => {
  const read = await readBundleZip(bundle);
  assert.ok(read.ok);
  if (!read.ok) return;
  const entries = new Map(read.entries);
  const lines = entries.get("records.jsonl")!.toString("utf8").trim().split("\n");
  const forged = lines.map((line) => {
    const record = JSON.parse(line);
    if (record.method === "spg") record.nllCompressed = record.nllBaseline;
    return JSON.stringify(record);
  });
  entries.set("records.jsonl", Buffer.from(`${forged.join("\n")}\n`));
  const findings = await checkReplay(entries, { samples: 2, modelDir, cacheDir });
  assert.ok(
    findings.some((f) => !f.ok && f.code === "E_REPLAY_RECORD"),
    JSON.stringify(findings),
  );

  const wrongModel = await checkReplay(read.entries, { samples: 1, modelDir: otherModelDir, cacheDir });
  assert.deepEqual(
    wrongModel.map((f) => f.code),
    ["E_REPLAY_MODEL_MISMATCH"],
  );
  const result = await verifyBundleFile(bundle, {
    requireTrusted: false,
    replay: { samples: 1, modelDir: otherModelDir, cacheDir },
  });
  assert.equal(result.exitCode, EXIT_INVALID);
});
