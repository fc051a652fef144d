/**
 * End to end on a tiny random GPT-Neo: `prove` with configs/weights-naive-vs-surgical.yaml and
 * --sensitivity writes a bundle every verifier check accepts; its weights records count
 * serialized bytes equal to their tensor fingerprints; a re-signed bundle whose weights bytes
 * were edited (summary recomputed to match, as a forger would) is rejected.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { canonicalJson, canonicalJsonl, parseJsonl } from "../../src/bundle/canonical.js";
import { ephemeralKey } from "../../src/bundle/keys.js";
import { readBundleZip } from "../../src/bundle/read.js";
import {
  type FingerprintLine,
  isWeightFingerprint,
  type SampleRecord,
  type WeightFingerprintLine,
} from "../../src/bundle/types.js";
import { resolveConfig } from "../../src/config/load.js";
import type { RunConfig } from "../../src/config/types.js";
import { type ProveResult, prove, withSensitivityVariants } from "../../src/measure/prove.js";
import { renderReportMarkdown } from "../../src/measure/report-md.js";
import { summarize } from "../../src/measure/summary.js";
import { EXIT_INVALID, EXIT_PASS, runChecks } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { fixtureKey, fixtureSignedMessage, resign } from "../helpers/bundle-fixture.js";
import { tinyModelWorkspace } from "../helpers/random-gpt-neo.js";

const { modelDir, outDir } = await tinyModelWorkspace(23, "spg-weights-e2e-");
const out = join(outDir, "weights.zip");

describe("prove with weights methods", () => {
  let config: RunConfig;
  let result: ProveResult;
  let entries: Map<string, Buffer>;

  before(async () => {
    const resolved = resolveConfig({
      preset: "weights-naive-vs-surgical",
      overrides: { model: modelDir, context: 48, continuation: 8, samples: 2, calibrationSamples: 1 },
    });
    // A random model says nothing about the presets' quality targets: keep the claims on
    // surgical, which on 2 layers keeps everything dense (boundary layers + embeddings).
    resolved.claims = resolved.claims.filter((claim) => claim.method === "surgical");
    // A policy that compresses nothing, at the checkpoint's own fp32: the compressed model is the
    // baseline, an independent check of the protocol (KL 0, cosine 1, every token agrees).
    resolved.methods.push({
      name: "identity",
      kind: "weights",
      params: { policy: "identity", baselineDtype: "fp32", rules: [], keepDense: [] },
    });
    config = withSensitivityVariants(resolved);
    result = await prove({ config, out, key: ephemeralKey(), cacheDir: join(outDir, "graphs") });
    const read = await readBundleZip(out);
    assert.ok(read.ok);
    if (read.ok) entries = read.entries;
  });

  test("the bundle passes every check; ratios are bytes from the tensor fingerprints", async () => {
    const verified = await verifyBundleFile(out, { requireTrusted: false });
    assert.deepEqual(
      verified.findings.filter((f) => !f.ok),
      [],
    );
    assert.equal(verified.exitCode, EXIT_PASS);
    assert.equal(entries.size, 8);

    const lines = parseJsonl(entries.get("fingerprints.jsonl")!) as unknown as FingerprintLine[];
    const weightLines = lines.filter(isWeightFingerprint);
    for (const method of config.methods.filter((m) => m.kind === "weights")) {
      const mine = weightLines.filter((l) => l.method === method.name);
      const bytes = mine.reduce((sum, l) => sum + l.bytes, 0);
      const baseline = mine.reduce((sum, l) => sum + l.baselineBytes, 0);
      const records = result.records.filter((r) => r.method === method.name);
      assert.equal(records.length, 2);
      for (const record of records) {
        assert.equal(record.weights?.bytesCompressed, bytes, method.name);
        assert.equal(record.weights?.bytesBaseline, baseline, method.name);
        assert.equal(record.kvBytesCompressed, record.kvBytesBaseline);
        assert.ok(record.logitCosineSum! <= record.scoredTokens + 1e-9);
      }
      assert.equal(result.summary.methods[method.name].compressionRatio, baseline / bytes);
    }
    // naive on a 16-wide model: rank 128 is capped at full rank, factors + INT8
    const wte = weightLines.find((l) => l.method === "naive" && l.tensor === "transformer.wte.weight");
    assert.equal(wte?.encoding, "lowrank");
    assert.equal(wte?.rank, 16);
    // surgical keeps both layers (first and last) and the embeddings dense: ratio exactly 1
    assert.equal(result.summary.methods.surgical.compressionRatio, 1);
  });

  test("a policy that compresses nothing measures as the baseline: ratio 1, KL 0, cosine 1, full agreement", () => {
    assert.equal(result.summary.methods.identity.compressionRatio, 1);
    for (const record of result.records.filter((r) => r.method === "identity")) {
      assert.ok(Math.abs(record.nllCompressed - record.nllBaseline) <= 1e-9 * record.nllBaseline);
      assert.ok(record.klSum <= 1e-9, `${record.klSum}`);
      assert.ok(Math.abs(record.logitCosineSum! - record.scoredTokens) <= 1e-9);
      assert.equal(record.top1Matches, record.scoredTokens);
      assert.equal(record.generation.matches, record.generation.compared);
      assert.equal(record.generation.compared, config.generation.tokens);
    }
  });

  test("replay re-runs a sample: weights records reproduce, tensor bytes bit-identical", async () => {
    const replayed = await verifyBundleFile(out, {
      requireTrusted: false,
      replay: { samples: 1, modelDir, cacheDir: join(outDir, "graphs") },
    });
    const replay = replayed.findings.filter((f) => f.check === "replay");
    assert.deepEqual(
      replay.map((f) => f.ok),
      [true],
      JSON.stringify(replay),
    );
  });

  test("sensitivity: restore/only variants per compressed unit, ranked by recovery", () => {
    const naive = result.summary.sensitivity?.naive;
    assert.ok(naive !== undefined);
    assert.deepEqual(naive.restore.map((e) => e.unit).sort(), ["embeddings", "layer0", "layer1"]);
    assert.deepEqual(naive.only.map((e) => e.unit).sort(), ["embeddings", "layer0", "layer1"]);
    for (const e of naive.restore) {
      const own = result.summary.methods.naive.perplexityIncreasePct;
      assert.equal(e.recoveredPct, own - result.summary.methods[e.method].perplexityIncreasePct);
    }
    const recovered = naive.ranking.map((unit) => naive.restore.find((e) => e.unit === unit)!.recoveredPct);
    assert.deepEqual(
      recovered,
      [...recovered].sort((a, b) => b - a),
    );
    // surgical compresses nothing here: no variants
    assert.equal(result.summary.sensitivity?.surgical, undefined);
    // a variant is its parent's policy plus a keep-dense entry: naive@restore=layer1 keeps layer 1 dense
    const restored = config.methods.find((m) => m.name === "naive@restore=layer1")!;
    assert.deepEqual((restored.params as { keepDense: unknown }).keepDense, [{ layers: [1] }]);
    const report = entries.get("report.md")!.toString("utf8");
    assert.match(report, /### Sensitivity of naive/);
  });

  const tampered = (edit: (records: SampleRecord[], lines: FingerprintLine[]) => void) => {
    const copy = new Map<string, Buffer>([...entries].map(([name, bytes]) => [name, Buffer.from(bytes)]));
    const records = parseJsonl(copy.get("records.jsonl")!) as unknown as SampleRecord[];
    const lines = parseJsonl(copy.get("fingerprints.jsonl")!) as unknown as FingerprintLine[];
    edit(records, lines);
    copy.set("records.jsonl", canonicalJsonl(records));
    copy.set("fingerprints.jsonl", canonicalJsonl(lines));
    // The forger recomputes the summary and re-signs: only the byte accounting can give it away.
    copy.set("summary.json", canonicalJson(summarize(records, config)));
    resign(copy, fixtureKey(), true);
    return runChecks({ entries: copy }, { signedMessage: fixtureSignedMessage, requireTrusted: false });
  };
  const failedCodes = (r: ReturnType<typeof runChecks>) => r.findings.filter((f) => !f.ok).map((f) => f.code);

  test("a record claiming fewer weight bytes than its fingerprints is rejected", () => {
    const checked = tampered((records) => {
      for (const r of records) if (r.method === "naive" && r.weights) r.weights.bytesCompressed = 1000;
    });
    assert.equal(checked.exitCode, EXIT_INVALID);
    assert.ok(failedCodes(checked).includes("E_CONSISTENCY_BYTES"), `${failedCodes(checked)}`);
  });

  test("a ratio counted in parameters (bytes replaced by parameter counts) is rejected", () => {
    const checked = tampered((records) => {
      for (const r of records) {
        if (r.method === "naive-scaled" && r.weights) {
          r.weights.bytesBaseline = r.weights.parametersBaseline;
          r.weights.bytesCompressed = r.weights.parametersStored;
        }
      }
    });
    assert.equal(checked.exitCode, EXIT_INVALID);
    assert.ok(failedCodes(checked).includes("E_CONSISTENCY_BYTES"));
  });

  test("a tensor fingerprint moved to another layer or module is rejected (found by the semantic fuzzer)", () => {
    for (const edit of [
      (line: WeightFingerprintLine) => {
        line.layer = line.layer === null ? 1 : line.layer + 1;
      },
      (line: WeightFingerprintLine) => {
        line.module = line.module === "wpe" ? "wte" : "wpe";
      },
    ]) {
      const checked = tampered((_records, lines) => {
        const line = lines.find(
          (l): l is WeightFingerprintLine =>
            isWeightFingerprint(l) && l.method === "naive" && l.layer !== null,
        );
        if (line === undefined) throw new Error("no layer tensor in the weights run");
        edit(line);
      });
      assert.equal(checked.exitCode, EXIT_INVALID);
      assert.ok(failedCodes(checked).includes("E_CONSISTENCY_WEIGHTS"), failedCodes(checked).join());
    }
  });

  test("a tensor fingerprint shrunk together with its records is rejected (dense bytes and policy)", () => {
    const checked = tampered((records, lines) => {
      const line = lines.find(
        (l): l is WeightFingerprintLine =>
          isWeightFingerprint(l) && l.method === "surgical" && l.encoding === "dense" && l.module === "wte",
      )!;
      const cut = line.bytes / 2;
      line.bytes -= cut;
      for (const r of records) if (r.method === "surgical" && r.weights) r.weights.bytesCompressed -= cut;
    });
    assert.equal(checked.exitCode, EXIT_INVALID);
    assert.ok(failedCodes(checked).includes("E_CONSISTENCY_WEIGHTS"));
  });

  test("a ratio claimed with no quality bound fails verify (the 853:1 pattern), however valid the bundle", () => {
    const copy = new Map<string, Buffer>([...entries].map(([name, bytes]) => [name, Buffer.from(bytes)]));
    const edited = JSON.parse(copy.get("config.json")!.toString("utf8")) as RunConfig;
    edited.claims = [
      { method: "naive-scaled", metric: "compression_ratio", op: ">=", threshold: 2, judge: "point" },
    ];
    copy.set("config.json", canonicalJson(edited));
    const summary = summarize(result.records, edited);
    copy.set("summary.json", canonicalJson(summary));
    const environment = JSON.parse(copy.get("environment.json")!.toString("utf8"));
    copy.set("report.md", Buffer.from(renderReportMarkdown(edited, summary, environment)));
    resign(copy, fixtureKey(), true);
    const checked = runChecks(
      { entries: copy },
      { signedMessage: fixtureSignedMessage, requireTrusted: false },
    );
    // The claims check and the verifier's policy both refuse it.
    assert.deepEqual(failedCodes(checked), ["E_CLAIM_NO_QUALITY_BOUND", "E_POLICY_QUALITY_BOUND"]);
  });

  test("a sensitivity variant whose params are not derived from its parent is rejected", () => {
    const copy = new Map<string, Buffer>([...entries].map(([name, bytes]) => [name, Buffer.from(bytes)]));
    const edited = JSON.parse(copy.get("config.json")!.toString("utf8")) as RunConfig;
    const variant = edited.methods.find((m) => m.name === "naive@restore=layer0")!;
    (variant.params as { keepDense: unknown[] }).keepDense = [{ layers: [1] }];
    copy.set("config.json", canonicalJson(edited));
    resign(copy, fixtureKey(), true);
    const checked = runChecks(
      { entries: copy },
      { signedMessage: fixtureSignedMessage, requireTrusted: false },
    );
    assert.ok(failedCodes(checked).includes("E_CONSISTENCY_SENSITIVITY"));
  });
});
