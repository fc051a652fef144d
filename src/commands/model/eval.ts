import { resolve } from "node:path";
import { Args, Flags } from "@oclif/core";
import { loadBrownSplit, loadBrownSplitNamed } from "../../data/brown.js";
import { checkLocalPath, isLocalSource, type StreamedSplit, streamLocalSplit } from "../../data/sources.js";
import { gpt2VocabularyProblem } from "../../data/tokenizer.js";
import type { DatasetSplit } from "../../data/types.js";
import { SpgError } from "../../errors.js";
import { evaluatePerplexity } from "../../measure/perplexity.js";
import { readCheckpoint } from "../../model/checkpoint.js";
import { loadRuntime } from "../../model/session.js";
import { bundledModelDir } from "../../paths.js";
import { SpgCommand } from "../../spg-command.js";
import { terminalSafe } from "../../terminal-safe.js";

export default class ModelEval extends SpgCommand {
  static override summary = "Print a model's perplexity on a dataset split.";

  static override description =
    `Each document is tokenized on its own and cut into consecutive windows of --window
tokens (default: the model's max_position_embeddings); every token but a window's first is
scored; perplexity = exp(sum NLL / scored tokens). On the Brown corpus the same tokens are
also scored by an add-one unigram model fit on the train split, for contrast.
Defaults: the bundled model on the Brown eval split.`;

  static override examples = [
    "<%= config.bin %> model eval",
    "<%= config.bin %> model eval path/to/gpt-neo --dataset text --dataset-path wiki.test.raw --split test",
    "<%= config.bin %> model eval --window 512 --max-windows 20 --json",
  ];

  static override args = {
    dir: Args.string({ description: "GPT-Neo checkpoint directory (default: the bundled model)" }),
  };

  static override flags = {
    dataset: Flags.string({ description: "brown | text | jsonl | parquet | dir", default: "brown" }),
    "dataset-path": Flags.string({
      description: "local dataset file or directory (text, jsonl, parquet, dir)",
    }),
    "text-field": Flags.string({
      description: 'JSONL field or parquet column holding the text (default "text")',
    }),
    split: Flags.string({
      description: "split to evaluate (Brown: train, calibration, eval)",
      default: "eval",
    }),
    window: Flags.integer({ description: "tokens per window (default: the model's max positions)" }),
    "max-windows": Flags.integer({ description: "stop after this many windows" }),
    device: Flags.string({
      description: "cpu or cuda (never falls back)",
      options: ["cpu", "cuda", "webgpu"],
      default: "cpu",
    }),
    json: Flags.boolean({ description: "print the result as JSON" }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ModelEval);
    const dir = args.dir === undefined ? bundledModelDir() : resolve(args.dir);
    const split = await this.loadSplit(
      flags.dataset,
      flags["dataset-path"],
      flags.split,
      flags["text-field"],
    );
    const checkpoint = await readCheckpoint(dir);
    const vocabularyProblem = gpt2VocabularyProblem(checkpoint.config.vocabSize);
    if (vocabularyProblem !== undefined) {
      throw new SpgError("E_TOKEN_RANGE", vocabularyProblem, {
        file: dir,
        field: "vocab_size",
        fix: "evaluate a GPT-Neo checkpoint with the GPT-2 vocabulary; other vocabularies run with spg model forward --ids",
      });
    }
    const windowTokens = flags.window ?? checkpoint.config.maxPositions;
    const runtime = await loadRuntime(checkpoint, {
      device: flags.device as "cpu" | "cuda" | "webgpu",
      observationWindow: 1,
    });
    try {
      const result = await evaluatePerplexity(runtime, split, {
        windowTokens,
        maxWindows: flags["max-windows"],
        unigramSplit: flags.dataset === "brown" ? loadBrownSplit("train") : undefined,
        onWindow: flags.json
          ? undefined
          : (windows, scored, ppl) => {
              if (windows % 10 === 0)
                this.logToStderr(`${windows} windows, ${scored} tokens, perplexity ${ppl.toFixed(3)}`);
            },
      });
      if (flags.json) {
        this.log(
          JSON.stringify({ model: dir, modelSha256: checkpoint.sha256, dataset: flags.dataset, ...result }),
        );
        return;
      }
      this.log(`model      ${terminalSafe(dir)} (sha256 ${checkpoint.sha256.slice(0, 16)})`);
      this.log(
        `split      ${terminalSafe(`${flags.dataset}/${result.split}`)} (sha256 ${result.splitSha256.slice(0, 16)})`,
      );
      this.log(
        `windows    ${result.windows} of ${result.windowTokens} tokens, ${result.scoredTokens} tokens scored`,
      );
      this.log(`perplexity ${result.perplexity.toFixed(3)}`);
      if (result.unigram) {
        this.log(
          `unigram    ${result.unigram.perplexity.toFixed(3)} (add-one, fit on ${result.unigram.fitTokens} ${result.unigram.fitOn} tokens)`,
        );
      }
    } finally {
      await runtime.close();
    }
  }

  private async loadSplit(
    source: string,
    path: string | undefined,
    split: string,
    textField: string | undefined,
  ): Promise<DatasetSplit | StreamedSplit> {
    if (source === "brown") return loadBrownSplitNamed(split, "--split");
    if (!isLocalSource(source)) {
      throw new SpgError("E_DATASET_SOURCE", `unknown dataset source "${source}"`, {
        field: "--dataset",
        fix: "use brown, text, jsonl, parquet or dir",
      });
    }
    if (path === undefined) {
      throw new SpgError("E_DATASET_MISSING", `--dataset ${source} needs --dataset-path`, {
        field: "--dataset-path",
        fix: "name the file or directory to read",
      });
    }
    // Streamed, one document at a time (never the whole split in memory); the path is checked
    // now, before the model loads, as the stream would only on its first read.
    checkLocalPath(source, resolve(path), split);
    return streamLocalSplit(source, resolve(path), split, { textField });
  }
}
