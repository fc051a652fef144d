/**
 * A synthetic run: the parts of a bundle (config, environment, records, fingerprints) for a
 * tiny made-up model, drawn from the bundled Brown corpus so every check verify makes holds
 * (the draw re-derives, the records recompute, the byte counts add up). The test fixture
 * (test/helpers/bundle-fixture.ts) builds its bundles from it, and bench-verify scales it to
 * hundreds of MB of records.
 */
import type { EnvironmentFile, LayerFingerprint, SampleRecord, Summary } from "../src/bundle/types.js";
import { resolveConfig } from "../src/config/load.js";
import type { RunConfig } from "../src/config/types.js";
import { loadBrownSplitNamed } from "../src/data/brown.js";
import { drawSamples } from "../src/data/sampling.js";
import { encode } from "../src/data/tokenizer.js";
import type { Sample } from "../src/data/types.js";
import { checkHardware, hardwareCheckRecord } from "../src/hardware/check.js";
import { memoryRequirement } from "../src/hardware/requirement.js";
import { checkpointSha256 } from "../src/model/checkpoint.js";
import { executedKvBytes, executedWeightBytesOfShapes } from "../src/model/executed.js";
import type { GptNeoConfig } from "../src/model/types.js";
import { sha256Hex } from "../src/numeric/sha256.js";

/** sha256 hex of a label: stands in for hashes of files and layers the synthetic run never had. */
function sha256Text(text: string): string {
  return sha256Hex(Buffer.from(text, "utf8"));
}

export interface FixtureParts {
  config: RunConfig;
  environment: EnvironmentFile;
  records: SampleRecord[];
  fingerprints: LayerFingerprint[];
  /** undefined = summarize(records, config) at build time. */
  summary?: Summary;
  /** undefined = rendered from the summary at build time (src/measure/report-md.ts). */
  reportMd?: string;
}

const draws = new Map<
  number,
  { evaluation: Sample[]; calibration: Sample[]; hashes: Record<string, string | number> }
>();

/** The config's draw from the bundled Brown corpus (cached per sample count: tokenizing takes a second). */
function fixtureDraw(config: RunConfig) {
  let draw = draws.get(config.dataset.samples);
  if (draw === undefined) {
    // The same rule as src/data/draw.ts for the Brown corpus, synchronously (fixtures are built in sync code).
    const { dataset } = config;
    const drawn = (split: string, field: string, role: Sample["role"], count: number) => {
      const loaded = loadBrownSplitNamed(split, field);
      const samples = drawSamples(
        loaded.documents.map((doc) => ({ id: doc.id, tokens: encode(doc.text) })),
        {
          count,
          contextTokens: dataset.contextTokens,
          continuationTokens: dataset.continuationTokens,
          seed: dataset.seed,
          role,
          split: loaded.split,
        },
      );
      return { loaded, samples };
    };
    const evaluation = drawn(dataset.split, "dataset.split", "eval", dataset.samples);
    const calibration = drawn(
      dataset.calibrationSplit,
      "dataset.calibrationSplit",
      "calibration",
      dataset.calibrationSamples,
    );
    draw = {
      evaluation: evaluation.samples,
      calibration: calibration.samples,
      hashes: {
        sha256: evaluation.loaded.sha256,
        calibrationSha256: calibration.loaded.sha256,
        documents: evaluation.loaded.documents.length,
      },
    };
    draws.set(config.dataset.samples, draw);
  }
  return draw;
}

// Model: 2 layers (or options.layers), 2 heads, hidden 8 (head dim 4). Context 16 tokens, continuation 9 (8 scored).
const DEFAULT_LAYERS = 2;
const HEADS = 2;
const HIDDEN = 8;
const CONTEXT = 16;
const CONTINUATION = 9;
/** Full fp16 context cache per layer: K and V, hidden · context elements each, 2 bytes. */
const FULL_LAYER_ELEMENTS = 2 * HIDDEN * CONTEXT; // 256 elements at 16 bits = 512 bytes
/**
 * "stream" keeps these slots (of heads · context = 32) per layer, in every sample: its params
 * (the default preset's, with localWindowTrim) keep the readable window of a local layer, here
 * 10 slots per head (how many a method keeps follows from its params and the model, never the
 * sample: the budget check).
 */
const STREAM_KEPT = 20;

let defaultStreamingParams: Record<string, unknown> | undefined;

/**
 * The streaming method's params as the default preset states them, so the fixture's
 * config.json keeps validating against schemas/config.schema.json as method params evolve.
 */
function streamingParams(): Record<string, unknown> {
  if (defaultStreamingParams === undefined) {
    const streaming = resolveConfig({ preset: "default" }).methods.find(
      (method) => method.kind === "streaming",
    );
    if (streaming === undefined)
      throw new Error("the default preset has no streaming method for the fixture");
    defaultStreamingParams = streaming.params;
  }
  return structuredClone(defaultStreamingParams);
}

/**
 * The fixture model's shapes beyond layers, heads and hidden size (format version 3's
 * model.architecture): the GPT-2 vocabulary its samples are tokenized with (a rule prove and
 * verify's config-rules hold a run to).
 */
/** The resident bytes the fixture's hardware check says the process held (a machine's figure). */
const FIXTURE_PROCESS_BYTES = 100 * 2 ** 20;

const ARCHITECTURE = { vocabSize: 50257, maxPositions: 32, intermediateSize: 32, activation: "gelu_new" };

function fixtureModelConfig(layers: number): GptNeoConfig {
  return {
    ...ARCHITECTURE,
    hiddenSize: HIDDEN,
    numLayers: layers,
    numHeads: HEADS,
    headDim: HIDDEN / HEADS,
    attentionLayers: Array.from({ length: layers }, () => "global" as const),
    windowSize: CONTEXT,
    layerNormEpsilon: 1e-5,
    bosTokenId: undefined,
    eosTokenId: undefined,
  };
}

/**
 * A record's runCost as spg prove writes it for this model (format version 3): the dense
 * session's executed weights, the cache read with `slots` per layer plus the decode room, and
 * tokens per second of the record's timings and fixed baseline timings.
 */
export function fixtureRunCost(
  config: RunConfig,
  record: Pick<SampleRecord, "continuationTokens" | "timingsMs">,
  slots: number,
  layers = DEFAULT_LAYERS,
): NonNullable<SampleRecord["runCost"]> {
  const model = fixtureModelConfig(layers);
  const weights = executedWeightBytesOfShapes(model, { observationWindow: config.kv.observationWindow });
  const room = config.generation.tokens;
  const kv = (perLayer: number) =>
    executedKvBytes(
      model,
      Array.from({ length: layers }, () => perLayer + room),
    );
  const teacherForced = record.continuationTokens - 1;
  const baselineTimingsMs = { continuation: 5, generation: 4 };
  const perSecond = (tokens: number, ms: number) => tokens / (ms / 1000);
  return {
    executionProvider: "cpu",
    intraOpThreads: 1,
    executedBytes: { weights, kv: kv(slots) },
    baselineExecutedBytes: { weights, kv: kv(CONTEXT) },
    teacherForcedTokens: teacherForced,
    decodeSteps: room,
    baselineTimingsMs,
    tokensPerSecond: {
      teacherForced: perSecond(teacherForced, record.timingsMs.continuation),
      decode: perSecond(room, record.timingsMs.generation),
      baselineTeacherForced: perSecond(teacherForced, baselineTimingsMs.continuation),
      baselineDecode: perSecond(room, baselineTimingsMs.generation),
    },
  };
}

/**
 * The fixture's parts, fresh. `samples` (default 3) scales it for benchmarks: sample i takes
 * the figures of sample i mod 3, so every invariant still holds; `layers` (default 2) sets the
 * model's layer count, one fingerprint per layer, method and sample. `runCost` (default true)
 * adds what format version 3 requires (records' runCost, fingerprints' slotsRead,
 * model.architecture); false gives the parts of a version 1 or 2 bundle.
 */
export function fixtureParts(
  options: { samples?: number; layers?: number; runCost?: boolean } = {},
): FixtureParts {
  const sampleCount = options.samples ?? 3;
  const layers = options.layers ?? DEFAULT_LAYERS;
  const config: RunConfig = {
    name: "fixture",
    model: { path: "bundled", dtype: "fp32", device: "cpu" },
    dataset: {
      source: "brown",
      path: null,
      split: "eval",
      calibrationSplit: "calibration",
      samples: sampleCount,
      calibrationSamples: 2,
      contextTokens: CONTEXT,
      continuationTokens: CONTINUATION,
      seed: 7,
    },
    generation: { tokens: 6 },
    kv: { baselineDtype: "fp16", observationWindow: 4 },
    methods: [
      { name: "full", kind: "full", params: {} },
      { name: "stream", kind: "streaming", params: streamingParams() },
    ],
    hardware: { marginFraction: 0.2, activationFactor: 4 },
    claims: [
      { method: "stream", metric: "compression_ratio", op: ">=", threshold: 1.2, judge: "point" },
      { method: "stream", metric: "perplexity_increase_pct", op: "<=", threshold: 40, judge: "bound" },
    ],
    bootstrap: { resamples: 200, confidence: 0.9, seed: 11 },
    tolerances: { nllPerToken: 1e-4, klPerToken: 1e-4, agreementFraction: 0.05 },
  };

  const draw = fixtureDraw(config);
  const evaluation = draw.evaluation.map(({ sampleId, tokenHash }) => ({ sampleId, tokenHash }));
  const calibration = draw.calibration.map(({ sampleId, tokenHash }) => ({ sampleId, tokenHash }));
  const modelFiles = [
    { name: "config.json", sha256: sha256Text("config"), bytes: 100 },
    { name: "model.safetensors", sha256: sha256Text("weights"), bytes: 1000 },
  ];
  const environment: EnvironmentFile = {
    os: { platform: "linux", distro: "Fixture", release: "1", arch: "x64" },
    cpu: { manufacturer: "Fixture", brand: "CPU", cores: 2, physicalCores: 2 },
    memory: { total: 8 * 2 ** 30, available: 4 * 2 ** 30 },
    gpus: [],
    node: "v20.0.0",
    onnxruntime: "1.30.0",
    executionProvider: "cpu",
    packages: { "onnxruntime-node": "1.30.0", tweetnacl: "1.0.3" },
    hardwareCheck: {
      device: "cpu",
      requiredBytes: 1000,
      availableBytes: 4 * 2 ** 30,
      marginFraction: 0.2,
      verdict: "pass",
      inputs: { weightsBytes: 800, kvBytes: 100, activationBytes: 100 },
    },
    model: {
      path: "models/gpt-neo-brown",
      sha256: checkpointSha256(modelFiles),
      files: modelFiles,
      layers,
      heads: HEADS,
      hiddenSize: HIDDEN,
    },
    dataset: {
      source: "brown",
      split: "eval",
      calibrationSplit: "calibration",
      sha256: draw.hashes.sha256 as string,
      calibrationSha256: draw.hashes.calibrationSha256 as string,
      documents: draw.hashes.documents as number,
      // What prove records for the Brown corpus (src/data/draw.ts): drawn by "pool".
      sampling: "pool",
    },
    calibration: { samples: calibration },
    evaluation: { samples: evaluation },
  };

  const nllBaseline = [20.5, 18.25, 22];
  const streamExtraNll = [1.5, 2.25, 0.75];
  const streamKl = [0.4, 0.6, 0.2];
  const streamTop1 = [7, 6, 8];
  const streamGeneration = [
    { compared: 6, matches: 6, firstDivergence: null },
    { compared: 6, matches: 4, firstDivergence: 2 },
    { compared: 6, matches: 5, firstDivergence: 3 },
  ];
  const baselineBytes = layers * FULL_LAYER_ELEMENTS * 2;
  const records: SampleRecord[] = [];
  const fingerprints: LayerFingerprint[] = [];
  for (let i = 0; i < sampleCount; i++) {
    const figures = i % 3;
    const common = {
      sampleId: evaluation[i].sampleId,
      sampleIndex: i,
      tokenHash: evaluation[i].tokenHash,
      document: draw.evaluation[i].document,
      offset: draw.evaluation[i].offset,
      contextTokens: CONTEXT,
      continuationTokens: CONTINUATION,
      scoredTokens: CONTINUATION - 1,
      nllBaseline: nllBaseline[figures],
      kvBytesBaseline: baselineBytes,
      timingsMs: { prefill: 5, compress: 1, decompress: 1, continuation: 4, generation: 3 },
      peakRssBytes: 100_000_000,
    };
    records.push({
      ...common,
      method: "full",
      nllCompressed: nllBaseline[figures],
      klSum: 0,
      top1Matches: CONTINUATION - 1,
      generation: { compared: 6, matches: 6, firstDivergence: null },
      kvBytesCompressed: baselineBytes,
    });
    // stream keeps k slots per layer: k · headDim(4) · 2 (K, V) fp16 values (its kept set follows from params: no positions).
    const kept = STREAM_KEPT;
    const streamLayerBytes = kept * 4 * 2 * 2;
    records.push({
      ...common,
      method: "stream",
      nllCompressed: nllBaseline[figures] + streamExtraNll[figures],
      klSum: streamKl[figures],
      top1Matches: streamTop1[figures],
      generation: streamGeneration[figures],
      kvBytesCompressed: layers * streamLayerBytes,
    });
    for (let layer = 0; layer < layers; layer++) {
      fingerprints.push({
        sampleId: common.sampleId,
        method: "full",
        layer,
        tokensKept: HEADS * CONTEXT,
        tokensTotal: HEADS * CONTEXT,
        headsFullPrecision: HEADS,
        bitsHistogram: { "16": FULL_LAYER_ELEMENTS },
        bytes: FULL_LAYER_ELEMENTS * 2,
        sha256: sha256Text(`full ${i} ${layer}`),
      });
      fingerprints.push({
        sampleId: common.sampleId,
        method: "stream",
        layer,
        tokensKept: kept,
        tokensTotal: HEADS * CONTEXT,
        headsFullPrecision: HEADS,
        bitsHistogram: { "16": kept * 4 * 2 },
        bytes: streamLayerBytes,
        sha256: sha256Text(`stream ${i} ${layer}`),
      });
    }
  }
  if (options.runCost ?? true) {
    environment.model.architecture = { ...ARCHITECTURE };
    // The hardware check as prove records it from version 3 on: every input of the requirement.
    environment.hardwareCheck = hardwareCheckRecord(
      checkHardware(
        memoryRequirement(fixtureModelConfig(layers), config, FIXTURE_PROCESS_BYTES),
        {
          os: { platform: "linux", distro: "Fixture", release: "1", kernel: "1", arch: "x64" },
          cpu: { manufacturer: "Fixture", brand: "CPU", cores: 2, physicalCores: 2, speedGHz: 1 },
          memory: { total: 8 * 2 ** 30, free: 4 * 2 ** 30, available: 4 * 2 ** 30 },
          gpus: [],
        },
        "cpu",
      ),
    );
    // "stream" splits its kept slots evenly over the heads: the widest head holds kept / heads.
    const slotsRead = (line: LayerFingerprint) => line.tokensKept / HEADS;
    // Each record's first layer line, by sample and method (a search per record made a large bench's build quadratic).
    const firstLayer = new Map<string, LayerFingerprint>();
    for (const line of fingerprints) {
      line.slotsRead = slotsRead(line);
      const key = `${line.sampleId}\u0000${line.method}`;
      if (!firstLayer.has(key)) firstLayer.set(key, line);
    }
    for (const record of records) {
      const line = firstLayer.get(`${record.sampleId}\u0000${record.method}`);
      record.runCost = fixtureRunCost(config, record, slotsRead(line as LayerFingerprint), layers);
    }
  }
  return { config, environment, records, fingerprints };
}
