/**
 * Files appear whole or not at all: written to a temporary file in the destination's
 * directory, flushed, then renamed (or hard-linked, when overwriting is refused, so an
 * existing file is never clobbered even by a concurrent writer).
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { SpgError } from "../errors.js";

export function temporarySibling(destination: string): string {
  // Same directory, so the final rename never crosses file systems.
  return path.join(
    path.dirname(destination),
    `${path.basename(destination)}.tmp-${randomBytes(6).toString("hex")}`,
  );
}

export async function removeQuietly(file: string): Promise<void> {
  await fs.rm(file, { force: true });
}

function fileExists(destination: string, cause?: unknown): SpgError {
  return new SpgError("E_FILE_EXISTS", `${destination} already exists`, {
    file: destination,
    fix: "choose another path, or pass --force to replace it",
    cause,
  });
}

/**
 * Refuse an existing destination before any work is done (a run can take hours); the final
 * placeTemporary() refuses again, atomically, should one appear meanwhile.
 */
export async function refuseExisting(destination: string, overwrite: boolean): Promise<void> {
  if (overwrite) return;
  const existing = await fs.lstat(destination).catch(() => undefined);
  if (existing !== undefined) throw fileExists(destination);
}

/**
 * Move a complete, flushed temporary file to its destination: rename over whatever is there
 * when `overwrite`, else link() (which fails with EEXIST instead of replacing: an atomic
 * "create only if absent") and drop the temporary name.
 */
export async function placeTemporary(
  temporary: string,
  destination: string,
  overwrite: boolean,
): Promise<void> {
  if (overwrite) {
    await fs.rename(temporary, destination);
    return;
  }
  try {
    await fs.link(temporary, destination);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") throw fileExists(destination, error);
    throw error;
  }
  await removeQuietly(temporary);
}

export interface AtomicWriteOptions {
  /** File mode of the new file (before umask; applied again with chmod so umask cannot loosen nor tighten it). */
  mode?: number;
  /** Replace an existing file at the destination (default false: fail with E_FILE_EXISTS). */
  overwrite?: boolean;
}

export async function writeFileAtomic(
  destination: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o644;
  const temporary = temporarySibling(destination);
  try {
    const handle = await fs.open(temporary, "wx", mode);
    try {
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await placeTemporary(temporary, destination, options.overwrite === true);
  } catch (error) {
    await removeQuietly(temporary);
    throw error;
  }
}
