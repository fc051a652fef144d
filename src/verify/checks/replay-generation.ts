/**
 * Replay's comparison of the generated token lists (a record's generation.baselineTokens and
 * tokens: the continuations `spg report` shows), tolerance-aware.
 *
 * Greedy decoding amplifies float differences: one step whose two best tokens are nearly tied
 * may pick the other on another machine, and every token after it changes. So the lists are
 * compared up to their first difference only, and a difference is admitted only where the
 * replay itself was nearly tied: the stored token is the replay's runner-up at that step, and
 * its logit trails the replay's choice by no more than the record's NLL tolerance
 * (tolerances.nllPerToken × scoredTokens: the most the replay may move the record's summed
 * log-probabilities, hence any one of them). After an admitted difference the two runs continue
 * from different tokens and are not compared further. A stored list that leaves the replay's
 * where the replay was sure fails, E_REPLAY_GENERATION.
 */
import type { SampleRecord } from "../../bundle/types.js";
import type { GreedyTrace } from "../../measure/evaluate.js";

/** How one stored list compares with its replay. */
export type ListComparison =
  | { kind: "identical" }
  | { kind: "near-tie"; position: number; gap: number }
  | { kind: "differs"; problem: string };

/** Stored against replayed list, with the replay's greedy steps; `allowedGap` in logits (nats). */
export function compareTokenList(
  stored: readonly number[],
  replayed: readonly number[],
  steps: readonly (GreedyTrace["tokens"][number] | undefined)[],
  allowedGap: number,
): ListComparison {
  if (stored.length !== replayed.length)
    return { kind: "differs", problem: `${stored.length} token ids stored, ${replayed.length} replayed` };
  const position = stored.findIndex((id, i) => id !== replayed[i]);
  if (position < 0) return { kind: "identical" };
  const step = steps[position];
  const where = `token ${position}: stored ${stored[position]}, the replay chose ${replayed[position]}`;
  if (step === undefined || step === null)
    return {
      kind: "differs",
      problem: `${where} (the prefill's own token, no decode step to be near a tie)`,
    };
  if (step.runnerUp !== stored[position])
    return {
      kind: "differs",
      problem: `${where}, and ranked ${step.runnerUp} second (${step.gap.toPrecision(3)} behind): the stored token is not its runner-up`,
    };
  if (!(step.gap <= allowedGap))
    return {
      kind: "differs",
      problem: `${where} by ${step.gap.toPrecision(3)} in logit over the stored one, more than the ${allowedGap.toPrecision(3)} the record's NLL tolerance allows`,
    };
  return { kind: "near-tie", position, gap: step.gap };
}

export interface GenerationComparison {
  /** Lists compared (two per record that stores them). */
  compared: number;
  identical: number;
  /** Lists admitted at a near-tie: where, and the replay's gap there. */
  nearTies: { record: string; list: "baseline" | "tokens"; position: number; gap: number }[];
  /** Problems, one per record. */
  problems: { record: string; problem: string }[];
}

/**
 * Every replayed record's token lists against the stored ones. Records that store no ids
 * (bundles written before spg recorded them) show none and are not compared.
 */
export function compareGeneratedTokens(
  pairs: readonly { stored: SampleRecord; fresh: SampleRecord; trace: GreedyTrace | undefined }[],
  nllPerToken: number,
): GenerationComparison {
  const out: GenerationComparison = { compared: 0, identical: 0, nearTies: [], problems: [] };
  for (const { stored, fresh, trace } of pairs) {
    const record = `${stored.sampleId} / ${stored.method}`;
    const allowedGap = nllPerToken * stored.scoredTokens;
    for (const list of ["baseline", "tokens"] as const) {
      const storedIds = list === "baseline" ? stored.generation.baselineTokens : stored.generation.tokens;
      if (storedIds === undefined) continue;
      const replayedIds =
        (list === "baseline" ? fresh.generation.baselineTokens : fresh.generation.tokens) ?? [];
      out.compared++;
      const result = compareTokenList(storedIds, replayedIds, trace?.[list] ?? [], allowedGap);
      if (result.kind === "identical") out.identical++;
      else if (result.kind === "near-tie")
        out.nearTies.push({ record, list, position: result.position, gap: result.gap });
      else {
        out.problems.push({
          record,
          problem: `${list === "baseline" ? "baseline" : "method"} continuation ${result.problem}`,
        });
        break;
      }
    }
  }
  return out;
}
