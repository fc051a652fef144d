/**
 * An adversarial corpus: hostile bundles derived from any valid one, one case or more per
 * class of attack `spg verify` must refuse (signature malleation, lenient parsing, zip
 * tricks, work on failed-integrity input, resource exhaustion, forged output, a dishonest
 * producer's lies). Entry edits are re-hashed and re-signed with a key the adversary made (a
 * producer holding a key): only the verifier's own rules can catch them. A dishonest
 * producer's lie also makes summary.json and report.md again from the edited records, so no
 * arithmetic check catches it, only the rule the case names. Shared by the tests and by
 * `npm run bench -- verify --adversarial` (scripts/ never imports from test/).
 *
 * `scale` sizes the resource cases: 1 for tests (small, fast), larger for the benchmark,
 * where the biggest cases approach the 64 MiB (zipped) the verifier must handle.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from "node:crypto";
import zlib from "node:zlib";
import { canonicalJson, canonicalJsonl, parseJsonl } from "../src/bundle/canonical.js";
import { keyIdOf } from "../src/bundle/keys.js";
import { sha256Hex } from "../src/bundle/manifest.js";
import { manifestSignedMessage } from "../src/bundle/sign.js";
import type {
  EnvironmentFile,
  FingerprintLine,
  LayerFingerprint,
  SampleRecord,
} from "../src/bundle/types.js";
import type { RunConfig } from "../src/config/types.js";
import { renderReportMarkdown } from "../src/measure/report-md.js";
import { summarize } from "../src/measure/summary.js";
import { checkpointSha256 } from "../src/model/checkpoint.js";
import { executedKvBytes, executedWeightBytesOfShapes } from "../src/model/executed.js";
import { shapesConfig } from "../src/verify/checks/executed-cost.js";
import { buildRawZip, extraField, type RawZipEntry, type RawZipOptions } from "./raw-zip.js";

export interface AdversarialCase {
  /** Short unique name. */
  name: string;
  /** The class of attack (the issue's list): what the case is an instance of. */
  kind:
    | "signature"
    | "parsing"
    | "zip"
    | "integrity-first"
    | "resources"
    | "output"
    | "dishonest"
    | "dishonest-merger";
  /** The check and code verify must refuse it with, and the exit status. */
  check: string;
  code: string;
  exitCode: number;
  /** The zip bytes (built on demand: the large ones are big). */
  build(): Buffer;
  /**
   * The verifier's settings the case is refused under, beside the corpus's (e.g. a gate's
   * --require-model, or a replay of one sample with a fixed seed for a lie only replay sees).
   */
  verifyWith?: { requireModel?: boolean; replay?: { samples: number; seed: string; required: boolean } };
}

type Entries = Map<string, Buffer>;

/** The adversary's own Ed25519 key. */
export interface ForgerKey {
  privateKey: KeyObject;
  publicKey: Buffer;
}

function forgerKey(): ForgerKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
  return {
    privateKey: createPrivateKey(privateKey.export({ format: "pem", type: "pkcs8" })),
    publicKey: raw,
  };
}

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** A key pair from a 32-byte seed: the same seed, the same key (a fuzzer's trusted test key). */
export function seededForgerKey(seed: Buffer): ForgerKey {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const raw = createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(12);
  return { privateKey, publicKey: raw };
}

/** The key id a trusted-keys file names `key` by. */
export function forgerKeyId(key: ForgerKey): string {
  return keyIdOf(key.publicKey);
}

/** Re-hash every listed entry into the manifest and sign it: what a producer holding a key can do. */
export function resign(entries: Entries, key: ForgerKey): Entries {
  const manifest = JSON.parse(entries.get("manifest.json")!.toString("utf8")) as {
    entries: { name: string; sha256: string; bytes: number }[];
  };
  manifest.entries = manifest.entries.map(({ name }) => {
    const bytes = entries.get(name)!;
    return { name, sha256: sha256Hex(bytes), bytes: bytes.length };
  });
  const manifestBytes = canonicalJson(manifest);
  entries.set("manifest.json", manifestBytes);
  entries.set(
    "signature.json",
    signatureJson(key, sign(null, manifestSignedMessage(manifestBytes), key.privateKey)),
  );
  return entries;
}

function signatureJson(key: ForgerKey, signature: Buffer): Buffer {
  return canonicalJson({
    algorithm: "ed25519",
    ephemeral: false,
    keyId: keyIdOf(key.publicKey),
    publicKey: key.publicKey.toString("base64"),
    signature: signature.toString("base64"),
  });
}

/** The entries as a plain, well-formed zip (deflated, no data descriptors). */
export function zipOf(
  entries: Entries,
  options: RawZipOptions = {},
  change: (e: RawZipEntry[]) => void = () => {},
): Buffer {
  const list: RawZipEntry[] = [...entries].map(([name, data]) => ({ name, data }));
  change(list);
  return buildRawZip(list, options);
}

/** A run's parsed files, as a dishonest producer edits them. */
export interface RunParts {
  config: RunConfig;
  environment: EnvironmentFile;
  records: SampleRecord[];
  fingerprints: FingerprintLine[];
}

/**
 * The run's files edited by `change`, with summary.json and report.md made again from them
 * exactly as prove makes them: the lie is arithmetically consistent.
 */
export function remadeRun(entries: Entries, change: (parts: RunParts) => void): void {
  const parts = runParts(entries);
  change(parts);
  writeRunParts(entries, parts);
}

/** The run's files of a bundle, parsed. */
export function runParts(entries: Entries): RunParts {
  return {
    config: jsonOf(entries, "config.json") as unknown as RunConfig,
    environment: jsonOf(entries, "environment.json") as unknown as EnvironmentFile,
    records: parseJsonl(entries.get("records.jsonl")!) as unknown as SampleRecord[],
    fingerprints: parseJsonl(entries.get("fingerprints.jsonl")!) as unknown as FingerprintLine[],
  };
}

/**
 * The run's files written back as canonical JSON, summary.json and report.md made from them
 * (throws, writing nothing, when they do not summarize; `remake: false` keeps the old two).
 */
export function writeRunParts(entries: Entries, parts: RunParts, remake = true): void {
  const summary = remake ? summarize(parts.records, parts.config) : undefined;
  entries.set("config.json", canonicalJson(parts.config));
  entries.set("environment.json", canonicalJson(parts.environment));
  entries.set("records.jsonl", canonicalJsonl(parts.records));
  entries.set("fingerprints.jsonl", canonicalJsonl(parts.fingerprints));
  if (summary === undefined) return;
  entries.set("summary.json", canonicalJson(summary));
  entries.set("report.md", Buffer.from(renderReportMarkdown(parts.config, summary, parts.environment)));
}

function copy(entries: Entries): Entries {
  return new Map([...entries].map(([name, bytes]) => [name, Buffer.from(bytes)]));
}

function jsonOf(entries: Entries, name: string): Record<string, unknown> {
  return JSON.parse(entries.get(name)!.toString("utf8")) as Record<string, unknown>;
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/**
 * S + L for a 64-byte Ed25519 signature (RFC 8032's group order L, written out here rather than
 * imported so the attack does not share the verifier's constant).
 */
export function malleate(signature: Buffer): Buffer {
  const order = 2n ** 252n + 27742317777372353535851937790883648493n;
  let scalar = 0n;
  for (let index = 63; index >= 32; index--) scalar = (scalar << 8n) | BigInt(signature[index]);
  scalar += order;
  const out = Buffer.from(signature);
  for (let index = 32; index < 64; index++) {
    out[index] = Number(scalar & 0xffn);
    scalar >>= 8n;
  }
  return out;
}

/** Every case, derived from `valid` (a bundle that verifies). */
export function adversarialCases(valid: Entries, scale = 1): AdversarialCase[] {
  const key = forgerKey();
  const edited = (change: (entries: Entries) => void): Buffer => {
    const entries = copy(valid);
    change(entries);
    return zipOf(resign(entries, key));
  };
  /** Signed first, then changed: what a forger does to a bundle someone else signed. */
  const afterSigning = (change: (entries: Entries) => void): Buffer => {
    const entries = resign(copy(valid), key);
    change(entries);
    return zipOf(entries);
  };
  const editedJson = (name: string, change: (value: Record<string, unknown>) => void) =>
    edited((entries) => {
      const value = jsonOf(entries, name);
      change(value);
      entries.set(name, canonicalJson(value));
    });
  const lie = (change: (parts: RunParts) => void): Buffer => edited((entries) => remadeRun(entries, change));
  const MiB = 1024 * 1024;
  const cases: AdversarialCase[] = [
    {
      name: "disagreeing-generation-tokens-dropped",
      kind: "dishonest",
      check: "consistency",
      code: "E_CONSISTENCY_GENERATION",
      exitCode: 5,
      build: () =>
        lie(({ records }) => {
          // Compare only the tokens that agree: generation agreement 100%, the counts coherent.
          for (const { generation } of records) {
            if (generation.matches === generation.compared || generation.matches === 0) continue;
            generation.compared = generation.matches;
            generation.firstDivergence = null;
            delete generation.baselineTokens;
            delete generation.tokens;
          }
        }),
    },
    {
      name: "samples-reordered",
      kind: "dishonest",
      check: "protocol",
      code: "E_PROTOCOL_SAMPLE_INDEX",
      exitCode: 5,
      build: () =>
        lie(({ records }) => {
          // The bootstrap resamples positions in sampleIndex order: another order, another interval.
          for (const record of records) {
            if (record.sampleIndex <= 1) record.sampleIndex = 1 - record.sampleIndex;
          }
        }),
    },
    {
      name: "model-files-not-the-hashed-model",
      kind: "dishonest",
      check: "protocol",
      code: "E_PROTOCOL_MODEL_HASH",
      exitCode: 5,
      build: () =>
        lie(({ environment }) => {
          // The files a reviewer would compare are one model's; the hash replay matches, another's.
          environment.model.sha256 = sha256Hex(Buffer.from("another model"));
        }),
    },
    {
      name: "point-estimate-as-bound",
      kind: "dishonest",
      check: "policy",
      code: "E_POLICY_CONFIDENCE",
      exitCode: 6,
      build: () =>
        lie(({ config }) => {
          // A 1% interval: a claim judged on its bound is judged on the point.
          config.bootstrap.confidence = 0.01;
        }),
    },
    {
      name: "kv-bytes-shrunk",
      kind: "dishonest",
      check: "budget",
      code: "E_BUDGET_BYTES",
      exitCode: 5,
      build: () =>
        lie(({ records, fingerprints }) => {
          // Every compressed layer stated at half its bytes (bit histogram halved too): a higher
          // ratio whose arithmetic adds up, but not what its kept slots and params store.
          const cut = new Map<string, number>();
          for (const line of fingerprints) {
            if ("kind" in line || line.method === "full") continue;
            for (const width of Object.keys(line.bitsHistogram)) line.bitsHistogram[width] /= 2;
            line.bytes /= 2;
            cut.set(
              `${line.sampleId}/${line.method}`,
              (cut.get(`${line.sampleId}/${line.method}`) ?? 0) + line.bytes,
            );
          }
          for (const record of records)
            record.kvBytesCompressed -= cut.get(`${record.sampleId}/${record.method}`) ?? 0;
        }),
    },
    {
      name: "method-params-edited-after-run",
      kind: "dishonest",
      check: "budget",
      code: "E_BUDGET_KEPT",
      exitCode: 5,
      build: () =>
        lie(({ config }) => {
          // A more aggressive method named over the records of a gentler one.
          for (const method of config.methods) {
            if (method.kind === "streaming") method.params.recentTokens = 2;
          }
        }),
    },
    {
      name: "kept-slots-vary-by-sample",
      kind: "dishonest",
      check: "budget",
      code: "E_BUDGET_KEPT",
      exitCode: 5,
      build: () =>
        lie(({ records, fingerprints }) => {
          // One sample's compressed layers keep one slot per head fewer, everything else made to agree.
          const sample = records[0].sampleId;
          const cut = new Map<string, number>();
          for (const line of fingerprints) {
            if ("kind" in line || line.method === "full" || line.sampleId !== sample) continue;
            const heads = line.tokensTotal / records[0].contextTokens;
            const perSlot = line.bytes / line.tokensKept;
            line.tokensKept -= heads;
            for (const width of Object.keys(line.bitsHistogram))
              line.bitsHistogram[width] -= (line.bitsHistogram[width] / (line.tokensKept + heads)) * heads;
            line.bytes -= perSlot * heads;
            cut.set(line.method, (cut.get(line.method) ?? 0) + perSlot * heads);
          }
          for (const record of records)
            if (record.sampleId === sample) record.kvBytesCompressed -= cut.get(record.method) ?? 0;
        }),
    },
    {
      name: "method-names-equal-up-to-case",
      kind: "dishonest",
      check: "config-rules",
      code: "E_CONFIG_RULE",
      exitCode: 5,
      build: () =>
        lie(({ config, records, fingerprints }) => {
          // A second method whose name reads as the first's in a report: "STREAM" beside "stream".
          const method = config.methods[config.methods.length - 1];
          const twin = method.name.toUpperCase();
          config.methods.push({ ...structuredClone(method), name: twin });
          for (const record of records.filter((r) => r.method === method.name))
            records.push({ ...structuredClone(record), method: twin });
          for (const line of fingerprints.filter((f) => f.method === method.name))
            fingerprints.push({ ...structuredClone(line), method: twin });
        }),
    },
    {
      name: "malleated-signature",
      kind: "signature",
      check: "signature",
      code: "E_SIGNATURE_NON_CANONICAL",
      exitCode: 4,
      build: () =>
        afterSigning((entries) => {
          const signature = jsonOf(entries, "signature.json");
          signature.signature = malleate(Buffer.from(String(signature.signature), "base64")).toString(
            "base64",
          );
          entries.set("signature.json", canonicalJson(signature));
        }),
    },
    {
      name: "small-order-signing-key",
      kind: "signature",
      check: "signature",
      code: "E_SIGNATURE_WEAK_KEY",
      exitCode: 4,
      build: () => {
        // The identity point as public key, R = identity and S = 0: OpenSSL's Ed25519 accepts
        // this signature over any message, so the bundle can be edited after "signing" at will.
        const entries = resign(copy(valid), key);
        const identity = Buffer.alloc(32);
        identity[0] = 1;
        entries.set(
          "signature.json",
          signatureJson(
            { privateKey: key.privateKey, publicKey: identity },
            Buffer.concat([identity, Buffer.alloc(32)]),
          ),
        );
        return zipOf(entries);
      },
    },
    {
      name: "duplicate-key-config",
      kind: "parsing",
      check: "schemas",
      code: "E_JSON_DUPLICATE_KEY",
      exitCode: 5,
      build: () =>
        edited((entries) => {
          // Last one wins in JSON.parse: a lenient reader would judge 1 resample, another 200.
          const text = entries.get("config.json")!.toString("utf8");
          entries.set(
            "config.json",
            Buffer.from(text.replace('{"bootstrap":{', '{"bootstrap":{"resamples":1,')),
          );
        }),
    },
    {
      name: "duplicate-key-records-line",
      kind: "parsing",
      check: "schemas",
      code: "E_JSON_DUPLICATE_KEY",
      exitCode: 5,
      build: () =>
        edited((entries) => {
          const lines = entries.get("records.jsonl")!.toString("utf8").split("\n");
          lines[0] = lines[0].replace(/^\{/, '{"klSum":0,');
          entries.set("records.jsonl", Buffer.from(lines.join("\n")));
        }),
    },
    ...(["config.json", "records.jsonl", "report.md"] as const).map(
      (name): AdversarialCase => ({
        name: `bom-${name}`,
        kind: "parsing",
        check: "schemas",
        code: "E_ENTRY_BOM",
        exitCode: 5,
        build: () => edited((entries) => entries.set(name, Buffer.concat([BOM, entries.get(name)!]))),
      }),
    ),
    {
      name: "bom-manifest",
      kind: "parsing",
      check: "integrity",
      code: "E_ENTRY_BOM",
      exitCode: 4,
      build: () =>
        afterSigning((entries) => {
          entries.set("manifest.json", Buffer.concat([BOM, entries.get("manifest.json")!]));
        }),
    },
    {
      name: "non-canonical-summary",
      kind: "parsing",
      check: "schemas",
      code: "E_JSON_NOT_CANONICAL",
      exitCode: 5,
      build: () =>
        edited((entries) =>
          entries.set("summary.json", Buffer.from(JSON.stringify(jsonOf(entries, "summary.json"), null, 1))),
        ),
    },
    {
      name: "deep-nesting",
      kind: "resources",
      check: "schemas",
      code: "E_JSON_NESTING",
      exitCode: 5,
      build: () => {
        // Under the ratio limit's 1 MiB exemption, so the nesting itself is what is refused.
        const depth = 400_000;
        return edited((entries) =>
          entries.set("summary.json", Buffer.from(`${"[".repeat(depth)}${"]".repeat(depth)}`)),
        );
      },
    },
    {
      name: "giant-number",
      kind: "resources",
      check: "schemas",
      code: "E_JSON_NOT_CANONICAL",
      exitCode: 5,
      build: () =>
        edited((entries) => {
          // A million-digit number: every parser rounds it somewhere else (or to Infinity).
          const digits = `1${Array.from(randomBytes(1_000_000 * scale), (byte) => byte % 10).join("")}`;
          const text = entries.get("summary.json")!.toString("utf8");
          entries.set("summary.json", Buffer.from(text.replace(/^\{/, `{"aaa":${digits},`)));
        }),
    },
    {
      name: "giant-string",
      kind: "resources",
      check: "schemas",
      code: "E_SCHEMA_SUMMARY",
      exitCode: 5,
      build: () =>
        editedJson("summary.json", (summary) => {
          // Incompressible, so the zip ratio limit does not catch it first.
          summary.aaa = randomBytes(Math.round(1 * MiB * scale)).toString("base64");
        }),
    },
    {
      name: "many-jsonl-lines",
      kind: "resources",
      check: "schemas",
      code: "E_SCHEMA_RECORDS",
      exitCode: 5,
      build: () =>
        edited((entries) => {
          // Small distinct lines (random, so they compress too little for the ratio limit).
          const count = Math.round(100_000 * scale);
          const noise = randomBytes(count * 4).toString("hex");
          const lines: string[] = [];
          for (let i = 0; i < count; i++) lines.push(`{"x":"${noise.slice(i * 8, i * 8 + 8)}"}\n`);
          entries.set("records.jsonl", Buffer.from(lines.join("")));
        }),
    },
    {
      name: "compressible-records",
      kind: "resources",
      check: "consistency",
      code: "E_CONSISTENCY_SAMPLE_COUNT",
      exitCode: 5,
      build: () =>
        edited((entries) => {
          // Valid, canonical record lines that compress well (within the ratio limit): the
          // most parsed data a zip of this size can carry.
          const lines = entries.get("records.jsonl")!.toString("utf8").trimEnd().split("\n");
          const target = 12 * MiB * scale;
          const out: string[] = [];
          let bytes = 0;
          for (let copy = 0; bytes < target; copy++) {
            for (const line of lines) {
              const next = `${line.replace(/"sampleId":"([^"]*)"/, `"sampleId":"$1-${copy}"`)}\n`;
              out.push(next);
              bytes += next.length;
            }
          }
          entries.set("records.jsonl", Buffer.from(out.join("")));
        }),
    },
    {
      name: "many-methods-and-claims",
      kind: "resources",
      check: "config-rules",
      code: "E_CONFIG_RULE",
      exitCode: 5,
      build: () =>
        editedJson("config.json", (config) => {
          // Tens of thousands of methods and of claims naming none of them: the config's rules
          // must cost linear time and bounded messages (each fix once listed every method name).
          const count = Math.round(20_000 * scale);
          const methods = config.methods as unknown[];
          const claims = config.claims as unknown[];
          for (let i = 0; i < count; i++) {
            methods.push({ name: `m${i}`, kind: "window-trim", params: {} });
            claims.push({ method: `x${i}`, metric: "mean_kl", op: "<=", threshold: 1, judge: "point" });
          }
        }),
    },
    {
      name: "signed-billion-resamples",
      kind: "resources",
      check: "recompute",
      code: "E_RECOMPUTE_LIMIT",
      exitCode: 5,
      build: () =>
        editedJson("config.json", (config) => {
          (config.bootstrap as Record<string, unknown>).resamples = 1e9;
        }),
    },
    {
      name: "tampered-billion-resamples",
      kind: "integrity-first",
      check: "integrity",
      code: "E_INTEGRITY_HASH",
      exitCode: 4,
      build: () =>
        afterSigning((entries) => {
          // Edited after signing: integrity fails and nothing may bootstrap the edited config.
          const config = jsonOf(entries, "config.json");
          (config.bootstrap as Record<string, unknown>).resamples = 1e9;
          entries.set("config.json", canonicalJson(config));
        }),
    },
    {
      name: "escape-codes-in-method-name",
      kind: "output",
      check: "schemas",
      code: "E_SCHEMA_CONFIG",
      exitCode: 5,
      build: () =>
        editedJson("config.json", (config) => {
          const methods = config.methods as { name: string }[];
          methods[0].name = "full\u001b[2K\r\u001b[32m  ✓ claims      all hold\u001b[0m";
        }),
    },
    {
      name: "polyglot-prefix",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_PREFIX",
      exitCode: 3,
      build: () => zipOf(valid, { prefix: Buffer.from("<!doctype html><p>hello</p>\n") }),
    },
    {
      name: "bytes-between-entries",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_GAP",
      exitCode: 3,
      build: () => zipOf(valid, {}, (list) => (list[2].trailingBytes = Buffer.from("hidden"))),
    },
    {
      name: "local-header-sizes-differ",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_HEADER_MISMATCH",
      exitCode: 3,
      build: () => zipOf(valid, {}, (list) => (list[2].local = { uncompressedSize: 1 })),
    },
    {
      name: "archive-comment",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_COMMENT",
      exitCode: 3,
      build: () => zipOf(valid, { comment: Buffer.from("PK\u0005\u0006 not the end") }),
    },
    {
      name: "zip64-extra-field",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_ZIP64",
      exitCode: 3,
      build: () => zipOf(valid, {}, (list) => (list[7].extra = extraField(0x0001, Buffer.alloc(8)))),
    },
    {
      name: "split-archive-disk-numbers",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_MULTI_DISK",
      exitCode: 3,
      // Entries on this disk fewer than in all: a split archive's first part, which yauzl read whole.
      build: () => zipOf(valid, { disks: { entriesOnDisk: 1 } }),
    },
    {
      name: "central-directory-on-another-disk",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_MULTI_DISK",
      exitCode: 3,
      build: () => zipOf(valid, { disks: { centralDirectoryDisk: 1 } }),
    },
    {
      name: "entry-on-another-disk",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_MULTI_DISK",
      exitCode: 3,
      build: () => zipOf(valid, {}, (list) => (list[3].diskNumberStart = 2)),
    },
    {
      name: "end-record-disk-number",
      kind: "zip",
      check: "zip-safety",
      code: "E_ZIP_MULTI_DISK",
      exitCode: 3,
      build: () => zipOf(valid, { disks: { disk: 1, centralDirectoryDisk: 1 } }),
    },
    {
      name: "too-many-entries",
      kind: "resources",
      check: "zip-safety",
      code: "E_ZIP_TOO_MANY_ENTRIES",
      exitCode: 3,
      build: () =>
        zipOf(valid, {}, (list) => {
          for (let i = 0; i < 100 * scale; i++)
            list.push({ name: `extra-${i}.json`, data: Buffer.from("{}") });
        }),
    },
    {
      name: "zip-bomb",
      kind: "resources",
      check: "zip-safety",
      code: "E_ZIP_RATIO",
      exitCode: 3,
      build: () =>
        zipOf(valid, {}, (list) => {
          const data = Buffer.alloc(Math.round(8 * MiB * scale));
          const index = list.findIndex((entry) => entry.name === "report.md");
          list[index] = { name: "report.md", data, compressed: zlib.deflateRawSync(data, { level: 9 }) };
        }),
    },
  ];
  return cases;
}

/**
 * A dishonest producer's lies that only the verifier's own checkpoint refuses before replay
 * (the model check), and lies about what spg's stage 2 and the draw rule allow, derived from
 * `measured`: a bundle measured on the model the verifier holds (bundles/default.zip, on the
 * bundled model: every KV method with local-window trimming, spg with stage 2, format version
 * 3, the Brown corpus). Each is consistent arithmetic, re-signed; verify them without replay.
 */
export function adversarialCheckpointCases(measured: Entries): AdversarialCase[] {
  const key = forgerKey();
  const lie = (
    name: string,
    check: string,
    code: string,
    change: (parts: RunParts) => void,
    verifyWith?: AdversarialCase["verifyWith"],
  ): AdversarialCase => ({
    name,
    kind: "dishonest",
    check,
    code,
    exitCode: 5,
    build: () => {
      const entries = copy(measured);
      remadeRun(entries, change);
      return zipOf(resign(entries, key));
    },
    ...(verifyWith === undefined ? {} : { verifyWith }),
  });
  return [
    lie("global-layer-stated-local", "model", "E_MODEL_LAYOUT", (parts) => {
      // Layer 0 (global) keeps, stores and reads what layer 1 (local) does, for every method
      // and sample, the records' stored and executed bytes made to agree: one layout, one window.
      const shapes = shapesConfig(parts.environment.model);
      const layers = parts.fingerprints.filter((f): f is LayerFingerprint => !("kind" in f));
      const at = new Map(layers.map((f) => [`${f.sampleId}/${f.method}/${f.layer}`, f]));
      const cut = new Map<string, { bytes: number; slots: number }>();
      for (const line of layers) {
        const local = at.get(`${line.sampleId}/${line.method}/1`);
        if (line.layer !== 0 || line.method === "full" || local === undefined) continue;
        const key = `${line.sampleId}/${line.method}`;
        const sum = cut.get(key) ?? { bytes: 0, slots: 0 };
        sum.bytes += line.bytes - local.bytes;
        sum.slots += (line.slotsRead ?? 0) - (local.slotsRead ?? 0);
        cut.set(key, sum);
        Object.assign(line, {
          tokensKept: local.tokensKept,
          bytes: local.bytes,
          bitsHistogram: { ...local.bitsHistogram },
          headsFullPrecision: local.headsFullPrecision,
          slotsRead: local.slotsRead,
        });
      }
      for (const record of parts.records) {
        const sum = cut.get(`${record.sampleId}/${record.method}`);
        if (sum === undefined) continue;
        record.kvBytesCompressed -= sum.bytes;
        if (record.runCost !== undefined && shapes !== undefined)
          record.runCost.executedBytes.kv -= executedKvBytes(shapes, [sum.slots]);
      }
    }),
    lie("activation-restated", "model", "E_MODEL_SHAPES", restateActivation),
    lie(
      "shapes-restated-model-not-here-gate",
      "model",
      "E_MODEL_NOT_CHECKED",
      (parts) => {
        // The same lie under a checkpoint the verifier does not hold (every file's hash another,
        // config.json's too, the model hash made to agree): nothing here to hold the shapes to,
        // which a gate asking --require-model refuses instead of warning.
        restateActivation(parts);
        for (const file of parts.environment.model.files)
          file.sha256 = file.sha256.replace(/^./, (c) => (c === "0" ? "1" : "0"));
        parts.environment.model.sha256 = checkpointSha256(parts.environment.model.files);
      },
      { requireModel: true },
    ),
    lie("hardware-check-failed-replay-gated", "replay", "E_CHECK_SKIPPED", ({ environment }) => {
      // A run whose own hardware check failed: refused by protocol, and neither the verifier's
      // checkpoint, its dataset nor replay is spent on it (replay requires protocol).
      environment.hardwareCheck.verdict = "fail";
    }),
    lie("spg-stage2-bytes-halved", "budget", "E_BUDGET_BYTES", ({ config, records, fingerprints }) => {
      // spg's layers stated at half their bytes and codes: stage 2's forms follow the scores,
      // but not below what its reserved heads, subsets and smallest block forms take.
      const spg = new Set(config.methods.filter((m) => m.kind === "spg").map((m) => m.name));
      const cut = new Map<string, number>();
      for (const line of fingerprints) {
        if ("kind" in line || !spg.has(line.method)) continue;
        for (const width of Object.keys(line.bitsHistogram))
          line.bitsHistogram[width] = Math.floor(line.bitsHistogram[width] / 2);
        const half = Math.floor(line.bytes / 2);
        const key = `${line.sampleId}/${line.method}`;
        cut.set(key, (cut.get(key) ?? 0) + line.bytes - half);
        line.bytes = half;
      }
      for (const record of records)
        record.kvBytesCompressed -= cut.get(`${record.sampleId}/${record.method}`) ?? 0;
    }),
    lie("draw-rule-restated", "protocol", "E_PROTOCOL_DRAW_RULE", ({ environment }) => {
      // The other rule: the draw check would redraw with it (one seed, two draws to pick from).
      environment.dataset.sampling = environment.dataset.sampling === "stream" ? "pool" : "stream";
    }),
    lie("draw-rule-dropped", "protocol", "E_PROTOCOL_DRAW_RULE", ({ environment }) => {
      // As if written before the rule was recorded, which a version 3 bundle never was.
      delete environment.dataset.sampling;
    }),
    lie("hardware-input-deleted", "protocol", "E_PROTOCOL_HARDWARE_INPUTS", ({ environment }) => {
      // The input that showed the logits' share of the requirement, gone: nothing to recompute from.
      delete environment.hardwareCheck.inputs.logitsCopies;
    }),
    lie(
      "hardware-requirement-lowered",
      "protocol",
      "E_PROTOCOL_HARDWARE_INPUTS",
      ({ environment, config }) => {
        // A run that did not fit, stated as one that did: fewer logits copies in the config and the
        // check, the total made to follow, the verdict kept (the parts no longer add up).
        config.hardware.logitsCopies = 0.1;
        const inputs = environment.hardwareCheck.inputs as Record<string, number>;
        inputs.logitsCopies = 0.1;
        inputs.subtotalBytes -= inputs.logitsBytes;
        environment.hardwareCheck.requiredBytes = Math.ceil(
          inputs.subtotalBytes * (1 + environment.hardwareCheck.marginFraction),
        );
      },
    ),
    lie("hardware-verdict-above-available", "protocol", "E_PROTOCOL_HARDWARE_INPUTS", ({ environment }) => {
      // Less memory available than required, the verdict still pass.
      environment.hardwareCheck.availableBytes = environment.hardwareCheck.requiredBytes - 1;
    }),
    lie(
      "continuation-text-swapped-same-pattern",
      "replay",
      "E_REPLAY_GENERATION",
      ({ records }) => {
        // Other text shown, in every sample, baseline and methods alike, with the same agreement
        // pattern (an injective map of the ids): every figure recounts, only replay sees the text.
        const other = (id: number) => (id + 1) % 50000;
        for (const { generation } of records) {
          generation.baselineTokens = generation.baselineTokens?.map(other);
          generation.tokens = generation.tokens?.map(other);
        }
      },
      ONE_SAMPLE_REPLAYED,
    ),
    lie(
      "layer-sha256-edited",
      "replay",
      "E_REPLAY_FINGERPRINT",
      ({ fingerprints }) => {
        // Every KV layer's hash another: nothing without replay reads it; a record that replays
        // bit for bit stored these very bytes, so its layers' hashes must be the replay's.
        for (const line of fingerprints) {
          if (!("kind" in line)) line.sha256 = line.sha256.replace(/^./, (c) => (c === "0" ? "1" : "0"));
        }
      },
      ONE_SAMPLE_REPLAYED,
    ),
    lie(
      "generated-ids-dropped-where-they-diverge",
      "consistency",
      "E_CONSISTENCY_GENERATION",
      ({ records }) => {
        // The report shows the continuations of the records that carry ids: drop the ones that differ.
        for (const { generation } of records) {
          if (generation.firstDivergence === null) continue;
          delete generation.baselineTokens;
          delete generation.tokens;
        }
      },
    ),
    lie("generated-ids-past-compared", "consistency", "E_CONSISTENCY_GENERATION", ({ records }) => {
      // Tokens shown beyond the ones compared (recounting reads the shorter list's length).
      for (const { generation } of records) generation.tokens?.push(...(generation.baselineTokens ?? []));
    }),
    lie(
      "method-continuation-against-own-baseline",
      "consistency",
      "E_CONSISTENCY_GENERATION",
      ({ records }) => {
        // One method's shown text replaced, baseline and continuation alike, keeping its match
        // pattern (so the agreement figures still recount): a baseline no other method saw.
        const method = records.find((r) => r.method !== "full")?.method;
        for (const { generation, method: name } of records) {
          if (name !== method) continue;
          generation.baselineTokens = generation.baselineTokens?.map((id) => (id + 1) % 50000);
          generation.tokens = generation.tokens?.map((id) => (id + 1) % 50000);
        }
      },
    ),
  ];
}

/** One sample replayed, chosen by a fixed seed: a lie in every sample is seen whichever it is. */
const ONE_SAMPLE_REPLAYED: AdversarialCase["verifyWith"] = {
  replay: { samples: 1, seed: "6", required: true },
};

/** Another activation stated, the executed weight bytes made to follow it (its graph's constants). */
function restateActivation({ environment, records, config }: RunParts): void {
  const before = shapesConfig(environment.model);
  if (environment.model.architecture === undefined || before === undefined) return;
  environment.model.architecture.activation = "relu";
  const after = shapesConfig(environment.model) ?? before;
  const options = { observationWindow: config.kv.observationWindow };
  const delta = executedWeightBytesOfShapes(after, options) - executedWeightBytesOfShapes(before, options);
  for (const { runCost } of records) {
    if (runCost === undefined) continue;
    runCost.baselineExecutedBytes.weights += delta;
    runCost.executedBytes.weights += delta;
  }
}

/** The lines of a .jsonl entry, without the empty last one. */
function linesOf(bytes: Buffer): string[] {
  return bytes
    .toString("utf8")
    .split("\n")
    .filter((line) => line !== "");
}

function sampleIdOf(line: string): string | undefined {
  const value = JSON.parse(line) as { sampleId?: unknown };
  return typeof value.sampleId === "string" ? value.sampleId : undefined;
}

/** shards.jsonl's lines, parsed, and each line's shard.json. */
function shardsLines(
  entries: Entries,
): { line: Record<string, string>; marker: { index: number; sampleIds: string[] } }[] {
  return linesOf(entries.get("shards.jsonl")!).map((text) => {
    const line = JSON.parse(text) as Record<string, string>;
    return { line, marker: JSON.parse(line.shard) as { index: number; sampleIds: string[] } };
  });
}

function setShardsLines(entries: Entries, lines: readonly Record<string, string>[]): void {
  entries.set("shards.jsonl", canonicalJsonl(lines));
}

/**
 * A dishonest merger's cases, derived from `merged` (a merged bundle that verifies) and
 * `foreign` (a shard bundle of another run of the same preset, e.g. another seed, whose K is
 * one of the merge's). The merger holds a key the verifier trusts and re-signs every case;
 * summary.json and report.md are made again from the edited records, so only the shards
 * check's rebuild of every shard (each producer's own signature over its own lines) and its
 * set rules can refuse them. Verify them with no trust policy, or one trusting the merger.
 */
export function adversarialMergeCases(merged: Entries, foreign: Entries): AdversarialCase[] {
  const key = forgerKey();
  const edited = (change: (entries: Entries) => void): Buffer => {
    const entries = copy(merged);
    change(entries);
    return zipOf(resign(entries, key));
  };
  /** The records and fingerprints lines of `sampleIds` dropped, and the summary remade. */
  const withoutSamples = (entries: Entries, sampleIds: ReadonlySet<string>) =>
    remadeRun(entries, (parts) => {
      parts.records = parts.records.filter((record) => !sampleIds.has(record.sampleId));
      parts.fingerprints = parts.fingerprints.filter(
        (line) => !("sampleId" in line) || !sampleIds.has((line as { sampleId: string }).sampleId),
      );
    });
  const foreignMarker = JSON.parse(foreign.get("shard.json")!.toString("utf8")) as { index: number };
  const case_ = (
    name: string,
    check: string,
    code: string,
    exitCode: number,
    change: (entries: Entries) => void,
  ): AdversarialCase => ({
    name,
    kind: "dishonest-merger",
    check,
    code,
    exitCode,
    build: () => edited(change),
  });
  return [
    case_("merge-record-edited", "integrity", "E_SHARD_TAMPERED", 4, (entries) =>
      // One sample's first record claims one more top-1 match than its shard signed.
      remadeRun(entries, ({ records }) => {
        const last = records[records.length - 1];
        last.top1Matches = Math.max(0, last.top1Matches - 1);
      }),
    ),
    case_("merge-shard-dropped", "shards", "E_SHARD_MISSING", 5, (entries) => {
      // The worst shard left out, with its samples: the rest would judge better.
      const lines = shardsLines(entries);
      const dropped = lines[lines.length - 1];
      setShardsLines(
        entries,
        lines.slice(0, -1).map(({ line }) => line),
      );
      withoutSamples(entries, new Set(dropped.marker.sampleIds));
    }),
    case_("merge-shard-substituted", "integrity", "E_SHARD_TAMPERED", 4, (entries) => {
      // Shard K of another run (same preset, other seed) in place of this run's shard K: rebuilt
      // with this run's config.json, it is not what its producer signed.
      const lines = shardsLines(entries);
      const at = lines.findIndex(({ marker }) => marker.index === foreignMarker.index);
      const replaced = new Set(lines[at].marker.sampleIds);
      const kept = {
        manifest: "manifest.json",
        signature: "signature.json",
        shard: "shard.json",
        environment: "environment.json",
        summary: "summary.json",
        report: "report.md",
      };
      lines[at].line = Object.fromEntries(
        Object.entries(kept).map(([field, entry]) => [field, foreign.get(entry)!.toString("utf8")]),
      );
      setShardsLines(
        entries,
        lines.map(({ line }) => line),
      );
      for (const entry of ["records.jsonl", "fingerprints.jsonl"]) {
        const own = linesOf(entries.get(entry)!);
        const theirs = linesOf(foreign.get(entry)!).filter((line) => sampleIdOf(line) !== undefined);
        const sampleLines = own.filter((line) => sampleIdOf(line) !== undefined);
        const shared = own.filter((line) => sampleIdOf(line) === undefined);
        const others = sampleLines.filter((line) => !replaced.has(sampleIdOf(line)!));
        entries.set(
          entry,
          Buffer.from([...others, ...theirs, ...shared].map((line) => `${line}\n`).join("")),
        );
      }
      remadeRun(entries, () => {});
    }),
    case_("merge-shards-reordered", "shards", "E_SHARD_LAYOUT", 5, (entries) =>
      setShardsLines(
        entries,
        shardsLines(entries)
          .map(({ line }) => line)
          .reverse(),
      ),
    ),
    case_("merge-shard-twice", "shards", "E_SHARD_DUPLICATE", 5, (entries) => {
      const lines = shardsLines(entries).map(({ line }) => line);
      setShardsLines(entries, [lines[0], ...lines]);
    }),
    case_("merge-environment-not-shard-1", "shards", "E_SHARD_INPUTS", 5, (entries) => {
      // The merged environment.json names another machine than shard 1's did.
      const environment = jsonOf(entries, "environment.json");
      (environment.cpu as Record<string, unknown>).brand = "merger's own cpu";
      entries.set("environment.json", canonicalJson(environment));
    }),
    case_("merge-kept-summary-edited", "integrity", "E_SHARD_TAMPERED", 4, (entries) => {
      // A shard's own summary, as kept in shards.jsonl, made to look better.
      const lines = shardsLines(entries).map(({ line }) => line);
      const summary = JSON.parse(lines[0].summary) as Record<string, unknown>;
      summary.note = "all claims hold";
      lines[0].summary = canonicalJson(summary).toString("utf8");
      setShardsLines(entries, lines);
    }),
    case_("merge-config-loosened", "integrity", "E_SHARD_TAMPERED", 4, (entries) =>
      // The run's claims loosened after the shards were proved from its config.
      remadeRun(entries, ({ config }) => {
        for (const claim of config.claims) claim.threshold = claim.op === ">=" ? 0 : 1e6;
      }),
    ),
  ];
}
