/**
 * Held-out perplexity of a checkpoint on a dataset split (`spg model eval`, and the numbers
 * in the bundled model's card). Protocol: each document is tokenized on its own and cut into
 * consecutive windows of `windowTokens`; every token but a window's first is scored;
 * perplexity = exp(sum NLL / scored tokens). The same tokens are scored by an add-one unigram
 * model fit on a reference split, as the floor a trained model must beat.
 *
 * A streamed split (a local dataset) is read one document at a time: what is held is the
 * current document's text and tokens and one window's outputs, whatever the split's size.
 * With maxWindows the rest of the split is still read (not tokenized, not run) so its sha256,
 * over every document, is the one `spg prove` records.
 */

import type { StreamedSplit } from "../data/sources.js";
import { encode, endOfTextId } from "../data/tokenizer.js";
import type { DatasetSplit } from "../data/types.js";
import { fitUnigram, unigramLogProbability } from "../data/unigram.js";
import { SpgError } from "../errors.js";
import { prefillTokens } from "../model/session.js";
import type { ForwardOutput, GptNeoRuntime } from "../model/types.js";

export interface PerplexityOptions {
  windowTokens: number;
  /** Stop after this many windows (all when absent). */
  maxWindows?: number;
  /** Split the unigram baseline is fit on (e.g. the training split); none when absent. */
  unigramSplit?: DatasetSplit;
  onWindow?: (windows: number, scoredTokens: number, perplexity: number) => void;
  /**
   * Runs the first `windows` windows on `runtime` instead (e.g. one that returns attention for
   * every query row) and hands each output to `inspect`: the same logits, more outputs.
   */
  inspect?: {
    windows: number;
    runtime: GptNeoRuntime;
    inspect: (output: ForwardOutput, window: readonly number[]) => void;
  };
}

export interface PerplexityResult {
  split: string;
  splitSha256: string;
  windowTokens: number;
  windows: number;
  scoredTokens: number;
  sumNll: number;
  perplexity: number;
  unigram: { fitOn: string; fitTokens: number; sumNll: number; perplexity: number } | null;
}

/** Token ids of a split as the trainer streams them: each document, then end-of-text. */
export function splitTokenStream(split: DatasetSplit): number[] {
  const ids: number[] = [];
  for (const document of split.documents) {
    for (const id of encode(document.text)) ids.push(id);
    ids.push(endOfTextId);
  }
  return ids;
}

/** Its name and sha256: at once for a split in memory, once read to its end for a streamed one. */
function identityOf(split: DatasetSplit | StreamedSplit): { split: string; sha256: string } {
  return "identity" in split ? split.identity() : split;
}

export async function evaluatePerplexity(
  runtime: GptNeoRuntime,
  split: DatasetSplit | StreamedSplit,
  options: PerplexityOptions,
): Promise<PerplexityResult> {
  const config = runtime.config;
  if (
    !Number.isInteger(options.windowTokens) ||
    options.windowTokens < 2 ||
    options.windowTokens > config.maxPositions
  ) {
    throw new SpgError("E_EVAL_WINDOW", `window of ${options.windowTokens} tokens does not fit this model`, {
      field: "--window",
      fix: `use a window between 2 and max_position_embeddings = ${config.maxPositions}`,
    });
  }
  const unigram =
    options.unigramSplit === undefined
      ? undefined
      : fitUnigram(splitTokenStream(options.unigramSplit), config.vocabSize);
  const maxWindows = options.maxWindows ?? Number.POSITIVE_INFINITY;
  let sumNll = 0;
  let unigramNll = 0;
  let scored = 0;
  let windows = 0;
  const inMemory = Array.isArray(split.documents);
  for await (const document of split.documents) {
    if (windows >= maxWindows) {
      // A stream is read on to its end for its hash (leaving the loop would close it).
      if (inMemory) break;
      continue;
    }
    const ids = encode(document.text);
    for (let start = 0; start + 1 < ids.length; start += options.windowTokens) {
      if (windows >= maxWindows) break;
      const window = ids.slice(start, start + options.windowTokens);
      const inspector =
        options.inspect !== undefined && windows < options.inspect.windows ? options.inspect : undefined;
      const { output } = await prefillTokens(inspector?.runtime ?? runtime, window);
      inspector?.inspect(output, window);
      for (let i = 0; i + 1 < window.length; i++) {
        // log p = logit - log Z, with log Z from the graph (float64).
        sumNll -= output.logits[i * config.vocabSize + window[i + 1]] - output.logitsLogSumExp[i];
        if (unigram) unigramNll -= unigramLogProbability(unigram, window[i + 1]);
        scored++;
      }
      windows++;
      options.onWindow?.(windows, scored, Math.exp(sumNll / scored));
    }
  }
  const identity = identityOf(split);
  if (scored === 0) {
    throw new SpgError(
      "E_DATASET_TOO_SHORT",
      `split ${identity.split} has no document of two tokens or more`,
      {
        field: "dataset",
        fix: "evaluate on a split with text in it",
      },
    );
  }
  return {
    split: identity.split,
    splitSha256: identity.sha256,
    windowTokens: options.windowTokens,
    windows,
    scoredTokens: scored,
    sumNll,
    perplexity: Math.exp(sumNll / scored),
    unigram:
      unigram && options.unigramSplit
        ? {
            fitOn: options.unigramSplit.split,
            fitTokens: unigram.total,
            sumNll: unigramNll,
            perplexity: Math.exp(unigramNll / scored),
          }
        : null,
  };
}
