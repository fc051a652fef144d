/**
 * summary.json from records.jsonl. `spg prove` writes what this returns and `spg verify`
 * calls it again on the bundle's records and config and compares, so every figure a bundle
 * states is a pure, deterministic function of its raw measurements.
 *
 * Formulas, per method m over its records r (one per evaluation sample), sums in
 * ascending sampleIndex order:
 *   samples               = number of records of m
 *   scoredTokens          = Σ r.scoredTokens
 *   nllBaseline           = Σ r.nllBaseline          nllCompressed = Σ r.nllCompressed
 *   perplexityBaseline    = exp(nllBaseline / scoredTokens)
 *   perplexityCompressed  = exp(nllCompressed / scoredTokens)
 *   perplexityIncreasePct = 100 · (perplexityCompressed / perplexityBaseline − 1)
 *   meanKl                = Σ r.klSum / scoredTokens                 (nats per scored token)
 *   top1Agreement         = Σ r.top1Matches / scoredTokens
 *   generationAgreement   = Σ r.generation.matches / Σ r.generation.compared
 *   kvBytesBaseline       = Σ r.kvBytesBaseline      kvBytesCompressed = Σ r.kvBytesCompressed
 *   compressionRatio      = kvBytesBaseline / kvBytesCompressed                   (KV methods)
 *                         = Σ r.weights.bytesBaseline / Σ r.weights.bytesCompressed (weights methods)
 * Weights methods (config kind "weights") also get `weights`: those byte sums, the parameter
 * sums and their ratio (reported, never the compression ratio), and
 *   meanLogitCosine       = Σ r.logitCosineSum / scoredTokens.
 * Records with runCost (format version 3; every record of a method, or none) add
 *   runCost.executedBytes         = Σ (r.runCost.executedBytes.weights + .kv)
 *   runCost.executedBytesBaseline = Σ (r.runCost.baselineExecutedBytes.weights + .kv)
 *   executedMemoryRatio           = executedBytesBaseline / executedBytes
 *   runCost.*TokensPerSecond      = Σ tokens / (Σ ms / 1000) per pass (teacher-forced: Σ
 *                                   r.runCost.teacherForcedTokens over timingsMs.continuation
 *                                   or runCost.baselineTimingsMs.continuation; decode: Σ
 *                                   r.runCost.decodeSteps over timingsMs.generation or
 *                                   runCost.baselineTimingsMs.generation)
 *   decodeSpeedRatio              = decodeTokensPerSecond / baselineDecodeTokensPerSecond
 * (absent when no decode step was timed), each with its bootstrap interval.
 * With `spg prove --sensitivity`, `sensitivity` ranks units (src/weights/sensitivity.ts) from
 * the variants' perplexity increases.
 * Perplexity is over all tokens pooled, not a mean of per-sample perplexities; the ratio is
 * bytes pooled, not a mean of per-sample ratios.
 *
 * Bootstrap (config.bootstrap {resamples B, confidence c, seed s}), per method:
 *   a fresh mulberry32(s) draws B resamples of n sample positions, each position
 *   floor(u · n) for the next u in [0, 1), resample by resample, position by position.
 *   Every metric above is recomputed from the pooled sums of each resample (the same
 *   positions for all metrics of the method; with equal n every method sees the same
 *   positions, i.e. a paired bootstrap). The interval is the percentile interval:
 *   low = Q((1 − c) / 2), high = Q((1 + c) / 2), where Q is the linearly interpolated
 *   quantile of the B sorted values (Hyndman–Fan type 7: h = (B − 1)·p,
 *   Q = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])).
 *
 * Claims (config.claims), in config order: value = the point estimate of the metric;
 * judged = value when judge is "point", else the conservative end of the interval (low for
 * ">=", high for "<="); pass = judged >= threshold (or <=). allClaimsPass = every claim
 * passes (true when there are none).
 */
import type { ClaimResult, MethodSummary, RunCostSummary, SampleRecord, Summary } from "../bundle/types.js";
import { methodOfVariant } from "../config/sweep.js";
import type { ClaimMetric, MethodConfig, RunConfig } from "../config/types.js";
import { SpgError } from "../errors.js";
import { summarizeSensitivity } from "../weights/sensitivity.js";
import { paretoFrontier, paretoFrontiersByGroup } from "./pareto.js";
import { mulberry32, uniformIndex } from "./prng.js";

/** The summary field each claim metric reads. */
export const CLAIM_METRIC_FIELD: Record<ClaimMetric, keyof MethodSummary["intervals"]> = {
  compression_ratio: "compressionRatio",
  perplexity_increase_pct: "perplexityIncreasePct",
  mean_kl: "meanKl",
  top1_agreement: "top1Agreement",
  generation_agreement: "generationAgreement",
  executed_memory_ratio: "executedMemoryRatio",
  decode_speed_ratio: "decodeSpeedRatio",
};

interface PooledSums {
  scoredTokens: number;
  nllBaseline: number;
  nllCompressed: number;
  klSum: number;
  top1Matches: number;
  generationCompared: number;
  generationMatches: number;
  kvBytesBaseline: number;
  kvBytesCompressed: number;
  /** The bytes compressionRatio counts: KV bytes, or weight bytes for a weights method. */
  ratioBaseline: number;
  ratioCompressed: number;
  logitCosineSum: number;
  parametersBaseline: number;
  parametersStored: number;
  executedBytes: number;
  executedBytesBaseline: number;
  teacherForcedTokens: number;
  decodeSteps: number;
  continuationMs: number;
  generationMs: number;
  baselineContinuationMs: number;
  baselineGenerationMs: number;
}

/** Interval keys every summary has; the run-cost ones only with runCost records. */
const BASE_INTERVAL_KEYS = [
  "compressionRatio",
  "perplexityIncreasePct",
  "meanKl",
  "top1Agreement",
  "generationAgreement",
] as const;
type IntervalKey = keyof MethodSummary["intervals"];

type PointMetrics = Record<(typeof BASE_INTERVAL_KEYS)[number], number> &
  Partial<Record<IntervalKey, number>> & {
    perplexityBaseline: number;
    perplexityCompressed: number;
  };

const SUMMED_FIELDS = [
  "scoredTokens",
  "nllBaseline",
  "nllCompressed",
  "klSum",
  "top1Matches",
  "generationCompared",
  "generationMatches",
  "kvBytesBaseline",
  "kvBytesCompressed",
  "ratioBaseline",
  "ratioCompressed",
  "logitCosineSum",
  "parametersBaseline",
  "parametersStored",
  "executedBytes",
  "executedBytesBaseline",
  "teacherForcedTokens",
  "decodeSteps",
  "continuationMs",
  "generationMs",
  "baselineContinuationMs",
  "baselineGenerationMs",
] as const satisfies readonly (keyof PooledSums)[];

/**
 * One method's records folded one at a time (verify streams records.jsonl through this): each
 * summed field as a growing typed column, in the order the records came, with their
 * sampleIndex. finish() orders the rows by sampleIndex (stable, as summarize always has), so
 * the sums are bit-identical to summing the sorted records. The bootstrap reads the columns,
 * never record objects.
 */
export class MethodFold {
  private capacity = 0;
  private rows = 0;
  private columns = {} as Columns;
  private sampleIndex = new Float64Array(0);
  /** The first record whose weights fields do not fit the method's kind (thrown by finish). */
  private mismatch: SpgError | undefined;
  private carryingRunCost = 0;

  constructor(
    readonly method: string,
    /** Whether the method is a weights method: undefined = as its first record says. */
    private weightsKind: boolean | undefined,
  ) {}

  get count(): number {
    return this.rows;
  }

  private grow(): void {
    this.capacity = Math.max(16, this.capacity * 2);
    for (const field of SUMMED_FIELDS) {
      const wider = new Float64Array(this.capacity);
      if (this.columns[field] !== undefined) wider.set(this.columns[field].subarray(0, this.rows));
      this.columns[field] = wider;
    }
    const index = new Float64Array(this.capacity);
    index.set(this.sampleIndex.subarray(0, this.rows));
    this.sampleIndex = index;
  }

  add(record: SampleRecord): void {
    if (this.rows === this.capacity) this.grow();
    const i = this.rows++;
    const columns = this.columns;
    const weights = record.weights;
    this.weightsKind ??= weights !== undefined;
    if (
      this.mismatch === undefined &&
      ((weights !== undefined) !== this.weightsKind ||
        (record.logitCosineSum !== undefined) !== this.weightsKind)
    ) {
      this.mismatch = new SpgError(
        "E_SUMMARY_WEIGHTS",
        `method "${this.method}", sample ${record.sampleId}: ${this.weightsKind ? "a weights method's record lacks" : "a KV method's record has"} weights / logitCosineSum`,
        {
          file: "records.jsonl",
          field: "weights",
          fix: "records of kind weights carry weights and logitCosineSum; other records carry neither",
        },
      );
    }
    this.sampleIndex[i] = record.sampleIndex;
    columns.scoredTokens[i] = record.scoredTokens;
    columns.nllBaseline[i] = record.nllBaseline;
    columns.nllCompressed[i] = record.nllCompressed;
    columns.klSum[i] = record.klSum;
    columns.top1Matches[i] = record.top1Matches;
    columns.generationCompared[i] = record.generation.compared;
    columns.generationMatches[i] = record.generation.matches;
    columns.kvBytesBaseline[i] = record.kvBytesBaseline;
    columns.kvBytesCompressed[i] = record.kvBytesCompressed;
    columns.ratioBaseline[i] = weights?.bytesBaseline ?? record.kvBytesBaseline;
    columns.ratioCompressed[i] = weights?.bytesCompressed ?? record.kvBytesCompressed;
    columns.logitCosineSum[i] = record.logitCosineSum ?? 0;
    columns.parametersBaseline[i] = weights?.parametersBaseline ?? 0;
    columns.parametersStored[i] = weights?.parametersStored ?? 0;
    const cost = record.runCost;
    if (cost !== undefined) {
      this.carryingRunCost += 1;
      columns.executedBytes[i] = cost.executedBytes.weights + cost.executedBytes.kv;
      columns.executedBytesBaseline[i] = cost.baselineExecutedBytes.weights + cost.baselineExecutedBytes.kv;
      columns.teacherForcedTokens[i] = cost.teacherForcedTokens;
      columns.decodeSteps[i] = cost.decodeSteps;
      columns.continuationMs[i] = record.timingsMs.continuation;
      columns.generationMs[i] = record.timingsMs.generation;
      columns.baselineContinuationMs[i] = cost.baselineTimingsMs.continuation;
      columns.baselineGenerationMs[i] = cost.baselineTimingsMs.generation;
    }
  }

  /** The columns ordered by sampleIndex (ties keep arrival order); throws the first kind mismatch. */
  ordered(): { columns: Columns; weightsKind: boolean; runCost: boolean } {
    if (this.mismatch !== undefined) throw this.mismatch;
    // Every record of a method carries runCost (format version 3), or none (an older format).
    if (this.carryingRunCost !== 0 && this.carryingRunCost !== this.rows) {
      throw new SpgError(
        "E_SUMMARY_RUN_COST",
        `method "${this.method}": ${this.carryingRunCost} of ${this.rows} records carry runCost`,
        {
          file: "records.jsonl",
          field: "runCost",
          fix: "every record of a format version 3 bundle carries runCost; older bundles carry none",
        },
      );
    }
    const n = this.rows;
    const index = this.sampleIndex;
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = index[i - 1] <= index[i];
    const columns = {} as Columns;
    if (sorted) {
      for (const field of SUMMED_FIELDS)
        columns[field] = this.columns[field]?.subarray(0, n) ?? new Float64Array(0);
    } else {
      const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => index[a] - index[b] || a - b);
      for (const field of SUMMED_FIELDS) {
        const source = this.columns[field];
        const target = new Float64Array(n);
        for (let i = 0; i < n; i++) target[i] = source[order[i]];
        columns[field] = target;
      }
    }
    return { columns, weightsKind: this.weightsKind ?? false, runCost: this.carryingRunCost > 0 };
  }
}

/**
 * Sums only the point figures report (metricsFromSums reads none of them), so a bootstrap
 * resample skips them. Every other summed field, a new one included, is resampled.
 */
const POINT_ONLY_FIELDS: readonly (keyof PooledSums)[] = [
  "kvBytesBaseline",
  "kvBytesCompressed",
  "logitCosineSum",
  "parametersBaseline",
  "parametersStored",
  "teacherForcedTokens",
  "continuationMs",
  "baselineContinuationMs",
];

/** The sums runCostMetrics reads: resampled only for records with runCost (no other metric reads them). */
const RUN_COST_METRIC_FIELDS: readonly (keyof PooledSums)[] = [
  "executedBytes",
  "executedBytesBaseline",
  "decodeSteps",
  "generationMs",
  "baselineGenerationMs",
];

/** The sums a bootstrap resample recomputes: those metricsFromSums reads. */
function metricFields(runCost: boolean): (keyof PooledSums)[] {
  return SUMMED_FIELDS.filter(
    (field) => !POINT_ONLY_FIELDS.includes(field) && (runCost || !RUN_COST_METRIC_FIELDS.includes(field)),
  );
}

/** Each summed field of the ordered records as a column: the bootstrap reads these, not the objects. */
type Columns = Record<keyof PooledSums, Float64Array>;

/**
 * Sums over `positions` (with repeats), added in the order given; all positions when omitted.
 * Each field is summed in position order, so the figures do not depend on how the loop is laid out.
 */
function sumAt(columns: Columns, positions?: ArrayLike<number>): PooledSums {
  const sums = {} as PooledSums;
  const count = positions === undefined ? columns.scoredTokens.length : positions.length;
  for (const field of SUMMED_FIELDS) {
    const column = columns[field];
    let total = 0;
    if (positions === undefined) for (let i = 0; i < count; i++) total += column[i];
    else for (let i = 0; i < count; i++) total += column[positions[i]];
    sums[field] = total;
  }
  return sums;
}

/** Tokens per second of `tokens` over `ms`; undefined when nothing was timed. */
function tokensPerSecond(tokens: number, ms: number): number | undefined {
  return tokens > 0 && ms > 0 ? tokens / (ms / 1000) : undefined;
}

/** The run-cost figures of pooled sums (see the header), or undefined when a denominator is 0. */
function runCostMetrics(sums: PooledSums) {
  const decode = tokensPerSecond(sums.decodeSteps, sums.generationMs);
  const baselineDecode = tokensPerSecond(sums.decodeSteps, sums.baselineGenerationMs);
  return {
    executedMemoryRatio: sums.executedBytes > 0 ? sums.executedBytesBaseline / sums.executedBytes : undefined,
    decodeSpeedRatio:
      decode !== undefined && baselineDecode !== undefined ? decode / baselineDecode : undefined,
  };
}

function metricsFromSums(sums: PooledSums, method: string, runCost = false): PointMetrics {
  const denominators: [string, number][] = [
    ["scoredTokens", sums.scoredTokens],
    ["generation.compared", sums.generationCompared],
    ["compressed bytes", sums.ratioCompressed],
  ];
  for (const [field, value] of denominators) {
    if (!(value > 0)) {
      throw new SpgError(
        "E_SUMMARY_EMPTY",
        `method "${method}": summed ${field} is ${value}, so a metric divides by zero`,
        {
          file: "records.jsonl",
          field,
          fix: "every method needs records with scored tokens, compared generation tokens and stored KV bytes",
        },
      );
    }
  }
  const perplexityBaseline = Math.exp(sums.nllBaseline / sums.scoredTokens);
  const perplexityCompressed = Math.exp(sums.nllCompressed / sums.scoredTokens);
  return {
    perplexityBaseline,
    perplexityCompressed,
    perplexityIncreasePct: 100 * (perplexityCompressed / perplexityBaseline - 1),
    meanKl: sums.klSum / sums.scoredTokens,
    top1Agreement: sums.top1Matches / sums.scoredTokens,
    generationAgreement: sums.generationMatches / sums.generationCompared,
    compressionRatio: sums.ratioBaseline / sums.ratioCompressed,
    ...(runCost ? definedOnly(runCostMetrics(sums)) : {}),
  };
}

/** The object's fields whose value is defined (canonical JSON has no undefined). */
function definedOnly<T extends Record<string, number | undefined>>(
  fields: T,
): Partial<Record<keyof T, number>> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<
    Record<keyof T, number>
  >;
}

/** Hyndman–Fan type 7 quantile of ascending `sorted` at probability p in [0, 1]. */
export function quantileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError("quantile of an empty list");
  const h = (sorted.length - 1) * p;
  const lower = Math.floor(h);
  const upper = Math.min(lower + 1, sorted.length - 1);
  return sorted[lower] + (h - lower) * (sorted[upper] - sorted[lower]);
}

/**
 * Bootstrap resamples of n positions from a fresh generator seeded with `seed`, one at a
 * time into one reused buffer (memory stays O(n) whatever the resample count).
 */
export function* bootstrapResamples(n: number, resamples: number, seed: number): Generator<Uint32Array> {
  const next = mulberry32(seed);
  const positions = new Uint32Array(n);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < n; i++) positions[i] = uniformIndex(next, n);
    yield positions;
  }
}

/** All resamples as separate arrays (for tests and small inputs). */
export function bootstrapIndices(n: number, resamples: number, seed: number): Uint32Array[] {
  const draws: Uint32Array[] = [];
  for (const positions of bootstrapResamples(n, resamples, seed)) draws.push(positions.slice());
  return draws;
}

/** totals[f] = the sum of rows[p][f] over the positions p, in order (a plain loop V8 optimizes, outside the generator). */
function addRows(rows: Float64Array, width: number, positions: Uint32Array, totals: Float64Array): void {
  totals.fill(0);
  const n = positions.length;
  for (let i = 0; i < n; i++) {
    const row = positions[i] * width;
    for (let f = 0; f < width; f++) totals[f] += rows[row + f];
  }
}

/** One method as the bootstrap reads it: its ordered columns, its point figures, whether it has run cost. */
interface BootstrapMethod {
  method: string;
  columns: Columns;
  /** Each column summed over every row in order. */
  sums: PooledSums;
  point: PointMetrics;
  runCost: boolean;
}

/** What a step threw, kept to be thrown where a method-by-method pass would have thrown it. */
interface Thrown {
  thrown: unknown;
}

function isThrown(value: unknown): value is Thrown {
  return typeof value === "object" && value !== null && "thrown" in value;
}

/** Whether two columns hold the same bits in every row (so their sums over any positions are the same bits). */
function sameBits(a: Float64Array, b: Float64Array): boolean {
  return (
    a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    )
  );
}

/** Whether every row of the column holds the same bits (Object.is: -0 and 0 differ). */
function constantColumn(column: Float64Array): boolean {
  const first = column[0];
  for (let i = 1; i < column.length; i++) if (!Object.is(column[i], first)) return false;
  return true;
}

/**
 * Where each method's resampled sums come from, for methods with the same number of rows (they
 * see the same positions, drawn once): a column whose rows all hold one value adds that value n
 * times whatever the positions, so its sum is the full column's (computed once); a column with
 * the same bits as one already placed (the baseline NLL of every method, a full method's
 * compressed NLL) has that column's sums. Every other column is one field of a row-major table,
 * summed per resample in position order. So each field's sum is the same bits as summing that
 * column over the positions alone (sumAt), with each distinct column added once per position.
 */
class SharedResampleSums {
  private readonly rows: Float64Array;
  private readonly width: number;
  private readonly totals: Float64Array;
  /** Per method, per field it resamples: the table's field index, or -1 for a constant. */
  private readonly sources: { field: keyof PooledSums; index: number; constant: number }[][];

  constructor(methods: readonly BootstrapMethod[], n: number) {
    const distinct: Float64Array[] = [];
    this.sources = methods.map(({ columns, sums, runCost }) =>
      metricFields(runCost).map((field) => {
        const column = columns[field];
        if (constantColumn(column)) return { field, index: -1, constant: sums[field] };
        let index = distinct.findIndex((placed) => sameBits(placed, column));
        if (index === -1) index = distinct.push(column) - 1;
        return { field, index, constant: 0 };
      }),
    );
    const width = distinct.length;
    this.width = width;
    this.rows = new Float64Array(n * width);
    distinct.forEach((column, f) => {
      for (let i = 0; i < n; i++) this.rows[i * width + f] = column[i];
    });
    this.totals = new Float64Array(width);
  }

  /** Sum the table over this resample's positions (before sumsOf, once per resample). */
  add(positions: Uint32Array): void {
    addRows(this.rows, this.width, positions, this.totals);
  }

  /** The method's sums for the resample just added; the point-only sums stay 0 (no metric reads them). */
  sumsOf(method: number): PooledSums {
    const sums = {} as PooledSums;
    for (const field of SUMMED_FIELDS) sums[field] = 0;
    for (const { field, index, constant } of this.sources[method]) {
      sums[field] = index === -1 ? constant : this.totals[index];
    }
    return sums;
  }
}

/** The interval keys of a method: the base ones, and the run-cost ratios its point estimate has (a resample of timed samples is timed too). */
function intervalKeys(point: PointMetrics): IntervalKey[] {
  return [
    ...BASE_INTERVAL_KEYS,
    ...(["executedMemoryRatio", "decodeSpeedRatio"] as const).filter((key) => point[key] !== undefined),
  ];
}

/**
 * Every method's bootstrap intervals, or for each what its resamples threw (undefined where
 * its point figures already failed). Methods with the same number of records share one
 * stream of positions: each method's generator starts fresh from the same seed, so they would
 * draw the same positions one by one (the paired bootstrap of the header); here they are drawn once.
 */
function bootstrapIntervalsOf(
  methods: readonly (BootstrapMethod | undefined)[],
  bootstrap: RunConfig["bootstrap"],
): (MethodSummary["intervals"] | Thrown | undefined)[] {
  const results: (MethodSummary["intervals"] | Thrown | undefined)[] = methods.map(() => undefined);
  const groups = new Map<number, number[]>();
  methods.forEach((method, m) => {
    if (method === undefined) return;
    const n = method.columns.scoredTokens.length;
    groups.set(n, [...(groups.get(n) ?? []), m]);
  });
  for (const [n, members] of groups) {
    try {
      const group = resampleGroup(
        members.map((m) => methods[m] as BootstrapMethod),
        n,
        bootstrap,
      );
      members.forEach((m, k) => {
        results[m] = group[k];
      });
    } catch (thrown) {
      // Outside one method's figures (the generator's seed): each method of the group would have met it.
      for (const m of members) results[m] = { thrown };
    }
  }
  return results;
}

/** The intervals of methods with n records each (or what each one's resamples threw), drawing each resample's positions once. */
function resampleGroup(
  group: readonly BootstrapMethod[],
  n: number,
  bootstrap: RunConfig["bootstrap"],
): (MethodSummary["intervals"] | Thrown)[] {
  const shared = new SharedResampleSums(group, n);
  const keys = group.map(({ point }) => intervalKeys(point));
  const values = keys.map((list) => list.map((): number[] => []));
  const failed: (Thrown | undefined)[] = group.map(() => undefined);
  for (const positions of bootstrapResamples(n, bootstrap.resamples, bootstrap.seed)) {
    shared.add(positions);
    group.forEach(({ method, runCost }, k) => {
      if (failed[k] !== undefined) return;
      let metrics: PointMetrics;
      try {
        metrics = metricsFromSums(shared.sumsOf(k), method, runCost);
      } catch (thrown) {
        failed[k] = { thrown };
        return;
      }
      keys[k].forEach((key, j) => {
        values[k][j].push(metrics[key] as number);
      });
    });
  }
  const alpha = (1 - bootstrap.confidence) / 2;
  return group.map((_, k) => {
    const failure = failed[k];
    if (failure !== undefined) return failure;
    const intervals = {} as MethodSummary["intervals"];
    keys[k].forEach((key, j) => {
      const sorted = values[k][j].sort((a, b) => a - b);
      intervals[key] = { low: quantileSorted(sorted, alpha), high: quantileSorted(sorted, 1 - alpha) };
    });
    return intervals;
  });
}

/** One method's aggregates from its records (any order; sorted here by sampleIndex). */
export function summarizeMethod(
  records: readonly SampleRecord[],
  method: string,
  bootstrap: RunConfig["bootstrap"],
  kind: MethodConfig["kind"] | undefined = undefined,
): MethodSummary {
  // Without a kind, the record with the lowest sampleIndex says which kind the method is.
  let first: SampleRecord | undefined;
  for (const record of records)
    if (first === undefined || record.sampleIndex < first.sampleIndex) first = record;
  const fold = new MethodFold(method, kind === undefined ? first?.weights !== undefined : kind === "weights");
  for (const record of records) fold.add(record);
  return summarizeFolds([fold], bootstrap)[0];
}

/** A method's ordered columns, sums and point figures (what its summary and its bootstrap read). */
interface PreparedMethod extends BootstrapMethod {
  fold: MethodFold;
  sums: PooledSums;
  weightsKind: boolean;
}

function prepareFold(fold: MethodFold): PreparedMethod {
  const method = fold.method;
  const { columns, weightsKind, runCost } = fold.ordered();
  const sums = sumAt(columns);
  return { fold, method, columns, weightsKind, runCost, sums, point: metricsFromSums(sums, method, runCost) };
}

/**
 * The methods' aggregates from their folded records, in order. An error is thrown as a
 * method-by-method pass would meet it: the first method whose records, point figures or
 * resamples fail.
 */
function summarizeFolds(folds: readonly MethodFold[], bootstrap: RunConfig["bootstrap"]): MethodSummary[] {
  const prepared = folds.map((fold): PreparedMethod | Thrown => {
    try {
      return prepareFold(fold);
    } catch (thrown) {
      return { thrown };
    }
  });
  const intervals = bootstrapIntervalsOf(
    prepared.map((method) => (isThrown(method) ? undefined : method)),
    bootstrap,
  );
  return prepared.map((method, m) => {
    if (isThrown(method)) throw method.thrown;
    const resampled = intervals[m];
    if (resampled === undefined) throw new Error(`method "${method.method}" was not resampled`);
    if (isThrown(resampled)) throw resampled.thrown;
    return methodSummary(method, resampled);
  });
}

function methodSummary(
  { fold, sums, point, weightsKind, runCost }: PreparedMethod,
  intervals: MethodSummary["intervals"],
): MethodSummary {
  const weights = weightsKind
    ? {
        weights: {
          bytesBaseline: sums.ratioBaseline,
          bytesCompressed: sums.ratioCompressed,
          parametersBaseline: sums.parametersBaseline,
          parametersStored: sums.parametersStored,
          parameterRatio: sums.parametersBaseline / sums.parametersStored,
          meanLogitCosine: sums.logitCosineSum / sums.scoredTokens,
        },
      }
    : {};
  return {
    samples: fold.count,
    scoredTokens: sums.scoredTokens,
    nllBaseline: sums.nllBaseline,
    nllCompressed: sums.nllCompressed,
    perplexityBaseline: point.perplexityBaseline,
    perplexityCompressed: point.perplexityCompressed,
    perplexityIncreasePct: point.perplexityIncreasePct,
    meanKl: point.meanKl,
    top1Agreement: point.top1Agreement,
    generationAgreement: point.generationAgreement,
    kvBytesBaseline: sums.kvBytesBaseline,
    kvBytesCompressed: sums.kvBytesCompressed,
    compressionRatio: point.compressionRatio,
    ...weights,
    ...(runCost ? runCostSummary(sums, point) : {}),
    intervals,
  };
}

function runCostSummary(
  sums: PooledSums,
  point: PointMetrics,
): Pick<MethodSummary, "executedMemoryRatio" | "decodeSpeedRatio" | "runCost"> {
  return {
    ...definedOnly({
      executedMemoryRatio: point.executedMemoryRatio,
      decodeSpeedRatio: point.decodeSpeedRatio,
    }),
    runCost: {
      executedBytes: sums.executedBytes,
      executedBytesBaseline: sums.executedBytesBaseline,
      ...definedOnly({
        teacherForcedTokensPerSecond: tokensPerSecond(sums.teacherForcedTokens, sums.continuationMs),
        decodeTokensPerSecond: tokensPerSecond(sums.decodeSteps, sums.generationMs),
        baselineTeacherForcedTokensPerSecond: tokensPerSecond(
          sums.teacherForcedTokens,
          sums.baselineContinuationMs,
        ),
        baselineDecodeTokensPerSecond: tokensPerSecond(sums.decodeSteps, sums.baselineGenerationMs),
      }),
    } as RunCostSummary,
  };
}

/** Judge one claim against a method's summary (see the header for the rule). */
export function judgeClaim(claim: RunConfig["claims"][number], summary: MethodSummary): ClaimResult {
  const field = CLAIM_METRIC_FIELD[claim.metric];
  const value = summary[field];
  const interval = summary.intervals[field];
  if (value === undefined || interval === undefined) {
    // A bundle of an older format (no runCost) cannot back a claim on a run-cost metric.
    throw new SpgError(
      "E_SUMMARY_METRIC_ABSENT",
      `claim on ${claim.metric} of method "${claim.method}", whose records do not measure it`,
      {
        file: "config.json",
        field: "claims[].metric",
        fix: "claim run-cost metrics only on records with runCost (bundle format version 3, spg prove writes them)",
      },
    );
  }
  const judged = claim.judge === "point" ? value : claim.op === ">=" ? interval.low : interval.high;
  const pass = claim.op === ">=" ? judged >= claim.threshold : judged <= claim.threshold;
  return {
    method: claim.method,
    metric: claim.metric,
    op: claim.op,
    threshold: claim.threshold,
    judge: claim.judge,
    value,
    judged,
    pass,
  };
}

/** summary.json for these records under this config (methods in config order). */
export function summarize(records: readonly SampleRecord[], config: RunConfig): Summary {
  const fold = new SummaryFold(config);
  for (const record of records) fold.add(record);
  return fold.finish();
}

/**
 * summarize() one record at a time: verify folds records.jsonl into this as it streams, so
 * no record is held. A new per-record figure is one more column of MethodFold.
 */
export class SummaryFold {
  private readonly byMethod = new Map<string, MethodFold>();
  private unknownMethod: SpgError | undefined;
  private records = 0;

  constructor(private readonly config: RunConfig) {
    for (const method of config.methods) {
      if (!this.byMethod.has(method.name))
        this.byMethod.set(method.name, new MethodFold(method.name, method.kind === "weights"));
    }
  }

  /** Records folded so far. */
  get count(): number {
    return this.records;
  }

  add(record: SampleRecord): void {
    this.records += 1;
    const fold = this.byMethod.get(record.method);
    if (fold !== undefined) fold.add(record);
    else
      this.unknownMethod ??= new SpgError(
        "E_SUMMARY_UNKNOWN_METHOD",
        `record for method "${record.method}" not in the config`,
        {
          file: "records.jsonl",
          field: "method",
          fix: "every record's method must be one of config.methods[].name",
        },
      );
  }

  finish(): Summary {
    return summaryOf(this.config, this.byMethod, this.unknownMethod);
  }
}

function summaryOf(
  config: RunConfig,
  byMethod: ReadonlyMap<string, MethodFold>,
  unknownMethod: SpgError | undefined,
): Summary {
  const bootstrap = config.bootstrap;
  if (!Number.isInteger(bootstrap.resamples) || bootstrap.resamples < 1) {
    throw new SpgError(
      "E_SUMMARY_BOOTSTRAP",
      `bootstrap.resamples must be a positive integer, got ${bootstrap.resamples}`,
      {
        file: "config.json",
        field: "bootstrap.resamples",
        fix: "set bootstrap.resamples to 1 or more",
      },
    );
  }
  if (!(bootstrap.confidence > 0 && bootstrap.confidence < 1)) {
    throw new SpgError(
      "E_SUMMARY_BOOTSTRAP",
      `bootstrap.confidence must lie in (0, 1), got ${bootstrap.confidence}`,
      {
        file: "config.json",
        field: "bootstrap.confidence",
        fix: "set bootstrap.confidence to e.g. 0.95",
      },
    );
  }
  if (unknownMethod !== undefined) throw unknownMethod;
  // fromEntries defines own properties, so no method name can reach the prototype.
  const summaries = summarizeFolds([...byMethod.values()], bootstrap);
  const methods: Record<string, MethodSummary> = Object.fromEntries(
    [...byMethod.keys()].map((name, m) => [name, summaries[m]]),
  );
  const claims = config.claims.map((claim) => {
    const summary = byMethod.has(claim.method) ? methods[claim.method] : undefined;
    if (summary === undefined) {
      throw new SpgError(
        "E_SUMMARY_UNKNOWN_METHOD",
        `claim on method "${claim.method}", which the config does not run`,
        {
          file: "config.json",
          field: "claims[].method",
          fix: "name one of config.methods[].name in the claim",
        },
      );
    }
    return judgeClaim(claim, summary);
  });
  const sensitivity = summarizeSensitivity(config, (name) => {
    if (!byMethod.has(name)) {
      throw new SpgError(
        "E_SUMMARY_UNKNOWN_METHOD",
        `sensitivity variant of "${name}", which the config does not run`,
        {
          file: "config.json",
          field: "methods[].params.sensitivity.of",
          fix: "a variant's sensitivity.of names the weights method it derives from",
        },
      );
    }
    return methods[name].perplexityIncreasePct;
  });
  return {
    methods,
    claims,
    allClaimsPass: claims.every((claim) => claim.pass),
    frontiers: frontiers(methods),
    ...(sensitivity === undefined ? {} : { sensitivity }),
  };
}

/**
 * Pareto frontiers of compression ratio against perplexity increase: over every method, and
 * per method family (a method with its sweep variants "name@param=value"). Names only: the
 * figures are the methods' own, so verify recomputes the frontier with everything else.
 */
export function frontiers(methods: Record<string, MethodSummary>): Summary["frontiers"] {
  const points = Object.entries(methods).map(([method, m]) => ({
    method,
    ratio: m.compressionRatio,
    pplIncreasePct: m.perplexityIncreasePct,
  }));
  const byMethod: Record<string, string[]> = {};
  for (const [family, frontier] of paretoFrontiersByGroup(points, (p) => methodOfVariant(p.method))) {
    byMethod[family] = frontier.map((p) => p.method);
  }
  return { all: paretoFrontier(points).map((p) => p.method), byMethod };
}
