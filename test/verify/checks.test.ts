import assert from "node:assert/strict";
import { test } from "node:test";
import type { Summary } from "../../src/bundle/types.js";
import { summarize } from "../../src/measure/summary.js";
import { checkClaims } from "../../src/verify/checks/claims.js";
import { checkConsistency } from "../../src/verify/checks/consistency.js";
import { checkProtocol } from "../../src/verify/checks/protocol.js";
import { checkRecompute } from "../../src/verify/checks/recompute.js";
import { checkSchemas, schemaCode } from "../../src/verify/checks/schemas.js";
import type { Finding } from "../../src/verify/types.js";
import {
  buildEntries,
  bundleFixture,
  type FixtureParts,
  fixtureParts,
  fixtureValidators,
} from "../helpers/bundle-fixture.js";

const validators = fixtureValidators();
const codes = (findings: Finding[]) =>
  findings.filter((finding) => !finding.ok).map((finding) => finding.code);
const consistency = (parts: FixtureParts) => codes(checkConsistency(parts));
const protocol = (parts: FixtureParts) =>
  codes(checkProtocol({ config: parts.config, environment: parts.environment, records: parts.records }));

test("schemas: the fixture validates; extra properties, NaN, Infinity and bad lines fail by file", () => {
  assert.deepEqual(codes(checkSchemas(bundleFixture().contents, validators)), []);
  assert.equal(schemaCode("records.jsonl"), "E_SCHEMA_RECORDS");

  const extra = fixtureParts();
  (extra.environment as unknown as Record<string, unknown>).note = "x";
  (extra.fingerprints[3] as unknown as Record<string, unknown>).extra = 1;
  const findings = checkSchemas({ entries: buildEntries(extra) }, validators);
  assert.deepEqual(codes(findings), ["E_SCHEMA_ENVIRONMENT", "E_SCHEMA_FINGERPRINTS"]);
  assert.match(findings[1].message, /line 4 \/: must NOT have additional properties \(extra\)/);

  const nan = bundleFixture().contents;
  const lines = nan.entries.get("records.jsonl")!.toString("utf8").split("\n");
  lines[2] = lines[2].replace(/"klSum":[^,]+/, '"klSum":NaN');
  nan.entries.set("records.jsonl", Buffer.from(lines.join("\n")));
  const nanFindings = checkSchemas(nan, validators);
  assert.deepEqual(codes(nanFindings), ["E_JSON_SYNTAX"]);
  assert.match(nanFindings[0].message, /line 3 is not valid JSON/);

  // 1e999 parses to Infinity, which canonical JSON cannot hold.
  lines[2] = lines[2].replace('"klSum":NaN', '"klSum":1e999');
  nan.entries.set("records.jsonl", Buffer.from(lines.join("\n")));
  const infinity = checkSchemas(nan, validators);
  assert.deepEqual(codes(infinity), ["E_JSON_NOT_CANONICAL"]);
  assert.match(infinity[0].message, /line 3 holds a value canonical JSON cannot/);

  const blank = bundleFixture().contents;
  blank.entries.set("summary.json", Buffer.from([0xff, 0xfe]));
  blank.entries.set("fingerprints.jsonl", Buffer.from(""));
  assert.deepEqual(codes(checkSchemas(blank, validators)), ["E_SCHEMA_FINGERPRINTS", "E_ENTRY_UTF8"]);

  const noSchema = new Map(validators);
  noSchema.set("environment.json", { schemaFile: "environment.schema.json", error: "not found" });
  assert.deepEqual(codes(checkSchemas(bundleFixture().contents, noSchema)), ["E_SCHEMA_UNAVAILABLE"]);
});

test("consistency: the fixture agrees with itself", () => {
  const findings = checkConsistency(fixtureParts());
  assert.deepEqual(codes(findings), []);
  assert.match(findings[0].message, /3 samples × 2 methods × 2 layers/);
});

test("consistency: fingerprint bytes must sum to the record's compressed bytes", () => {
  const parts = fixtureParts();
  const record = parts.records.find((r) => r.method === "stream")!;
  record.kvBytesCompressed = Math.floor(record.kvBytesCompressed / 100); // a 100x "ratio" the layers do not back
  assert.deepEqual(consistency(parts), ["E_CONSISTENCY_BYTES"]);
});

test("consistency: a layer's bit histogram must fit in its stated bytes", () => {
  const parts = fixtureParts();
  const fingerprint = parts.fingerprints.find((f) => f.method === "stream")!;
  const record = parts.records.find((r) => r.sampleId === fingerprint.sampleId && r.method === "stream")!;
  fingerprint.bytes -= 100;
  record.kvBytesCompressed -= 100;
  assert.deepEqual(consistency(parts), ["E_CONSISTENCY_FINGERPRINT"]);
});

test("consistency: baseline bytes are the full context cache, not a count of anything else", () => {
  const parts = fixtureParts();
  for (const record of parts.records) record.kvBytesBaseline *= 2; // e.g. counted at fp32 while fp16 is configured
  for (const fingerprint of parts.fingerprints) if (fingerprint.method === "full") fingerprint.bytes *= 2;
  for (const record of parts.records) if (record.method === "full") record.kvBytesCompressed *= 2;
  assert.deepEqual(consistency(parts), ["E_CONSISTENCY_BASELINE_BYTES"]);
});

test("consistency: layers, duplicates, missing methods, unknown methods, sample count", () => {
  const layers = fixtureParts();
  layers.fingerprints = layers.fingerprints.filter(
    (f) => !(f.sampleId === "eval-0001" && f.layer === 1 && f.method === "stream"),
  );
  assert.deepEqual(consistency(layers), ["E_CONSISTENCY_LAYERS"]);

  const duplicate = fixtureParts();
  duplicate.records.push({ ...duplicate.records[0] });
  duplicate.fingerprints.push({ ...duplicate.fingerprints[0] });
  assert.deepEqual(consistency(duplicate), [
    "E_CONSISTENCY_DUPLICATE_RECORD",
    "E_CONSISTENCY_DUPLICATE_FINGERPRINT",
  ]);

  const missing = fixtureParts();
  missing.records = missing.records.filter((r) => !(r.sampleId === "eval-0002" && r.method === "stream"));
  missing.fingerprints = missing.fingerprints.filter(
    (f) => !(f.sampleId === "eval-0002" && f.method === "stream"),
  );
  assert.deepEqual(consistency(missing), ["E_CONSISTENCY_MISSING_RECORD"]);

  const unknown = fixtureParts();
  unknown.config.methods = unknown.config.methods.filter((m) => m.name !== "stream");
  unknown.config.claims = [];
  assert.deepEqual(consistency(unknown), ["E_CONSISTENCY_UNKNOWN_METHOD"]);

  const count = fixtureParts();
  count.config.dataset.samples = 4;
  assert.deepEqual(consistency(count), ["E_CONSISTENCY_SAMPLE_COUNT"]);

  const orphan = fixtureParts();
  orphan.fingerprints.push({ ...orphan.fingerprints[0], sampleId: "eval-0009" });
  assert.deepEqual(consistency(orphan), ["E_CONSISTENCY_ORPHAN_FINGERPRINT"]);
});

test("consistency: token counts, generation, identity and the shared baseline", () => {
  const scored = fixtureParts();
  for (const record of scored.records) record.scoredTokens += 1; // scoring the fed token too
  assert.deepEqual(consistency(scored), ["E_CONSISTENCY_TOKENS"]);

  const generation = fixtureParts();
  generation.records[3].generation = { compared: 6, matches: 6, firstDivergence: 2 };
  assert.deepEqual(consistency(generation), ["E_CONSISTENCY_GENERATION"]);

  const identity = fixtureParts();
  identity.records[1].tokenHash = identity.records[3].tokenHash;
  assert.deepEqual(consistency(identity), ["E_CONSISTENCY_SAMPLE_IDENTITY"]);

  const baseline = fixtureParts();
  baseline.records[1].nllBaseline += 1; // stream's "baseline" is not the shared prefill's
  assert.deepEqual(consistency(baseline), ["E_CONSISTENCY_BASELINE_NLL"]);

  const noFull = fixtureParts();
  noFull.config.methods.reverse();
  assert.deepEqual(consistency(noFull), ["E_CONSISTENCY_NO_BASELINE"]);

  const twice = fixtureParts();
  twice.config.methods.push({ ...twice.config.methods[1] });
  assert.deepEqual(consistency(twice), ["E_CONSISTENCY_DUPLICATE_METHOD"]);

  const full = fixtureParts();
  full.records[0].kvBytesCompressed += 2;
  full.fingerprints[0].bytes += 2;
  assert.deepEqual(consistency(full), ["E_CONSISTENCY_FULL_METHOD"]);
});

test("recompute: field paths of every difference; 1e-9 relative slack only", () => {
  const parts = fixtureParts();
  const summary = summarize(parts.records, parts.config);
  assert.deepEqual(codes(checkRecompute({ ...parts, summary })), []);
  const edited = structuredClone(summary) as Summary & Record<string, unknown>;
  edited.methods.stream.perplexityIncreasePct *= 1 + 1e-12; // last-bit noise: accepted
  assert.deepEqual(codes(checkRecompute({ ...parts, summary: edited })), []);
  edited.methods.stream.meanKl *= 1 + 1e-6;
  edited.methods.stream.intervals.meanKl.high = 0;
  edited.claims[0].pass = false;
  edited.extra = 1;
  const findings = checkRecompute({ ...parts, summary: edited });
  assert.deepEqual(codes(findings), ["E_RECOMPUTE_MISMATCH"]);
  const examples = (findings[0].details!.examples as string[]).map((line) => line.split(":")[0]);
  assert.deepEqual(examples, [
    "summary.methods.stream.meanKl",
    "summary.methods.stream.intervals.meanKl.high",
    "summary.claims[0].pass",
    "summary.extra",
  ]);
});

test("claims: judged on recomputed values; ratio without a quality bound; wrong direction; unknown method", () => {
  const parts = fixtureParts();
  const recomputed = summarize(parts.records, parts.config);
  assert.deepEqual(codes(checkClaims(parts.config, recomputed)), []);

  const strict = fixtureParts().config;
  strict.claims[0].threshold = 1.7; // the pooled ratio is 3072 / 1920 = 1.6
  const failed = checkClaims(strict, recomputed);
  assert.deepEqual(codes(failed), ["E_CLAIM_FAILED"]);
  assert.equal(failed[0].details?.value, 1.6);

  const ratioOnly = fixtureParts().config;
  ratioOnly.claims = [ratioOnly.claims[0]];
  assert.deepEqual(codes(checkClaims(ratioOnly, recomputed)), ["E_CLAIM_NO_QUALITY_BOUND"]);

  const backwards = fixtureParts().config;
  backwards.claims.push({
    method: "stream",
    metric: "compression_ratio",
    op: "<=",
    threshold: 1000,
    judge: "point",
  });
  backwards.claims.push({ method: "nope", metric: "mean_kl", op: "<=", threshold: 1, judge: "point" });
  assert.deepEqual(codes(checkClaims(backwards, recomputed)), [
    "E_CLAIM_DIRECTION",
    "E_CLAIM_UNKNOWN_METHOD",
  ]);

  const none = fixtureParts().config;
  none.claims = [];
  const noClaims = checkClaims(none, recomputed);
  assert.equal(noClaims[0].ok, true);
  assert.match(noClaims[0].message, /no claims stated/);
});

test("protocol: disjoint samples, counts, hashes, splits, device", () => {
  assert.deepEqual(protocol(fixtureParts()), []);

  const leak = fixtureParts();
  leak.environment.calibration.samples[1].tokenHash = leak.environment.evaluation.samples[2].tokenHash;
  assert.deepEqual(protocol(leak), ["E_PROTOCOL_LEAK"]);

  const noModelHash = fixtureParts();
  delete (noModelHash.environment.model as Partial<FixtureParts["environment"]["model"]>).sha256;
  assert.deepEqual(protocol(noModelHash), ["E_PROTOCOL_MODEL_HASH"]);

  const noDatasetHash = fixtureParts();
  noDatasetHash.environment.dataset.calibrationSha256 = "";
  assert.deepEqual(protocol(noDatasetHash), ["E_PROTOCOL_DATASET_HASH"]);

  const sameSplit = fixtureParts();
  sameSplit.config.dataset.calibrationSplit = "eval";
  sameSplit.environment.dataset.calibrationSplit = "eval";
  assert.deepEqual(protocol(sameSplit), ["E_PROTOCOL_SAME_SPLIT"]);

  const counts = fixtureParts();
  counts.environment.calibration.samples.pop();
  assert.deepEqual(protocol(counts), ["E_PROTOCOL_SAMPLE_COUNT"]);

  const unknown = fixtureParts();
  unknown.records[0].tokenHash = "f".repeat(64);
  assert.deepEqual(protocol(unknown), ["E_PROTOCOL_UNKNOWN_SAMPLE"]);

  const device = fixtureParts();
  device.config.model.device = "cuda";
  assert.deepEqual(protocol(device), ["E_PROTOCOL_DEVICE"]);

  const hardware = fixtureParts();
  hardware.environment.hardwareCheck.verdict = "fail";
  assert.deepEqual(protocol(hardware), ["E_PROTOCOL_HARDWARE_CHECK"]);

  const duplicate = fixtureParts();
  duplicate.environment.evaluation.samples[1] = { ...duplicate.environment.evaluation.samples[0] };
  assert.ok(protocol(duplicate).includes("E_PROTOCOL_DUPLICATE_SAMPLE"));

  assert.deepEqual(codes(checkProtocol({ config: undefined, environment: "x", records: undefined })), [
    "E_PROTOCOL_NO_ENVIRONMENT",
  ]);
});

test("the fixture scaled up (benchmark input) is still consistent", () => {
  const parts = fixtureParts({ samples: 10 });
  assert.deepEqual(codes(checkConsistency(parts)), []);
  assert.deepEqual(protocol(parts), []);
});
