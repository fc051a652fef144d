import { resolve } from "node:path";
import { Args, Flags } from "@oclif/core";
import { resolveSigningKey } from "../bundle/keys.js";
import { readToolInfo } from "../bundle/tool-info.js";
import { EXIT_CLAIMS } from "../error-codes.js";
import { summaryTable } from "../measure/summary-table.js";
import { mergeShards } from "../merge/merge.js";
import { SpgCommand } from "../spg-command.js";
import { jsonTerminalSafe, terminalSafe } from "../terminal-safe.js";
import { requireTrustedByDefault } from "../verify/verify-bundle.js";

export default class Merge extends SpgCommand {
  static override summary = "Merge the shard bundles of a sharded run into one signed bundle.";

  static override description =
    `Verifies every shard as \`spg verify\` does (trust policy included), checks they are the N
disjoint parts of one run (same config hash, tool, model and dataset; every K from 1 to N
once), and writes one bundle: records and fingerprints in the unsharded order, the summary
recomputed over all samples, each shard's manifest, signature and environment kept inside,
signed by the merger. On any failure nothing is written.
Shards must be regular files (not links, FIFOs or directories), and --out must not be one
of them or a directory.
Exit codes: 0 merged and every claim holds, 6 merged but a claim failed, 2 bad input
(an unreadable, tampered, untrusted or invalid shard; missing, duplicated or overlapping
shards; mixed configs, tools or N; a bad --out; a merge over verify's size limits: each its
own code, listed in docs/errors.md).`;

  static override examples = [
    "<%= config.bin %> merge shard-*.zip --out run.zip --key keys/signing-key.json --trusted-keys keys/trusted.txt",
  ];

  static override strict = false;

  static override args = {
    shards: Args.string({
      description: "shard bundles (spg prove --shard K/N), in any order",
      required: true,
    }),
  };

  static override flags = {
    out: Flags.string({
      char: "o",
      description: "merged bundle path (an existing file is refused unless --force)",
      required: true,
    }),
    force: Flags.boolean({ description: "replace an existing file at --out (atomically; never a shard)" }),
    key: Flags.string({ description: "secret key file the merger signs with (from `spg keygen`)" }),
    "ephemeral-key": Flags.boolean({
      description: "sign the merge with a throwaway key (fails verify under a trust policy)",
      exclusive: ["key"],
    }),
    "trusted-keys": Flags.string({
      description: "file of trusted shard signers (as for spg verify); every shard must be signed by one",
    }),
    "require-trusted": Flags.boolean({
      description: "fail unless every shard's signer is in --trusted-keys (default: on when CI=true)",
      allowNo: true,
    }),
    policy: Flags.string({
      description:
        "verify policy file whose limits the shards and the merged bundle must fit, as for spg verify (default: configs/verify/policy.yaml)",
    }),
    json: Flags.boolean({ description: "print the result as JSON" }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Merge);
    const signing = await resolveSigningKey({ keyPath: flags.key, ephemeral: flags["ephemeral-key"] });
    if (signing.created) {
      this.logToStderr(
        `created your signing key ${signing.key.keyId.slice(0, 16)} at ${terminalSafe(String(signing.path))}`,
      );
    }
    const result = await mergeShards({
      shards: (argv as string[]).map((file) => resolve(file)),
      out: resolve(flags.out),
      overwrite: flags.force,
      key: signing.key,
      tool: readToolInfo(),
      trustedKeysFile: flags["trusted-keys"],
      requireTrusted: flags["require-trusted"] ?? requireTrustedByDefault(),
      policyFile: flags.policy,
    });
    const failed = result.summary.claims.filter((claim) => !claim.pass);
    if (flags.json) {
      this.log(
        jsonTerminalSafe(
          JSON.stringify({
            bundle: result.path,
            keyId: signing.key.keyId,
            shards: result.shards,
            summary: result.summary,
          }),
        ),
      );
    } else {
      this.log(summaryTable(result.summary));
      this.log(
        `merged ${result.shards.length} shards into ${terminalSafe(result.path)} (signed by ${signing.key.keyId.slice(0, 16)})`,
      );
      for (const claim of failed) {
        this.logToStderr(
          `claim not met: ${claim.method} ${claim.metric} ${claim.op} ${claim.threshold} (${claim.judge} = ${claim.judged})`,
        );
      }
    }
    this.exitUnlessZero(failed.length > 0 ? EXIT_CLAIMS : 0);
  }
}
