import { resolve } from "node:path";
import { Flags } from "@oclif/core";
import cliProgress from "cli-progress";
import { ephemeralKey, loadOrCreateDefaultKey, readSecretKey, type SigningKey } from "../bundle/keys.js";
import { configFlags, resolveOptionsFromFlags } from "../config/flags.js";
import { dryRun, formatConfig } from "../config/load.js";
import { parseShardFlag, shardFromEnv } from "../config/shard.js";
import { EXIT_CLAIMS } from "../error-codes.js";
import { formatBytes } from "../hardware/requirement.js";
import { type ProveEvent, prove, resolveProveConfig } from "../measure/prove.js";
import { executedLargerMethods, executedLargerWarning } from "../measure/run-cost.js";
import { summaryTable } from "../measure/summary-table.js";
import { SpgCommand } from "../spg-command.js";
import { jsonTerminalSafe, terminalSafe } from "../terminal-safe.js";

export default class Prove extends SpgCommand {
  static override summary =
    "Measure KV-cache and weight compression methods and write a signed proof bundle.";

  static override description =
    `Runs every configured method on the same samples against the uncompressed model
(perplexity, KL, top-1 and greedy-generation agreement, bytes actually stored, time, memory)
and writes environment, config, raw records, per-layer fingerprints and a summary into an
Ed25519-signed zip. With no arguments: the bundled GPT-Neo on the bundled Brown corpus,
preset "default". With --shard K/N (or --shard-from-env under a Kubernetes Indexed Job or a
Slurm array) it proves one shard of the run; \`spg merge\` joins the shards. Exit codes: 0 all
claims hold (a shard: bundle written), 6 bundle written but a claim failed, 2 bad input or
environment (the message names the file, field and fix).`;

  static override examples = [
    "<%= config.bin %> prove",
    "<%= config.bin %> prove --preset ci-smoke --out smoke.zip --ephemeral-key",
    "<%= config.bin %> prove --config my-run.yaml --samples 32 --device cuda --key keys/signing-key.json",
    "<%= config.bin %> prove --preset 450x --dry-run",
    "<%= config.bin %> prove --ablation --out ablation.zip",
    "<%= config.bin %> prove --sweep 5 --out sweep.zip",
    "<%= config.bin %> prove --preset weights-naive-vs-surgical --sensitivity --out weights.zip",
    "<%= config.bin %> prove --preset default --shard 2/8 --key keys/signing-key.json --out shard-2.zip",
    "JOB_COMPLETION_INDEX=1 <%= config.bin %> prove --shard-from-env --shard-count 8 --out shard.zip",
  ];

  static override flags = {
    ...configFlags,
    out: Flags.string({
      char: "o",
      description:
        "bundle path (default: <name>-<time>.zip in the current directory); an existing file is refused unless --force",
    }),
    force: Flags.boolean({ description: "replace an existing file at --out (atomically)" }),
    key: Flags.string({ description: "secret key file to sign with (from `spg keygen`)" }),
    "ephemeral-key": Flags.boolean({
      description: "sign with a throwaway key (recorded in the bundle; fails verify under a trust policy)",
      exclusive: ["key"],
    }),
    json: Flags.boolean({ description: "print the result as JSON instead of a table" }),
    sweep: Flags.integer({
      description:
        "trade-off sweep: add N variants of each method (configs/sweeps/default.yaml); the summary holds the Pareto frontier",
    }),
    "cache-dir": Flags.string({ description: "where built ONNX graphs are cached" }),
    shard: Flags.string({
      description:
        "prove shard K of N of the run (K from 1 to N): the same draw and calibration, every N-th evaluation sample; merge the N bundles with `spg merge`",
      helpValue: "K/N",
      exclusive: ["shard-from-env"],
    }),
    "shard-from-env": Flags.boolean({
      description:
        "take the shard index from the scheduler: JOB_COMPLETION_INDEX (Kubernetes Indexed Job, 0-based) or SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN (Slurm array)",
    }),
    "shard-count": Flags.integer({
      description: "N for --shard-from-env (under Slurm, default SLURM_ARRAY_TASK_COUNT)",
      min: 1,
      dependsOn: ["shard-from-env"],
    }),
    sensitivity: Flags.boolean({
      description:
        "for each weights method, also measure it with one layer (or the embeddings) restored to dense, and with only that unit compressed; the summary ranks the units",
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Prove);
    const resolveOptions = resolveOptionsFromFlags(flags);
    let bar: cliProgress.SingleBar | undefined;
    try {
      const config = resolveProveConfig(resolveOptions, {
        sweep: flags.sweep,
        sensitivity: flags.sensitivity,
      });
      if (flags["dry-run"]) {
        this.log(
          flags.sweep === undefined && !flags.sensitivity
            ? dryRun(resolveOptions, flags.json ? "json" : "yaml")
            : formatConfig(config, flags.json ? "json" : "yaml"),
        );
        return;
      }
      const shard =
        flags.shard !== undefined
          ? parseShardFlag(flags.shard)
          : flags["shard-from-env"]
            ? shardFromEnv(process.env, flags["shard-count"])
            : undefined;
      const key = await this.signingKey(flags.key, flags["ephemeral-key"]);
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      const shardSuffix = shard === undefined ? "" : `-shard-${shard.index}-of-${shard.count}`;
      const out = resolve(flags.out ?? `${config.name}-${stamp}${shardSuffix}.zip`);
      const showProgress = !flags.json && process.stderr.isTTY === true;
      const onEvent = (event: ProveEvent) => {
        if (flags.json) return;
        if (event.kind === "hardware") {
          this.logToStderr(
            `hardware: ${event.check.device} needs ${formatBytes(event.check.requiredBytes)}, ` +
              `has ${formatBytes(event.check.availableBytes)}: ok`,
          );
        } else if (event.kind === "model") {
          this.logToStderr(
            `model: ${terminalSafe(event.path)} (${event.sha256.slice(0, 12)}), provider ${event.executionProvider}`,
          );
        } else if (event.kind === "samples") {
          this.logToStderr(`samples: ${event.evaluation} evaluation, ${event.calibration} calibration`);
          if (showProgress) {
            bar = new cliProgress.SingleBar(
              {
                format: "samples [{bar}] {value}/{total} | {methods} methods | ETA {eta_formatted}",
                stream: process.stderr,
              },
              cliProgress.Presets.shades_classic,
            );
            bar.start(event.evaluation, 0, { methods: config.methods.length });
          }
        } else if (event.kind === "sample-done") {
          if (bar) bar.update(event.done);
          else this.logToStderr(`sample ${event.done}/${event.total} done (${event.methods} methods)`);
        } else if (event.kind === "weights-method-done") {
          bar?.stop();
          this.logToStderr(`weights method ${event.method} done (${event.done}/${event.total})`);
        }
      };
      const result = await prove({
        config,
        out,
        overwrite: flags.force,
        key,
        onEvent,
        cacheDir: flags["cache-dir"],
        shard,
      });
      bar?.stop();
      // A shard's claims are not judged on its part of the samples; the merged bundle's are.
      const failed = shard === undefined ? result.summary.claims.filter((claim) => !claim.pass) : [];
      // Stored smaller, executed larger: the deployment cost the stored ratio hides (issue 21).
      for (const name of executedLargerMethods(result.summary)) {
        this.logToStderr(`warning: ${executedLargerWarning(name, result.summary.methods[name])}`);
      }
      if (flags.json) {
        this.log(
          jsonTerminalSafe(
            JSON.stringify({
              bundle: result.bundle.path,
              keyId: key.keyId,
              ephemeralKey: key.ephemeral,
              ...(shard === undefined ? {} : { shard }),
              summary: result.summary,
            }),
          ),
        );
      } else {
        this.log(summaryTable(result.summary));
        this.log(
          `bundle: ${terminalSafe(result.bundle.path)} (signed by ${key.keyId.slice(0, 16)}${key.ephemeral ? ", ephemeral" : ""})`,
        );
        if (shard !== undefined) {
          this.log(
            `shard ${shard.index} of ${shard.count}: claims are judged once the shards are merged (spg merge)`,
          );
        }
        for (const claim of failed) {
          this.logToStderr(
            `claim not met: ${claim.method} ${claim.metric} ${claim.op} ${claim.threshold} (${claim.judge} = ${claim.judged})`,
          );
        }
      }
      if (failed.length > 0) this.exit(EXIT_CLAIMS);
    } finally {
      bar?.stop();
    }
  }

  private async signingKey(keyFile: string | undefined, ephemeral: boolean): Promise<SigningKey> {
    if (ephemeral) return ephemeralKey();
    if (keyFile) return readSecretKey(resolve(keyFile));
    const defaultKey = await loadOrCreateDefaultKey();
    if (defaultKey.created) {
      this.logToStderr(
        `created your signing key ${defaultKey.key.keyId.slice(0, 16)} at ${terminalSafe(defaultKey.path)} (mode 0600); ` +
          `public half: ${terminalSafe(defaultKey.publicPath)}`,
      );
    }
    return defaultKey.key;
  }
}
