import { existsSync, readFileSync } from "node:fs";
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
