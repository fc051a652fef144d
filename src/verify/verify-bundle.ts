/**
 * `spg verify FILE` as a library: safe zip reading (src/bundle/read.ts), then every check
 * (runner.ts), then replay on the verifier's model. An unreadable or unsafe zip stops here
 * with exit 3: nothing inside it is looked at.
 */
import { existsSync } from "node:fs";
import type { ZipReadLimits } from "../bundle/format.js";
import { readBundleZip } from "../bundle/read.js";
import { readTrustedKeys } from "../bundle/sign.js";
import { EXIT_UNREADABLE } from "../error-codes.js";
import { SpgError } from "../errors.js";
import type { VerifierDataset } from "./checks/draw.js";
import { checkReplay, type ReplayOptions, replayCheckpoint } from "./checks/replay.js";
import { loadVerifyPolicy } from "./policy.js";
import { exitCodeFor, runAllChecks, type VerifyResult } from "./runner.js";
import { type Finding, pass, warn } from "./types.js";

export interface VerifyFileOptions {
  /** Trusted keys file (key ids or public keys); undefined = no trust policy. */
  trustedKeysFile?: string;
  /** Fail unless the signer is trusted. */
  requireTrusted: boolean;
  /** Tighten or loosen the zip reader's limits. */
  limits?: Partial<ZipReadLimits>;
  /** Replay on the verifier's model (default: every sample); false = off, with a warning. */
  replay?: ReplayOptions | false;
  /** The verifier's policy file (default configs/verify/policy.yaml). */
  policyFile?: string;
  /** Dataset files the verifier names for bundles not measured on the bundled corpus. */
  dataset?: VerifierDataset;
}

/** The verifier's own inputs are checked before any bundle is read: a bad one is exit 2. */
function checkVerifierPaths(dataset: VerifierDataset | undefined): void {
  for (const [flag, path] of [
    ["--dataset-path", dataset?.path],
    ["--calibration-path", dataset?.calibrationPath],
  ] as const) {
    if (path !== undefined && !existsSync(path)) {
      throw new SpgError("E_VERIFY_DATASET", `${flag} ${path} does not exist`, {
        file: path,
        fix: `give ${flag} the split's file or directory`,
      });
    }
  }
}

export interface VerifyFileResult extends VerifyResult {
  /** The entries read and checked (absent when the zip was unreadable or unsafe): `spg merge` uses what it verified. */
  entries?: Map<string, Buffer>;
}

/** Read and verify one bundle file. Throws only for the verifier's bad inputs (trusted keys, policy, model, dataset). */
export async function verifyBundleFile(path: string, options: VerifyFileOptions): Promise<VerifyFileResult> {
  const trustedKeyIds =
    options.trustedKeysFile === undefined ? undefined : await readTrustedKeys(options.trustedKeysFile);
  const policy = loadVerifyPolicy(options.policyFile);
  checkVerifierPaths(options.dataset);
  const replay = options.replay ?? { samples: "all" };
  const checkpoint = replay === false ? undefined : await replayCheckpoint(replay.modelDir);
  const read = await readBundleZip(path, { limits: options.limits });
  if (!read.ok) {
    const findings: Finding[] = read.findings.map((finding) => ({ ...finding }));
    return { findings, passed: false, exitCode: EXIT_UNREADABLE };
  }
  const result = await runAllChecks(
    { entries: read.entries },
    { trustedKeyIds, requireTrusted: options.requireTrusted, policy, dataset: options.dataset },
  );
  const safe = pass(
    "zip-safety",
    `${read.entries.size} entries read within limits (${read.inflatedBytes} bytes inflated)`,
  );
  const findings = [safe, ...result.findings];
  const material = result.replayMaterial;
  if (replay === false) {
    findings.push(
      warn(
        "replay",
        "W_REPLAY_OFF",
        "not replayed (--no-replay): the measured numbers are the signer's word",
      ),
    );
  } else if (material === undefined) {
    const drawUnchecked = result.findings.some((f) => f.check === "draw" && f.warning);
    findings.push(
      drawUnchecked
        ? warn(
            "replay",
            "W_REPLAY_NOT_CHECKED",
            "not checked: the dataset is not available here; the measured numbers are the signer's word",
          )
        : // The bundle already fails on those checks: nothing on its word is run.
          warn(
            "replay",
            "W_REPLAY_NOT_CHECKED",
            "not replayed: the bundle failed integrity, signature, trust, schema, consistency or draw checks",
          ),
    );
  } else {
    findings.push(
      ...(await checkReplay(
        {
          ...material,
          checkpoint,
          modelNamed: replay.modelDir !== undefined,
          tolerances: (result.thresholds ?? { replay: { tolerances: policy.replay.tolerances } }).replay
            .tolerances,
        },
        replay,
      )),
    );
  }
  const exitCode = exitCodeFor(findings);
  return { ...result, findings, passed: exitCode === 0, exitCode, entries: read.entries };
}

/** The default of --require-trusted: on in CI (CI=true), off elsewhere. */
export function requireTrustedByDefault(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === "true";
}
