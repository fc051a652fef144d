/**
 * The text column of a .parquet file (hyparquet, with hyparquet-compressors for snappy, gzip,
 * zstd, brotli and lz4 pages), read one row group at a time so a large file is never held in
 * memory. Rows are numbered from 0, as parquet tools number them.
 */
import { basename } from "node:path";
import {
  asyncBufferFromFile,
  type FileMetaData,
  parquetMetadataAsync,
  parquetRead,
  parquetSchema,
} from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { SpgError } from "../errors.js";

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

async function readMetadata(
  file: string,
): Promise<{ metadata: FileMetaData; buffer: Awaited<ReturnType<typeof asyncBufferFromFile>> }> {
  try {
    const buffer = await asyncBufferFromFile(file);
    return { buffer, metadata: await parquetMetadataAsync(buffer) };
  } catch (error) {
    throw unreadable(file, (error as Error).message, error);
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
export async function* parquetTextRows(file: string, textField: string): AsyncGenerator<ParquetTextRow> {
  const { metadata, buffer } = await readMetadata(file);
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
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let values: unknown[][] = [];
    try {
      await parquetRead({
        file: buffer,
        metadata,
        columns: [textField],
        rowStart,
        rowEnd,
        compressors,
        onComplete: (rows: unknown[][]) => {
          values = rows;
        },
      });
    } catch (error) {
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
