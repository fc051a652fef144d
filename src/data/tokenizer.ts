/**
 * GPT-2 byte-pair encoding (the vocabulary GPT-Neo uses), from gpt-tokenizer's r50k_base
 * encoding, which is GPT-2's 50257-token vocabulary and merges.
 */
import * as gpt2 from "gpt-tokenizer/encoding/r50k_base";

/** Number of token ids in the GPT-2 vocabulary, as the encoding reports it. */
export const vocabularySize: number = gpt2.vocabularySize;

/** The id of `<|endoftext|>`: the last id of the vocabulary. */
export const endOfTextId: number = gpt2.vocabularySize - 1;

/** Text to GPT-2 token ids. Special-token text such as `<|endoftext|>` is encoded as plain text. */
export function encode(text: string): number[] {
  return gpt2.encode(text, { disallowedSpecial: new Set() });
}

/** GPT-2 token ids back to text. */
export function decode(ids: Iterable<number>): string {
  return gpt2.decode(ids);
}

/**
 * Why a model of `modelVocabSize` rows cannot read GPT-2 token ids, or undefined when it can
 * (vocabularies padded past GPT-2's, as some checkpoints are, can).
 */
export function gpt2VocabularyProblem(modelVocabSize: number): string | undefined {
  if (modelVocabSize >= vocabularySize) return undefined;
  return `the model's vocab_size ${modelVocabSize} is smaller than the GPT-2 tokenizer's ${vocabularySize} ids the dataset is tokenized with`;
}
