import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ErrorObject, ValidateFunction } from "ajv";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { schemasDir } from "../paths.js";

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

/** Per entry: its compiled validator, or why there is none (schema file absent or broken). */
export type SchemaValidators = Map<
  string,
  { schemaFile: string; validate?: ValidateFunction; error?: string }
>;

const cache = new Map<string, SchemaValidators>();

/** Compile every bundle schema in `dir` once (strict ajv, 2020-12, formats); cached per directory. */
export function loadSchemaValidators(dir: string = schemasDir()): SchemaValidators {
  const cached = cache.get(dir);
  if (cached !== undefined) return cached;
  const ajv = new Ajv2020.default({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormats.default(ajv);
  const validators: SchemaValidators = new Map();
  for (const [entry, schemaFile] of Object.entries({ ...ENTRY_SCHEMAS, ...OPTIONAL_ENTRY_SCHEMAS })) {
    const path = join(dir, schemaFile);
    if (!existsSync(path)) {
      validators.set(entry, { schemaFile, error: `schema ${path} not found` });
      continue;
    }
    try {
      validators.set(entry, { schemaFile, validate: ajv.compile(JSON.parse(readFileSync(path, "utf8"))) });
    } catch (error) {
      validators.set(entry, {
        schemaFile,
        error: `schema ${path} does not compile: ${(error as Error).message}`,
      });
    }
  }
  cache.set(dir, validators);
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
