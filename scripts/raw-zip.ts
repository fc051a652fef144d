/**
 * A tiny zip writer for adversarial tests: it writes exactly what it is told (names,
 * declared sizes, CRCs, flags, attributes), including things no well-behaved writer
 * would, so readers can be tested against hand-made hostile archives.
 *
 * Layout: for each entry a local file header + data, then the central directory, then
 * the end-of-central-directory record. No data descriptors, no zip64. Shared by the tests
 * and the adversarial benchmark (scripts/ never imports from test/).
 */
import zlib from "node:zlib";

export const METHOD_STORED = 0;
export const METHOD_DEFLATED = 8;
/** "Version made by": Unix host (3), spec 2.0, so external attributes carry a Unix mode. */
export const VERSION_MADE_BY_UNIX = (3 << 8) | 20;
export const VERSION_NEEDED = 20;
export const FLAG_ENCRYPTED = 0x1;
export const FLAG_UTF8 = 0x800;

/** External attributes holding a Unix mode (high 16 bits). */
export function unixAttributes(mode: number): number {
  return (mode << 16) >>> 0;
}
export const REGULAR_FILE_ATTRIBUTES = unixAttributes(0o100644);
export const SYMLINK_ATTRIBUTES = unixAttributes(0o120777);
export const DIRECTORY_ATTRIBUTES = unixAttributes(0o040755) | 0x10;
export const FIFO_ATTRIBUTES = unixAttributes(0o010644);

export interface RawZipEntry {
  /** Name as stored (a string is written as UTF-8). */
  name: string | Buffer;
  /** Uncompressed content (default empty). */
  data?: Buffer;
  /** Compression method (default deflate). */
  method?: number;
  /** Stored bytes instead of compressing `data` (e.g. a deflate bomb or invalid deflate). */
  compressed?: Buffer;
  /** Declared CRC-32 (default: the true CRC of `data`). */
  crc32?: number;
  /** Declared compressed size (default: the stored bytes' length). */
  compressedSize?: number;
  /** Declared uncompressed size (default: `data`'s length). */
  uncompressedSize?: number;
  externalAttributes?: number;
  versionMadeBy?: number;
  /** General purpose flags (default: UTF-8 flag). */
  flags?: number;
  /** Extra field bytes, written to both headers. */
  extra?: Buffer;
  /** Name written in the local header (default: same as `name`). */
  localName?: string | Buffer;
  /** Local header fields that differ from the central directory's (default: the same). */
  local?: { flags?: number; crc32?: number; compressedSize?: number; uncompressedSize?: number };
  /** Bytes written right after this entry's data (hidden between entries). */
  trailingBytes?: Buffer;
  /** Entry comment in the central directory. */
  comment?: Buffer;
  /** The central record's "disk number start" (default 0: a one-file archive). */
  diskNumberStart?: number;
  /**
   * Write no local header/data for this entry: its central record points at the local
   * header of entry `shareLocalHeaderOf` (overlapping entries).
   */
  shareLocalHeaderOf?: number;
}

export interface RawZipOptions {
  /** Entry count written in the end record (default: the real count). */
  declaredEntryCount?: number;
  /** The end record's disk fields (default 0, 0 and the entry count: one file). */
  disks?: { disk?: number; centralDirectoryDisk?: number; entriesOnDisk?: number };
  comment?: Buffer;
  /** Bytes before the first local header (a polyglot's other file); offsets account for it. */
  prefix?: Buffer;
  /** Bytes between the last entry and the central directory. */
  beforeCentralDirectory?: Buffer;
}

/** DOS date/time of 1980-01-01 00:00. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

/** An extra field record: id, length, data. */
export function extraField(id: number, data: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16LE(id, 0);
  header.writeUInt16LE(data.length, 2);
  return Buffer.concat([header, data]);
}

/** The Info-ZIP Unicode Path extra field (0x7075), naming the entry differently for tools that read it. */
export function unicodePathExtraField(originalName: Buffer, unicodeName: string): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(1, 0);
  head.writeUInt32LE(zlib.crc32(originalName) >>> 0, 1);
  return extraField(0x7075, Buffer.concat([head, Buffer.from(unicodeName, "utf8")]));
}

function asBuffer(name: string | Buffer): Buffer {
  return typeof name === "string" ? Buffer.from(name, "utf8") : name;
}

export function buildRawZip(entries: readonly RawZipEntry[], options: RawZipOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  const localOffsets: number[] = [];
  let offset = 0;
  if (options.prefix !== undefined) {
    parts.push(options.prefix);
    offset += options.prefix.length;
  }
  const resolved = entries.map((entry) => {
    const data = entry.data ?? Buffer.alloc(0);
    const method = entry.method ?? METHOD_DEFLATED;
    const stored = entry.compressed ?? (method === METHOD_DEFLATED ? zlib.deflateRawSync(data) : data);
    return {
      entry,
      name: asBuffer(entry.name),
      localName: asBuffer(entry.localName ?? entry.name),
      method,
      stored,
      crc: entry.crc32 ?? zlib.crc32(data) >>> 0,
      compressedSize: entry.compressedSize ?? stored.length,
      uncompressedSize: entry.uncompressedSize ?? data.length,
      flags: entry.flags ?? FLAG_UTF8,
      extra: entry.extra ?? Buffer.alloc(0),
    };
  });
  for (const item of resolved) {
    if (item.entry.shareLocalHeaderOf !== undefined) {
      localOffsets.push(-1);
      continue;
    }
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(VERSION_NEEDED, 4);
    const local = item.entry.local ?? {};
    header.writeUInt16LE(local.flags ?? item.flags, 6);
    header.writeUInt16LE(item.method, 8);
    header.writeUInt16LE(DOS_TIME, 10);
    header.writeUInt16LE(DOS_DATE, 12);
    header.writeUInt32LE((local.crc32 ?? item.crc) >>> 0, 14);
    header.writeUInt32LE((local.compressedSize ?? item.compressedSize) >>> 0, 18);
    header.writeUInt32LE((local.uncompressedSize ?? item.uncompressedSize) >>> 0, 22);
    header.writeUInt16LE(item.localName.length, 26);
    header.writeUInt16LE(item.extra.length, 28);
    localOffsets.push(offset);
    for (const part of [header, item.localName, item.extra, item.stored, item.entry.trailingBytes]) {
      if (part === undefined) continue;
      parts.push(part);
      offset += part.length;
    }
  }
  if (options.beforeCentralDirectory !== undefined) {
    parts.push(options.beforeCentralDirectory);
    offset += options.beforeCentralDirectory.length;
  }
  const centralStart = offset;
  resolved.forEach((item, index) => {
    const shared = item.entry.shareLocalHeaderOf;
    const localOffset = shared === undefined ? localOffsets[index] : localOffsets[shared];
    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(item.entry.versionMadeBy ?? VERSION_MADE_BY_UNIX, 4);
    record.writeUInt16LE(VERSION_NEEDED, 6);
    record.writeUInt16LE(item.flags, 8);
    record.writeUInt16LE(item.method, 10);
    record.writeUInt16LE(DOS_TIME, 12);
    record.writeUInt16LE(DOS_DATE, 14);
    record.writeUInt32LE(item.crc >>> 0, 16);
    record.writeUInt32LE(item.compressedSize >>> 0, 20);
    record.writeUInt32LE(item.uncompressedSize >>> 0, 24);
    record.writeUInt16LE(item.name.length, 28);
    record.writeUInt16LE(item.extra.length, 30);
    const entryComment = item.entry.comment ?? Buffer.alloc(0);
    record.writeUInt16LE(entryComment.length, 32);
    record.writeUInt16LE(item.entry.diskNumberStart ?? 0, 34);
    record.writeUInt16LE(0, 36);
    record.writeUInt32LE((item.entry.externalAttributes ?? REGULAR_FILE_ATTRIBUTES) >>> 0, 38);
    record.writeUInt32LE(localOffset >>> 0, 42);
    central.push(record, item.name, item.extra, entryComment);
  });
  const centralBytes = Buffer.concat(central);
  const comment = options.comment ?? Buffer.alloc(0);
  const end = Buffer.alloc(22);
  const count = options.declaredEntryCount ?? entries.length;
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(options.disks?.disk ?? 0, 4);
  end.writeUInt16LE(options.disks?.centralDirectoryDisk ?? 0, 6);
  end.writeUInt16LE(options.disks?.entriesOnDisk ?? count, 8);
  end.writeUInt16LE(count, 10);
  end.writeUInt32LE(centralBytes.length, 12);
  end.writeUInt32LE(centralStart, 16);
  end.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...parts, centralBytes, end, comment]);
}
