/**
 * records.jsonl and fingerprints.jsonl in one pass, line by line: each line is hashed (for
 * integrity), parsed strictly, validated against its schema and handed to what the checks
 * fold it into (recompute's per-method columns, consistency's per-sample state, protocol's
 * and the draw's record identities), then dropped. `spg verify FILE` streams them from the
 * zip's inflater (verify-bundle.ts); entries already in memory (tests, `spg report`, a merge's
 * self-check, a shard's rebuilt bundle) go through the same folds from their buffers. The
 * checks then read the folds, never a records array.
 */
import { createHash } from "node:crypto";
import type { EntrySink } from "../../bundle/read.js";
import type { EnvironmentFile, FingerprintLine, SampleRecord } from "../../bundle/types.js";
import type { RunConfig } from "../../config/types.js";
import { SummaryFold } from "../../measure/summary.js";
import type { BundleContext, EntryDigest } from "../context.js";
import { JsonLinesReader, type Parsed } from "../parse.js";
import { effectiveTolerances } from "../policy.js";
import { describeSchemaErrors, LISTED_SCHEMA_ERRORS, type SchemaValidators } from "../schemas.js";
import { BudgetFold } from "./budget.js";
import { ConsistencyFold } from "./consistency.js";
import { RecordIdentities } from "./draw.js";
import { ExecutedCostFold } from "./executed-cost.js";
import { type CheckOptions, policyOf, validatorsOf } from "./options.js";
import { ProtocolRecordsFold } from "./protocol.js";

/** The entries read line by line, in this order (fingerprints are judged against the records). */
export const STREAMED_ENTRIES = ["records.jsonl", "fingerprints.jsonl"] as const;

/** One JSON Lines entry after its pass. */
export interface LinesVerdict {
  /** Its line count, or the first reason it does not parse (parse.ts's codes). */
  parse: Parsed<number>;
  /** Why it could not be validated (no schema), if so. */
  unavailable?: string;
  /** Schema errors over its lines, and the first LISTED_SCHEMA_ERRORS in words. */
  errorCount: number;
  errors: string[];
}

/** One entry's pass: hash, parse, validate, fold. */
class EntryLines implements EntrySink {
  private readonly hash = createHash("sha256");
  private bytes = 0;
  private readonly reader: JsonLinesReader;
  private errorCount = 0;
  private readonly errors: string[] = [];

  constructor(
    private readonly name: string,
    private readonly validators: SchemaValidators,
    private readonly done: (verdict: LinesVerdict, digest: EntryDigest) => void,
    onValid: (value: unknown) => void,
    onParsed?: (value: unknown) => void,
  ) {
    const validate = validators.get(name)?.validate;
    const accepts = validators.get(name)?.accepts;
    const readLine = (value: unknown, line: number, shownValid: boolean) => {
      onParsed?.(value);
      if (validate === undefined) return;
      if (shownValid || accepts?.(value) || validate(value)) {
        onValid(value);
        return;
      }
      const lineErrors = validate.errors ?? [];
      this.errorCount += lineErrors.length;
      // Only the listed errors are put into words: a million bad lines cost a count, not a million messages.
      if (this.errors.length >= LISTED_SCHEMA_ERRORS) return;
      for (const text of describeSchemaErrors(lineErrors, `line ${line + 1} `)) {
        if (this.errors.length < LISTED_SCHEMA_ERRORS) this.errors.push(text);
      }
    };
    this.reader = new JsonLinesReader(name, readLine, validators.get(name)?.matchLine);
  }

  push(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.reader.push(chunk);
  }

  end(): void {
    const parse = this.reader.end();
    const validator = this.validators.get(this.name);
    const verdict: LinesVerdict = { parse, errorCount: this.errorCount, errors: this.errors };
    if (validator?.validate === undefined) verdict.unavailable = validator?.error ?? "no schema";
    else if (parse.ok && parse.value === 0) {
      verdict.errorCount += 1;
      verdict.errors.push("no lines");
    }
    this.done(verdict, { bytes: this.bytes, sha256: this.hash.digest("hex") });
  }
}

/** A JSON entry's parsed value when it parses and matches its schema, else undefined. */
function validJson(context: BundleContext, name: string, validators: SchemaValidators): unknown {
  const parsed = context.json(name);
  if (!parsed.ok) return undefined;
  return validators.get(name)?.validate?.(parsed.value) === true ? parsed.value : undefined;
}

/** What the checks read of records.jsonl and fingerprints.jsonl, folded in one pass. */
export class LineFolds {
  /** summarize()'s per-method columns (when config.json is valid). */
  readonly summary: SummaryFold | undefined;
  /** The consistency check's state (when config.json and environment.json are valid). */
  readonly consistency: ConsistencyFold | undefined;
  /** The budget check's state (when config.json and environment.json are valid). */
  readonly budget: BudgetFold | undefined;
  /** The executed-cost check's state (when config.json and environment.json are valid). */
  readonly executedCost: ExecutedCostFold | undefined;
  /** Records that score no listed evaluation sample (every parsed line, valid or not). */
  readonly protocol: ProtocolRecordsFold;
  /** Every valid record's identity, for the draw. */
  readonly identities = new RecordIdentities();
  private readonly verdicts = new Map<string, LinesVerdict>();
  private readonly sinks = new Map<string, EntryLines>();

  constructor(context: BundleContext, options: CheckOptions) {
    const validators = validatorsOf(options);
    const config = validJson(context, "config.json", validators) as RunConfig | undefined;
    const environment = validJson(context, "environment.json", validators);
    this.summary = config === undefined ? undefined : new SummaryFold(config);
    this.consistency =
      config === undefined || environment === undefined
        ? undefined
        : new ConsistencyFold(
            // Judged with the verifier's tolerances, never the bundle's looser ones.
            {
              ...config,
              tolerances: effectiveTolerances(policyOf(options).replay.tolerances, config.tolerances)
                .tolerances,
            },
            environment as EnvironmentFile,
          );
    this.budget =
      config === undefined || environment === undefined
        ? undefined
        : new BudgetFold(config, environment as EnvironmentFile);
    this.executedCost =
      config === undefined || environment === undefined
        ? undefined
        : new ExecutedCostFold({
            config,
            environment: environment as EnvironmentFile,
            version: context.version(),
          });
    this.protocol = new ProtocolRecordsFold(context.value("environment.json"));
    const finish = (name: string) => (verdict: LinesVerdict, digest: EntryDigest) => {
      this.verdicts.set(name, verdict);
      context.recordDigest(name, digest);
    };
    this.sinks.set(
      "records.jsonl",
      new EntryLines(
        "records.jsonl",
        validators,
        finish("records.jsonl"),
        (value) => {
          const record = value as SampleRecord;
          this.summary?.add(record);
          this.consistency?.record(record);
          this.executedCost?.record(record);
          this.identities.add(record);
        },
        (value) => this.protocol.record(value),
      ),
    );
    this.sinks.set(
      "fingerprints.jsonl",
      new EntryLines("fingerprints.jsonl", validators, finish("fingerprints.jsonl"), (value) => {
        this.consistency?.fingerprint(value as FingerprintLine);
        this.budget?.fingerprint(value as FingerprintLine);
        this.executedCost?.fingerprint(value as FingerprintLine);
      }),
    );
  }

  /** Where a streamed entry's bytes go (records.jsonl before fingerprints.jsonl). */
  sink(name: string): EntrySink | undefined {
    return this.sinks.get(name);
  }

  /** The entry's verdict; a missing entry is E_ENTRY_MISSING. */
  verdict(name: string): LinesVerdict {
    return (
      this.verdicts.get(name) ?? {
        parse: { ok: false, code: "E_ENTRY_MISSING", error: `${name} is missing` },
        errorCount: 0,
        errors: [],
      }
    );
  }

  /** Its line count when it parsed and every line matched its schema; else undefined. */
  validLines(name: string): number | undefined {
    const verdict = this.verdict(name);
    return verdict.parse.ok && verdict.unavailable === undefined && verdict.errorCount === 0
      ? verdict.parse.value
      : undefined;
  }
}

/** The context's folds: streamed while the zip was read, or made now from the entries in memory. */
export function lineFoldsOf(context: BundleContext, options: CheckOptions): LineFolds {
  if (context.lineFolds !== undefined) return context.lineFolds;
  const folds = new LineFolds(context, options);
  context.lineFolds = folds;
  for (const name of STREAMED_ENTRIES) {
    const bytes = context.entries.get(name);
    const sink = folds.sink(name);
    if (bytes === undefined || sink === undefined) continue;
    sink.push(bytes);
    sink.end();
  }
  return folds;
}
