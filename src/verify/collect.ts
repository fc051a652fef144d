import type { FindingCode } from "../error-codes.js";
import { type CheckName, type Finding, fail } from "./types.js";

/** Where a record is, for a failure's words (made only then: most records fail nothing). */
export function recordWhere(record: { sampleId: string; method: string }): string {
  return `record ${record.sampleId}/${record.method}`;
}

/** At most this many examples are kept per failure code; the count says how many there were. */
const EXAMPLES_PER_CODE = 10;

/**
 * Groups failures by code so a bundle with a million bad lines yields one finding per code
 * (with a count and the first examples), not a million findings.
 */
export class FailureCollector {
  private readonly byCode = new Map<FindingCode, { count: number; examples: string[] }>();

  constructor(private readonly check: CheckName) {}

  add(code: FindingCode, example: string): void {
    let entry = this.byCode.get(code);
    if (entry === undefined) {
      entry = { count: 0, examples: [] };
      this.byCode.set(code, entry);
    }
    entry.count += 1;
    if (entry.examples.length < EXAMPLES_PER_CODE) entry.examples.push(example);
  }

  /** Another collector's failures, after this one's (as if they had been added here in that order). */
  absorb(other: FailureCollector): void {
    for (const [code, { count, examples }] of other.byCode) {
      let entry = this.byCode.get(code);
      if (entry === undefined) {
        entry = { count: 0, examples: [] };
        this.byCode.set(code, entry);
      }
      entry.count += count;
      for (const example of examples)
        if (entry.examples.length < EXAMPLES_PER_CODE) entry.examples.push(example);
    }
  }

  get size(): number {
    return this.byCode.size;
  }

  findings(): Finding[] {
    return [...this.byCode].map(([code, { count, examples }]) =>
      fail(this.check, code, count > 1 ? `${examples[0]} (${count} cases)` : examples[0], {
        count,
        examples,
      }),
    );
  }
}
