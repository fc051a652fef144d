/**
 * The base every spg command extends. A command declares its flags and makes one call;
 * failures are turned into messages here, in one place: an SpgError prints its code,
 * message, file, field and fix on stderr and exits with the registry's exit code
 * (src/error-codes.ts, docs/errors.md). Anything else is a bug and keeps oclif's handling
 * (message and stack, exit 1).
 *
 * It lives outside src/commands/ because oclif loads every module there as a command.
 */
import { Command } from "@oclif/core";
import { isSpgError } from "./errors.js";

export abstract class SpgCommand extends Command {
  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    if (isSpgError(error)) {
      process.stderr.write(`${error.describe()}\n`);
      this.exit(error.exitCode);
    }
    return super.catch(error);
  }

  /** End with `code` unless it is 0 (a result's documented exit code, e.g. verify's). */
  protected exitUnlessZero(code: number): void {
    if (code !== 0) this.exit(code);
  }
}
