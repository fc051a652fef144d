import { ERROR_CODES, type InputErrorCode } from "./error-codes.js";
import { terminalSafe } from "./terminal-safe.js";

/**
 * Every user-facing failure is an SpgError: a stable code (registered in error-codes.ts,
 * listed in docs/errors.md, never reused), the file and field it concerns when there is
 * one, and what to do about it.
 */
export class SpgError extends Error {
  readonly code: InputErrorCode;
  readonly file: string | undefined;
  readonly field: string | undefined;
  readonly fix: string | undefined;
  /** The message without its detail lines. */
  readonly headline: string;
  /** One line each, after the headline (e.g. every problem of a configuration). */
  readonly details: readonly string[];
  /** Process exit status when this error ends a command (the registry's). */
  readonly exitCode: number;

  constructor(
    code: InputErrorCode,
    message: string,
    options: {
      file?: string;
      field?: string;
      fix?: string;
      cause?: unknown;
      details?: readonly string[];
    } = {},
  ) {
    const details = options.details ?? [];
    super(
      [message, ...details].join("\n"),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.headline = message;
    this.details = details;
    this.name = "SpgError";
    this.code = code;
    this.file = options.file;
    this.field = options.field;
    this.fix = options.fix;
    this.exitCode = ERROR_CODES[code].exit;
  }

  /**
   * One readable block: code, what went wrong, where, and the fix. Each part is one line,
   * made terminal-safe: a file name (or any text a user or bundle chose) with a newline or an
   * escape sequence cannot add or hide a line.
   */
  describe(): string {
    const lines = [`${this.code}: ${terminalSafe(this.headline)}`];
    for (const detail of this.details) lines.push(terminalSafe(detail));
    if (this.file !== undefined) lines.push(`  file: ${terminalSafe(this.file)}`);
    if (this.field !== undefined) lines.push(`  field: ${terminalSafe(this.field)}`);
    if (this.fix !== undefined) lines.push(`  fix: ${terminalSafe(this.fix)}`);
    return lines.join("\n");
  }
}

export function isSpgError(error: unknown): error is SpgError {
  return error instanceof SpgError;
}
