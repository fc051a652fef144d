/**
 * `spg verify FILE` as a library: safe zip reading (src/bundle/read.ts), then every check
 * (runner.ts). An unreadable or unsafe zip stops here with exit 3: nothing inside it is
 * looked at.
 */
import type { ZipReadLimits } from "../bundle/format.js";
import { readBundleZip } from "../bundle/read.js";
import { readTrustedKeys } from "../bundle/sign.js";
import { EXIT_UNREADABLE } from "../error-codes.js";
import { checkReplay, type ReplayOptions } from "./checks/replay.js";
import { exitCodeFor, runChecks, type VerifyResult } from "./runner.js";
import { type Finding, fail, pass } from "./types.js";

export interface VerifyFileOptions {
  /** Trusted keys file (key ids or public keys); undefined = no trust policy. */
  trustedKeysFile?: string;
  /** Fail unless the signer is trusted. */
  requireTrusted: boolean;
  /** Tighten or loosen the zip reader's limits. */
  limits?: Partial<ZipReadLimits>;
  /** Re-run this many samples here (check 9); absent or 0 = no replay. */
  replay?: ReplayOptions;
}

export interface VerifyFileResult extends VerifyResult {
  /** The entries read and checked (absent when the zip was unreadable or unsafe): `spg merge` uses what it verified. */
  entries?: Map<string, Buffer>;
}

/** Read and verify one bundle file. Throws only for bad options (an unreadable trusted keys file). */
export async function verifyBundleFile(path: string, options: VerifyFileOptions): Promise<VerifyFileResult> {
  const trustedKeyIds =
    options.trustedKeysFile === undefined ? undefined : await readTrustedKeys(options.trustedKeysFile);
  const read = await readBundleZip(path, { limits: options.limits });
  if (!read.ok) {
    const findings: Finding[] = read.findings.map((finding) => ({ ...finding }));
    return { findings, passed: false, exitCode: EXIT_UNREADABLE };
  }
  const result = runChecks(
    { entries: read.entries },
    { trustedKeyIds, requireTrusted: options.requireTrusted },
  );
  const safe = pass(
    "zip-safety",
    `${read.entries.size} entries read within limits (${read.inflatedBytes} bytes inflated)`,
  );
  const findings = [safe, ...result.findings];
  if (options.replay !== undefined && options.replay.samples > 0) {
    // Replaying a bundle whose bytes or files are not what was signed would measure nothing.
    const blocking = result.findings.filter(
      (f) => !f.ok && ["integrity", "signature", "schemas", "consistency"].includes(f.check),
    );
    findings.push(
      ...(blocking.length > 0
        ? [
            fail(
              "replay",
              "E_CHECK_SKIPPED",
              "not replayed: the bundle failed integrity, signature, schema or consistency checks",
            ),
          ]
        : await checkReplay(read.entries, options.replay)),
    );
  }
  return {
    ...result,
    findings,
    passed: findings.every((f) => f.ok),
    exitCode: exitCodeFor(findings),
    entries: read.entries,
  };
}

/** The default of --require-trusted: on in CI (CI=true), off elsewhere. */
export function requireTrustedByDefault(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === "true";
}
