/** Reading a summary's run-cost figures (format version 3): shared by prove's output, report.md, the HTML report and README tables. */
import type { MethodSummary, Summary } from "../bundle/types.js";

/** A method whose stored form is smaller than the baseline's while what it executes is larger (issue 21). */
export function storedSmallerExecutedLarger(m: MethodSummary): boolean {
  return m.compressionRatio > 1 && m.executedMemoryRatio !== undefined && m.executedMemoryRatio < 1;
}

/** The methods storedSmallerExecutedLarger flags, in summary order. */
export function executedLargerMethods(summary: Summary): string[] {
  return Object.entries(summary.methods)
    .filter(([, m]) => storedSmallerExecutedLarger(m))
    .map(([name]) => name);
}

/** The warning `spg prove` prints (and the reports show) for such a method. */
export function executedLargerWarning(name: string, m: MethodSummary): string {
  return (
    `${name} stores ${m.compressionRatio.toPrecision(4)}x less than the baseline but executes ` +
    `${(1 / (m.executedMemoryRatio as number)).toPrecision(4)}x more memory (executed memory ratio ` +
    `${(m.executedMemoryRatio as number).toPrecision(4)})`
  );
}

const MiB = 1024 * 1024;

/** Executed bytes per sample in MiB (the summary holds sums over samples). */
export function executedMiBPerSample(bytes: number, samples: number): number {
  return bytes / samples / MiB;
}
