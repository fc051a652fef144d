/**
 * Replay: re-run the bundle's samples here, on the model the verifier holds, and compare the
 * fresh records and fingerprints with the stored ones within the verifier's tolerances
 * (src/verify/policy.ts; a bundle may only tighten them).
 *
 * Nothing here comes from the bundle's word: the model is the verifier's (--model DIR, or the
 * bundled model), matched to the bundle by checkpoint sha256, never by the path the bundle
 * names; the samples are the ones the draw check re-derived from the verifier's dataset; which
 * of them are re-run is chosen from the verifier's randomness (a CSPRNG seed, printed, so a
 * second verifier reproduces the choice with --replay-seed), so a producer cannot know in
 * advance which samples it may fabricate. The runner calls this only after integrity,
 * signature and trust passed.
 */
import { createHash, randomBytes } from "node:crypto";
import { headLayoutOfVersion } from "../../bundle/format.js";
import {
  type EnvironmentFile,
  type FingerprintLine,
  isWeightFingerprint,
  type LayerFingerprint,
  type SampleRecord,
} from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { Mulberry32 } from "../../data/prng.js";
import type { Sample } from "../../data/types.js";
import { SpgError } from "../../errors.js";
import { type GreedyTrace, type GreedyTraces, greedyTraceKey } from "../../measure/evaluate.js";
import { measureRun } from "../../measure/open-run.js";
import { readCheckpoint } from "../../model/checkpoint.js";
import type { GptNeoCheckpoint } from "../../model/types.js";
import { bundledModelDir } from "../../paths.js";
import type { ReplayTolerances } from "../policy.js";
import { type Finding, fail, pass, warn } from "../types.js";
import { compareGeneratedTokens } from "./replay-generation.js";

const CHECK = "replay" as const;

/** A replay seed: hex, 1 to 64 digits (the verifier's randomness; see newReplaySeed). */
export const REPLAY_SEED_PATTERN = /^[0-9a-f]{1,64}$/;

export interface ReplayOptions {
  /** How many evaluation samples to re-run, or every one. */
  samples: number | "all";
  /**
   * The verifier demanded replay (`--replay all` or `--replay N`): a replay that cannot run here
   * (the bundle's model or dataset is not here) fails, E_REPLAY_UNAVAILABLE, instead of warning.
   * Otherwise a producer could dodge replay by naming a model hash the verifier does not hold.
   */
  required?: boolean;
  /** The seed choosing the samples (hex); default: a fresh one from the CSPRNG. */
  seed?: string;
  /** The verifier's checkpoint directory; default: the bundled model. */
  modelDir?: string;
  /** Device to replay on (the verifier's; default cpu). */
  device?: RunConfig["model"]["device"];
  cacheDir?: string;
  /** onnxruntime intra-op threads (0 or absent: its default). */
  intraOpThreads?: number;
}

/** 128 bits from the operating system's CSPRNG, as hex. */
export function newReplaySeed(): string {
  return randomBytes(16).toString("hex");
}

/** `count` distinct indices below `total`, sorted, chosen by `seed` (hex). */
export function replayIndices(total: number, count: number, seed: string): number[] {
  if (!REPLAY_SEED_PATTERN.test(seed))
    throw new RangeError(`replay seed must be 1-64 hex digits, got ${seed}`);
  const take = Math.min(count, total);
  const rng = new Mulberry32(
    createHash("sha256").update(`spg-replay:${seed}`, "utf8").digest().readUInt32LE(0),
  );
  const pool = Array.from({ length: total }, (_, i) => i);
  // Partial Fisher-Yates: the first `take` entries become a uniform sample.
  for (let i = 0; i < take; i++) {
    const j = i + rng.nextBelow(total - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, take).sort((a, b) => a - b);
}

/** How far a replayed record is from the stored one, in the units of the tolerances. */
export interface RecordDifferences {
  nllPerToken: number;
  klPerToken: number;
  agreementFraction: number;
  /** A weights method's logit cosine (0 for KV methods, which state none). */
  logitCosinePerToken: number;
}

export function recordDifferences(stored: SampleRecord, fresh: SampleRecord): RecordDifferences {
  const tokens = Math.max(1, stored.scoredTokens);
  const compared = Math.max(1, stored.generation.compared);
  return {
    nllPerToken:
      Math.max(
        Math.abs(stored.nllBaseline - fresh.nllBaseline),
        Math.abs(stored.nllCompressed - fresh.nllCompressed),
      ) / tokens,
    klPerToken: Math.abs(stored.klSum - fresh.klSum) / tokens,
    agreementFraction: Math.max(
      Math.abs(stored.top1Matches - fresh.top1Matches) / tokens,
      Math.abs(stored.generation.matches - fresh.generation.matches) / compared,
    ),
    // A record stating a cosine its replay has not (or the reverse) never passes (NaN).
    logitCosinePerToken:
      stored.logitCosineSum === undefined && fresh.logitCosineSum === undefined
        ? 0
        : Math.abs((stored.logitCosineSum ?? Number.NaN) - (fresh.logitCosineSum ?? Number.NaN)) / tokens,
  };
}

/** Differences between a stored record and its replay beyond the tolerances (NaN never passes). */
export function compareRecords(
  stored: SampleRecord,
  fresh: SampleRecord,
  tolerances: ReplayTolerances,
): string[] {
  const problems: string[] = [];
  const d = recordDifferences(stored, fresh);
  if (stored.scoredTokens !== fresh.scoredTokens)
    problems.push(`scoredTokens ${stored.scoredTokens} vs ${fresh.scoredTokens}`);
  if (stored.generation.compared !== fresh.generation.compared)
    problems.push(`generation.compared ${stored.generation.compared} vs ${fresh.generation.compared}`);
  if (!(d.nllPerToken <= tolerances.nllPerToken))
    problems.push(
      `NLL per token differs by ${d.nllPerToken} (baseline ${stored.nllBaseline} vs ${fresh.nllBaseline}, compressed ${stored.nllCompressed} vs ${fresh.nllCompressed})`,
    );
  if (!(d.klPerToken <= tolerances.klPerToken))
    problems.push(`KL per token differs by ${d.klPerToken} (${stored.klSum} vs ${fresh.klSum})`);
  if (!(d.agreementFraction <= tolerances.agreementFraction))
    problems.push(
      `agreement differs by ${d.agreementFraction} of tokens (top-1 ${stored.top1Matches} vs ${fresh.top1Matches}, generation ${stored.generation.matches} vs ${fresh.generation.matches})`,
    );
  if (!(d.logitCosinePerToken <= tolerances.logitCosinePerToken))
    problems.push(
      `logit cosine per token differs by ${d.logitCosinePerToken} (${stored.logitCosineSum} vs ${fresh.logitCosineSum})`,
    );
  // Bytes are a pure function of what was kept: they must match exactly.
  if (stored.kvBytesBaseline !== fresh.kvBytesBaseline)
    problems.push(`kvBytesBaseline ${stored.kvBytesBaseline} vs ${fresh.kvBytesBaseline}`);
  if (stored.kvBytesCompressed !== fresh.kvBytesCompressed)
    problems.push(`kvBytesCompressed ${stored.kvBytesCompressed} vs ${fresh.kvBytesCompressed}`);
  if (JSON.stringify(stored.weights) !== JSON.stringify(fresh.weights))
    problems.push(`weights ${JSON.stringify(stored.weights)} vs ${JSON.stringify(fresh.weights)}`);
  // Executed bytes follow from the shapes and what was kept: exact too (timings are not compared).
  if (stored.runCost !== undefined && fresh.runCost !== undefined) {
    const bytes = ({ executedBytes: m, baselineExecutedBytes: b }: NonNullable<SampleRecord["runCost"]>) =>
      JSON.stringify({ weights: m.weights, kv: m.kv, baselineWeights: b.weights, baselineKv: b.kv });
    if (bytes(stored.runCost) !== bytes(fresh.runCost))
      problems.push(`executed bytes ${bytes(stored.runCost)} vs ${bytes(fresh.runCost)}`);
  }
  return problems;
}

/**
 * Per method, the decode speed ratio (Σ steps / Σ ms of the method over the baseline's) of the
 * replayed samples as the bundle states them and as re-timed here: timings are measurements no
 * verifier can recompute, so replay reports both, side by side, and judges neither.
 */
export function replayedSpeedRatios(
  stored: readonly SampleRecord[],
  fresh: readonly SampleRecord[],
): Record<string, { stated: number; replayed: number }> {
  const ratio = (records: readonly SampleRecord[]) => {
    let method = 0;
    let baseline = 0;
    for (const r of records) {
      if (r.runCost === undefined) return undefined;
      method += r.timingsMs.generation;
      baseline += r.runCost.baselineTimingsMs.generation;
    }
    // Equal steps on both sides: tokens/s of the method over the baseline's is baseline ms / method ms.
    return method > 0 && baseline > 0 ? baseline / method : undefined;
  };
  const out: Record<string, { stated: number; replayed: number }> = {};
  for (const method of new Set(fresh.map((r) => r.method))) {
    const replayedRecords = fresh.filter((r) => r.method === method);
    const statedRecords = replayedRecords.map((r) =>
      stored.find((s) => s.sampleId === r.sampleId && s.method === method),
    );
    if (statedRecords.some((r) => r === undefined)) continue;
    const stated = ratio(statedRecords as SampleRecord[]);
    const replayed = ratio(replayedRecords);
    if (stated !== undefined && replayed !== undefined) out[method] = { stated, replayed };
  }
  return out;
}

/**
 * The model to replay with: the verifier's --model DIR or the bundled model, read and hashed
 * here. An unreadable --model is the verifier's bad argument (SpgError, exit 2).
 */
export async function replayCheckpoint(modelDir: string | undefined): Promise<GptNeoCheckpoint | undefined> {
  if (modelDir !== undefined) return readCheckpoint(modelDir);
  try {
    return await readCheckpoint(bundledModelDir());
  } catch (error) {
    if (error instanceof SpgError) return undefined;
    throw error;
  }
}

/** The bundle's stored lines of the samples replay re-runs. */
export interface StoredLines {
  records: readonly SampleRecord[];
  fingerprints: readonly FingerprintLine[];
}

/**
 * Reads the stored records and fingerprints of these samples (and every weight-tensor line):
 * replay holds only what it compares. A reason instead when they cannot be read as verified.
 */
export type StoredLinesReader = (
  sampleIds: ReadonlySet<string>,
) => Promise<StoredLines | { problem: string }>;

/** A reader over lines already in memory. */
export function storedLinesIn(
  records: readonly SampleRecord[],
  fingerprints: readonly FingerprintLine[],
): StoredLinesReader {
  return async () => ({ records, fingerprints });
}

export interface ReplayInput {
  config: RunConfig;
  environment: EnvironmentFile;
  /** The stored lines of the samples chosen (read after the choice). */
  stored: StoredLinesReader;
  /** The evaluation samples the draw check re-derived from the verifier's dataset. */
  evaluation: readonly Sample[];
  /** The verifier's checkpoint (replayCheckpoint), undefined when none is here. */
  checkpoint: GptNeoCheckpoint | undefined;
  /** Whether the verifier named the model (--model): then a hash mismatch fails. */
  modelNamed: boolean;
  /** The tolerances verify judges with (policy, tightened by the bundle). */
  tolerances: ReplayTolerances;
  /** manifest.json's version: the graph the run is replayed with follows from it (headLayoutOfVersion). */
  version: number;
}

/** The largest of each difference over every record compared. */
function widest(all: readonly RecordDifferences[]): RecordDifferences {
  const out: RecordDifferences = {
    nllPerToken: 0,
    klPerToken: 0,
    agreementFraction: 0,
    logitCosinePerToken: 0,
  };
  for (const d of all) {
    for (const key of Object.keys(out) as (keyof RecordDifferences)[]) out[key] = Math.max(out[key], d[key]);
  }
  return out;
}

/** Canonical text of a bit histogram (key order aside): compared exactly, like the bytes. */
function histogramText(histogram: Record<string, number>): string {
  return JSON.stringify(Object.entries(histogram).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Whether a replayed record reproduced its stored one bit for bit (NLL, KL, top-1): then the
 * caches it scored were the stored ones, and each layer's sha256 must be the stored one too.
 */
function bitIdentical(stored: SampleRecord, fresh: SampleRecord): boolean {
  return (
    stored.nllBaseline === fresh.nllBaseline &&
    stored.nllCompressed === fresh.nllCompressed &&
    stored.klSum === fresh.klSum &&
    stored.top1Matches === fresh.top1Matches
  );
}

function compareFingerprints(
  fresh: readonly FingerprintLine[],
  stored: readonly FingerprintLine[],
  findings: Finding[],
  /** Records (sampleId NUL method) the replay reproduced bit for bit: their layers' sha256 must match. */
  exactRecords: ReadonlySet<string>,
): { compared: number; identical: number; hashesCompared: number } {
  let compared = 0;
  let identical = 0;
  let hashesCompared = 0;
  for (const line of fresh) {
    compared++;
    if (isWeightFingerprint(line)) {
      // A weights method's tensors are a pure function of checkpoint and policy: bit-identical.
      const original = stored.find(
        (f) => isWeightFingerprint(f) && f.method === line.method && f.tensor === line.tensor,
      );
      if (original === undefined || original.bytes !== line.bytes || original.sha256 !== line.sha256) {
        findings.push(
          fail(CHECK, "E_REPLAY_FINGERPRINT", `${line.method} tensor ${line.tensor}: bytes differ`, {
            stored: original ?? null,
            replayed: { bytes: line.bytes, sha256: line.sha256 },
          }),
        );
      } else identical++;
      continue;
    }
    const original = stored.find(
      (f): f is LayerFingerprint =>
        !isWeightFingerprint(f) &&
        f.sampleId === line.sampleId &&
        f.method === line.method &&
        f.layer === line.layer,
    );
    if (
      original === undefined ||
      original.bytes !== line.bytes ||
      original.tokensKept !== line.tokensKept ||
      original.headsFullPrecision !== line.headsFullPrecision ||
      histogramText(original.bitsHistogram) !== histogramText(line.bitsHistogram) ||
      (original.slotsRead !== undefined && original.slotsRead !== line.slotsRead)
    ) {
      findings.push(
        fail(
          CHECK,
          "E_REPLAY_FINGERPRINT",
          `${line.sampleId} / ${line.method} layer ${line.layer}: bytes, tokens kept, full-precision heads, bit histogram or slots read differ`,
          {
            stored: original ?? null,
            replayed: {
              bytes: line.bytes,
              tokensKept: line.tokensKept,
              headsFullPrecision: line.headsFullPrecision,
              bitsHistogram: line.bitsHistogram,
              slotsRead: line.slotsRead,
            },
          },
        ),
      );
      continue;
    }
    if (original.sha256 === line.sha256) identical++;
    if (exactRecords.has(`${line.sampleId}\u0000${line.method}`)) {
      hashesCompared++;
      if (original.sha256 !== line.sha256) {
        findings.push(
          fail(
            CHECK,
            "E_REPLAY_FINGERPRINT",
            `${line.sampleId} / ${line.method} layer ${line.layer}: the record replays bit for bit, but the layer's sha256 is not the replayed bytes'`,
            { stored: original.sha256, replayed: line.sha256 },
          ),
        );
      }
    }
  }
  return { compared, identical, hashesCompared };
}

export async function checkReplay(input: ReplayInput, options: ReplayOptions): Promise<Finding[]> {
  const { config, environment, checkpoint } = input;
  if (checkpoint === undefined || checkpoint.sha256 !== environment.model.sha256) {
    const details = { expected: environment.model.sha256, here: checkpoint?.sha256 ?? null };
    if (input.modelNamed) {
      return [
        fail(
          CHECK,
          "E_REPLAY_MODEL_MISMATCH",
          "the model given is not the one the bundle was measured on",
          details,
        ),
      ];
    }
    if (options.required) {
      return [
        fail(
          CHECK,
          "E_REPLAY_UNAVAILABLE",
          "replay was asked for, but the bundle's model is not here (give it with --model DIR): nothing was replayed",
          details,
        ),
      ];
    }
    return [
      warn(
        CHECK,
        "W_REPLAY_NOT_CHECKED",
        "not checked: the bundle's model is not available here (give it with --model DIR); its numbers are the signer's word",
        details,
      ),
    ];
  }
  const architecture = environment.model.architecture;
  const { model } = environment;
  // Consistency and executed-cost computed with the shapes the bundle states (every version's
  // layers, heads and hidden size; version 3's architecture): they must be the checkpoint's.
  if (
    model.layers !== checkpoint.config.numLayers ||
    model.heads !== checkpoint.config.numHeads ||
    model.hiddenSize !== checkpoint.config.hiddenSize ||
    (architecture !== undefined &&
      (architecture.vocabSize !== checkpoint.config.vocabSize ||
        architecture.maxPositions !== checkpoint.config.maxPositions ||
        architecture.intermediateSize !== checkpoint.config.intermediateSize ||
        architecture.activation !== checkpoint.config.activation))
  ) {
    return [
      fail(
        CHECK,
        "E_REPLAY_MODEL_MISMATCH",
        "environment.json model (layers, heads, hiddenSize, architecture) is not the shapes of the checkpoint with the bundle's hash",
        { stated: { layers: model.layers, heads: model.heads, hiddenSize: model.hiddenSize, architecture } },
      ),
    ];
  }
  const seed = options.seed ?? newReplaySeed();
  const count = options.samples === "all" ? input.evaluation.length : options.samples;
  const chosen = replayIndices(input.evaluation.length, count, seed).map((i) => input.evaluation[i]);

  const stored = await input.stored(new Set(chosen.map((sample) => sample.sampleId)));
  if ("problem" in stored) return [fail(CHECK, "E_REPLAY_RECORD", stored.problem)];
  const records = stored.records;
  const findings: Finding[] = [];
  const differences: RecordDifferences[] = [];
  const greedyTraces: GreedyTraces = new Map();
  const fresh = await measureRun(checkpoint, chosen, config, {
    device: options.device ?? "cpu",
    cacheDir: options.cacheDir,
    intraOpThreads: options.intraOpThreads,
    headLayout: headLayoutOfVersion(input.version),
    greedyTraces,
  });
  const pairs: { stored: SampleRecord; fresh: SampleRecord; trace: GreedyTrace | undefined }[] = [];
  const exactRecords = new Set<string>();
  for (const record of fresh.records) {
    const original = records.find((r) => r.sampleId === record.sampleId && r.method === record.method);
    if (original === undefined) {
      findings.push(
        fail(
          CHECK,
          "E_REPLAY_RECORD",
          `${record.sampleId} / ${record.method}: record missing from the bundle`,
        ),
      );
      continue;
    }
    differences.push(recordDifferences(original, record));
    pairs.push({
      stored: original,
      fresh: record,
      trace: greedyTraces.get(greedyTraceKey(record.sampleId, record.method)),
    });
    if (bitIdentical(original, record)) exactRecords.add(`${record.sampleId}\u0000${record.method}`);
    const problems = compareRecords(original, record, input.tolerances);
    if (problems.length > 0) {
      findings.push(
        fail(
          CHECK,
          "E_REPLAY_RECORD",
          `${record.sampleId} / ${record.method} does not reproduce: ${problems[0]}`,
          {
            problems,
          },
        ),
      );
    }
  }
  const generation = compareGeneratedTokens(pairs, input.tolerances.nllPerToken);
  for (const { record, problem } of generation.problems) {
    findings.push(
      fail(CHECK, "E_REPLAY_GENERATION", `${record}: the stored ${problem}`, { record, problem }),
    );
  }
  const fingerprints = compareFingerprints(fresh.fingerprints, stored.fingerprints, findings, exactRecords);
  const generationText =
    generation.compared === 0
      ? "no generated token ids stored"
      : `${generation.identical} of ${generation.compared} generated token lists identical` +
        (generation.nearTies.length === 0
          ? ""
          : `, ${generation.nearTies.length} leave the replay at a near-tie (${generation.nearTies
              .map((t) => `${t.record} ${t.list} token ${t.position}, gap ${t.gap.toPrecision(2)}`)
              .join("; ")}) and are compared up to it`);
  const largest = widest(differences);
  const speeds = replayedSpeedRatios(records, fresh.records);
  const speedText = Object.entries(speeds)
    .map(([method, s]) => `${method} ${s.stated.toPrecision(3)} stated, ${s.replayed.toPrecision(3)} here`)
    .join("; ");
  const where = `seed ${seed}: ${chosen.length} of ${input.evaluation.length} samples re-run here`;
  if (findings.length > 0) {
    // One line that says which samples were judged, so a second verifier can re-run the same ones.
    findings.push(
      fail(
        CHECK,
        "E_REPLAY_DIFFERS",
        `${where}, ${findings.length} did not reproduce; re-run the same choice with --replay-seed ${seed}`,
        { seed, samples: chosen.map((s) => s.sampleId), largestDifferences: largest },
      ),
    );
    return findings;
  }
  return [
    pass(
      CHECK,
      `${where}: ${differences.length} records within tolerance (largest differences: NLL ${largest.nllPerToken.toExponential(2)}/token, ` +
        `KL ${largest.klPerToken.toExponential(2)}/token, agreement ${largest.agreementFraction}), ` +
        `${fingerprints.compared} layer/tensor fingerprints with equal bytes (${fingerprints.identical} bit-identical; ` +
        `sha256 held to the replay's for the ${fingerprints.hashesCompared} layers of records replayed bit for bit, ` +
        `the others within the tolerances above); ${generationText}` +
        (speedText === "" ? "" : `; decode speed ratios of these samples, not judged: ${speedText}`),
      {
        seed,
        samples: chosen.map((s) => s.sampleId),
        largestDifferences: largest,
        decodeSpeedRatios: speeds,
        generation: {
          compared: generation.compared,
          identical: generation.identical,
          nearTies: generation.nearTies,
        },
        sha256Compared: fingerprints.hashesCompared,
      },
    ),
  ];
}
