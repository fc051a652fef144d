import type { BundleEntries } from "../../bundle/read.js";
import type { FindingCode } from "../../error-codes.js";
import { bundleContext } from "../context.js";
import { checkEntryText } from "../parse.js";
import {
  describeSchemaErrors,
  ENTRY_SCHEMAS,
  LISTED_SCHEMA_ERRORS,
  type SchemaValidators,
} from "../schemas.js";
import { type Finding, fail, pass } from "../types.js";
import { lineFoldsOf } from "./lines.js";
import type { CheckOptions } from "./options.js";

const CHECK = "schemas" as const;

/** The code of each entry's schema failures, spelled out so the registry's scan sees them. */
const SCHEMA_CODES: Readonly<Record<string, FindingCode>> = {
  "manifest.json": "E_SCHEMA_MANIFEST",
  "signature.json": "E_SCHEMA_SIGNATURE",
  "config.json": "E_SCHEMA_CONFIG",
  "environment.json": "E_SCHEMA_ENVIRONMENT",
  "records.jsonl": "E_SCHEMA_RECORDS",
  "fingerprints.jsonl": "E_SCHEMA_FINGERPRINTS",
  "summary.json": "E_SCHEMA_SUMMARY",
};

/** The schema failure code of an entry: "records.jsonl" -> E_SCHEMA_RECORDS. */
export function schemaCode(entry: string): FindingCode {
  const code = SCHEMA_CODES[entry];
  if (code === undefined) throw new Error(`no schema failure code is registered for ${entry}`);
  return code;
}

export interface SchemaValidation {
  findings: Finding[];
  /** Parsed values of the JSON entries that parsed and validated. */
  valid: Map<string, unknown>;
  /** Parsed values of every JSON entry that parsed, valid or not. */
  parsed: Map<string, unknown>;
  /** The JSON Lines entries whose every line parsed and validated (their lines are folded, not kept). */
  validLines: Set<string>;
}

/** Parse every JSON entry and validate it against its schema; collect values for later checks. */
export function validateEntries(
  contents: BundleEntries,
  validators: SchemaValidators,
  options: CheckOptions = { requireTrusted: false },
): SchemaValidation {
  const context = bundleContext(contents);
  const findings: Finding[] = [];
  const valid = context.valid;
  const parsed = new Map<string, unknown>();
  const validLines = new Set<string>();
  for (const [entry, schemaFile] of Object.entries(ENTRY_SCHEMAS)) {
    const code = schemaCode(entry);
    const jsonLines = entry.endsWith(".jsonl");
    // JSON Lines entries were parsed and validated line by line as they were read (lines.ts).
    const verdict = jsonLines ? lineFoldsOf(context, { ...options, validators }).verdict(entry) : undefined;
    const result = verdict?.parse ?? context.json(entry);
    if (!result.ok) {
      findings.push(fail(CHECK, result.code, result.error, { entry, schema: schemaFile }));
      continue;
    }
    if (!jsonLines) parsed.set(entry, result.value);
    const validator = validators.get(entry);
    if (validator?.validate === undefined) {
      findings.push(
        fail(
          CHECK,
          "E_SCHEMA_UNAVAILABLE",
          `${entry} cannot be validated: ${validator?.error ?? "no schema"}`,
          {
            entry,
            schema: schemaFile,
          },
        ),
      );
      continue;
    }
    let errorCount = verdict?.errorCount ?? 0;
    const errors: string[] = verdict?.errors ?? [];
    if (verdict === undefined && !validator.validate(result.value)) {
      const itemErrors = validator.validate.errors ?? [];
      errorCount += itemErrors.length;
      errors.push(...describeSchemaErrors(itemErrors).slice(0, LISTED_SCHEMA_ERRORS));
    }
    if (errorCount > 0) {
      findings.push(
        fail(CHECK, code, `${entry} does not match ${schemaFile}: ${errors[0]}`, {
          entry,
          schema: schemaFile,
          errorCount,
          errors,
        }),
      );
    } else if (jsonLines) validLines.add(entry);
    else valid.set(entry, result.value);
  }
  // report.md is free text, but follows the one rule every entry does (UTF-8, no BOM).
  const report = checkEntryText(contents.entries.get("report.md"), "report.md");
  if (!report.ok) findings.push(fail(CHECK, report.code, report.error, { entry: "report.md" }));
  if (findings.length === 0) {
    findings.push(pass(CHECK, `${Object.keys(ENTRY_SCHEMAS).length} files match their schemas`));
  }
  return { findings, valid, parsed, validLines };
}

/** Every JSON file of the bundle validates against schemas/ (strict: no extra properties). */
export function checkSchemas(contents: BundleEntries, validators: SchemaValidators): Finding[] {
  return validateEntries(contents, validators).findings;
}
