import { Args, Flags } from "@oclif/core";
import { SpgCommand } from "../spg-command.js";
import { renderJson, renderText, reportToGitHub } from "../verify/report.js";
import { requireTrustedByDefault, verifyBundleFile } from "../verify/verify-bundle.js";

export default class Verify extends SpgCommand {
  static override summary = "Verify a proof bundle: trust nothing in it, recompute everything.";

  static override description =
    `Reads the zip safely, checks every entry against the signed manifest, the Ed25519
signature and (under a trust policy) the signer, validates every file against schemas/,
checks records and fingerprints agree, recomputes the summary from the raw records,
judges the claims on the recomputed figures and checks the evaluation protocol; a shard
(spg prove --shard) is checked as a shard, and a merged bundle (spg merge) by rebuilding and
verifying each of its shards.
Every finding is reported. Under GitHub Actions each failure is also an ::error
annotation and a table is appended to $GITHUB_STEP_SUMMARY.
Exit codes: 0 pass, 3 unreadable or unsafe zip, 4 tampered or untrusted,
5 invalid (schemas, consistency, recompute, protocol, shards), 6 claims not met,
2 bad arguments (e.g. an unreadable --trusted-keys file).`;

  static override examples = [
    "<%= config.bin %> verify bundles/default.zip --trusted-keys bundles/trusted-keys.txt",
    "<%= config.bin %> verify smoke.zip --no-require-trusted --json",
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
    replay: Flags.integer({
      description: "re-run N of the bundle's samples here and compare within the config's tolerances",
      min: 0,
    }),
    model: Flags.string({
      description: "checkpoint directory to replay with (default: the bundle config's model)",
    }),
    device: Flags.string({
      description: "device to replay on (default: the bundle config's)",
      options: ["cpu", "cuda"],
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Verify);
    const result = await verifyBundleFile(args.bundle, {
      trustedKeysFile: flags["trusted-keys"],
      requireTrusted: flags["require-trusted"] ?? requireTrustedByDefault(),
      replay:
        flags.replay === undefined
          ? undefined
          : {
              samples: flags.replay,
              modelDir: flags.model,
              device: flags.device as "cpu" | "cuda" | undefined,
            },
    });
    process.stdout.write(flags.json ? renderJson(args.bundle, result) : renderText(args.bundle, result));
    reportToGitHub(args.bundle, result);
    this.exitUnlessZero(result.exitCode);
  }
}
