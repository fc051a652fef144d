/**
 * A small, consistent, valid bundle built by hand: 2 methods ("full", "stream") × 3 evaluation
 * samples × 2 layers, 2 calibration samples. Every figure is chosen so the invariants the
 * verifier checks hold (see the comments), and summary.json comes from summarize(). The
 * samples are the real draw from the bundled Brown corpus (so verify's draw check re-derives
 * them) and report.md is rendered from the summary (so the report-md check passes).
 *
 * Use: `const fixture = bundleFixture()` for the entries as a zip would hold them, or
 * `fixtureParts()` to edit the objects and `buildEntries(parts, options)` to re-serialize,
 * re-hash and re-sign them (the "edited and re-signed" adversarial cases).
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign } from "node:crypto";
import { canonicalJsonl, canonicalJsonString } from "../../src/bundle/canonical.js";
import { keyIdOf } from "../../src/bundle/keys.js";
import type { Manifest } from "../../src/bundle/manifest.js";
import type { BundleEntries } from "../../src/bundle/read.js";
import { manifestSignedMessage, type SignatureJson } from "../../src/bundle/sign.js";
import type { EnvironmentFile, LayerFingerprint, SampleRecord, Summary } from "../../src/bundle/types.js";
import { resolveConfig } from "../../src/config/load.js";
import type { RunConfig } from "../../src/config/types.js";
import { loadBrownSplitNamed } from "../../src/data/brown.js";
import { drawSamples } from "../../src/data/sampling.js";
import { encode } from "../../src/data/tokenizer.js";
import type { Sample } from "../../src/data/types.js";
import { renderReportMarkdown } from "../../src/measure/report-md.js";
import { summarize } from "../../src/measure/summary.js";
import { loadSchemaValidators, type SchemaValidators } from "../../src/verify/schemas.js";

/** What a bundle signature covers: the format's pre-authentication encoding of manifest.json. */
export function fixtureSignedMessage(manifestBytes: Uint8Array): Uint8Array {
  // The manifest's own version's domain, so resign() also re-signs version 2 bundles spg prove wrote.
  return manifestSignedMessage(manifestBytes);
}

export interface FixtureKey {
  /** The 32 raw public key bytes. */
  publicKey: Uint8Array;
  /** tweetnacl's 64-byte secret key (seed then public key), for cross-checks. */
  secretKey: Uint8Array;
  privateKey: KeyObject;
  keyId: string;
}

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** A deterministic Ed25519 key pair from a one-byte seed (different seeds, different keys). */
export function fixtureKey(seedByte = 7): FixtureKey {
  const seed = Buffer.alloc(32, seedByte);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = new Uint8Array(
    createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(12),
  );
  return {
    publicKey,
    secretKey: new Uint8Array(Buffer.concat([seed, publicKey])),
    privateKey,
    keyId: keyIdOf(publicKey),
  };
}

/** The bundle's canonical JSON (src/bundle/canonical.ts), as a string. */
export function canonicalJson(value: unknown): string {
  return canonicalJsonString(value);
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
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

// Model: 2 layers, 2 heads, hidden 8 (head dim 4). Context 16 tokens, continuation 9 (8 scored).
const LAYERS = 2;
const HEADS = 2;
const HIDDEN = 8;
const CONTEXT = 16;
const CONTINUATION = 9;
/** Full fp16 context cache per layer: K and V, hidden · context elements each, 2 bytes. */
const FULL_LAYER_ELEMENTS = 2 * HIDDEN * CONTEXT; // 256 elements at 16 bits = 512 bytes
/** "stream" keeps these slots (of heads · context = 32) per layer in each sample. */
const STREAM_KEPT = [24, 16, 20];

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
 * The fixture's parts, fresh. `samples` (default 3) scales it for benchmarks: sample i takes
 * the figures of sample i mod 3, so every invariant still holds.
 */
export function fixtureParts(options: { samples?: number } = {}): FixtureParts {
  const sampleCount = options.samples ?? 3;
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
      sha256: sha256Hex("model"),
      files: [
        { name: "config.json", sha256: sha256Hex("config"), bytes: 100 },
        { name: "model.safetensors", sha256: sha256Hex("weights"), bytes: 1000 },
      ],
      layers: LAYERS,
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
  const baselineBytes = LAYERS * FULL_LAYER_ELEMENTS * 2;
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
    // stream keeps k slots per layer: k · headDim(4) · 2 (K, V) fp16 values plus an int32 position per slot.
    const kept = STREAM_KEPT[figures];
    const streamLayerBytes = kept * 4 * 2 * 2 + kept * 4;
    records.push({
      ...common,
      method: "stream",
      nllCompressed: nllBaseline[figures] + streamExtraNll[figures],
      klSum: streamKl[figures],
      top1Matches: streamTop1[figures],
      generation: streamGeneration[figures],
      kvBytesCompressed: LAYERS * streamLayerBytes,
    });
    for (let layer = 0; layer < LAYERS; layer++) {
      fingerprints.push({
        sampleId: common.sampleId,
        method: "full",
        layer,
        tokensKept: HEADS * CONTEXT,
        tokensTotal: HEADS * CONTEXT,
        headsFullPrecision: HEADS,
        bitsHistogram: { "16": FULL_LAYER_ELEMENTS },
        bytes: FULL_LAYER_ELEMENTS * 2,
        sha256: sha256Hex(`full ${i} ${layer}`),
      });
      fingerprints.push({
        sampleId: common.sampleId,
        method: "stream",
        layer,
        tokensKept: kept,
        tokensTotal: HEADS * CONTEXT,
        headsFullPrecision: 0,
        bitsHistogram: { "16": kept * 4 * 2, "32": kept },
        bytes: streamLayerBytes,
        sha256: sha256Hex(`stream ${i} ${layer}`),
      });
    }
  }
  return { config, environment, records, fingerprints };
}

export interface BuildOptions {
  key?: FixtureKey;
  ephemeral?: boolean;
  createdAt?: string;
}

/** Serialize, hash, manifest and sign the parts the way `spg prove` does. */
export function buildEntries(parts: FixtureParts, options: BuildOptions = {}): Map<string, Buffer> {
  const key = options.key ?? fixtureKey();
  const summary = parts.summary ?? summarize(parts.records, parts.config);
  const jsonl = (items: unknown[]): Buffer => canonicalJsonl(items);
  const files: [string, Buffer][] = [
    ["config.json", Buffer.from(canonicalJson(parts.config))],
    ["environment.json", Buffer.from(canonicalJson(parts.environment))],
    ["records.jsonl", Buffer.from(jsonl(parts.records))],
    ["fingerprints.jsonl", Buffer.from(jsonl(parts.fingerprints))],
    ["summary.json", Buffer.from(canonicalJson(summary))],
    [
      "report.md",
      // A test may delete the model hash: the report then shows an empty one.
      Buffer.from(
        parts.reportMd ??
          renderReportMarkdown(parts.config, summary, {
            model: { sha256: parts.environment.model?.sha256 ?? "" },
          }),
      ),
    ],
  ];
  const manifest: Manifest = {
    format: "spg-bundle",
    version: 1,
    tool: { name: "spg", version: "0.1.0", commit: null },
    createdAt: options.createdAt ?? "2026-11-23T12:00:00.000Z",
    entries: files.map(([name, bytes]) => ({ name, sha256: sha256Hex(bytes), bytes: bytes.length })),
  };
  const entries = new Map<string, Buffer>();
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  entries.set("manifest.json", manifestBytes);
  entries.set("signature.json", signatureEntry(manifestBytes, key, options.ephemeral ?? false));
  for (const [name, bytes] of files) entries.set(name, bytes);
  return entries;
}

export function signatureEntry(manifestBytes: Uint8Array, key: FixtureKey, ephemeral: boolean): Buffer {
  const signature: SignatureJson = {
    algorithm: "ed25519",
    publicKey: Buffer.from(key.publicKey).toString("base64"),
    keyId: key.keyId,
    signature: sign(null, fixtureSignedMessage(manifestBytes), key.privateKey).toString("base64"),
    ephemeral,
  };
  return Buffer.from(canonicalJson(signature));
}

/** Re-hash the manifest for the current entries and re-sign it: a forger holding `key`. */
export function resign(
  entries: Map<string, Buffer>,
  key: FixtureKey = fixtureKey(),
  ephemeral = false,
): void {
  const manifest = JSON.parse(entries.get("manifest.json")!.toString("utf8")) as Manifest;
  manifest.entries = manifest.entries.map((entry) => {
    const bytes = entries.get(entry.name);
    return bytes === undefined ? entry : { name: entry.name, sha256: sha256Hex(bytes), bytes: bytes.length };
  });
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  entries.set("manifest.json", manifestBytes);
  entries.set("signature.json", signatureEntry(manifestBytes, key, ephemeral));
}

export interface BundleFixture {
  contents: BundleEntries;
  parts: FixtureParts;
  key: FixtureKey;
}

let defaultEntries: Map<string, Buffer> | undefined;
let defaultKey: FixtureKey | undefined;

/**
 * The valid fixture bundle, signed by fixtureKey() (trust it via `new Set([key.keyId])`).
 * Each call returns fresh copies (edit them freely); the default build is done once.
 */
export function bundleFixture(options: BuildOptions = {}): BundleFixture {
  const parts = fixtureParts();
  if (options.key === undefined && options.ephemeral === undefined && options.createdAt === undefined) {
    defaultKey ??= fixtureKey();
    defaultEntries ??= buildEntries(parts, { key: defaultKey });
    const entries = new Map([...defaultEntries].map(([name, bytes]) => [name, Buffer.from(bytes)]));
    return { contents: { entries }, parts, key: defaultKey };
  }
  const key = options.key ?? fixtureKey();
  return { contents: { entries: buildEntries(parts, { ...options, key }) }, parts, key };
}

/** The package's compiled schema validators (schemas/), for tests. */
export function fixtureValidators(): SchemaValidators {
  return loadSchemaValidators();
}
