/** Helpers for the checkpoint-reader tests: temp dirs, fixture paths, hand-made (possibly broken) files. */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { SpgError } from "../../src/errors.js";
import { readSafetensorsHeader, readTensorFloat32, type TensorToWrite } from "../../src/model/safetensors.js";

/** test/fixtures/gpt-neo-hf, found from dist/test/model/ or test/model/. */
export function fixtureDir(name: "config-A" | "config-B"): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.includes(`${join("dist", "test")}`)
    ? join(here, "..", "..", "..")
    : join(here, "..", "..");
  return join(root, "test", "fixtures", "gpt-neo-hf", name);
}

/** A fresh directory under os.tmpdir(); the caller removes it with removeDir. */
export function makeTempDir(): string {
  return mkdtempSync(join(tmpdir(), "spg-reader-test-"));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A temp checkpoint dir holding a copy of the fixture's config.json. */
export function tempCheckpointWithConfig(fixture: "config-A" | "config-B"): string {
  const dir = makeTempDir();
  copyFileSync(join(fixtureDir(fixture), "config.json"), join(dir, "config.json"));
  return dir;
}

/** Every tensor of a fixture's model.safetensors as F32 TensorToWrite entries, in file order. */
export function fixtureTensors(fixture: "config-A" | "config-B"): TensorToWrite[] {
  const header = readSafetensorsHeader(join(fixtureDir(fixture), "model.safetensors"));
  return [...header.tensors.values()].map((entry) => ({
    name: entry.name,
    dtype: "F32",
    shape: entry.shape,
    data: readTensorFloat32(header, entry.name),
  }));
}

/** Write a file as [u64 LE length][header text][data] with no validation, to make broken files. */
export function writeRawSafetensors(path: string, headerText: string, data: Uint8Array): void {
  const header = Buffer.from(headerText, "utf8");
  const out = Buffer.alloc(8 + header.length + data.length);
  out.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(out, 8);
  out.set(data, 8 + header.length);
  writeFileSync(path, out);
}

/** Assert-friendly predicate for assert.throws / assert.rejects: an SpgError with this code. */
export function spgCode(code: string): (error: unknown) => boolean {
  return (error: unknown): boolean => {
    const e = error as SpgError;
    if (e?.name !== "SpgError" || e.code !== code) {
      throw new Error(`expected SpgError ${code}, got ${e?.name} ${e?.code}: ${e?.message}`);
    }
    // Every error names a file and a fix.
    if (e.file === undefined || e.fix === undefined)
      throw new Error(`${code} lacks file or fix: ${e.message}`);
    return true;
  };
}
