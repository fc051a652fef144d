/**
 * examples/python-producer, a bundle writer in Python written from docs/bundle-format.md
 * alone: `spg verify` accepts what it writes, rejects it once a record is edited, and the
 * entries it rebuilds from spg's own measurements are byte-identical to spg's (canonical
 * JSON, summary, bootstrap, frontiers and claims all as the page specifies).
 * Needs Debian's python3-nacl (.ci/run installs it): skipped with a message without it,
 * failing under CI=true.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { canonicalJsonl, canonicalJsonString } from "../../src/bundle/canonical.js";
import { readBundleZip } from "../../src/bundle/read.js";
import type { EnvironmentFile, FingerprintLine, SampleRecord } from "../../src/bundle/types.js";
import { zipEntries } from "../../src/bundle/write.js";
import type { RunConfig } from "../../src/config/types.js";
import { renderReportMarkdown } from "../../src/measure/report-md.js";
import { summarize } from "../../src/measure/summary.js";
import { packageRoot } from "../../src/paths.js";

const root = packageRoot();
const example = join(root, "examples", "python-producer");
const referenceBundle = join(root, "bundles", "default.zip");

/** The first Python 3 that can import nacl (a pyenv shim may shadow Debian's /usr/bin/python3). */
function findPython(): string | undefined {
  const candidates = [process.env.PYTHON, "python3", "/usr/bin/python3"].filter(
    (candidate): candidate is string => candidate !== undefined && candidate !== "",
  );
  return candidates.find(
    (python) => spawnSync(python, ["-c", "import nacl.signing"], { encoding: "utf8" }).status === 0,
  );
}

const python = findPython();
const missing =
  python === undefined
    ? "python3-nacl is not installed (apt-get install -y python3-nacl): the Python producer test needs it"
    : undefined;
if (missing !== undefined && process.env.CI === "true") {
  test("python3-nacl is installed under CI", () => assert.fail(missing));
}

function run(command: string, args: string[], cwd = example) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  return result;
}

function py(args: string[]) {
  const result = run(python as string, args);
  assert.equal(result.status, 0, `${args.join(" ")}\n${result.stdout}\n${result.stderr}`);
  return result;
}

function spgVerify(bundle: string, keys: string) {
  return run(process.execPath, [
    join(root, "bin", "run.js"),
    "verify",
    bundle,
    "--trusted-keys",
    keys,
    "--json",
    // Replay of the bundled model's samples is tested in test/verify (and takes minutes here).
    "--no-replay",
  ]);
}

function failingCodes(stdout: string): string[] {
  const report = JSON.parse(stdout) as { findings: { ok: boolean; code: string }[] };
  return report.findings.filter((f) => !f.ok).map((f) => f.code);
}

/**
 * What spg writes for a bundle's measurements without what this version 1 producer does not
 * write (format version 3's runCost and slotsRead, and the optional generated token ids): the
 * entries the producer must reproduce byte for byte.
 */
function withoutRunCost(entries: Map<string, Buffer>): Map<string, Buffer> {
  const lines = (name: string) =>
    entries
      .get(name)!
      .toString("utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const records = lines("records.jsonl").map(({ runCost: _cost, generation, ...record }) => {
    const { baselineTokens: _baseline, tokens: _tokens, ...counts } = generation as Record<string, unknown>;
    return { ...record, generation: counts };
  }) as unknown as SampleRecord[];
  const fingerprints = lines("fingerprints.jsonl").map(
    ({ slotsRead: _slots, ...line }) => line,
  ) as unknown as FingerprintLine[];
  const config = JSON.parse(entries.get("config.json")!.toString("utf8")) as RunConfig;
  const environment = JSON.parse(entries.get("environment.json")!.toString("utf8")) as EnvironmentFile;
  const summary = summarize(records, config);
  return new Map([
    ["config.json", entries.get("config.json")!],
    ["environment.json", entries.get("environment.json")!],
    ["records.jsonl", canonicalJsonl(records)],
    ["fingerprints.jsonl", canonicalJsonl(fingerprints)],
    ["summary.json", Buffer.from(canonicalJsonString(summary))],
    ["report.md", Buffer.from(renderReportMarkdown(config, summary, environment))],
  ]);
}

async function entriesOf(bundle: string): Promise<Map<string, Buffer>> {
  const read = await readBundleZip(bundle);
  assert.ok(read.ok, bundle);
  return read.entries;
}

test("the Python producer's bundle verifies, and is rejected once a record is edited", {
  skip: missing,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "spg-python-producer-"));
  try {
    py(["produce.py", "--new-key", join(dir, "key")]);
    const keys = join(dir, "key", "trusted-keys.txt");
    const produce = (input: string, out: string) =>
      py([
        "produce.py",
        ...["--run", join(input, "run.json"), "--records", join(input, "records.csv")],
        ...["--layers", join(input, "layers.csv"), "--key", join(dir, "key", "signing-key.json")],
        ...["--out", out],
      ]);

    // The committed example, as a user would run it.
    const fromExample = join(dir, "example.zip");
    produce(join(example, "example"), fromExample);
    const accepted = spgVerify(fromExample, keys);
    assert.equal(accepted.status, 0, accepted.stdout + accepted.stderr);

    // spg's own measurements, exported to CSV and rebuilt: the same bytes spg writes for them
    // (the run cost of format version 3 aside: this producer writes version 1).
    py(["export_from_bundle.py", referenceBundle, join(dir, "in")]);
    const rebuilt = join(dir, "rebuilt.zip");
    produce(join(dir, "in"), rebuilt);
    assert.equal(spgVerify(rebuilt, keys).status, 0);
    const ours = await entriesOf(rebuilt);
    const spgs = withoutRunCost(await entriesOf(referenceBundle));
    for (const name of [
      "config.json",
      "environment.json",
      "records.jsonl",
      "fingerprints.jsonl",
      "summary.json",
      // report.md is rendered by the producer exactly as spg renders it (verify compares it).
      "report.md",
    ]) {
      assert.ok(ours.get(name)?.equals(spgs.get(name) as Buffer), `${name} differs from spg's`);
    }

    // A record edited after signing: the manifest no longer matches (exit 4).
    const records = (ours.get("records.jsonl") as Buffer).toString("utf8");
    const edited = records.replace(
      /"nllCompressed":([0-9.]+)/,
      (_, value) => `"nllCompressed":${Number(value) - 1}`,
    );
    assert.notEqual(edited, records);
    const tampered = join(dir, "tampered.zip");
    const entries = [...ours].map(([name, data]) => ({
      name,
      data: name === "records.jsonl" ? Buffer.from(edited, "utf8") : data,
    }));
    writeFileSync(tampered, await zipEntries(entries));
    const rejected = spgVerify(tampered, keys);
    assert.equal(rejected.status, 4);
    // The hash fails, and nothing runs on the edited bytes: every later check says it was skipped.
    const rejectedCodes = failingCodes(rejected.stdout);
    assert.equal(rejectedCodes[0], "E_INTEGRITY_HASH");
    assert.ok(rejectedCodes.length > 1 && rejectedCodes.slice(1).every((code) => code === "E_CHECK_SKIPPED"));

    // The same edit re-signed by the producer but with the old summary: recompute catches it (exit 5).
    const resigned = join(dir, "resigned.zip");
    writeFileSync(join(dir, "records.jsonl"), edited);
    py([
      "-c",
      [
        "import json, sys, nacl.signing",
        "from spg_bundle import write_bundle",
        "from produce import read_signing_key, TOOL",
        "d = sys.argv[1]",
        "run = json.load(open(d + '/in/run.json'))",
        "records = [json.loads(l) for l in open(d + '/records.jsonl')]",
        "import zipfile",
        "z = zipfile.ZipFile(d + '/rebuilt.zip')",
        "layers = [json.loads(l) for l in z.read('fingerprints.jsonl').splitlines()]",
        "summary = json.loads(z.read('summary.json'))",
        "write_bundle(d + '/resigned.zip', run['config'], run['environment'], records, layers, summary,",
        "             'edited', read_signing_key(d + '/key/signing-key.json'), TOOL, '2026-01-01T00:00:00.000Z')",
      ].join("\n"),
      dir,
    ]);
    const lied = spgVerify(resigned, keys);
    assert.equal(lied.status, 5, lied.stdout);
    assert.deepEqual(failingCodes(lied.stdout), ["E_RECOMPUTE_MISMATCH", "E_REPORT_MD_MISMATCH"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
