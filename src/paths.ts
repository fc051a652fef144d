import { existsSync, readFileSync, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The directory holding spg's package.json, found from this file (works from src/ or dist/src/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "spg") return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`spg package root not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The bundled GPT-Neo checkpoint trained by scripts/train_gpt_neo.py. */
export function bundledModelDir(): string {
  return join(packageRoot(), "models", "gpt-neo-brown");
}

export function schemasDir(): string {
  return join(packageRoot(), "schemas");
}

export function configsDir(): string {
  return join(packageRoot(), "configs");
}

/**
 * What a path that is not a regular file is, for messages: spg reads only regular files (a
 * FIFO blocks until a writer comes, a device may never end).
 */
export function fileKind(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isSocket()) return "a socket";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  return stats.isFile() ? "a regular file" : "an unknown kind of file";
}
