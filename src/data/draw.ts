/**
 * The samples of one configured split and the split's identity: Brown, text and dir splits are
 * read whole and drawn by src/data/sampling.ts; JSONL and parquet splits stream through
 * src/data/stream-sampling.ts.
 */
import type { RunConfig } from "../config/types.js";
import { loadBrownSplitNamed } from "./brown.js";
import { brownSplitTokens } from "./brown-tokens.js";
import { drawSamples } from "./sampling.js";
import { configuredLocalSource, isStreamedSource, loadLocalSplit, streamLocalSplit } from "./sources.js";
import { drawStreamedSamples } from "./stream-sampling.js";
import { encode } from "./tokenizer.js";
import type { DatasetIdentity, DatasetSplit, Sample } from "./types.js";

export interface DrawnSplit {
  identity: DatasetIdentity;
  samples: Sample[];
}

function identityOf(split: DatasetSplit): DatasetIdentity {
  const { documents, ...rest } = split;
  return { ...rest, format: split.format ?? split.source, documents: documents.length, sampling: "pool" };
}

/** Draws `count` samples of the split a config names for `role` (0: the split is still read and identified). */
export async function drawConfiguredSplit(
  dataset: RunConfig["dataset"],
  role: Sample["role"],
  count: number,
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
    if (isStreamedSource(local.source)) {
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
