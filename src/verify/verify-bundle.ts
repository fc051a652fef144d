/**
 * `spg verify FILE` as a library: the zip-safety unit reads the archive into the context,
 * then every entry check (checks/index.ts), then replay when asked, all walked by the same
 * runner: a check whose required check failed is reported as skipped, never run. An
 * unreadable or unsafe zip therefore stops at exit 3 with nothing inside it looked at.
 */
import type { ZipReadLimits } from "../bundle/format.js";
import { readBundleZip, ZIP_CODES } from "../bundle/read.js";
import { readTrustedKeys } from "../bundle/sign.js";
import { type CheckOptions, type CheckUnit, ENTRY_CHECKS } from "./checks/index.js";
import { checkReplay, type ReplayOptions } from "./checks/replay.js";
import { BundleContext } from "./context.js";
import { type CheckOutcomes, runUnit, type VerifyResult, verifyResult } from "./runner.js";
import { type Finding, pass } from "./types.js";

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

interface FileCheckOptions extends CheckOptions {
  path: string;
  limits?: Partial<ZipReadLimits>;
  replay?: ReplayOptions;
}

/** The archive is read safely (src/bundle/read.ts) into the context; nothing else reads the file. */
export const zipSafetyCheck: CheckUnit<FileCheckOptions> = {
  name: "zip-safety",
  codes: Object.values(ZIP_CODES),
  requires: [],
  run: async (context, options) => {
    const read = await readBundleZip(options.path, { limits: options.limits });
    if (!read.ok) return read.findings.map((finding) => ({ ...finding }));
    for (const [name, bytes] of read.entries) context.entries.set(name, bytes);
    return [
      pass(
        "zip-safety",
        `${read.entries.size} entries read within limits (${read.inflatedBytes} bytes inflated)`,
      ),
    ];
  },
};

/** Replaying a bundle whose bytes, signer or files are not what was signed would measure nothing. */
export const replayCheck: CheckUnit<FileCheckOptions> = {
  name: "replay",
  codes: [
    "E_REPLAY_DATASET_MISMATCH",
    "E_REPLAY_FINGERPRINT",
    "E_REPLAY_MODEL",
    "E_REPLAY_MODEL_MISMATCH",
    "E_REPLAY_RECORD",
    "E_REPLAY_SAMPLE_MISMATCH",
  ],
  requires: ["integrity", "signature", "trust", "schemas", "consistency"],
  run: (context, options) =>
    options.replay === undefined ? [] : checkReplay(context.entries, options.replay),
};

/** Every unit `spg verify FILE` walks, in order; each names its codes (besides RUNNER_CODES). */
export const CHECK_UNITS: readonly CheckUnit<never>[] = [
  zipSafetyCheck,
  ...ENTRY_CHECKS,
  replayCheck,
] as CheckUnit<never>[];

export interface VerifyFileResult extends VerifyResult {
  /** The entries read and checked (absent when the zip was unreadable or unsafe): `spg merge` uses what it verified. */
  entries?: Map<string, Buffer>;
}

/** Read and verify one bundle file. Throws only for bad options (an unreadable trusted keys file). */
export async function verifyBundleFile(path: string, options: VerifyFileOptions): Promise<VerifyFileResult> {
  const trustedKeyIds =
    options.trustedKeysFile === undefined ? undefined : await readTrustedKeys(options.trustedKeysFile);
  const checkOptions: FileCheckOptions = {
    path,
    limits: options.limits,
    replay: options.replay,
    trustedKeyIds,
    requireTrusted: options.requireTrusted,
  };
  const context = new BundleContext();
  const outcomes: CheckOutcomes = new Map();
  const findings: Finding[] = [];
  const units: CheckUnit<FileCheckOptions>[] = [zipSafetyCheck, ...ENTRY_CHECKS];
  if (options.replay !== undefined && options.replay.samples > 0) units.push(replayCheck);
  for (const unit of units) findings.push(...(await runUnit(unit, context, checkOptions, outcomes)));
  const result: VerifyFileResult = verifyResult(findings, context.recomputed);
  if (outcomes.get("zip-safety") === true) result.entries = context.entries;
  return result;
}

/** The default of --require-trusted: on in CI (CI=true), off elsewhere. */
export function requireTrustedByDefault(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === "true";
}
