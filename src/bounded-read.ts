/**
 * spg's own small input files (a key file, the trusted-keys list, the verify policy) read
 * whole through one handle, bounded: a regular file (O_NONBLOCK, so a FIFO is refused by its
 * fstat instead of blocking the open), no larger than its limit, so a device, a FIFO or a huge
 * file fails at once with the caller's code instead of hanging or filling memory.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { fileKind } from "./paths.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The limits. A key file is one JSON object of about 250 bytes; a trusted-keys line is a
 * 64-hex id or a 44-character base64 key with its roles (under 100 bytes), so 4 MiB lists over
 * 40,000 keys; the committed policy is about 6 KiB with its comments.
 */
export const INPUT_FILE_LIMITS = Object.freeze({
  keyFileBytes: 64 * KiB,
  trustedKeysBytes: 4 * MiB,
  policyBytes: 1 * MiB,
});

/** Why a file was refused, for the caller's SpgError (its code, field and fix). */
export type RefuseFile = (reason: string, cause?: unknown) => Error;

/** The reason a file of these stats is not read, or undefined when it may be. */
export function boundedFileProblem(stats: Stats, maxBytes: number): string | undefined {
  if (!stats.isFile()) return `it is ${fileKind(stats)}, not a regular file`;
  if (stats.size > maxBytes)
    return `it is ${stats.size} bytes, over the ${maxBytes}-byte limit for this file`;
  return undefined;
}

/** The whole file, at most `maxBytes`; else `refuse(reason)` is thrown. */
export function readBoundedFileSync(file: string, maxBytes: number, refuse: RefuseFile): Buffer {
  let fd: number;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (cause) {
    throw refuse(`cannot open it (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, cause);
  }
  try {
    const problem = boundedFileProblem(fstatSync(fd), maxBytes);
    if (problem !== undefined) throw refuse(problem);
    // One byte over the limit tells a file that grew after its fstat.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (length > maxBytes) throw refuse(`it grew over the ${maxBytes}-byte limit for this file while read`);
    }
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof Error && (error as NodeJS.ErrnoException).syscall !== undefined)
      throw refuse(`cannot read it (${(error as NodeJS.ErrnoException).code})`, error);
    throw error;
  } finally {
    closeSync(fd);
  }
}
