import { Args, Flags } from "@oclif/core";
import { readBundleZip } from "../bundle/read.js";
import { EXIT_UNREADABLE } from "../error-codes.js";
import { SpgCommand } from "../spg-command.js";
import { jsonTerminalSafe, terminalSafe } from "../terminal-safe.js";
import { describeBundle, renderDescription } from "../verify/inspect.js";

export default class Inspect extends SpgCommand {
  static override summary = "Show what a proof bundle claims, without judging it.";

  static override description =
    `Reads the zip safely and prints the format, signer, run configuration, the per-method
figures and claims as summary.json states them, and the entries. Nothing is recomputed
or verified: use \`spg verify\` for that. Exit 3 when the zip is unreadable or unsafe.`;

  static override examples = [
    "<%= config.bin %> inspect bundles/default.zip",
    "<%= config.bin %> inspect run.zip --json",
  ];

  static override args = {
    bundle: Args.string({ description: "bundle zip to inspect", required: true }),
  };

  static override flags = {
    json: Flags.boolean({ description: "print manifest, signer, config and summary as JSON" }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Inspect);
    const read = await readBundleZip(args.bundle);
    if (!read.ok) {
      for (const finding of read.findings)
        process.stderr.write(`${finding.code}: ${terminalSafe(finding.message)}\n`);
      this.exit(EXIT_UNREADABLE);
      return;
    }
    const description = describeBundle({ entries: read.entries });
    process.stdout.write(
      flags.json
        ? `${jsonTerminalSafe(JSON.stringify(description, null, 2))}\n`
        : renderDescription(args.bundle, description),
    );
  }
}
