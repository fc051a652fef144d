/**
 * Safe bundle reading (yauzl). Nothing in the archive is trusted: the central directory
 * is checked entry by entry before any byte is inflated (names, types, duplicates,
 * declared sizes and ratios), then each entry is inflated while its bytes are counted
 * and inflating stops at the first limit crossed; the CRC-32 and the actual size are
 * checked against the declared ones (yauzl itself checks neither the CRC nor, with
 * validateEntrySizes off, the size: we do both here so each failure gets its own code).
 *
 * Every failure is returned as a finding of the "zip-safety" check with a stable code;
 * the reader never throws for a bad archive and never leaves an error unhandled.
 */
import { promises as fs, constants as fsConstants, type Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { pipeline, Readable } from "node:stream";
import zlib from "node:zlib";
import yauzl from "yauzl";
import { fileKind } from "../paths.js";
import {
  ALL_BUNDLE_ENTRY_NAMES,
  BUNDLE_ENTRY_ORDER,
  resolveZipReadLimits,
  type ZipReadLimits,
} from "./format.js";

export const ZIP_SAFETY_CHECK = "zip-safety";

/** Stable codes of the zip-safety check. */
export const ZIP_CODES = {
  /** Not a zip, or its structure is damaged. */
  unreadable: "E_ZIP_UNREADABLE",
  /** The archive ends early (a cut download or copy). */
  truncated: "E_ZIP_TRUNCATED",
  /** `..`, absolute, drive-letter, backslash, NUL, or otherwise unsafe/ambiguous name. */
  path: "E_ZIP_PATH",
  duplicate: "E_ZIP_DUPLICATE",
  link: "E_ZIP_LINK",
  directory: "E_ZIP_DIRECTORY",
  /** A device, FIFO or socket entry. */
  special: "E_ZIP_SPECIAL_FILE",
  unexpected: "E_ZIP_UNEXPECTED_ENTRY",
  missing: "E_ZIP_MISSING_ENTRY",
  tooManyEntries: "E_ZIP_TOO_MANY_ENTRIES",
  tooLarge: "E_ZIP_TOO_LARGE",
  ratio: "E_ZIP_RATIO",
  sizeMismatch: "E_ZIP_SIZE_MISMATCH",
  crc: "E_ZIP_CRC",
  encrypted: "E_ZIP_ENCRYPTED",
  method: "E_ZIP_METHOD",
  /** The compressed data of an entry is not valid deflate. */
  corrupt: "E_ZIP_CORRUPT",
  /** Two entries' data share bytes (overlapping-entry bombs, ambiguous archives). */
  overlap: "E_ZIP_OVERLAP",
  /** Local header (or data descriptor) and central directory disagree about an entry. */
  headerMismatch: "E_ZIP_HEADER_MISMATCH",
  /** Bytes before the first local header: another file glued in front (a polyglot). */
  prefix: "E_ZIP_PREFIX",
  /** Bytes between entries, or between the last entry, the central directory and its end record. */
  gap: "E_ZIP_GAP",
  /** An archive or entry comment (where hidden bytes and fake end records live). */
  comment: "E_ZIP_COMMENT",
  /** Zip64 records or fields: never needed within the format's size limits. */
  zip64: "E_ZIP_ZIP64",
  /** A disk number other than 0, or an entry count per disk other than the total: a split archive. */
  multiDisk: "E_ZIP_MULTI_DISK",
} as const;

export type ZipSafetyCode = (typeof ZIP_CODES)[keyof typeof ZIP_CODES];

export interface ZipSafetyFinding {
  check: typeof ZIP_SAFETY_CHECK;
  code: ZipSafetyCode;
  ok: false;
  message: string;
  details: Record<string, unknown>;
}

/** The entries of a bundle zip, already read safely (readBundleZip), by name: what verify checks. */
export interface BundleEntries {
  entries: Map<string, Buffer>;
}

export type BundleZipRead =
  | {
      ok: true;
      /** Entry bytes by name, in the archive's central-directory order (streamed entries absent). */
      entries: Map<string, Buffer>;
      /** Total bytes inflated. */
      inflatedBytes: number;
    }
  | { ok: false; findings: ZipSafetyFinding[] };

export interface ReadBundleZipOptions {
  /** Tighten or loosen the format's default limits. */
  limits?: Partial<ZipReadLimits>;
  /** Report E_ZIP_MISSING_ENTRY when a required entry is absent (default true). */
  requireAllEntries?: boolean;
  /** Allowed entry names (default: the bundle format's, its optional version 2 entries included). */
  allowedNames?: readonly string[];
  /** Names requireAllEntries asks for (default: allowedNames when given, else the format's required entries). */
  requiredNames?: readonly string[];
  /** Entries to hand to a sink as they inflate instead of keeping them (see EntryStreaming). */
  stream?: EntryStreaming;
  /** How the file is opened and which file it must be (readBundleZip only). */
  opening?: BundleFileOpening;
}

/**
 * The file is opened once and every check and read goes through that handle (fstat, then
 * positioned reads), so nothing can swap the path between a check and a read. Opened with
 * O_NONBLOCK, so a FIFO is refused by its fstat instead of blocking the open.
 */
export interface BundleFileOpening {
  /** Refuse a symbolic link at the path itself (O_NOFOLLOW) instead of following it. */
  noFollow?: boolean;
  /** The file must be this one (device and inode), e.g. the one a caller checked earlier. */
  identity?: { dev: number; ino: number };
}

/** Where a streamed entry's bytes go, chunk by chunk, as they inflate (and pass the limits). */
export interface EntrySink {
  push(chunk: Buffer): void;
  /** The entry inflated whole, within its declared size and CRC-32. */
  end(): void;
}

/**
 * Entries read after every other one, in this order, each offered to `open` first: a sink
 * takes its bytes as they inflate (the entry is then absent from the result's entries),
 * undefined keeps it whole. `open` sees the entries already read and every name the archive holds.
 */
export interface EntryStreaming {
  names: readonly string[];
  open(
    name: string,
    read: ReadonlyMap<string, Buffer>,
    archiveNames: readonly string[],
  ): EntrySink | undefined;
}

function finding(
  code: ZipSafetyCode,
  message: string,
  details: Record<string, unknown> = {},
): ZipSafetyFinding {
  return { check: ZIP_SAFETY_CHECK, code, ok: false, message, details };
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MSDOS_DIRECTORY_ATTRIBUTE = 0x10;
const FLAG_ENCRYPTED = 0x1;
const FLAG_STRONG_ENCRYPTION = 0x40;
const FLAG_UTF8 = 0x800;
const INFO_ZIP_UNICODE_PATH_FIELD = 0x7075;
const METHOD_STORED = 0;
const METHOD_DEFLATED = 8;
const FLAG_DATA_DESCRIPTOR = 0x8;
const ZIP64_EXTRA_FIELD = 0x0001;
const LOCAL_FILE_HEADER_SIGNATURE = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const DATA_DESCRIPTOR_SIGNATURE = 0x08074b50;
const END_OF_CENTRAL_DIRECTORY_SIGNATURE = 0x06054b50;
/** Fixed sizes of the zip records (APPNOTE 4.3). */
const END_OF_CENTRAL_DIRECTORY_BYTES = 22;
const CENTRAL_HEADER_FIXED_BYTES = 46;
/** Where a central directory record holds its "disk number start". */
const CENTRAL_DISK_START_OFFSET = 34;
const DATA_DESCRIPTOR_BYTES = 12;
/** A zip64 marker in a 32-bit or 16-bit field. */
const ZIP64_MARKER_32 = 0xffffffff;
const ZIP64_MARKER_16 = 0xffff;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Printable form of a raw name for messages (never used for decisions). */
function displayName(raw: Buffer): string {
  return JSON.stringify(raw.toString("latin1"));
}

/**
 * Decode an entry name; null when it is not valid text. Names without the UTF-8 flag are
 * CP437; every allowed name is ASCII, where CP437, Latin-1 and UTF-8 agree, so any
 * non-ASCII byte there gives a name that cannot be allowed anyway.
 */
function decodeName(raw: Buffer, flags: number): string | null {
  if ((flags & FLAG_UTF8) !== 0) {
    try {
      return strictUtf8.decode(raw);
    } catch {
      return null;
    }
  }
  return raw.toString("latin1");
}

/** Why a name is unsafe to extract anywhere, or null. */
function unsafePathReason(name: string): string | null {
  if (name.length === 0) return "the name is empty";
  if (name.includes("\0")) return "the name contains a NUL byte";
  if (name.includes("\\")) return "the name contains a backslash (a path separator on Windows)";
  if (name.startsWith("/")) return "the name is an absolute path";
  if (/^[A-Za-z]:/.test(name)) return "the name starts with a drive letter";
  if (name.split("/").includes("..")) return "the name climbs out of the extraction directory (..)";
  return null;
}

type ErrorKind = typeof ZIP_CODES.truncated | typeof ZIP_CODES.unreadable;

/** Map yauzl's and the file system's messages about the archive's structure to a code. */
function structuralCode(error: unknown): ErrorKind {
  const message = error instanceof Error ? error.message : String(error);
  if (/unexpected EOF|overflows file bounds/i.test(message)) return ZIP_CODES.truncated;
  return ZIP_CODES.unreadable;
}

type Source = { kind: "file"; handle: FileHandle; stats: Stats } | { kind: "buffer"; buffer: Buffer };

/**
 * yauzl reads through our handle (yauzl.fromFd would close the descriptor itself when the
 * archive closes; the handle is ours to close, once).
 */
class HandleReader extends yauzl.RandomAccessReader {
  constructor(private readonly handle: FileHandle) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    if (end <= start) return Readable.from([]);
    return this.handle.createReadStream({ start, end: end - 1, autoClose: false });
  }

  /** One positioned read, reporting bytesRead (as yauzl's own fd reader does) so a short one is "unexpected EOF". */
  override read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (error: Error | null, bytesRead?: number) => void,
  ): void {
    this.handle.read(buffer, offset, length, position).then(
      ({ bytesRead }) => callback(null, bytesRead),
      (error: Error) => callback(error),
    );
  }
}

function openArchive(source: Source, onLateError: (error: Error) => void): Promise<yauzl.ZipFile> {
  const options: yauzl.Options = {
    lazyEntries: true,
    autoClose: false,
    decodeStrings: false,
    // Sizes are checked below as bytes stream, so a lie and a bomb get different codes.
    validateEntrySizes: false,
    strictFileNames: true,
  };
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, zipfile?: yauzl.ZipFile) => {
      if (error !== null || zipfile === undefined) {
        reject(error ?? new Error("yauzl returned no archive"));
        return;
      }
      // Errors the archive emits later (e.g. a failing read) must never go unhandled.
      zipfile.on("error", onLateError);
      resolve(zipfile);
    };
    if (source.kind === "file")
      yauzl.fromRandomAccessReader(new HandleReader(source.handle), source.stats.size, options, done);
    else yauzl.fromBuffer(source.buffer, options, done);
  });
}

/** The first bytes of the archive, to tell a cut zip from something that never was one. */
async function readHead(source: Source): Promise<Buffer> {
  return readAt(source, 0, LOCAL_FILE_HEADER_SIGNATURE.length);
}

/** `length` bytes at `position` (fewer at the end of the archive). */
async function readAt(source: Source, position: number, length: number): Promise<Buffer> {
  if (source.kind === "buffer") return source.buffer.subarray(position, position + length);
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await source.handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/** Where the central directory lies, from the end record (the archive's last 22 bytes once a comment is refused). */
interface ArchiveLayout {
  archiveBytes: number;
  centralDirectoryOffset: number;
  centralDirectoryBytes: number;
}

/**
 * The archive is exactly: entries back to back from byte 0, the central directory, and a
 * comment-less end record; no zip64. Anything else could hide bytes one reader sees and
 * another does not.
 */
async function checkArchiveEnvelope(
  source: Source,
  zipfile: yauzl.ZipFile,
  archiveBytes: number,
): Promise<{ findings: ZipSafetyFinding[]; layout?: ArchiveLayout }> {
  const comment = zipfile.comment as unknown as Buffer | string;
  if (comment.length > 0) {
    return {
      findings: [
        finding(
          ZIP_CODES.comment,
          `the archive carries a ${comment.length}-byte comment; bundles have none`,
          {
            commentBytes: comment.length,
          },
        ),
      ],
    };
  }
  const end = await readAt(
    source,
    archiveBytes - END_OF_CENTRAL_DIRECTORY_BYTES,
    END_OF_CENTRAL_DIRECTORY_BYTES,
  );
  if (
    end.length !== END_OF_CENTRAL_DIRECTORY_BYTES ||
    end.readUInt32LE(0) !== END_OF_CENTRAL_DIRECTORY_SIGNATURE
  ) {
    return { findings: [finding(ZIP_CODES.unreadable, "the archive does not end with its end record")] };
  }
  // Disk numbers (this disk, the central directory's) and "entries on this disk": an spg bundle is
  // one file, so they are 0, 0 and the total; other values make a split archive that readers
  // disagree about (yauzl reads the total and ignores the rest).
  const disk = end.readUInt16LE(4);
  const centralDirectoryDisk = end.readUInt16LE(6);
  const entriesOnDisk = end.readUInt16LE(8);
  if (disk !== 0 || centralDirectoryDisk !== 0 || entriesOnDisk !== end.readUInt16LE(10)) {
    return {
      findings: [
        finding(
          ZIP_CODES.multiDisk,
          `the end record names disk ${disk}, the central directory on disk ${centralDirectoryDisk} and ${entriesOnDisk} of ${end.readUInt16LE(10)} entries on this disk; a bundle is one file (0, 0, all)`,
          { disk, centralDirectoryDisk, entriesOnDisk, entryCount: end.readUInt16LE(10) },
        ),
      ],
    };
  }
  const entryCount = end.readUInt16LE(10);
  const centralDirectoryBytes = end.readUInt32LE(12);
  const centralDirectoryOffset = end.readUInt32LE(16);
  if (
    entryCount === ZIP64_MARKER_16 ||
    centralDirectoryBytes === ZIP64_MARKER_32 ||
    centralDirectoryOffset === ZIP64_MARKER_32 ||
    zipfile.entryCount !== entryCount
  ) {
    return {
      findings: [finding(ZIP_CODES.zip64, "the archive uses zip64 end records; bundles never need them")],
    };
  }
  const findings: ZipSafetyFinding[] = [];
  const endOffset = archiveBytes - END_OF_CENTRAL_DIRECTORY_BYTES;
  if (centralDirectoryOffset + centralDirectoryBytes !== endOffset) {
    findings.push(
      finding(
        ZIP_CODES.gap,
        `${endOffset - centralDirectoryOffset - centralDirectoryBytes} bytes lie between the central directory and the end record`,
        { centralDirectoryOffset, centralDirectoryBytes, endOffset },
      ),
    );
  }
  return { findings, layout: { archiveBytes, centralDirectoryOffset, centralDirectoryBytes } };
}

/** Read the whole central directory (entry count already bounded). */
function readCentralDirectory(zipfile: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    const onEntry = (entry: yauzl.Entry) => {
      entries.push(entry);
      zipfile.readEntry();
    };
    const cleanup = () => {
      zipfile.removeListener("entry", onEntry);
      zipfile.removeListener("end", onEnd);
      zipfile.removeListener("error", onError);
    };
    const onEnd = () => {
      cleanup();
      resolve(entries);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    zipfile.on("entry", onEntry);
    zipfile.once("end", onEnd);
    zipfile.once("error", onError);
    zipfile.readEntry();
  });
}

interface CheckedEntry {
  entry: yauzl.Entry;
  name: string;
}

/** Everything knowable from the central directory alone, before inflating anything. */
function checkCentralDirectory(
  entries: yauzl.Entry[],
  limits: ZipReadLimits,
  allowedNames: ReadonlySet<string>,
  requiredNames: readonly string[] | null,
): { findings: ZipSafetyFinding[]; checked: CheckedEntry[] } {
  const findings: ZipSafetyFinding[] = [];
  const checked: CheckedEntry[] = [];
  const seen = new Map<string, number>();
  let declaredTotal = 0;
  entries.forEach((entry, index) => {
    const raw = entry.fileNameRaw;
    const name = decodeName(raw, entry.generalPurposeBitFlag);
    const shown = name === null ? displayName(raw) : JSON.stringify(name);
    const where = { entry: name ?? raw.toString("latin1"), index };
    const before = findings.length;
    if (name === null) {
      findings.push(finding(ZIP_CODES.path, `entry ${index} has a name that is not valid UTF-8`, where));
    } else {
      const unsafe = unsafePathReason(name);
      if (unsafe !== null) findings.push(finding(ZIP_CODES.path, `entry ${shown}: ${unsafe}`, where));
    }
    if (entry.fileCommentLength > 0) {
      findings.push(
        finding(ZIP_CODES.comment, `entry ${shown} carries a comment; bundle entries have none`, where),
      );
    }
    if (entry.extraFields.some((field) => field.id === ZIP64_EXTRA_FIELD)) {
      findings.push(finding(ZIP_CODES.zip64, `entry ${shown} carries a zip64 extra field`, where));
    }
    if (entry.extraFields.some((field) => field.id === INFO_ZIP_UNICODE_PATH_FIELD)) {
      findings.push(
        finding(
          ZIP_CODES.path,
          `entry ${shown} carries a second (Info-ZIP Unicode) name, which tools may extract instead`,
          where,
        ),
      );
    }
    const unixMode = entry.externalFileAttributes >>> 16;
    const fileType = unixMode & S_IFMT;
    if (fileType === S_IFLNK) {
      findings.push(finding(ZIP_CODES.link, `entry ${shown} is a symbolic link`, { ...where, unixMode }));
    } else if (
      fileType === S_IFDIR ||
      (entry.externalFileAttributes & MSDOS_DIRECTORY_ATTRIBUTE) !== 0 ||
      (name ?? "").endsWith("/")
    ) {
      findings.push(finding(ZIP_CODES.directory, `entry ${shown} is a directory`, { ...where, unixMode }));
    } else if (fileType !== 0 && fileType !== S_IFREG) {
      findings.push(
        finding(ZIP_CODES.special, `entry ${shown} is not a regular file (mode ${unixMode.toString(8)})`, {
          ...where,
          unixMode,
        }),
      );
    }
    if (name !== null) {
      const first = seen.get(name);
      if (first !== undefined) {
        findings.push(
          finding(ZIP_CODES.duplicate, `entry ${shown} appears more than once`, {
            ...where,
            firstIndex: first,
          }),
        );
      } else {
        seen.set(name, index);
      }
    }
    if (findings.length === before && name !== null && !allowedNames.has(name)) {
      findings.push(finding(ZIP_CODES.unexpected, `entry ${shown} is not part of the bundle format`, where));
    }
    if ((entry.generalPurposeBitFlag & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) !== 0) {
      findings.push(finding(ZIP_CODES.encrypted, `entry ${shown} is encrypted`, where));
    }
    if (entry.compressionMethod !== METHOD_STORED && entry.compressionMethod !== METHOD_DEFLATED) {
      findings.push(
        finding(ZIP_CODES.method, `entry ${shown} uses compression method ${entry.compressionMethod}`, {
          ...where,
          method: entry.compressionMethod,
          allowed: [METHOD_STORED, METHOD_DEFLATED],
        }),
      );
    }
    const sizes = { compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize };
    if (entry.compressionMethod === METHOD_STORED && entry.compressedSize !== entry.uncompressedSize) {
      findings.push(
        finding(ZIP_CODES.sizeMismatch, `stored entry ${shown} declares different stored and real sizes`, {
          ...where,
          ...sizes,
        }),
      );
    }
    if (entry.uncompressedSize > limits.maxEntryBytes) {
      findings.push(
        finding(
          ZIP_CODES.tooLarge,
          `entry ${shown} declares ${entry.uncompressedSize} bytes, over the ${limits.maxEntryBytes}-byte limit`,
          { ...where, ...sizes, limit: limits.maxEntryBytes },
        ),
      );
    }
    if (
      entry.uncompressedSize > limits.ratioExemptBytes &&
      entry.uncompressedSize > entry.compressedSize * limits.maxCompressionRatio
    ) {
      findings.push(
        finding(
          ZIP_CODES.ratio,
          `entry ${shown} declares a compression ratio over ${limits.maxCompressionRatio}:1 (a zip bomb?)`,
          { ...where, ...sizes, limit: limits.maxCompressionRatio },
        ),
      );
    }
    declaredTotal += entry.uncompressedSize;
    checked.push({ entry, name: name ?? raw.toString("latin1") });
  });
  if (declaredTotal > limits.maxTotalBytes) {
    findings.push(
      finding(
        ZIP_CODES.tooLarge,
        `entries declare ${declaredTotal} bytes in all, over the ${limits.maxTotalBytes}-byte limit`,
        { declaredTotal, limit: limits.maxTotalBytes },
      ),
    );
  }
  if (requiredNames !== null) {
    for (const name of requiredNames) {
      if (!seen.has(name)) {
        findings.push(
          finding(ZIP_CODES.missing, `entry ${JSON.stringify(name)} is missing`, { entry: name }),
        );
      }
    }
  }
  return { findings, checked };
}

function readLocalHeader(zipfile: yauzl.ZipFile, entry: yauzl.Entry): Promise<yauzl.LocalFileHeader> {
  return new Promise((resolve, reject) => {
    zipfile.readLocalFileHeader(entry, {}, (error, header) => {
      if (error !== null) reject(error);
      else resolve(header);
    });
  });
}

/** The data descriptor after an entry's data, when its flags say one follows: its length, or why it is wrong. */
async function dataDescriptorBytes(
  source: Source,
  entry: yauzl.Entry,
  dataEnd: number,
): Promise<number | string> {
  const bytes = await readAt(source, dataEnd, DATA_DESCRIPTOR_BYTES + 4);
  const agrees = (at: number) =>
    bytes.length >= at + DATA_DESCRIPTOR_BYTES &&
    bytes.readUInt32LE(at) === entry.crc32 >>> 0 &&
    bytes.readUInt32LE(at + 4) === entry.compressedSize &&
    bytes.readUInt32LE(at + 8) === entry.uncompressedSize;
  if (bytes.length >= 4 && bytes.readUInt32LE(0) === DATA_DESCRIPTOR_SIGNATURE && agrees(4)) {
    return DATA_DESCRIPTOR_BYTES + 4;
  }
  if (agrees(0)) return DATA_DESCRIPTOR_BYTES;
  return "its data descriptor does not repeat the central directory's CRC-32 and sizes";
}

/** Where the local header says what the central directory does not, or undefined. */
function localHeaderDisagreement(header: yauzl.LocalFileHeader, entry: yauzl.Entry): string | undefined {
  if (!header.fileName.equals(entry.fileNameRaw)) {
    return `its local header names it ${displayName(header.fileName)}`;
  }
  if (header.compressionMethod !== entry.compressionMethod) return "local and central compression differ";
  if (header.generalPurposeBitFlag !== entry.generalPurposeBitFlag) return "local and central flags differ";
  const central = Buffer.concat(
    entry.extraFields.map((field) => {
      const head = Buffer.alloc(4);
      head.writeUInt16LE(field.id, 0);
      head.writeUInt16LE(field.data.length, 2);
      return Buffer.concat([head, field.data]);
    }),
  );
  if (!header.extraField.equals(central)) return "local and central extra fields differ";
  const deferred = (header.generalPurposeBitFlag & FLAG_DATA_DESCRIPTOR) !== 0;
  const stated = [header.crc32 >>> 0, header.compressedSize, header.uncompressedSize];
  const expected = [entry.crc32 >>> 0, entry.compressedSize, entry.uncompressedSize];
  // With a data descriptor the local fields may be zero (written before the data was known).
  const agrees = stated.every((value, index) => value === expected[index] || (deferred && value === 0));
  if (!agrees) return "local and central CRC-32 or sizes differ";
  return undefined;
}

/**
 * Local headers (and data descriptors) must agree with the central directory, and the
 * entries must lie back to back from byte 0 up to the central directory: no overlap (one
 * byte range read as two entries), no prefix (a polyglot), no gaps (hidden bytes).
 */
async function checkLocalHeaders(
  source: Source,
  zipfile: yauzl.ZipFile,
  checked: CheckedEntry[],
  layout: ArchiveLayout,
): Promise<ZipSafetyFinding[]> {
  const findings: ZipSafetyFinding[] = [];
  const spans: { name: string; start: number; end: number }[] = [];
  let centralRecordBytes = 0;
  for (const { entry, name } of checked) {
    // The record's "disk number start" (yauzl skips it): 0 in a one-file archive.
    const diskStart = await readAt(
      source,
      layout.centralDirectoryOffset + centralRecordBytes + CENTRAL_DISK_START_OFFSET,
      2,
    );
    if (diskStart.length === 2 && diskStart.readUInt16LE(0) !== 0) {
      findings.push(
        finding(
          ZIP_CODES.multiDisk,
          `entry ${JSON.stringify(name)} starts on disk ${diskStart.readUInt16LE(0)}; a bundle is one file (disk 0)`,
          { entry: name, diskNumberStart: diskStart.readUInt16LE(0) },
        ),
      );
    }
    centralRecordBytes +=
      CENTRAL_HEADER_FIXED_BYTES + entry.fileNameLength + entry.extraFieldLength + entry.fileCommentLength;
    let header: yauzl.LocalFileHeader;
    try {
      header = await readLocalHeader(zipfile, entry);
    } catch (error) {
      const code = structuralCode(error);
      findings.push(
        finding(code, `entry ${JSON.stringify(name)}: local header unreadable: ${(error as Error).message}`, {
          entry: name,
          offset: entry.relativeOffsetOfLocalHeader,
        }),
      );
      continue;
    }
    const disagreement = localHeaderDisagreement(header, entry);
    if (disagreement !== undefined) {
      findings.push(
        finding(ZIP_CODES.headerMismatch, `entry ${JSON.stringify(name)}: ${disagreement}`, {
          entry: name,
          localName: header.fileName.toString("latin1"),
          local: {
            method: header.compressionMethod,
            flags: header.generalPurposeBitFlag,
            crc32: header.crc32 >>> 0,
            compressedSize: header.compressedSize,
            uncompressedSize: header.uncompressedSize,
          },
          central: {
            method: entry.compressionMethod,
            flags: entry.generalPurposeBitFlag,
            crc32: entry.crc32 >>> 0,
            compressedSize: entry.compressedSize,
            uncompressedSize: entry.uncompressedSize,
          },
        }),
      );
    }
    if ((header.generalPurposeBitFlag & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) !== 0) {
      findings.push(
        finding(ZIP_CODES.encrypted, `entry ${JSON.stringify(name)} is encrypted`, { entry: name }),
      );
    }
    let end = header.fileDataStart + entry.compressedSize;
    if ((entry.generalPurposeBitFlag & FLAG_DATA_DESCRIPTOR) !== 0) {
      const descriptor = await dataDescriptorBytes(source, entry, end);
      if (typeof descriptor === "string") {
        findings.push(
          finding(ZIP_CODES.headerMismatch, `entry ${JSON.stringify(name)}: ${descriptor}`, { entry: name }),
        );
      } else end += descriptor;
    }
    spans.push({ name, start: entry.relativeOffsetOfLocalHeader, end });
  }
  if (centralRecordBytes !== layout.centralDirectoryBytes) {
    findings.push(
      finding(
        ZIP_CODES.gap,
        `the central directory is ${layout.centralDirectoryBytes} bytes but its records take ${centralRecordBytes}`,
        { centralDirectoryBytes: layout.centralDirectoryBytes, centralRecordBytes },
      ),
    );
  }
  spans.sort((a, b) => a.start - b.start);
  if (spans.length > 0 && spans[0].start > 0) {
    findings.push(
      finding(
        ZIP_CODES.prefix,
        `${spans[0].start} bytes precede the first entry (another file glued in front: a polyglot?)`,
        { prefixBytes: spans[0].start },
      ),
    );
  }
  for (let index = 1; index < spans.length; index++) {
    const previous = spans[index - 1];
    const current = spans[index];
    if (current.start < previous.end) {
      findings.push(
        finding(
          ZIP_CODES.overlap,
          `entries ${JSON.stringify(previous.name)} and ${JSON.stringify(current.name)} share bytes`,
          { entries: [previous.name, current.name], offsets: [previous.start, current.start] },
        ),
      );
    } else if (current.start > previous.end) {
      findings.push(
        finding(
          ZIP_CODES.gap,
          `${current.start - previous.end} bytes lie between entries ${JSON.stringify(previous.name)} and ${JSON.stringify(current.name)}`,
          { entries: [previous.name, current.name], gapBytes: current.start - previous.end },
        ),
      );
    }
  }
  const last = spans[spans.length - 1];
  if (last !== undefined && last.end !== layout.centralDirectoryOffset) {
    findings.push(
      finding(
        last.end < layout.centralDirectoryOffset ? ZIP_CODES.gap : ZIP_CODES.overlap,
        last.end < layout.centralDirectoryOffset
          ? `${layout.centralDirectoryOffset - last.end} bytes lie between the last entry and the central directory`
          : `entry ${JSON.stringify(last.name)} runs into the central directory`,
        { entry: last.name, entryEnd: last.end, centralDirectoryOffset: layout.centralDirectoryOffset },
      ),
    );
  }
  return findings;
}

/**
 * Output chunk of the inflater: zlib's default (16 KiB) costs a thread-pool round trip per
 * 16 KiB, which dominates reading a bundle of hundreds of MB on a busy machine.
 */
const INFLATE_CHUNK_BYTES = 1024 * 1024;

/**
 * An entry's stored bytes straight from the file, in reads of INFLATE_CHUNK_BYTES (yauzl reads
 * 16 KiB at a time). Its place comes from its local header, already checked against the central
 * directory and the archive's layout (checkLocalHeaders) before anything is inflated.
 */
async function fileDataStream(
  handle: FileHandle,
  zipfile: yauzl.ZipFile,
  entry: yauzl.Entry,
): Promise<Readable> {
  const { fileDataStart } = await readLocalHeader(zipfile, entry);
  if (entry.compressedSize === 0) return Readable.from([]);
  // Positioned reads on the one handle; the reader closes it once, at the end.
  return handle.createReadStream({
    start: fileDataStart,
    end: fileDataStart + entry.compressedSize - 1,
    highWaterMark: INFLATE_CHUNK_BYTES,
    autoClose: false,
  });
}

/** An entry's bytes: stored as they are, deflated through our own inflater (larger chunks than yauzl's). */
async function openEntryStream(
  source: Source,
  zipfile: yauzl.ZipFile,
  entry: yauzl.Entry,
): Promise<Readable> {
  const deflated = entry.compressionMethod === METHOD_DEFLATED;
  const stored =
    source.kind === "file"
      ? await fileDataStream(source.handle, zipfile, entry)
      : await new Promise<Readable>((resolve, reject) => {
          zipfile.openReadStream(entry, deflated ? { decompress: false } : {}, (error, stream) => {
            if (error !== null) reject(error);
            else resolve(stream);
          });
        });
  if (!deflated) return stored;
  const inflater = zlib.createInflateRaw({ chunkSize: INFLATE_CHUNK_BYTES });
  // A read error reaches the inflater (and our listeners); destroying it stops the read.
  pipeline(stored, inflater, () => undefined);
  return inflater;
}

interface InflateBudget {
  /** Bytes inflated so far over all entries. */
  total: number;
}

type InflateResult =
  | { ok: true; data: Buffer | undefined }
  | { ok: false; finding: ZipSafetyFinding; fatal: boolean };

/**
 * Inflate one entry, counting bytes as they arrive and stopping at the first limit.
 * Past the declared size nothing more is kept, but counting goes on (bounded by the
 * limits) so a bomb is reported as one, and a mere size lie as a size mismatch.
 */
async function inflateEntry(
  source: Source,
  zipfile: yauzl.ZipFile,
  { entry, name }: CheckedEntry,
  limits: ZipReadLimits,
  budget: InflateBudget,
  sink?: EntrySink,
  /** One of the names the caller streams (kept whole or not: a shard's records may be). */
  streamedName = false,
): Promise<InflateResult> {
  const shown = JSON.stringify(name);
  const sizes = { entry: name, compressedSize: entry.compressedSize, declaredSize: entry.uncompressedSize };
  let stream: Readable;
  try {
    stream = await openEntryStream(source, zipfile, entry);
  } catch (error) {
    return {
      ok: false,
      fatal: false,
      finding: finding(
        structuralCode(error),
        `entry ${shown}: cannot read its data: ${(error as Error).message}`,
        {
          entry: name,
        },
      ),
    };
  }
  const ratioCap = Math.max(limits.ratioExemptBytes, entry.compressedSize * limits.maxCompressionRatio);
  // An entry kept whole is bounded by the held limit too (the streamed ones pass through).
  const heldLimit = streamedName ? Number.POSITIVE_INFINITY : limits.maxHeldEntryBytes;
  return new Promise<InflateResult>((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let crc = 0;
    let settled = false;
    // The sink takes each chunk in a microtask, once the inflater has been handed its next piece
    // (zlib pushes a chunk, then writes on): inflating on libuv's thread pool and the sink's work
    // overlap instead of taking turns. Every chunk reaches the sink before the entry settles.
    const handedOver: Buffer[] = [];
    const handOver = () => {
      for (let next = handedOver.shift(); next !== undefined; next = handedOver.shift()) sink?.push(next);
    };
    const settle = (result: InflateResult) => {
      if (settled) return;
      settled = true;
      handOver();
      stream.removeListener("data", onData);
      stream.removeListener("end", onEnd);
      // Keep an error listener: a destroyed inflater may still report, and that must not crash us.
      stream.on("error", () => undefined);
      if (!result.ok) stream.destroy();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      budget.total += chunk.length;
      if (bytes > limits.maxEntryBytes) {
        settle({
          ok: false,
          fatal: true,
          finding: finding(
            ZIP_CODES.tooLarge,
            `entry ${shown} inflates past the ${limits.maxEntryBytes}-byte limit; stopped reading`,
            { ...sizes, inflatedAtLeast: bytes, limit: limits.maxEntryBytes },
          ),
        });
      } else if (bytes > heldLimit) {
        settle({
          ok: false,
          fatal: true,
          finding: finding(
            ZIP_CODES.tooLarge,
            `entry ${shown} inflates past the ${heldLimit}-byte limit for an entry held in memory; stopped reading`,
            { ...sizes, inflatedAtLeast: bytes, limit: heldLimit },
          ),
        });
      } else if (budget.total > limits.maxTotalBytes) {
        settle({
          ok: false,
          fatal: true,
          finding: finding(
            ZIP_CODES.tooLarge,
            `entries inflate past the ${limits.maxTotalBytes}-byte total limit at ${shown}; stopped reading`,
            { ...sizes, totalInflatedAtLeast: budget.total, limit: limits.maxTotalBytes },
          ),
        });
      } else if (bytes > ratioCap) {
        settle({
          ok: false,
          fatal: true,
          finding: finding(
            ZIP_CODES.ratio,
            `entry ${shown} inflates past ${limits.maxCompressionRatio}x its compressed size (a zip bomb); stopped reading`,
            { ...sizes, inflatedAtLeast: bytes, limit: limits.maxCompressionRatio },
          ),
        });
      } else if (bytes <= entry.uncompressedSize) {
        if (sink !== undefined) {
          if (handedOver.push(chunk) === 1) queueMicrotask(handOver);
        } else chunks.push(chunk);
        crc = zlib.crc32(chunk, crc);
      } else if (chunks.length > 0) {
        // Over the declared size: a lie. Keep counting (to tell a bomb) but stop keeping.
        chunks.length = 0;
      }
    };
    const onEnd = () => {
      handOver();
      if (bytes !== entry.uncompressedSize) {
        settle({
          ok: false,
          fatal: false,
          finding: finding(
            ZIP_CODES.sizeMismatch,
            `entry ${shown} declares ${entry.uncompressedSize} bytes but holds ${bytes}`,
            { ...sizes, actualSize: bytes },
          ),
        });
      } else if (crc >>> 0 !== entry.crc32 >>> 0) {
        settle({
          ok: false,
          fatal: false,
          finding: finding(ZIP_CODES.crc, `entry ${shown} fails its CRC-32 check (its bytes were altered)`, {
            entry: name,
            declaredCrc32: (entry.crc32 >>> 0).toString(16).padStart(8, "0"),
            actualCrc32: (crc >>> 0).toString(16).padStart(8, "0"),
          }),
        });
      } else if (sink !== undefined) {
        sink.end();
        settle({ ok: true, data: undefined });
      } else {
        settle({ ok: true, data: Buffer.concat(chunks, bytes) });
      }
    };
    const onError = (error: Error) => {
      const zlibError = typeof (error as NodeJS.ErrnoException).errno === "number" && "code" in error;
      const code =
        zlibError && /^Z_/.test(String((error as NodeJS.ErrnoException).code)) ? ZIP_CODES.corrupt : null;
      settle({
        ok: false,
        fatal: false,
        finding: finding(
          code ?? structuralCode(error),
          `entry ${shown}: ${code !== null ? "compressed data is invalid" : "cannot read its data"}: ${error.message}`,
          { entry: name },
        ),
      });
    };
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.on("error", onError);
  });
}

async function readFromSource(source: Source, options: ReadBundleZipOptions): Promise<BundleZipRead> {
  const limits = resolveZipReadLimits(options.limits);
  const allowedNames = new Set(options.allowedNames ?? ALL_BUNDLE_ENTRY_NAMES);
  const requiredNames =
    (options.requireAllEntries ?? true)
      ? (options.requiredNames ?? options.allowedNames ?? BUNDLE_ENTRY_ORDER)
      : null;
  const fail = (...findings: ZipSafetyFinding[]): BundleZipRead => ({ ok: false, findings });

  let archiveBytes: number;
  if (source.kind === "buffer") {
    archiveBytes = source.buffer.length;
  } else {
    archiveBytes = source.stats.size;
  }
  if (archiveBytes > limits.maxArchiveBytes) {
    return fail(
      finding(
        ZIP_CODES.tooLarge,
        `the archive is ${archiveBytes} bytes, over the ${limits.maxArchiveBytes}-byte limit`,
        {
          archiveBytes,
          limit: limits.maxArchiveBytes,
        },
      ),
    );
  }
  let lateError: Error | null = null;
  let zipfile: yauzl.ZipFile;
  try {
    zipfile = await openArchive(source, (error) => {
      lateError ??= error;
    });
  } catch (error) {
    const head = await readHead(source);
    const message = (error as Error).message;
    // A file that starts like a zip but has no end record was cut short.
    const startsLikeZip =
      head.length > 0 && LOCAL_FILE_HEADER_SIGNATURE.subarray(0, head.length).equals(head);
    const code =
      /end of central directory record signature not found/i.test(message) && startsLikeZip
        ? ZIP_CODES.truncated
        : /multi-disk/i.test(message)
          ? ZIP_CODES.multiDisk
          : structuralCode(error);
    return fail(
      finding(
        code,
        code === ZIP_CODES.truncated
          ? `the archive is truncated: ${message}`
          : `not a readable zip: ${message}`,
        {
          archiveBytes,
        },
      ),
    );
  }
  try {
    if (zipfile.entryCount > limits.maxEntries) {
      return fail(
        finding(
          ZIP_CODES.tooManyEntries,
          `the archive declares ${zipfile.entryCount} entries, over the limit of ${limits.maxEntries}`,
          { entryCount: zipfile.entryCount, limit: limits.maxEntries },
        ),
      );
    }
    let entries: yauzl.Entry[];
    try {
      entries = await readCentralDirectory(zipfile);
    } catch (error) {
      const message = (error as Error).message;
      const code = /strong encryption/i.test(message) ? ZIP_CODES.encrypted : structuralCode(error);
      return fail(finding(code, `central directory unreadable: ${message}`, { archiveBytes }));
    }
    const envelope = await checkArchiveEnvelope(source, zipfile, archiveBytes);
    if (envelope.layout === undefined) return fail(...envelope.findings);
    const central = checkCentralDirectory(entries, limits, allowedNames, requiredNames);
    if (central.findings.length > 0 || envelope.findings.length > 0) {
      return fail(...envelope.findings, ...central.findings);
    }
    const local = await checkLocalHeaders(source, zipfile, central.checked, envelope.layout);
    if (local.length > 0) return fail(...local);

    const findings: ZipSafetyFinding[] = [];
    const contents = new Map<string, Buffer>();
    const budget: InflateBudget = { total: 0 };
    const streamed = options.stream?.names ?? [];
    const archiveNames = central.checked.map(({ name }) => name);
    // Streamed entries last, so their sinks can read every other entry first.
    const order = [
      ...central.checked.filter(({ name }) => !streamed.includes(name)),
      ...streamed.flatMap((name) => central.checked.filter((checked) => checked.name === name)),
    ];
    for (const checked of order) {
      const sink = streamed.includes(checked.name)
        ? options.stream?.open(checked.name, contents, archiveNames)
        : undefined;
      const result = await inflateEntry(
        source,
        zipfile,
        checked,
        limits,
        budget,
        sink,
        streamed.includes(checked.name),
      );
      if (result.ok) {
        if (result.data !== undefined) contents.set(checked.name, result.data);
        continue;
      }
      findings.push(result.finding);
      if (result.fatal) break;
    }
    if (lateError !== null) {
      findings.push(
        finding(structuralCode(lateError), `reading the archive failed: ${(lateError as Error).message}`),
      );
    }
    if (findings.length > 0) return fail(...findings);
    const inArchiveOrder = new Map<string, Buffer>();
    for (const name of archiveNames) {
      const data = contents.get(name);
      if (data !== undefined) inArchiveOrder.set(name, data);
    }
    return { ok: true, entries: inArchiveOrder, inflatedBytes: budget.total };
  } finally {
    zipfile.close();
  }
}

/** Defence in depth: whatever goes wrong inside becomes a finding, never an exception. */
async function guarded(read: () => Promise<BundleZipRead>): Promise<BundleZipRead> {
  try {
    return await read();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E_ZIP_LIMITS$/.test(code)) throw error;
    return {
      ok: false,
      findings: [
        finding(ZIP_CODES.unreadable, `the archive could not be read: ${(error as Error).message}`, {
          errorCode: code,
        }),
      ],
    };
  }
}

/**
 * Open `path` once (BundleFileOpening) and check the handle: a regular file, the expected one.
 * A FIFO blocks a reader until a writer comes, and a device may never end: only files are read.
 */
async function openBundleFile(
  path: string,
  opening: BundleFileOpening = {},
): Promise<{ handle: FileHandle; stats: Stats } | { finding: ZipSafetyFinding }> {
  const flags =
    fsConstants.O_RDONLY |
    (fsConstants.O_NONBLOCK ?? 0) |
    (opening.noFollow === true ? (fsConstants.O_NOFOLLOW ?? 0) : 0);
  let handle: FileHandle;
  try {
    handle = await fs.open(path, flags);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ELOOP under O_NOFOLLOW: the path is a link; ENXIO: a socket (which open() refuses).
    const what =
      code === "ELOOP" && opening.noFollow === true
        ? "the archive is a symbolic link, which is not followed here"
        : code === "ENXIO"
          ? "the archive is a socket or device without a reader, not a regular file"
          : `the archive cannot be opened (${code ?? String(error)})`;
    return { finding: finding(ZIP_CODES.unreadable, what, { errorCode: code }) };
  }
  const refuse = async (message: string) => {
    await handle.close();
    return { finding: finding(ZIP_CODES.unreadable, message) };
  };
  const stats = await handle.stat();
  if (!stats.isFile()) return refuse(`the archive is ${fileKind(stats)}, not a regular file`);
  const expected = opening.identity;
  if (expected !== undefined && (stats.dev !== expected.dev || stats.ino !== expected.ino)) {
    return refuse("the archive is not the file that was checked before: its path now names another file");
  }
  return { handle, stats };
}

/** Safely read a bundle zip from disk. Never throws for a bad archive (only for bad limits). */
export function readBundleZip(path: string, options: ReadBundleZipOptions = {}): Promise<BundleZipRead> {
  return guarded(async () => {
    const opened = await openBundleFile(path, options.opening);
    if ("finding" in opened) return { ok: false, findings: [opened.finding] };
    try {
      return await readFromSource({ kind: "file", ...opened }, options);
    } finally {
      await opened.handle.close();
    }
  });
}

/** Safely read a bundle zip held in memory. */
export function readBundleZipBuffer(
  buffer: Buffer,
  options: ReadBundleZipOptions = {},
): Promise<BundleZipRead> {
  return guarded(() => readFromSource({ kind: "buffer", buffer }, options));
}
