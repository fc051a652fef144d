/**
 * The text column of a .parquet file (hyparquet, with hyparquet-compressors for snappy, gzip,
 * zstd, brotli and lz4 pages), read one row group at a time so a large file is never held in
 * memory: what is held is one row group's text column (its compressed bytes, then its strings).
 * Rows are numbered from 0, as parquet tools number them.
 *
 * Sizes the file claims are checked before anything is allocated for them: a row group's column
 * chunk must lie inside the file, and a page's stated uncompressed size must be one its codec can
 * produce from its compressed bytes (compressorsWithLimits). hyparquet itself refuses a footer
 * longer than the file.
 */
import { basename } from "node:path";
import {
  type AsyncBuffer,
  type FileMetaData,
  parquetMetadataAsync,
  parquetRead,
  parquetSchema,
} from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { SpgError } from "../errors.js";
import { type OpenedDatasetFile, unreadableDataset, ZstdWindowGuard } from "./streams.js";

/** One row's text. */
export interface ParquetTextRow {
  row: number;
  text: string;
}

function unreadable(file: string, detail: string, cause: unknown): SpgError {
  return new SpgError("E_DATASET_PARQUET", `cannot read the parquet file: ${detail}`, {
    file,
    fix: `download ${basename(file)} again (a cut-short file has no footer), or check that it is a parquet file`,
    cause,
  });
}

/**
 * The opened file as hyparquet's AsyncBuffer: positioned reads on the one handle (hyparquet's
 * own asyncBufferFromFile stats the path, then opens it again for every slice).
 */
function handleBuffer({ file, handle, bytes }: OpenedDatasetFile): AsyncBuffer {
  return {
    byteLength: bytes,
    async slice(start: number, end: number = bytes): Promise<ArrayBuffer> {
      const length = Math.max(0, Math.min(end, bytes) - start);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await handle.read(out, done, length - done, start + done));
        } catch (error) {
          throw unreadableDataset(file, error);
        }
        // The file shrank since it was opened.
        if (bytesRead === 0)
          throw unreadable(file, `the file ends at byte ${start + done}, before ${end}`, null);
        done += bytesRead;
      }
      return out.buffer;
    },
  };
}

async function readMetadata(
  opened: OpenedDatasetFile,
): Promise<{ metadata: FileMetaData; buffer: AsyncBuffer }> {
  const file = opened.file;
  try {
    const buffer = handleBuffer(opened);
    return { buffer, metadata: await parquetMetadataAsync(buffer) };
  } catch (error) {
    throw unreadable(file, (error as Error).message, error);
  }
}

type Decompressor = (input: Uint8Array, outputLength: number) => Uint8Array;

/**
 * The most output a codec can make from `inputBytes` of input, from its format: deflate's
 * largest expansion is 1032:1 (zlib's FAQ: a 258-byte match per 2 bits, at best); an LZ4
 * sequence's length bytes add at most 255 each. Snappy states its own length at the start of
 * the data (checked exactly), zstd its window in each frame header (checked as for .zst files).
 * Brotli has no useful bound (a meta-block of one-symbol codes costs no bits per byte), so a
 * brotli page is trusted up to its stated size (hyparquet-compressors allocates it zeroed:
 * only what is written becomes resident).
 */
const EXPANSION_LIMIT: Readonly<Record<string, number>> = { GZIP: 1032, LZ4: 255, LZ4_RAW: 255 };

/** Snappy's preamble: the uncompressed length as a little-endian base-128 varint. */
function snappyLength(input: Uint8Array): number {
  let value = 0;
  for (let i = 0, shift = 0; i < Math.min(input.length, 5); i++, shift += 7) {
    value += (input[i] & 0x7f) * 2 ** shift;
    if ((input[i] & 0x80) === 0) return value;
  }
  return Number.NaN;
}

/** hyparquet-compressors' decompressors, each refusing a page whose stated size its data cannot hold. */
function compressorsWithLimits(file: string): Record<string, Decompressor> {
  const claimTooLarge = (codec: string, claimed: number, detail: string) =>
    new SpgError(
      "E_DATASET_PARQUET",
      `a ${codec} page claims ${claimed} uncompressed bytes, ${detail}; refused before allocating it`,
      {
        file,
        field: "page header uncompressed_page_size",
        fix: "the file is damaged or crafted: download it again, or rewrite it with a standard writer (pyarrow, hyparquet-writer)",
      },
    );
  const limited: Record<string, Decompressor> = {};
  for (const [codec, decompress] of Object.entries(compressors as Record<string, Decompressor>)) {
    limited[codec] = (input, outputLength) => {
      if (codec === "SNAPPY") {
        const stated = snappyLength(input);
        if (stated !== outputLength)
          throw claimTooLarge(codec, outputLength, `but its snappy data states ${stated}`);
      } else if (codec === "ZSTD") {
        try {
          new ZstdWindowGuard(file).feed(input);
        } catch (error) {
          throw claimTooLarge(codec, outputLength, (error as Error).message);
        }
      } else if (EXPANSION_LIMIT[codec] !== undefined) {
        const most = EXPANSION_LIMIT[codec] * input.length;
        if (outputLength > most)
          throw claimTooLarge(
            codec,
            outputLength,
            `more than ${codec} can expand ${input.length} bytes to (${most})`,
          );
      }
      return decompress(input, outputLength);
    };
  }
  return limited;
}

/** E_DATASET_PARQUET when a row group's text column chunk claims bytes past the end of the file. */
function checkChunkInFile(
  file: string,
  metadata: FileMetaData,
  group: number,
  column: string,
  fileBytes: number,
) {
  const chunk = metadata.row_groups[group].columns.find(
    (c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === column,
  )?.meta_data;
  if (chunk === undefined) return;
  const start = Number(chunk.dictionary_page_offset ?? chunk.data_page_offset);
  const end = start + Number(chunk.total_compressed_size);
  if (!(start >= 0 && end <= fileBytes)) {
    throw new SpgError(
      "E_DATASET_PARQUET",
      `row group ${group}: column "${column}" claims bytes ${start}-${end}, past the end of the file (${fileBytes} bytes)`,
      {
        file,
        field: `row_groups[${group}].${column}`,
        fix: `download ${basename(file)} again (it may be cut short), or rewrite it with a standard writer`,
      },
    );
  }
}

/** The column names at the top of the file's schema. */
export function topLevelColumns(metadata: FileMetaData): string[] {
  return parquetSchema(metadata).children.map((child) => child.element.name);
}

/**
 * Every row's `textField` value, in file order. E_DATASET_PARQUET for an unreadable file,
 * E_DATASET_PARQUET_COLUMN when the column is missing or a row's value is not a string.
 */
export async function* parquetTextRows(
  opened: OpenedDatasetFile,
  textField: string,
): AsyncGenerator<ParquetTextRow> {
  const file = opened.file;
  const { metadata, buffer } = await readMetadata(opened);
  const columns = topLevelColumns(metadata);
  if (!columns.includes(textField)) {
    throw new SpgError(
      "E_DATASET_PARQUET_COLUMN",
      `no column "${textField}" in the parquet file (its columns: ${columns.join(", ")})`,
      {
        file,
        field: "dataset.textField",
        fix: `name the text column with --text-field (one of ${columns.map((c) => `"${c}"`).join(", ")})`,
      },
    );
  }
  const limitedCompressors = compressorsWithLimits(file);
  let rowStart = 0;
  for (const [index, group] of metadata.row_groups.entries()) {
    const rowEnd = rowStart + Number(group.num_rows);
    checkChunkInFile(file, metadata, index, textField, buffer.byteLength);
    let values: unknown[][] = [];
    try {
      await parquetRead({
        file: buffer,
        metadata,
        columns: [textField],
        rowStart,
        rowEnd,
        compressors: limitedCompressors,
        onComplete: (rows: unknown[][]) => {
          values = rows;
        },
      });
    } catch (error) {
      if (error instanceof SpgError) throw error;
      throw unreadable(file, `rows ${rowStart}-${rowEnd - 1}: ${(error as Error).message}`, error);
    }
    for (let i = 0; i < values.length; i++) {
      const text = values[i][0];
      const row = rowStart + i;
      if (typeof text !== "string") {
        throw new SpgError(
          "E_DATASET_PARQUET_COLUMN",
          `row ${row}: column "${textField}" holds ${text === null || text === undefined ? "no value" : typeof text}, not a string`,
          {
            file,
            field: `row ${row}.${textField}`,
            fix: "name a string column with --text-field, or drop the rows without text",
          },
        );
      }
      yield { row, text };
    }
    rowStart = rowEnd;
  }
}
