/**
 * The samples of one configured split and the split's identity: the Brown corpus is read whole
 * and drawn by src/data/sampling.ts ("pool"); local sources (text, dir, JSONL, parquet) stream
 * through src/data/stream-sampling.ts ("stream"). A bundle made before a source streamed records
 * "pool" (or no rule at all): verify redraws it that way, reading the split whole.
 */
import type { RunConfig } from "../config/types.js";
import { loadBrownSplitNamed } from "./brown.js";
import { brownSplitTokens } from "./brown-tokens.js";
import { drawSamples } from "./sampling.js";
import { configuredLocalSource, loadLocalSplit, streamLocalSplit } from "./sources.js";
import { drawStreamedSamples } from "./stream-sampling.js";
import { encode } from "./tokenizer.js";
import type { DatasetIdentity, DatasetSplit, Sample } from "./types.js";

export interface DrawnSplit {
  identity: DatasetIdentity;
  samples: Sample[];
}

export type SamplingRule = DatasetIdentity["sampling"];

function identityOf(split: DatasetSplit): DatasetIdentity {
  const { documents, ...rest } = split;
  return { ...rest, format: split.format ?? split.source, documents: documents.length, sampling: "pool" };
}

/** The rule a source is drawn with today. */
export function currentSamplingRule(source: RunConfig["dataset"]["source"]): SamplingRule {
  return source === "brown" ? "pool" : "stream";
}

/**
 * Draws `count` samples of the split a config names for `role` (0: the split is still read and
 * identified), by `rule` (default: the source's current one; a bundle's recorded rule to redraw it).
 */
export async function drawConfiguredSplit(
  dataset: RunConfig["dataset"],
  role: Sample["role"],
  count: number,
  rule: SamplingRule = currentSamplingRule(dataset.source),
): Promise<DrawnSplit> {
  const options = {
    count,
    contextTokens: dataset.contextTokens,
    continuationTokens: dataset.continuationTokens,
    seed: dataset.seed,
    role,
  };
  let split: DatasetSplit;
  if (dataset.source === "brown") {
    split =
      role === "eval"
        ? loadBrownSplitNamed(dataset.split, "dataset.split")
        : loadBrownSplitNamed(dataset.calibrationSplit, "dataset.calibrationSplit");
  } else {
    const local = configuredLocalSource(dataset, role);
    if (rule === "stream") {
      const streamed = streamLocalSplit(local.source, local.path, local.split, local.options);
      const samples = await drawStreamedSamples(
        streamed.documents,
        { ...options, split: local.split },
        encode,
      );
      return { identity: streamed.identity(), samples };
    }
    split = await loadLocalSplit(local.source, local.path, local.split, local.options);
  }
  const tokens = () =>
    dataset.source === "brown"
      ? brownSplitTokens(split)
      : split.documents.map((document) => encode(document.text));
  const samples =
    count === 0
      ? []
      : drawSamples(
          tokens().map((ids, index) => ({ id: split.documents[index].id, tokens: ids })),
          { ...options, split: split.split },
        );
  return { identity: identityOf(split), samples };
}
