import { Args, Flags } from "@oclif/core";
import { readTrustedKeys } from "../bundle/sign.js";
import {
  buildReport,
  DEFAULT_CONTINUATION_SAMPLES,
  defaultReportPath,
  writeReportFile,
} from "../report/render.js";
import { SpgCommand } from "../spg-command.js";
import { terminalSafe } from "../terminal-safe.js";
import { requireTrustedByDefault } from "../verify/verify-bundle.js";

export default class Report extends SpgCommand {
  static override summary = "Render a bundle as one self-contained HTML page, verified first.";

  static override description =
    `Reads the bundle safely, runs the verifier over it and writes one HTML file with the
verdict on top, the claims, a compression/perplexity trade-off plot with the Pareto frontier,
the methods (ablation) table, per-layer heatmaps, per-sample distributions and, for a few
samples, the baseline's and each method's greedy continuation as text. Every figure is
recomputed from the bundle's records; the page loads nothing from the network.`;

  static override examples = [
    "<%= config.bin %> report run.zip",
    "<%= config.bin %> report run.zip --out report.html --trusted-keys keys/signing-key.pub.json",
  ];

  static override args = {
    bundle: Args.string({ description: "bundle zip written by `spg prove`", required: true }),
  };

  static override flags = {
    out: Flags.string({ description: "HTML file to write (default: the bundle's path with .html)" }),
    verify: Flags.boolean({
      description: "run the verifier and show its verdict (--no-verify: render unverified)",
      default: true,
      allowNo: true,
    }),
    "trusted-keys": Flags.string({
      description:
        "file of trusted signers: key ids (64 hex) or base64 public keys, one per line, or spg public key files",
    }),
    continuations: Flags.integer({
      description: `samples whose greedy continuations are shown as text (default ${DEFAULT_CONTINUATION_SAMPLES})`,
      min: 0,
    }),
    "require-trusted": Flags.boolean({
      description:
        "the verdict fails unless the signer is in --trusted-keys (default: on when CI=true, as spg verify)",
      allowNo: true,
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Report);
    const trusted =
      flags["trusted-keys"] === undefined ? undefined : await readTrustedKeys(flags["trusted-keys"]);
    const out = flags.out ?? defaultReportPath(args.bundle);
    const report = await buildReport(args.bundle, {
      verify: flags.verify,
      trustedKeyIds: trusted,
      requireTrusted: flags["require-trusted"] ?? requireTrustedByDefault(),
      continuationSamples: flags.continuations,
    });
    await writeReportFile(out, report.html);
    this.log(`report: ${terminalSafe(out)} (verdict: ${report.verdict})`);
  }
}
