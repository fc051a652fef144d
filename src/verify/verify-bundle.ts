/**
 * `spg verify FILE` as a library: the zip-safety unit reads the archive into the context,
 * then every entry check (checks/index.ts), the draw re-derived from the verifier's dataset,
 * then replay on the verifier's model, all walked by the same runner: a check whose required
 * check failed is reported as skipped, never run. An unreadable or unsafe zip therefore stops
 * at exit 3 with nothing inside it looked at.
 */
import { createHash, type Hash } from "node:crypto";
import { existsSync } from "node:fs";
import { SHARD_ENTRY, SHARDS_ENTRY, type ZipReadLimits } from "../bundle/format.js";
import { type BundleFileOpening, type EntrySink, readBundleZip, ZIP_CODES } from "../bundle/read.js";
import { readTrustedKeys } from "../bundle/sign.js";
import {
  type EnvironmentFile,
  type FingerprintLine,
  isWeightFingerprint,
  type SampleRecord,
} from "../bundle/types.js";
import type { RunConfig } from "../config/types.js";
import { isSpgError, SpgError } from "../errors.js";
import { checkpointLayout } from "../model/checkpoint.js";
import type { GptNeoCheckpoint } from "../model/types.js";
import type { VerifierDataset } from "./checks/draw.js";
import {
  type CheckOptions,
  type CheckUnit,
  drawCheck,
  ENTRY_CHECKS,
  modelCheck,
  thresholdsOf,
} from "./checks/index.js";
import { LineFolds, STREAMED_ENTRIES } from "./checks/lines.js";
import { scannedVerifierModel } from "./checks/model.js";
import {
  checkReplay,
  type ReplayOptions,
  replayCheckpoint,
  type StoredLinesReader,
} from "./checks/replay.js";
import { BundleContext } from "./context.js";
import { JsonLinesReader } from "./parse.js";
import { loadVerifyPolicy } from "./policy.js";
import { type CheckOutcomes, runUnit, type VerifyResult, verifyResult } from "./runner.js";
import { CHECK_ORDER, type CheckName, type Finding, fail, pass, warn } from "./types.js";

export interface VerifyFileOptions {
  /** Trusted keys file (key ids or public keys); undefined = no trust policy. */
  trustedKeysFile?: string;
  /** Fail unless the signer is trusted. */
  requireTrusted: boolean;
  /** Tighten or loosen the zip reader's limits. */
  limits?: Partial<ZipReadLimits>;
  /** Replay on the verifier's model (default: every sample); false = off, with a warning. */
  replay?: ReplayOptions | false;
  /** The verifier's policy file (default configs/verify/policy.yaml). */
  policyFile?: string;
  /** Dataset files the verifier names for bundles not measured on the bundled corpus. */
  dataset?: VerifierDataset;
  /** How the bundle file is opened and which file it must be (spg merge: no link, the file it checked). */
  opening?: BundleFileOpening;
  /** Fail, not warn, when the bundle's model shapes cannot be checked here (--require-model). */
  requireModel?: boolean;
  /**
   * The verifier's checkpoint (--model DIR) when replay is off; with replay on, replay's own
   * modelDir. The model check holds the stated shapes to it either way (default: the bundled model).
   */
  modelDir?: string;
}

interface FileCheckOptions extends CheckOptions {
  path: string;
  opening?: BundleFileOpening;
  limits?: Partial<ZipReadLimits>;
  replay: ReplayOptions | false;
  /** The verifier's checkpoint, read and hashed on first call (only replay asks), undefined when none is here. */
  checkpoint: () => Promise<GptNeoCheckpoint | undefined>;
}

/** The verifier's own inputs are checked before any bundle is read: a bad one is exit 2. */
function checkVerifierPaths(dataset: VerifierDataset | undefined): void {
  for (const [flag, path] of [
    ["--dataset-path", dataset?.path],
    ["--calibration-path", dataset?.calibrationPath],
  ] as const) {
    if (path !== undefined && !existsSync(path)) {
      throw new SpgError("E_VERIFY_DATASET", `${flag} ${path} does not exist`, {
        file: path,
        fix: `give ${flag} the split's file or directory`,
      });
    }
  }
}

/**
 * A shard's or a merge's records are kept whole: the shards check rebuilds each shard's bundle
 * from their bytes. Every other bundle's records and fingerprints stream through the line folds.
 */
function streamsLines(archiveNames: readonly string[]): boolean {
  return !archiveNames.includes(SHARD_ENTRY) && !archiveNames.includes(SHARDS_ENTRY);
}

/**
 * The archive is read safely (src/bundle/read.ts) into the context; nothing else reads the
 * file (but replay, which reads again only the lines it re-runs). records.jsonl and
 * fingerprints.jsonl are not kept: they pass through the line folds as they inflate
 * (checks/lines.ts), after every other entry.
 */
export const zipSafetyCheck: CheckUnit<FileCheckOptions> = {
  name: "zip-safety",
  codes: Object.values(ZIP_CODES),
  requires: [],
  run: async (context, options) => {
    const read = await readBundleZip(options.path, {
      limits: options.limits,
      opening: options.opening,
      stream: {
        names: STREAMED_ENTRIES,
        open: (name, readSoFar, archiveNames) => {
          if (!streamsLines(archiveNames)) return undefined;
          for (const [entry, bytes] of readSoFar) context.entries.set(entry, bytes);
          context.lineFolds ??= new LineFolds(context, options);
          return context.lineFolds.sink(name);
        },
      },
    });
    if (!read.ok) return read.findings.map((finding) => ({ ...finding }));
    for (const [name, bytes] of read.entries) context.entries.set(name, bytes);
    return [
      pass(
        "zip-safety",
        `${context.names().length} entries read within limits (${read.inflatedBytes} bytes inflated)`,
      ),
    ];
  },
};

/**
 * The stored lines of the chosen samples: from memory when the entries were kept, else read
 * again from the file, and used only if their bytes are still the ones verified (sha256).
 */
function storedLinesOf(context: BundleContext, options: FileCheckOptions): StoredLinesReader {
  return async (sampleIds) => {
    const chosen = (value: unknown) =>
      isWeightFingerprint(value as FingerprintLine) ||
      sampleIds.has((value as { sampleId: string }).sampleId);
    const lines = new Map<string, unknown[]>(STREAMED_ENTRIES.map((name) => [name, []]));
    const held = STREAMED_ENTRIES.every((name) => context.entries.has(name));
    const readers = new Map<string, { hash: Hash; lines: JsonLinesReader }>(
      STREAMED_ENTRIES.map((name) => [
        name,
        {
          hash: createHash("sha256"),
          lines: new JsonLinesReader(name, (value) => {
            if (chosen(value)) lines.get(name)?.push(value);
          }),
        },
      ]),
    );
    const sink = (name: string): EntrySink | undefined => {
      const reader = readers.get(name);
      if (reader === undefined) return undefined;
      return {
        push: (chunk) => {
          reader.hash.update(chunk);
          reader.lines.push(chunk);
        },
        end: () => reader.lines.end(),
      };
    };
    if (held) {
      for (const name of STREAMED_ENTRIES) {
        const bytes = context.entries.get(name) as Buffer;
        sink(name)?.push(bytes);
        sink(name)?.end();
      }
    } else {
      const read = await readBundleZip(options.path, {
        limits: options.limits,
        opening: options.opening,
        stream: { names: STREAMED_ENTRIES, open: (name) => sink(name) },
      });
      if (!read.ok)
        return { problem: `the bundle cannot be read again for replay: ${read.findings[0]?.message}` };
    }
    for (const [name, reader] of readers) {
      const digest = reader.hash.digest("hex");
      if (digest !== context.digest(name)?.sha256) {
        return { problem: `${name} changed since it was verified (sha256 ${digest}); nothing was replayed` };
      }
    }
    return {
      records: lines.get("records.jsonl") as SampleRecord[],
      fingerprints: lines.get("fingerprints.jsonl") as FingerprintLine[],
    };
  };
}

/**
 * The checks before replay that it does not wait for: zip-safety (nothing runs without it), the
 * figures derived from the records (executed-cost, recompute, claims, policy, report-md: replay
 * re-runs the records themselves, and its verdict is reported beside theirs) and shards.
 */
const REPLAY_RUNS_WITHOUT: ReadonlySet<CheckName> = new Set<CheckName>([
  "zip-safety",
  "executed-cost",
  "recompute",
  "claims",
  "policy",
  "shards",
  "report-md",
]);

/**
 * Replay touches nothing on the bundle's word: it runs only once the bytes, the signer, the
 * files and the draw held, on the verifier's model and the samples re-drawn here.
 */
export const replayCheck: CheckUnit<FileCheckOptions> = {
  name: "replay",
  codes: [
    "E_REPLAY_DIFFERS",
    "E_REPLAY_FINGERPRINT",
    "E_REPLAY_GENERATION",
    "E_REPLAY_MODEL_MISMATCH",
    "E_REPLAY_RECORD",
    "E_REPLAY_UNAVAILABLE",
  ],
  // Every check before it but REPLAY_RUNS_WITHOUT: a check added before replay is required
  // unless it is named there. config-rules: a config prove would refuse is never run (its
  // method would throw mid-replay); budget: records that contradict their own params are not
  // worth a model's time; protocol: a run whose own facts are wrong (hardware check failed,
  // model hash not its files', samples leaked) is refused before the verifier's time is spent
  // on it, whatever the records say.
  requires: CHECK_ORDER.slice(0, CHECK_ORDER.indexOf("replay")).filter(
    (check) => !REPLAY_RUNS_WITHOUT.has(check),
  ),
  run: async (context, options) => {
    const replay = options.replay;
    if (replay === false) {
      return [
        warn(
          "replay",
          "W_REPLAY_OFF",
          "not replayed (--no-replay): the measured numbers are the signer's word",
        ),
      ];
    }
    if (context.evaluation === undefined) {
      if (replay.required) {
        return [
          fail(
            "replay",
            "E_REPLAY_UNAVAILABLE",
            "replay was asked for, but the bundle's dataset is not here (give it with --dataset-path and --calibration-path): nothing was replayed",
          ),
        ];
      }
      return [
        warn(
          "replay",
          "W_REPLAY_NOT_CHECKED",
          "not checked: the dataset is not available here; the measured numbers are the signer's word",
        ),
      ];
    }
    return checkReplay(
      {
        config: context.valid.get("config.json") as RunConfig,
        environment: context.valid.get("environment.json") as EnvironmentFile,
        stored: storedLinesOf(context, options),
        evaluation: context.evaluation,
        // The model is read and hashed only now, when replay runs.
        checkpoint: await options.checkpoint(),
        modelNamed: replay.modelDir !== undefined,
        tolerances: thresholdsOf(context, options).replay.tolerances,
        version: context.version(),
      },
      replay,
    );
  },
};

/** Every unit `spg verify FILE` walks, in order; each names its codes (besides RUNNER_CODES). */
export const CHECK_UNITS: readonly CheckUnit<never>[] = [
  zipSafetyCheck,
  ...ENTRY_CHECKS,
  modelCheck,
  drawCheck,
  replayCheck,
] as CheckUnit<never>[];

export interface VerifyFileResult extends VerifyResult {
  /** The entries read and checked (absent when the zip was unreadable or unsafe): `spg merge` uses what it verified. */
  entries?: Map<string, Buffer>;
}

/** Read and verify one bundle file. Throws only for the verifier's bad inputs (trusted keys, policy, model, dataset). */
export async function verifyBundleFile(path: string, options: VerifyFileOptions): Promise<VerifyFileResult> {
  const trustedKeyIds =
    options.trustedKeysFile === undefined ? undefined : await readTrustedKeys(options.trustedKeysFile);
  const policy = loadVerifyPolicy(options.policyFile);
  checkVerifierPaths(options.dataset);
  const replay = options.replay ?? { samples: "all" };
  // A bad --model path is the verifier's input error (exit 2), found before the bundle is read;
  // its weights are hashed only if replay runs.
  const modelDir = replay === false ? options.modelDir : replay.modelDir;
  if (modelDir !== undefined) checkpointLayout(modelDir);
  let checkpoint: Promise<GptNeoCheckpoint | undefined> | undefined;
  // A --model directory that does not read (its config.json against its own weights, say) is
  // the verifier's bad input like a bad path: kept here and thrown (exit 2) after the check that
  // met it, never a crashed check. The bundled model not reading only leaves nothing to check with.
  let verifierInputError: unknown;
  const asVerifierInput = <T>(read: () => Promise<T>) =>
    modelDir === undefined
      ? read
      : () =>
          read().catch((error: unknown) => {
            if (isSpgError(error)) verifierInputError ??= error;
            throw error;
          });
  const checkpointOnce = asVerifierInput(() => {
    checkpoint ??= replay === false ? Promise.resolve(undefined) : replayCheckpoint(replay.modelDir);
    return checkpoint;
  });
  const checkOptions: FileCheckOptions = {
    path,
    opening: options.opening,
    // The policy bounds what verify holds in memory; a caller's limits come on top.
    limits: { maxHeldEntryBytes: policy.bundle?.maxHeldEntryBytes, ...options.limits },
    replay,
    checkpoint: checkpointOnce,
    // With replay on, the checkpoint replay reads (hashed once); without, only scanned.
    verifierModel: replay === false ? asVerifierInput(() => scannedVerifierModel(modelDir)) : checkpointOnce,
    trustedKeyIds,
    requireTrusted: options.requireTrusted,
    requireModel: options.requireModel,
    policy,
    dataset: options.dataset,
  };
  const context = new BundleContext();
  const outcomes: CheckOutcomes = new Map();
  const findings: Finding[] = [];
  const units: CheckUnit<FileCheckOptions>[] = [
    zipSafetyCheck,
    ...ENTRY_CHECKS,
    modelCheck,
    drawCheck,
    replayCheck,
  ];
  for (const unit of units) {
    findings.push(...(await runUnit(unit, context, checkOptions, outcomes)));
    if (verifierInputError !== undefined) throw verifierInputError;
  }
  const zipRead = outcomes.get("zip-safety") === true;
  const result: VerifyFileResult = verifyResult(
    findings,
    context.recomputed,
    zipRead ? thresholdsOf(context, checkOptions) : undefined,
  );
  if (zipRead) result.entries = context.entries;
  return result;
}

/** The default of --require-trusted: on in CI (CI=true), off elsewhere. */
export function requireTrustedByDefault(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === "true";
}
