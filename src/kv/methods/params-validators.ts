/**
 * The methods' params validators, compiled ahead of time (`npm run build` writes them:
 * scripts/compile-schemas.ts): ajv's standalone code, the same validators compiling gives.
 * Compiling the seven schemas cost 0.3-1 s at the first compress of every `spg prove`, inside
 * the time the methods' encoding is charged with. A schema whose text is not the one compiled
 * (a changed method) is compiled now, as before.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import { sha256Hex } from "../../numeric/sha256.js";
import {
  loadPrecompiled,
  type PrecompiledModule,
  precompiledModuleSource,
} from "../../precompiled-validators.js";

const PRECOMPILED_FILE = join(dirname(fileURLToPath(import.meta.url)), "compiled-params.cjs");

/** The one ajv setting of params schemas (strict, first error only), here and at build time. */
function paramsAjv(source = false): Ajv {
  return new Ajv({ allErrors: false, strict: true, ...(source ? { code: { source: true } } : {}) });
}

function schemaDigest(schema: Record<string, unknown>): string {
  return sha256Hex(Buffer.from(JSON.stringify(schema), "utf8"));
}

/** ajv's standalone code for each kind's params schema, with its index and digests: the precompiled module's text. */
export function precompiledParamsSource(schemas: Readonly<Record<string, Record<string, unknown>>>): string {
  const ajv = paramsAjv(true);
  const refs: Record<string, string> = {};
  const index: Record<string, string> = {};
  const sources: Record<string, string> = {};
  Object.entries(schemas).forEach(([kind, schema], i) => {
    ajv.addSchema(schema, kind);
    refs[`validate${i}`] = kind;
    index[kind] = `validate${i}`;
    sources[kind] = schemaDigest(schema);
  });
  return precompiledModuleSource(ajv, refs, index, sources);
}

export interface ParamsValidator {
  validate: ValidateFunction;
  /** From the precompiled module (else compiled now). */
  precompiled: boolean;
}

/**
 * Validators per schema object, from `precompiledFile` where it holds this kind's schema as it
 * is now, else compiled once here.
 */
export function paramsValidators(
  precompiledFile: string = PRECOMPILED_FILE,
): (kind: string, schema: Record<string, unknown>) => ParamsValidator {
  // Keyed by method kind; each source is the sha256 of the kind's schema as JSON.stringify wrote it.
  let module: PrecompiledModule | null | undefined;
  let ajv: Ajv | undefined;
  const validators = new Map<Record<string, unknown>, ParamsValidator>();
  return (kind, schema) => {
    const cached = validators.get(schema);
    if (cached !== undefined) return cached;
    module ??= loadPrecompiled(precompiledFile) ?? null;
    const name = module?.sources[kind] === schemaDigest(schema) ? module.index[kind] : undefined;
    const exported = name === undefined ? undefined : (module?.[name] as ValidateFunction | undefined);
    let validator: ParamsValidator;
    if (exported !== undefined) validator = { validate: exported, precompiled: true };
    else {
      ajv ??= paramsAjv();
      validator = { validate: ajv.compile(schema), precompiled: false };
    }
    validators.set(schema, validator);
    return validator;
  };
}
