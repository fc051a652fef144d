/**
 * Check 9, replay (opt-in, needs the model): re-run some of the bundle's samples here, with
 * the bundle's own config, and compare the fresh records and fingerprints with the stored
 * ones within the config's tolerances. Samples are picked from the bundle's seed, so two
 * verifiers replay the same ones.
 */
import { parseJsonl } from "../../bundle/canonical.js";
import {
  type FingerprintLine,
  isWeightFingerprint,
  type LayerFingerprint,
  type SampleRecord,
} from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { Mulberry32 } from "../../data/prng.js";
import { isSpgError } from "../../errors.js";
import { createBackend } from "../../measure/backend.js";
import { drawRunSamples, resolveModelDir } from "../../measure/prove.js";
import { evaluateRun } from "../../measure/run-methods.js";
import { readCheckpoint } from "../../model/checkpoint.js";
import { type Finding, fail, pass } from "../types.js";

export interface ReplayOptions {
  /** How many evaluation samples to re-run. */
  samples: number;
  /** Checkpoint directory; default: the bundle config's model (the bundled model for "bundled"). */
  modelDir?: string;
  /** Device to replay on; default: the bundle config's. */
  device?: RunConfig["model"]["device"];
  cacheDir?: string;
}

/** `count` distinct indices below `total`, drawn from `seed`. */
export function replayIndices(total: number, count: number, seed: number): number[] {
  const rng = new Mulberry32(seed >>> 0);
  const pool = Array.from({ length: total }, (_, i) => i);
  // Partial Fisher-Yates: the first `count` entries become a uniform sample.
  for (let i = 0; i < Math.min(count, total); i++) {
    const j = i + rng.nextBelow(total - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, Math.min(count, total)).sort((a, b) => a - b);
}

function text(entries: Map<string, Buffer>, name: string): string {
  const bytes = entries.get(name);
  if (bytes === undefined) throw new Error(`${name} missing`);
  return bytes.toString("utf8");
}

/** Differences between a stored record and its replay, beyond the tolerances. */
export function compareRecords(stored: SampleRecord, fresh: SampleRecord, config: RunConfig): string[] {
  const problems: string[] = [];
  const t = config.tolerances;
  const perToken = (a: number, b: number) => Math.abs(a - b) / Math.max(1, stored.scoredTokens);
  if (stored.scoredTokens !== fresh.scoredTokens)
    problems.push(`scoredTokens ${stored.scoredTokens} vs ${fresh.scoredTokens}`);
  if (perToken(stored.nllBaseline, fresh.nllBaseline) > t.nllPerToken)
    problems.push(`nllBaseline ${stored.nllBaseline} vs ${fresh.nllBaseline}`);
  if (perToken(stored.nllCompressed, fresh.nllCompressed) > t.nllPerToken)
    problems.push(`nllCompressed ${stored.nllCompressed} vs ${fresh.nllCompressed}`);
  if (perToken(stored.klSum, fresh.klSum) > t.klPerToken)
    problems.push(`klSum ${stored.klSum} vs ${fresh.klSum}`);
  if (Math.abs(stored.top1Matches - fresh.top1Matches) > t.agreementFraction * stored.scoredTokens)
    problems.push(`top1Matches ${stored.top1Matches} vs ${fresh.top1Matches}`);
  const compared = Math.max(1, stored.generation.compared);
  if (Math.abs(stored.generation.matches - fresh.generation.matches) > t.agreementFraction * compared)
    problems.push(`generation.matches ${stored.generation.matches} vs ${fresh.generation.matches}`);
  // Bytes are a pure function of what was kept: they must match exactly.
  if (stored.kvBytesBaseline !== fresh.kvBytesBaseline)
    problems.push(`kvBytesBaseline ${stored.kvBytesBaseline} vs ${fresh.kvBytesBaseline}`);
  if (stored.kvBytesCompressed !== fresh.kvBytesCompressed)
    problems.push(`kvBytesCompressed ${stored.kvBytesCompressed} vs ${fresh.kvBytesCompressed}`);
  if (JSON.stringify(stored.weights) !== JSON.stringify(fresh.weights))
    problems.push(`weights ${JSON.stringify(stored.weights)} vs ${JSON.stringify(fresh.weights)}`);
  return problems;
}

export async function checkReplay(entries: Map<string, Buffer>, options: ReplayOptions): Promise<Finding[]> {
  const config = JSON.parse(text(entries, "config.json")) as RunConfig;
  const environment = JSON.parse(text(entries, "environment.json")) as {
    model: { sha256: string };
    dataset: { sha256: string };
  };
  const records = parseJsonl(text(entries, "records.jsonl")) as unknown as SampleRecord[];
  const fingerprints = parseJsonl(text(entries, "fingerprints.jsonl")) as unknown as FingerprintLine[];
  const modelDir = options.modelDir ?? resolveModelDir(config);

  let checkpoint: Awaited<ReturnType<typeof readCheckpoint>>;
  try {
    checkpoint = await readCheckpoint(modelDir);
  } catch (error) {
    if (!isSpgError(error)) throw error;
    return [
      fail("replay", "E_REPLAY_MODEL", `cannot load the model to replay with: ${error.message}`, {
        modelDir,
      }),
    ];
  }
  if (checkpoint.sha256 !== environment.model.sha256) {
    return [
      fail("replay", "E_REPLAY_MODEL_MISMATCH", "the model given is not the one the bundle was measured on", {
        modelDir,
        expected: environment.model.sha256,
        found: checkpoint.sha256,
      }),
    ];
  }
  const drawn = await drawRunSamples(config);
  if (drawn.evaluationSplit.sha256 !== environment.dataset.sha256) {
    return [
      fail("replay", "E_REPLAY_DATASET_MISMATCH", "the evaluation split here differs from the bundle's", {
        expected: environment.dataset.sha256,
        found: drawn.evaluationSplit.sha256,
      }),
    ];
  }
  const { evaluation } = drawn;
  const chosen = replayIndices(evaluation.length, options.samples, config.dataset.seed).map(
    (i) => evaluation[i],
  );

  const findings: Finding[] = [];
  const backend = await createBackend(checkpoint, {
    device: options.device ?? config.model.device,
    observationWindow: config.kv.observationWindow,
    baselineDtype: config.kv.baselineDtype,
    cacheDir: options.cacheDir,
  });
  let compared = 0;
  let layersCompared = 0;
  let identicalLayerBytes = 0;
  const replayable = chosen.filter((sample) => {
    const stored = records.filter((r) => r.sampleId === sample.sampleId);
    if (stored.length > 0 && stored.every((r) => r.tokenHash === sample.tokenHash)) return true;
    findings.push(
      fail("replay", "E_REPLAY_SAMPLE_MISMATCH", `sample ${sample.sampleId} redrawn here has other tokens`, {
        sampleId: sample.sampleId,
        tokenHash: sample.tokenHash,
      }),
    );
    return false;
  });
  try {
    const fresh = await evaluateRun(backend, checkpoint, replayable, config, {
      cacheDir: options.cacheDir,
      device: options.device,
    });
    for (const record of fresh.records) {
      const original = records.find((r) => r.sampleId === record.sampleId && r.method === record.method);
      const problems =
        original === undefined
          ? ["record missing from the bundle"]
          : compareRecords(original, record, config);
      compared++;
      if (problems.length > 0) {
        findings.push(
          fail("replay", "E_REPLAY_RECORD", `${record.sampleId} / ${record.method} does not reproduce`, {
            problems,
          }),
        );
      }
    }
    for (const line of fresh.fingerprints) {
      layersCompared++;
      if (isWeightFingerprint(line)) {
        // A weights method's tensors are a pure function of checkpoint and policy: bit-identical.
        const original = fingerprints.find(
          (f) => isWeightFingerprint(f) && f.method === line.method && f.tensor === line.tensor,
        );
        if (original === undefined || original.bytes !== line.bytes || original.sha256 !== line.sha256) {
          findings.push(
            fail("replay", "E_REPLAY_FINGERPRINT", `${line.method} tensor ${line.tensor}: bytes differ`, {
              stored: original ?? null,
              replayed: { bytes: line.bytes, sha256: line.sha256 },
            }),
          );
        } else identicalLayerBytes++;
        continue;
      }
      const original = fingerprints.find(
        (f): f is LayerFingerprint =>
          !isWeightFingerprint(f) &&
          f.sampleId === line.sampleId &&
          f.method === line.method &&
          f.layer === line.layer,
      );
      if (
        original === undefined ||
        original.bytes !== line.bytes ||
        original.tokensKept !== line.tokensKept
      ) {
        findings.push(
          fail(
            "replay",
            "E_REPLAY_FINGERPRINT",
            `${line.sampleId} / ${line.method} layer ${line.layer}: bytes or tokens kept differ`,
            { stored: original ?? null, replayed: { bytes: line.bytes, tokensKept: line.tokensKept } },
          ),
        );
      } else if (original.sha256 === line.sha256) identicalLayerBytes++;
    }
  } finally {
    await backend.close();
  }
  if (findings.length === 0) {
    findings.push(
      pass(
        "replay",
        `${chosen.length} samples re-run here: ${compared} records within tolerance, ` +
          `${layersCompared} layer/tensor fingerprints with equal bytes (${identicalLayerBytes} bit-identical)`,
        { samples: chosen.map((s) => s.sampleId) },
      ),
    );
  }
  return findings;
}
