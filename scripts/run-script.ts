import { SpgError } from "../src/errors.js";

/** Runs a script's main: an SpgError becomes its message and exit code; anything else stays a crash. */
export function runScript(main: () => void): void {
  try {
    main();
  } catch (error) {
    if (!(error instanceof SpgError)) throw error;
    console.error(error.describe());
    process.exitCode = error.exitCode;
  }
}
