import {
  type EnvironmentFile,
  type FingerprintLine,
  isWeightFingerprint,
  type LayerFingerprint,
  type SampleRecord,
  type WeightFingerprintLine,
} from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { compareGenerations } from "../../measure/metrics.js";
import { FailureCollector } from "../collect.js";
import { type Finding, pass } from "../types.js";
import { checkWeightsConsistency } from "./weights-consistency.js";

const CHECK = "consistency" as const;

/** Bytes per element of the baseline cache dtype (a format constant). */
const BASELINE_DTYPE_BYTES: Record<RunConfig["kv"]["baselineDtype"], number> = { fp16: 2, fp32: 4 };

export interface ConsistencyInput {
  config: RunConfig;
  environment: EnvironmentFile;
  records: SampleRecord[];
  fingerprints: FingerprintLine[];
  /** Samples the records must cover: a shard's own (shard.json); default config.dataset.samples. */
  expectedSamples?: number;
}

/** Fields every record of one sample must agree on, whatever the method. */
const SAMPLE_IDENTITY_FIELDS = [
  "sampleIndex",
  "tokenHash",
  "document",
  "offset",
  "contextTokens",
  "continuationTokens",
  "scoredTokens",
  "kvBytesBaseline",
] as const;

/**
 * Records and fingerprints describe the same run: unique ids; every configured method for
 * every sample, nothing else; token counts as configured (the first continuation token is
 * fed, not scored); the baseline KV bytes are the full context cache in the configured dtype
 * (2 · layers · hiddenSize · contextTokens · dtype bytes); one fingerprint per model layer
 * whose bytes sum to the record's compressed bytes and whose bit histogram fits in them;
 * the baseline NLL of a sample is the same for every method (same prefill), within
 * tolerances.nllPerToken per scored token.
 */
export function checkConsistency(input: ConsistencyInput): Finding[] {
  const { config, environment, records } = input;
  const failures = new FailureCollector(CHECK);
  // KV layers here; weights methods' tensor lines in weights-consistency.ts.
  const fingerprints = input.fingerprints.filter((f): f is LayerFingerprint => !isWeightFingerprint(f));
  const weightLines = input.fingerprints.filter((f): f is WeightFingerprintLine => isWeightFingerprint(f));
  const methodKinds = new Map(config.methods.map((method) => [method.name, method.kind]));
  const layers = environment.model.layers;
  const baselineBytes =
    2 *
    layers *
    environment.model.hiddenSize *
    config.dataset.contextTokens *
    BASELINE_DTYPE_BYTES[config.kv.baselineDtype];

  if (methodKinds.size !== config.methods.length) {
    failures.add("E_CONSISTENCY_DUPLICATE_METHOD", "config.methods names a method more than once");
  }
  if (config.methods[0]?.kind !== "full") {
    failures.add("E_CONSISTENCY_NO_BASELINE", `config.methods[0] must be the "full" (uncompressed) method`);
  }

  // Records: unique (sample, method); identity agrees across methods; counts as configured.
  const bySample = new Map<string, Map<string, SampleRecord>>();
  const sampleOfIndex = new Map<number, string>();
  for (const record of records) {
    const where = `record ${record.sampleId}/${record.method}`;
    if (!methodKinds.has(record.method)) {
      failures.add(
        "E_CONSISTENCY_UNKNOWN_METHOD",
        `${where}: method "${record.method}" is not in config.methods`,
      );
    }
    let methods = bySample.get(record.sampleId);
    if (methods === undefined) {
      methods = new Map();
      bySample.set(record.sampleId, methods);
    }
    if (methods.has(record.method)) {
      failures.add("E_CONSISTENCY_DUPLICATE_RECORD", `${where} appears more than once`);
      continue;
    }
    const first = methods.values().next().value as SampleRecord | undefined;
    methods.set(record.method, record);
    if (first !== undefined) {
      for (const field of SAMPLE_IDENTITY_FIELDS) {
        if (record[field] !== first[field]) {
          failures.add(
            "E_CONSISTENCY_SAMPLE_IDENTITY",
            `${where}: ${field} ${String(record[field])} differs from method ${first.method}'s ${String(first[field])}`,
          );
        }
      }
      const allowed = config.tolerances.nllPerToken * record.scoredTokens;
      if (Math.abs(record.nllBaseline - first.nllBaseline) > allowed) {
        failures.add(
          "E_CONSISTENCY_BASELINE_NLL",
          `${where}: baseline NLL ${record.nllBaseline} differs from method ${first.method}'s ${first.nllBaseline} (same prefill)`,
        );
      }
    } else {
      const owner = sampleOfIndex.get(record.sampleIndex);
      if (owner !== undefined && owner !== record.sampleId) {
        failures.add(
          "E_CONSISTENCY_SAMPLE_IDENTITY",
          `${where}: sampleIndex ${record.sampleIndex} is also sample ${owner}'s`,
        );
      }
      sampleOfIndex.set(record.sampleIndex, record.sampleId);
    }
    if (record.contextTokens !== config.dataset.contextTokens) {
      failures.add(
        "E_CONSISTENCY_TOKENS",
        `${where}: contextTokens ${record.contextTokens}, config says ${config.dataset.contextTokens}`,
      );
    }
    if (record.continuationTokens !== config.dataset.continuationTokens) {
      failures.add(
        "E_CONSISTENCY_TOKENS",
        `${where}: continuationTokens ${record.continuationTokens}, config says ${config.dataset.continuationTokens}`,
      );
    }
    if (record.scoredTokens !== record.continuationTokens - 1) {
      failures.add(
        "E_CONSISTENCY_TOKENS",
        `${where}: scoredTokens ${record.scoredTokens}, expected continuationTokens - 1 = ${record.continuationTokens - 1}`,
      );
    }
    if (record.top1Matches > record.scoredTokens) {
      failures.add(
        "E_CONSISTENCY_TOKENS",
        `${where}: top1Matches ${record.top1Matches} > scoredTokens ${record.scoredTokens}`,
      );
    }
    const generation = record.generation;
    const divergence = generation.firstDivergence;
    if (
      generation.compared > config.generation.tokens ||
      generation.matches > generation.compared ||
      (divergence === null) !== (generation.matches === generation.compared) ||
      (divergence !== null && (divergence >= generation.compared || generation.matches < divergence))
    ) {
      failures.add(
        "E_CONSISTENCY_GENERATION",
        `${where}: generation ${JSON.stringify(generation)} impossible with ${config.generation.tokens} generated tokens`,
      );
    }
    if (generation.tokens !== undefined || generation.baselineTokens !== undefined) {
      // The token ids shown in the report must be the ones the agreement figures count.
      const recounted = compareGenerations(generation.baselineTokens ?? [], generation.tokens ?? []);
      if (
        recounted.compared !== generation.compared ||
        recounted.matches !== generation.matches ||
        recounted.firstDivergence !== generation.firstDivergence
      ) {
        failures.add(
          "E_CONSISTENCY_GENERATION",
          `${where}: generated tokens give ${JSON.stringify(recounted)}, the record says compared ${generation.compared}, matches ${generation.matches}, firstDivergence ${generation.firstDivergence}`,
        );
      }
    }
    if (record.kvBytesBaseline !== baselineBytes) {
      failures.add(
        "E_CONSISTENCY_BASELINE_BYTES",
        `${where}: kvBytesBaseline ${record.kvBytesBaseline}, but the full ${config.kv.baselineDtype} context cache is ${baselineBytes} bytes`,
      );
    }
    if (methodKinds.get(record.method) === "full" && record.kvBytesCompressed !== record.kvBytesBaseline) {
      failures.add(
        "E_CONSISTENCY_FULL_METHOD",
        `${where}: the full method stores ${record.kvBytesCompressed} bytes, not the baseline's ${record.kvBytesBaseline}`,
      );
    }
  }
  const expectedSamples = input.expectedSamples ?? config.dataset.samples;
  if (bySample.size !== expectedSamples) {
    failures.add(
      "E_CONSISTENCY_SAMPLE_COUNT",
      `records cover ${bySample.size} samples; ${input.expectedSamples === undefined ? "config.dataset.samples" : "shard.json"} is ${expectedSamples}`,
    );
  }
  for (const [sampleId, methods] of bySample) {
    for (const name of methodKinds.keys()) {
      if (!methods.has(name))
        failures.add("E_CONSISTENCY_MISSING_RECORD", `sample ${sampleId} has no record for method "${name}"`);
    }
  }

  // Fingerprints: one per (sample, method, layer) of a record, covering every layer once.
  const layersSeen = new Map<string, { layers: Set<number>; bytes: number }>();
  for (const fingerprint of fingerprints) {
    const key = `${fingerprint.sampleId}/${fingerprint.method}`;
    const where = `fingerprint ${key}/layer ${fingerprint.layer}`;
    const record = bySample.get(fingerprint.sampleId)?.get(fingerprint.method);
    if (record === undefined) {
      failures.add("E_CONSISTENCY_ORPHAN_FINGERPRINT", `${where} has no record`);
      continue;
    }
    let seen = layersSeen.get(key);
    if (seen === undefined) {
      seen = { layers: new Set(), bytes: 0 };
      layersSeen.set(key, seen);
    }
    if (seen.layers.has(fingerprint.layer)) {
      failures.add("E_CONSISTENCY_DUPLICATE_FINGERPRINT", `${where} appears more than once`);
      continue;
    }
    if (fingerprint.layer >= layers) {
      failures.add("E_CONSISTENCY_LAYERS", `${where}: the model has ${layers} layers`);
      continue;
    }
    seen.layers.add(fingerprint.layer);
    seen.bytes += fingerprint.bytes;
    const slots = environment.model.heads * record.contextTokens;
    if (fingerprint.tokensTotal !== slots || fingerprint.tokensKept > fingerprint.tokensTotal) {
      failures.add(
        "E_CONSISTENCY_FINGERPRINT",
        `${where}: keeps ${fingerprint.tokensKept} of ${fingerprint.tokensTotal} slots; the full cache has heads · contextTokens = ${slots}`,
      );
    }
    if (fingerprint.headsFullPrecision > environment.model.heads) {
      failures.add(
        "E_CONSISTENCY_FINGERPRINT",
        `${where}: ${fingerprint.headsFullPrecision} heads at full precision, the model has ${environment.model.heads}`,
      );
    }
    let bits = 0;
    for (const [width, count] of Object.entries(fingerprint.bitsHistogram)) bits += Number(width) * count;
    if (Math.ceil(bits / 8) > fingerprint.bytes) {
      failures.add(
        "E_CONSISTENCY_FINGERPRINT",
        `${where}: its bit histogram needs ${Math.ceil(bits / 8)} bytes but it states ${fingerprint.bytes}`,
      );
    }
  }
  for (const [sampleId, methods] of bySample) {
    for (const [method, record] of methods) {
      const seen = layersSeen.get(`${sampleId}/${method}`);
      if (methodKinds.get(method) === "weights") {
        // A weights method compresses no cache: no layer fingerprints, its tensors' instead.
        if (seen !== undefined) {
          failures.add(
            "E_CONSISTENCY_LAYERS",
            `${sampleId}/${method}: a weights method has KV layer fingerprints`,
          );
        }
        continue;
      }
      const count = seen?.layers.size ?? 0;
      if (count !== layers) {
        failures.add(
          "E_CONSISTENCY_LAYERS",
          `${sampleId}/${method}: fingerprints for ${count} of the model's ${layers} layers`,
        );
      } else if (seen !== undefined && seen.bytes !== record.kvBytesCompressed) {
        failures.add(
          "E_CONSISTENCY_BYTES",
          `${sampleId}/${method}: layer fingerprints sum to ${seen.bytes} bytes; the record says kvBytesCompressed ${record.kvBytesCompressed}`,
        );
      }
    }
  }

  checkWeightsConsistency(config, environment.model, records, weightLines, failures);

  if (failures.size > 0) return failures.findings();
  return [
    pass(
      CHECK,
      `${records.length} records and ${fingerprints.length} fingerprints agree (${bySample.size} samples × ${methodKinds.size} methods × ${layers} layers)` +
        (weightLines.length > 0
          ? `; ${weightLines.length} weight-tensor fingerprints sum to their records' bytes`
          : ""),
    ),
  ];
}
