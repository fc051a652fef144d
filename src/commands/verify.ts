import { Args, Flags } from "@oclif/core";
import { SpgError } from "../errors.js";
import { SpgCommand } from "../spg-command.js";
import { REPLAY_SEED_PATTERN, type ReplayOptions } from "../verify/checks/replay.js";
import { renderJson, renderText, reportToGitHub } from "../verify/report.js";
import { requireTrustedByDefault, verifyBundleFile } from "../verify/verify-bundle.js";

export default class Verify extends SpgCommand {
  static override summary = "Verify a proof bundle: trust nothing in it, recompute everything.";

  static override description =
    `Reads the zip safely, checks every entry against the signed manifest, the Ed25519
signature and (under a trust policy) the signer, validates every file against schemas/,
checks records and fingerprints agree, recomputes the summary from the raw records,
judges the claims on the recomputed figures and the verifier's policy (--policy), checks
the evaluation protocol, re-draws the samples from the dataset, regenerates report.md, and
replays every sample on the model when it is here (the bundled model, or --model DIR,
matched by checkpoint sha256); what cannot be checked here is a warning, never a pass.
A shard (spg prove --shard) is checked as a shard, and a merged bundle (spg merge) by
rebuilding and verifying each of its shards.
Every finding is reported. Under GitHub Actions each failure is also an ::error
annotation and a table is appended to $GITHUB_STEP_SUMMARY.
Exit codes: 0 pass, 3 unreadable or unsafe zip, 4 tampered or untrusted,
5 invalid (schemas, consistency, recompute, protocol, shards, draw, report-md, replay),
6 claims or the verifier's policy not met: a fault in the bundle found at any stage,
replay included, with every finding printed; 2 only for the verifier's own bad
arguments or environment (e.g. an unreadable --trusted-keys, --policy or --model).`;

  static override examples = [
    "<%= config.bin %> verify bundles/default.zip --trusted-keys bundles/trusted-keys.txt",
    "<%= config.bin %> verify smoke.zip --no-require-trusted --json",
    "<%= config.bin %> verify run.zip --model ~/gpt-neo-125m --replay 8 --replay-seed 5eed",
    "<%= config.bin %> verify run.zip --policy strict-policy.yaml --no-replay",
  ];

  static override args = {
    bundle: Args.string({ description: "bundle zip to verify", required: true }),
  };

  static override flags = {
    "trusted-keys": Flags.string({
      description:
        "file of trusted signers: key ids (64 hex) or base64 public keys, one per line, or spg public key files",
    }),
    "require-trusted": Flags.boolean({
      description: "fail unless the signer is in --trusted-keys (default: on when CI=true)",
      allowNo: true,
    }),
    json: Flags.boolean({ description: "print the findings as JSON" }),
    replay: Flags.string({
      description:
        "re-run samples on the model here and compare within the policy's tolerances: auto (every sample where the bundle's model and dataset are here, else a warning), all (every sample; fails when it cannot), or N samples chosen by --replay-seed (fails when it cannot)",
      default: "auto",
    }),
    "no-replay": Flags.boolean({
      description: "do not replay (the output then warns that the measured numbers are the signer's word)",
    }),
    "replay-seed": Flags.string({
      description:
        "hex seed choosing which samples --replay N re-runs (default: fresh from the CSPRNG, printed)",
    }),
    model: Flags.string({
      description:
        "checkpoint directory to replay with and to hold the bundle's stated model shapes to (also under --no-replay), matched to the bundle by sha256 (default: the bundled model)",
    }),
    "require-model": Flags.boolean({
      description:
        "fail (E_MODEL_NOT_CHECKED) instead of warning when neither the bundle's checkpoint nor its config.json is here to hold its stated model shapes to (default: the policy's model.required, else off)",
    }),
    device: Flags.string({
      description: "device to replay on (default: cpu)",
      options: ["cpu", "cuda", "webgpu"],
    }),
    policy: Flags.string({
      description:
        "verify policy file: tolerances, sample and resample bounds, claim rules (default: configs/verify/policy.yaml)",
    }),
    "dataset-path": Flags.string({
      description:
        "the evaluation split's file or directory, for bundles not measured on the bundled corpus (matched by sha256)",
    }),
    "calibration-path": Flags.string({
      description: "the calibration split's file or directory (with --dataset-path)",
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Verify);
    const result = await verifyBundleFile(args.bundle, {
      trustedKeysFile: flags["trusted-keys"],
      requireTrusted: flags["require-trusted"] ?? requireTrustedByDefault(),
      replay: flags["no-replay"] ? false : replayOptions(flags),
      modelDir: flags.model,
      requireModel: flags["require-model"],
      policyFile: flags.policy,
      dataset: { path: flags["dataset-path"], calibrationPath: flags["calibration-path"] },
    });
    process.stdout.write(flags.json ? renderJson(args.bundle, result) : renderText(args.bundle, result));
    reportToGitHub(args.bundle, result);
    // Set, not exit: the process ends once stdout has drained, so a piped report is never cut off.
    process.exitCode = result.exitCode;
  }
}

/** --replay, --replay-seed, --model and --device as replay options; bad values are exit 2. */
function replayOptions(flags: {
  replay: string;
  "replay-seed"?: string;
  model?: string;
  device?: string;
}): ReplayOptions {
  const mode = flags.replay;
  let samples: ReplayOptions["samples"];
  if (mode === "auto" || mode === "all") samples = "all";
  else if (/^[1-9][0-9]{0,8}$/.test(mode)) samples = Number(mode);
  else
    throw new SpgError("E_VERIFY_REPLAY", `--replay ${mode} is not auto, all or a positive whole number`, {
      field: "--replay",
      fix: "use --replay auto, --replay all, --replay N, or --no-replay",
    });
  const seed = flags["replay-seed"]?.toLowerCase();
  if (seed !== undefined && !REPLAY_SEED_PATTERN.test(seed)) {
    throw new SpgError("E_VERIFY_REPLAY", `--replay-seed ${seed} is not 1 to 64 hex digits`, {
      field: "--replay-seed",
      fix: "pass the seed a previous verify printed",
    });
  }
  // auto replays where it can (a warning where it cannot); all or N is the verifier's demand.
  const required = mode !== "auto";
  return { samples, seed, required, modelDir: flags.model, device: flags.device as ReplayOptions["device"] };
}
