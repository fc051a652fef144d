/**
 * Validators compiled ahead of time by `npm run build` (scripts/compile-schemas.ts): ajv's
 * standalone code in a CommonJS module, with an index (export name per key) and the sha256 of
 * each schema as compiled, so a reader uses a validator only while its schema is unchanged.
 * Shared by the bundle schemas (verify/schemas.ts) and the methods' params (kv/methods).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import standaloneCode from "ajv/dist/standalone/index.js";

export interface PrecompiledModule {
  /** Export name of each key's validator. */
  index: Record<string, string>;
  /** sha256 of each key's schema as compiled. */
  sources: Record<string, string>;
  [name: string]: unknown;
}

/** The module's text: ajv's standalone code for `refs` (export name -> schema id), then index and sources. */
export function precompiledModuleSource(
  ajv: Parameters<typeof standaloneCode.default>[0],
  refs: Record<string, string>,
  index: Record<string, string>,
  sources: Record<string, string>,
): string {
  return [
    standaloneCode.default(ajv, refs),
    `exports.index = ${JSON.stringify(index)};`,
    `exports.sources = ${JSON.stringify(sources)};`,
    "",
  ].join("\n");
}

/** The precompiled module at `file`, or undefined where the build wrote none. */
export function loadPrecompiled(file: string): PrecompiledModule | undefined {
  return existsSync(file) ? (createRequire(import.meta.url)(file) as PrecompiledModule) : undefined;
}
