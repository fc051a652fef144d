import { ERROR_CODES, type InputErrorCode } from "./error-codes.js";

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
  /** Process exit status when this error ends a command (the registry's). */
  readonly exitCode: number;

  constructor(
    code: InputErrorCode,
    message: string,
    options: { file?: string; field?: string; fix?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SpgError";
    this.code = code;
    this.file = options.file;
    this.field = options.field;
    this.fix = options.fix;
    this.exitCode = ERROR_CODES[code].exit;
  }

  /** One readable block: code, what went wrong, where, and the fix. */
  describe(): string {
    const lines = [`${this.code}: ${this.message}`];
    if (this.file !== undefined) lines.push(`  file: ${this.file}`);
    if (this.field !== undefined) lines.push(`  field: ${this.field}`);
    if (this.fix !== undefined) lines.push(`  fix: ${this.fix}`);
    return lines.join("\n");
  }
}

export function isSpgError(error: unknown): error is SpgError {
  return error instanceof SpgError;
}
