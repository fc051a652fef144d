/**
 * Unigram language model over token ids with add-one (Laplace) smoothing:
 * p(t) = (count(t) + 1) / (total + vocabularySize). A floor for what a trained model must beat.
 */
import { SpgError } from "../errors.js";

export interface UnigramModel {
  vocabularySize: number;
  counts: Uint32Array;
  /** Number of counted tokens. */
  total: number;
}

export interface UnigramScore {
  tokens: number;
  /** Summed negative log-likelihood in nats. */
  sumNll: number;
  perplexity: number;
}

function checkId(id: number, vocabularySize: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabularySize) {
    throw new SpgError("E_TOKEN_RANGE", `token id ${id} is outside the vocabulary [0, ${vocabularySize})`, {
      field: "tokens",
      fix: "tokenize with the model's vocabulary",
    });
  }
}

/** Counts token ids (e.g. the Brown train split's tokens). */
export function fitUnigram(tokenIds: Iterable<number>, vocabularySize: number): UnigramModel {
  const counts = new Uint32Array(vocabularySize);
  let total = 0;
  for (const id of tokenIds) {
    checkId(id, vocabularySize);
    counts[id] += 1;
    total += 1;
  }
  return { vocabularySize, counts, total };
}

/** Natural log of the smoothed probability of one token id. */
export function unigramLogProbability(model: UnigramModel, id: number): number {
  checkId(id, model.vocabularySize);
  return Math.log(model.counts[id] + 1) - Math.log(model.total + model.vocabularySize);
}

/** Perplexity exp(sum NLL / tokens) of the given token ids under the model. */
export function unigramPerplexity(model: UnigramModel, tokenIds: Iterable<number>): UnigramScore {
  let sumNll = 0;
  let tokens = 0;
  for (const id of tokenIds) {
    sumNll -= unigramLogProbability(model, id);
    tokens += 1;
  }
  if (tokens === 0) {
    throw new SpgError("E_EMPTY_TOKENS", "no tokens to score", {
      field: "tokens",
      fix: "pass a non-empty split",
    });
  }
  return { tokens, sumNll, perplexity: Math.exp(sumNll / tokens) };
}
