import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ErrorObject, ValidateFunction } from "ajv";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { sha256Hex } from "../numeric/sha256.js";
import { schemasDir } from "../paths.js";
import {
  loadPrecompiled,
  type PrecompiledModule,
  precompiledModuleSource,
} from "../precompiled-validators.js";
import { kvLayerMatcherFor, type LineMatcher } from "./fingerprint-line.js";
import { recordMatcherFor } from "./record-line.js";

/** Which schema each bundle entry validates against (.jsonl: each line). report.md is free text. */
export const ENTRY_SCHEMAS: Readonly<Record<string, string>> = {
  "manifest.json": "manifest.schema.json",
  "signature.json": "signature.schema.json",
  "config.json": "config.schema.json",
  "environment.json": "environment.schema.json",
  "records.jsonl": "record.schema.json",
  "fingerprints.jsonl": "fingerprint.schema.json",
  "summary.json": "summary.schema.json",
};

/** Version 2's optional entries (shard.json, shards.jsonl): validated by the shards check when present. */
export const OPTIONAL_ENTRY_SCHEMAS: Readonly<Record<string, string>> = {
  "shard.json": "shard.schema.json",
  "shards.jsonl": "shards.schema.json",
};

/**
 * Per entry: its compiled validator, or why there is none (schema file absent or broken), and
 * for a hot line schema a quicker test that says true only where `validate` would (false:
 * ask `validate`, which names the errors).
 */
export type SchemaValidators = Map<
  string,
  {
    schemaFile: string;
    validate?: ValidateFunction;
    accepts?: (value: unknown) => boolean;
    /**
     * For a JSON Lines entry whose schema has one: reads a line's bytes straight to its value
     * when they are shown canonical and valid (fingerprint-line.ts, record-line.ts), else undefined (the full path).
     */
    matchLine?: LineMatcher;
    /** Whether `validate` came compiled ahead of time (the build's module) rather than compiled here. */
    precompiled?: boolean;
    error?: string;
  }
>;

/** Keywords that assert nothing about an instance. */
const ANNOTATIONS = new Set(["$schema", "$id", "$defs", "$comment", "title", "description"]);

/**
 * The branches of a schema that is only a oneOf of objects defined in its $defs, each with
 * `required` (fingerprint.schema.json: a KV layer or a weight tensor), as `$ref`s; undefined
 * for any other schema.
 */
function requiredBranches(
  schema: Record<string, unknown>,
): { ref: string; required: string[] }[] | undefined {
  const defs = schema.$defs as Record<string, Record<string, unknown>> | undefined;
  if (typeof schema.$id !== "string" || !Array.isArray(schema.oneOf) || defs === undefined) return undefined;
  if (Object.keys(schema).some((key) => key !== "oneOf" && !ANNOTATIONS.has(key))) return undefined;
  const branches: { ref: string; required: string[] }[] = [];
  for (const branch of schema.oneOf as Record<string, unknown>[]) {
    const ref = branch.$ref;
    if (Object.keys(branch).length !== 1 || typeof ref !== "string" || !ref.startsWith("#/$defs/")) {
      return undefined;
    }
    const def = defs[ref.slice("#/$defs/".length)];
    if (def?.type !== "object" || !Array.isArray(def.required)) return undefined;
    branches.push({ ref, required: def.required as string[] });
  }
  return branches;
}

/**
 * The quicker test of a requiredBranches schema: a value that lacks a property only one branch
 * requires cannot match that branch (ajv's `required` fails where the value at the key is
 * undefined). When that leaves one branch, its validator alone decides a pass: the others are
 * ruled out without being tried (and without collecting their errors). One such property per
 * branch is looked at; any doubt (two branches left, none, a failure) is the full validator's.
 */
function oneOfByRequired(
  schema: Record<string, unknown>,
  branchValidator: (ref: string) => ValidateFunction | undefined,
): ((value: unknown) => boolean) | undefined {
  const declared = requiredBranches(schema) ?? [];
  const branches: { key: string; validate: ValidateFunction }[] = [];
  for (const { ref, required } of declared) {
    const key = required.find((name) =>
      declared.every((other) => other.ref === ref || !other.required.includes(name)),
    );
    const validate = branchValidator(ref);
    if (key === undefined || validate === undefined) return undefined;
    branches.push({ key, validate });
  }
  if (branches.length === 0) return undefined;
  return (value) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
    const fields = value as Record<string, unknown>;
    let only: ValidateFunction | undefined;
    for (const branch of branches) {
      if (fields[branch.key] === undefined) continue;
      if (only !== undefined) return false;
      only = branch.validate;
    }
    return only !== undefined && only(value) === true;
  };
}

/** Every schema a bundle entry validates against. */
const SCHEMA_FILES = [
  ...new Set([...Object.values(ENTRY_SCHEMAS), ...Object.values(OPTIONAL_ENTRY_SCHEMAS)]),
];

/** The one ajv setting of bundle schemas (strict, 2020-12, every error, formats), here and at build time. */
function bundleAjv(source = false): InstanceType<typeof Ajv2020.default> {
  const ajv = new Ajv2020.default({
    strict: true,
    allErrors: true,
    allowUnionTypes: true,
    ...(source ? { code: { source: true } } : {}),
  });
  addFormats.default(ajv);
  return ajv;
}

/**
 * The bundle schemas compiled ahead of time (`npm run build` writes it: scripts/compile-schemas.ts):
 * ajv's standalone code, the same validators compiling gives, without the half second that
 * compiling costs every verify.
 */
const PRECOMPILED_FILE = join(dirname(fileURLToPath(import.meta.url)), "compiled-schemas.cjs");

/** Keyed by schema file and each oneOf branch ("file#/$defs/x"); each source is the sha256 of the file's text. */
type PrecompiledSchemas = PrecompiledModule;

/** ajv's standalone code for every bundle schema in `dir`, with its index and sources: the precompiled module's text. */
export function precompiledSchemasSource(dir: string = schemasDir()): string {
  const ajv = bundleAjv(true);
  const refs: Record<string, string> = {};
  const index: Record<string, string> = {};
  const sources: Record<string, string> = {};
  const exported = (key: string, id: string) => {
    const name = `validate${Object.keys(refs).length}`;
    refs[name] = id;
    index[key] = name;
  };
  for (const schemaFile of SCHEMA_FILES) {
    const text = readFileSync(join(dir, schemaFile), "utf8");
    const schema = JSON.parse(text) as Record<string, unknown>;
    if (typeof schema.$id !== "string") throw new Error(`schema ${schemaFile} has no $id`);
    ajv.addSchema(schema);
    sources[schemaFile] = sha256Hex(Buffer.from(text, "utf8"));
    exported(schemaFile, schema.$id);
    for (const { ref } of requiredBranches(schema) ?? [])
      exported(`${schemaFile}${ref}`, `${schema.$id}${ref}`);
  }
  return precompiledModuleSource(ajv, refs, index, sources);
}

/** The precompiled validators, when they were compiled from exactly these schema texts; else undefined. */
function precompiledFor(file: string, texts: ReadonlyMap<string, string>): PrecompiledSchemas | undefined {
  const module = loadPrecompiled(file);
  if (module === undefined) return undefined;
  for (const [schemaFile, text] of texts) {
    if (module.sources[schemaFile] !== sha256Hex(Buffer.from(text, "utf8"))) return undefined;
  }
  return module;
}

/** The one-pass line readers, per schema file, each used only where the schema is the one it implements. */
const LINE_MATCHERS: Readonly<Record<string, (schema: Record<string, unknown>) => LineMatcher | undefined>> =
  {
    "fingerprint.schema.json": kvLayerMatcherFor,
    "record.schema.json": recordMatcherFor,
  };

const cache = new Map<string, SchemaValidators>();

/**
 * Every bundle schema in `dir`, compiled once (strict ajv, 2020-12, formats); cached per
 * directory. The precompiled module is used when every schema text here is the one it was
 * compiled from (the package's own schemas after a build), else they are compiled now.
 */
export function loadSchemaValidators(
  dir: string = schemasDir(),
  precompiledFile: string = PRECOMPILED_FILE,
): SchemaValidators {
  const key = `${dir}\u0000${precompiledFile}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const validators: SchemaValidators = new Map();
  const texts = new Map<string, string>();
  for (const schemaFile of SCHEMA_FILES) {
    const path = join(dir, schemaFile);
    if (existsSync(path)) texts.set(schemaFile, readFileSync(path, "utf8"));
  }
  const precompiled = precompiledFor(precompiledFile, texts);
  let ajv: InstanceType<typeof Ajv2020.default> | undefined;
  for (const [entry, schemaFile] of Object.entries({ ...ENTRY_SCHEMAS, ...OPTIONAL_ENTRY_SCHEMAS })) {
    const path = join(dir, schemaFile);
    const text = texts.get(schemaFile);
    if (text === undefined) {
      validators.set(entry, { schemaFile, error: `schema ${path} not found` });
      continue;
    }
    try {
      const schema = JSON.parse(text) as Record<string, unknown>;
      const matchLine = LINE_MATCHERS[schemaFile]?.(schema);
      if (precompiled !== undefined) {
        const exported = (key: string) =>
          precompiled[precompiled.index[key] ?? ""] as ValidateFunction | undefined;
        const validate = exported(schemaFile);
        if (validate === undefined) throw new Error(`${precompiledFile} lacks ${schemaFile}`);
        const accepts = oneOfByRequired(schema, (ref) => exported(`${schemaFile}${ref}`));
        validators.set(entry, { schemaFile, validate, accepts, matchLine, precompiled: true });
        continue;
      }
      ajv ??= bundleAjv();
      const compiler = ajv;
      const validate = compiler.compile(schema);
      const accepts = oneOfByRequired(schema, (ref) => compiler.getSchema(`${schema.$id}${ref}`));
      validators.set(entry, { schemaFile, validate, accepts, matchLine, precompiled: false });
    } catch (error) {
      validators.set(entry, {
        schemaFile,
        error: `schema ${path} does not compile: ${(error as Error).message}`,
      });
    }
  }
  cache.set(key, validators);
  return validators;
}

/** At most this many schema errors are listed per file; the count says how many there were. */
export const LISTED_SCHEMA_ERRORS = 20;

/** ajv errors as "path: message" lines (path "/" for the root). */
export function describeSchemaErrors(errors: ErrorObject[] | null | undefined, prefix = ""): string[] {
  return (errors ?? []).map((error) => {
    const extra =
      error.keyword === "additionalProperties"
        ? ` (${String((error.params as { additionalProperty?: string }).additionalProperty)})`
        : "";
    return `${prefix}${error.instancePath === "" ? "/" : error.instancePath}: ${error.message ?? error.keyword}${extra}`;
  });
}
