import {
  type EnvironmentFile,
  type FingerprintLine,
  isWeightFingerprint,
  type LayerFingerprint,
  MAX_BIT_WIDTH,
  type SampleRecord,
} from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { compareGenerations } from "../../measure/metrics.js";
import { FailureCollector, recordWhere } from "../collect.js";
import { type Finding, pass } from "../types.js";
import { WeightsConsistencyFold } from "./weights-consistency.js";

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

/** What the identity and NLL checks compare later records of a sample with: its first record's. */
type FirstRecord = Pick<SampleRecord, (typeof SAMPLE_IDENTITY_FIELDS)[number] | "method" | "nllBaseline">;

/** What the fingerprint checks need of one record, and the layer fingerprints seen for it. */
interface RecordState {
  contextTokens: number;
  kvBytesCompressed: number;
  /** Which model layers have a fingerprint (1 each), from the first KV fingerprint on: a byte per layer, not a Set per record. */
  layers: Uint8Array | undefined;
  /** How many distinct layers `layers` marks. */
  layerCount: number;
  layerBytes: number;
}

/**
 * Methods whose records compare against one baseline continuation of a sample: the KV methods
 * continue the shared prefill's baseline cache from its first token on (that token excluded),
 * the weights methods the dense model from the context (that token included).
 */
type GenerationGroup = "kv" | "weights";

/** Where a fingerprint line is, for a failure's words (made only then: most lines fail nothing). */
function fingerprintWhere(fingerprint: LayerFingerprint): string {
  return `fingerprint ${fingerprint.sampleId}/${fingerprint.method}/layer ${fingerprint.layer}`;
}

/**
 * Records and fingerprints describe the same run: unique ids; every configured method for
 * every sample, nothing else; token counts as configured (the first continuation token is
 * fed, not scored); the baseline KV bytes are the full context cache in the configured dtype
 * (2 · layers · hiddenSize · contextTokens · dtype bytes); one fingerprint per model layer
 * whose bytes sum to the record's compressed bytes and whose bit histogram fits in them;
 * the baseline NLL of a sample is the same for every method (same prefill), within
 * tolerances.nllPerToken per scored token.
 *
 * Folded one line at a time (records first, then fingerprints), keeping per sample only its
 * first record's identity and per record what the fingerprint checks need.
 */
export class ConsistencyFold {
  private readonly failures = new FailureCollector(CHECK);
  /** Fingerprint failures: reported after the records' (the order of a whole-file pass). */
  private readonly fingerprintFailures = new FailureCollector(CHECK);
  private readonly methodKinds: Map<string, RunConfig["methods"][number]["kind"]>;
  private readonly layers: number;
  private readonly baselineBytes: number;
  private readonly bySample = new Map<
    string,
    { first: FirstRecord; methods: Map<string, RecordState>; baselineTokens?: Map<GenerationGroup, string> }
  >();
  /** Records with generated token ids, and without: a bundle carries them in every record or none. */
  private recordsWithTokens = 0;
  private recordsWithoutTokens = 0;
  private readonly sampleOfIndex = new Map<number, string>();
  private readonly weights: WeightsConsistencyFold;
  private records = 0;
  private layerFingerprints = 0;

  constructor(
    private readonly config: RunConfig,
    private readonly environment: EnvironmentFile,
  ) {
    this.methodKinds = new Map(config.methods.map((method) => [method.name, method.kind]));
    this.layers = environment.model.layers;
    this.baselineBytes =
      2 *
      this.layers *
      environment.model.hiddenSize *
      config.dataset.contextTokens *
      BASELINE_DTYPE_BYTES[config.kv.baselineDtype];
    this.weights = new WeightsConsistencyFold(config, environment.model);
    if (this.methodKinds.size !== config.methods.length) {
      this.failures.add("E_CONSISTENCY_DUPLICATE_METHOD", "config.methods names a method more than once");
    }
    if (config.methods[0]?.kind !== "full") {
      this.failures.add(
        "E_CONSISTENCY_NO_BASELINE",
        `config.methods[0] must be the "full" (uncompressed) method`,
      );
    }
  }

  /** One records.jsonl line (schema-valid). */
  record(record: SampleRecord): void {
    const { config, failures, methodKinds } = this;
    this.records += 1;
    this.weights.record(record);
    if (!methodKinds.has(record.method)) {
      failures.add(
        "E_CONSISTENCY_UNKNOWN_METHOD",
        `${recordWhere(record)}: method "${record.method}" is not in config.methods`,
      );
    }
    let sample = this.bySample.get(record.sampleId);
    if (sample?.methods.has(record.method)) {
      failures.add("E_CONSISTENCY_DUPLICATE_RECORD", `${recordWhere(record)} appears more than once`);
      return;
    }
    const state: RecordState = {
      contextTokens: record.contextTokens,
      kvBytesCompressed: record.kvBytesCompressed,
      layers: undefined,
      layerCount: 0,
      layerBytes: 0,
    };
    if (sample !== undefined) {
      const first = sample.first;
      sample.methods.set(record.method, state);
      for (const field of SAMPLE_IDENTITY_FIELDS) {
        if (record[field] !== first[field]) {
          failures.add(
            "E_CONSISTENCY_SAMPLE_IDENTITY",
            `${recordWhere(record)}: ${field} ${String(record[field])} differs from method ${first.method}'s ${String(first[field])}`,
          );
        }
      }
      const allowed = config.tolerances.nllPerToken * record.scoredTokens;
      if (Math.abs(record.nllBaseline - first.nllBaseline) > allowed) {
        failures.add(
          "E_CONSISTENCY_BASELINE_NLL",
          `${recordWhere(record)}: baseline NLL ${record.nllBaseline} differs from method ${first.method}'s ${first.nllBaseline} (same prefill)`,
        );
      }
    } else {
      const first: FirstRecord = {
        method: record.method,
        nllBaseline: record.nllBaseline,
        sampleIndex: record.sampleIndex,
        tokenHash: record.tokenHash,
        document: record.document,
        offset: record.offset,
        contextTokens: record.contextTokens,
        continuationTokens: record.continuationTokens,
        scoredTokens: record.scoredTokens,
        kvBytesBaseline: record.kvBytesBaseline,
      };
      sample = { first, methods: new Map([[record.method, state]]) };
      this.bySample.set(record.sampleId, sample);
      const owner = this.sampleOfIndex.get(record.sampleIndex);
      if (owner !== undefined && owner !== record.sampleId) {
        failures.add(
          "E_CONSISTENCY_SAMPLE_IDENTITY",
          `${recordWhere(record)}: sampleIndex ${record.sampleIndex} is also sample ${owner}'s`,
        );
      }
      this.sampleOfIndex.set(record.sampleIndex, record.sampleId);
    }
    if (record.contextTokens !== config.dataset.contextTokens) {
      failures.add(
        "E_CONSISTENCY_TOKENS",
        `${recordWhere(record)}: contextTokens ${record.contextTokens}, config says ${config.dataset.contextTokens}`,
      );
    }
    if (record.continuationTokens !== config.dataset.continuationTokens) {
      failures.add(
        "E_CONSISTENCY_TOKENS",
        `${recordWhere(record)}: continuationTokens ${record.continuationTokens}, config says ${config.dataset.continuationTokens}`,
      );
    }
    if (record.scoredTokens !== record.continuationTokens - 1) {
      failures.add(
        "E_CONSISTENCY_TOKENS",
        `${recordWhere(record)}: scoredTokens ${record.scoredTokens}, expected continuationTokens - 1 = ${record.continuationTokens - 1}`,
      );
    }
    if (record.top1Matches > record.scoredTokens) {
      failures.add(
        "E_CONSISTENCY_TOKENS",
        `${recordWhere(record)}: top1Matches ${record.top1Matches} > scoredTokens ${record.scoredTokens}`,
      );
    }
    const generation = record.generation;
    const divergence = generation.firstDivergence;
    // Every method generates exactly generation.tokens greedy tokens from both caches and
    // compares them all: fewer compared would let a producer drop the tokens that disagree.
    if (
      generation.compared !== config.generation.tokens ||
      generation.matches > generation.compared ||
      (divergence === null) !== (generation.matches === generation.compared) ||
      (divergence !== null && (divergence >= generation.compared || generation.matches < divergence))
    ) {
      failures.add(
        "E_CONSISTENCY_GENERATION",
        `${recordWhere(record)}: generation ${JSON.stringify(generation)} impossible with ${config.generation.tokens} generated tokens (every one is compared)`,
      );
    }
    if (generation.tokens !== undefined || generation.baselineTokens !== undefined) {
      this.recordsWithTokens += 1;
      // The token ids shown in the report must be the ones the agreement figures count.
      const baselineTokens = generation.baselineTokens ?? [];
      const tokens = generation.tokens ?? [];
      const recounted = compareGenerations(baselineTokens, tokens);
      const vocabulary = this.environment.model.architecture?.vocabSize;
      const outside = [...baselineTokens, ...tokens].find(
        (id) => vocabulary !== undefined && id >= vocabulary,
      );
      if (baselineTokens.length !== generation.compared || tokens.length !== generation.compared) {
        // Recounting compares the shorter list's length: a longer one would show tokens never compared.
        failures.add(
          "E_CONSISTENCY_GENERATION",
          `${recordWhere(record)}: ${baselineTokens.length} baseline and ${tokens.length} generated token ids; the record compares ${generation.compared}`,
        );
      } else if (outside !== undefined) {
        failures.add(
          "E_CONSISTENCY_GENERATION",
          `${recordWhere(record)}: generated token id ${outside} is outside the model's ${vocabulary}-token vocabulary`,
        );
      } else if (
        recounted.compared !== generation.compared ||
        recounted.matches !== generation.matches ||
        recounted.firstDivergence !== generation.firstDivergence
      ) {
        failures.add(
          "E_CONSISTENCY_GENERATION",
          `${recordWhere(record)}: generated tokens give ${JSON.stringify(recounted)}, the record says compared ${generation.compared}, matches ${generation.matches}, firstDivergence ${generation.firstDivergence}`,
        );
      }
      // Every method of a group continues the same baseline: one list per sample and group
      // (else the report could show each method beside a baseline of its own choosing).
      const group: GenerationGroup = methodKinds.get(record.method) === "weights" ? "weights" : "kv";
      sample.baselineTokens ??= new Map();
      const key = baselineTokens.join(",");
      const earlier = sample.baselineTokens.get(group);
      if (earlier === undefined) sample.baselineTokens.set(group, key);
      else if (earlier !== key) {
        failures.add(
          "E_CONSISTENCY_GENERATION",
          `${recordWhere(record)}: baseline continuation [${key}] differs from the one the sample's other ${group === "kv" ? "KV-cache" : "weights"} methods compare against [${earlier}] (one baseline per sample)`,
        );
      }
    } else this.recordsWithoutTokens += 1;
    if (record.kvBytesBaseline !== this.baselineBytes) {
      failures.add(
        "E_CONSISTENCY_BASELINE_BYTES",
        `${recordWhere(record)}: kvBytesBaseline ${record.kvBytesBaseline}, but the full ${config.kv.baselineDtype} context cache is ${this.baselineBytes} bytes`,
      );
    }
    if (methodKinds.get(record.method) === "full" && record.kvBytesCompressed !== record.kvBytesBaseline) {
      failures.add(
        "E_CONSISTENCY_FULL_METHOD",
        `${recordWhere(record)}: the full method stores ${record.kvBytesCompressed} bytes, not the baseline's ${record.kvBytesBaseline}`,
      );
    }
  }

  /** One fingerprints.jsonl line (schema-valid), after every record. */
  fingerprint(line: FingerprintLine): void {
    if (isWeightFingerprint(line)) {
      this.weights.line(line);
      return;
    }
    const failures = this.fingerprintFailures;
    const { environment, layers } = this;
    this.layerFingerprints += 1;
    const fingerprint = line;
    const record = this.bySample.get(fingerprint.sampleId)?.methods.get(fingerprint.method);
    if (record === undefined) {
      failures.add("E_CONSISTENCY_ORPHAN_FINGERPRINT", `${fingerprintWhere(fingerprint)} has no record`);
      return;
    }
    record.layers ??= new Uint8Array(layers);
    if (record.layers[fingerprint.layer] === 1) {
      failures.add(
        "E_CONSISTENCY_DUPLICATE_FINGERPRINT",
        `${fingerprintWhere(fingerprint)} appears more than once`,
      );
      return;
    }
    if (fingerprint.layer >= layers) {
      failures.add(
        "E_CONSISTENCY_LAYERS",
        `${fingerprintWhere(fingerprint)}: the model has ${layers} layers`,
      );
      return;
    }
    record.layers[fingerprint.layer] = 1;
    record.layerCount += 1;
    record.layerBytes += fingerprint.bytes;
    const slots = environment.model.heads * record.contextTokens;
    if (fingerprint.tokensTotal !== slots || fingerprint.tokensKept > fingerprint.tokensTotal) {
      failures.add(
        "E_CONSISTENCY_FINGERPRINT",
        `${fingerprintWhere(fingerprint)}: keeps ${fingerprint.tokensKept} of ${fingerprint.tokensTotal} slots; the full cache has heads · contextTokens = ${slots}`,
      );
    }
    if (fingerprint.headsFullPrecision > environment.model.heads) {
      failures.add(
        "E_CONSISTENCY_FINGERPRINT",
        `${fingerprintWhere(fingerprint)}: ${fingerprint.headsFullPrecision} heads at full precision, the model has ${environment.model.heads}`,
      );
    }
    let bits = 0;
    const histogram = fingerprint.bitsHistogram;
    // By width, not by its keys: a schema-valid histogram names only widths 1..MAX_BIT_WIDTH.
    for (let width = 1; width <= MAX_BIT_WIDTH; width++) bits += width * (histogram[width] ?? 0);
    if (Math.ceil(bits / 8) > fingerprint.bytes) {
      failures.add(
        "E_CONSISTENCY_FINGERPRINT",
        `${fingerprintWhere(fingerprint)}: its bit histogram needs ${Math.ceil(bits / 8)} bytes but it states ${fingerprint.bytes}`,
      );
    }
  }

  /** The findings, once every line is folded. `expectedSamples`: a shard's own count (default config.dataset.samples). */
  findings(expectedSamples?: number): Finding[] {
    const { config, failures, methodKinds, layers, bySample } = this;
    const expected = expectedSamples ?? config.dataset.samples;
    if (bySample.size !== expected) {
      failures.add(
        "E_CONSISTENCY_SAMPLE_COUNT",
        `records cover ${bySample.size} samples; ${expectedSamples === undefined ? "config.dataset.samples" : "shard.json"} is ${expected}`,
      );
    }
    for (const [sampleId, { methods }] of bySample) {
      for (const name of methodKinds.keys()) {
        if (!methods.has(name))
          failures.add(
            "E_CONSISTENCY_MISSING_RECORD",
            `sample ${sampleId} has no record for method "${name}"`,
          );
      }
    }
    if (this.recordsWithTokens > 0 && this.recordsWithoutTokens > 0) {
      // Dropping the ids from some records would choose which continuations the report shows.
      failures.add(
        "E_CONSISTENCY_GENERATION",
        `${this.recordsWithTokens} records carry their generated token ids and ${this.recordsWithoutTokens} do not: a run records them in every record or none`,
      );
    }
    failures.absorb(this.fingerprintFailures);
    for (const [sampleId, { methods }] of bySample) {
      for (const [method, record] of methods) {
        const seen = record.layers;
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
        const count = record.layerCount;
        if (count !== layers) {
          failures.add(
            "E_CONSISTENCY_LAYERS",
            `${sampleId}/${method}: fingerprints for ${count} of the model's ${layers} layers`,
          );
        } else if (seen !== undefined && record.layerBytes !== record.kvBytesCompressed) {
          failures.add(
            "E_CONSISTENCY_BYTES",
            `${sampleId}/${method}: layer fingerprints sum to ${record.layerBytes} bytes; the record says kvBytesCompressed ${record.kvBytesCompressed}`,
          );
        }
      }
    }

    const weightLines = this.weights.finish(failures);

    if (failures.size > 0) return failures.findings();
    return [
      pass(
        CHECK,
        `${this.records} records and ${this.layerFingerprints} fingerprints agree (${bySample.size} samples × ${methodKinds.size} methods × ${layers} layers)` +
          (weightLines > 0 ? `; ${weightLines} weight-tensor fingerprints sum to their records' bytes` : ""),
      ),
    ];
  }
}

/** The consistency check over records and fingerprints held whole (tests, small bundles). */
export function checkConsistency(input: ConsistencyInput): Finding[] {
  const fold = new ConsistencyFold(input.config, input.environment);
  for (const record of input.records) fold.record(record);
  for (const line of input.fingerprints) fold.fingerprint(line);
  return fold.findings(input.expectedSamples);
}
