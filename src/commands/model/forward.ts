import { existsSync } from "node:fs";
import { Args, Flags } from "@oclif/core";
import { decode, encode, vocabularySize } from "gpt-tokenizer/encoding/r50k_base";
import { SpgError } from "../../errors.js";
import { readCheckpoint } from "../../model/checkpoint.js";
import { loadRuntime, prefillTokens } from "../../model/session.js";
import { bundledModelDir } from "../../paths.js";
import { SpgCommand } from "../../spg-command.js";

/** "464,3290,318" -> [464, 3290, 318]; anything else is a clear error. */
export function parseTokenIds(text: string): number[] {
  const parts = text
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  if (parts.length === 0 || parts.some((part) => !/^\d+$/.test(part))) {
    throw new SpgError(
      "E_FORWARD_IDS",
      `--ids must be comma-separated non-negative integers, got "${text}"`,
      {
        field: "--ids",
        fix: 'pass token ids like --ids 464,3290,318 (or --text "...")',
      },
    );
  }
  return parts.map(Number);
}

/** The k largest logits of one row, best first: [{id, logit}]. */
export function topLogits(row: Float32Array, k: number): { id: number; logit: number }[] {
  const best: { id: number; logit: number }[] = [];
  for (let id = 0; id < row.length; id++) {
    const logit = row[id];
    if (best.length < k || logit > best[best.length - 1].logit) {
      best.push({ id, logit });
      best.sort((a, b) => b.logit - a.logit || a.id - b.id);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

export default class ModelForward extends SpgCommand {
  static override summary = "Run one GPT-Neo forward pass over token ids and print the next-token top-k";

  static override description =
    "Loads a Hugging Face GPT-Neo checkpoint (default: the bundled model), runs the token ids through spg's " +
    "ONNX graph, and prints the top-k next tokens per position. With --json it prints exactly " +
    '{"logits": [[...], ...]}, one full row of logits per input position, to compare with another implementation.';

  static override examples = [
    "<%= config.bin %> model forward --ids 464,3290,318",
    '<%= config.bin %> model forward ./gpt-neo-125m --text "The dog is" --top-k 10',
    "<%= config.bin %> model forward ./gpt-neo-125m --ids 464,3290,318 --json",
  ];

  static override args = {
    dir: Args.string({ description: "checkpoint directory (default: the bundled model)", required: false }),
  };

  static override flags = {
    ids: Flags.string({ description: "comma-separated token ids", aliases: ["tokens"], exclusive: ["text"] }),
    text: Flags.string({ description: "text, tokenized with the GPT-2 BPE (r50k_base)", exclusive: ["ids"] }),
    json: Flags.boolean({ description: 'print {"logits": [[...]]}, one row per position', default: false }),
    "top-k": Flags.integer({ description: "next tokens shown per position", default: 5, min: 1 }),
    device: Flags.string({
      description: "execution provider",
      options: ["cpu", "cuda", "webgpu"],
      default: "cpu",
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ModelForward);
    if (flags.ids === undefined && flags.text === undefined) {
      throw new SpgError("E_FORWARD_IDS", "give the input as --ids or --text", {
        field: "--ids",
        fix: 'pass --ids 464,3290,318 or --text "The dog is"',
      });
    }
    const dir = args.dir ?? bundledModelDir();
    if (args.dir === undefined && !existsSync(dir)) {
      throw new SpgError(
        "E_CHECKPOINT_MISSING",
        `the bundled model is not in this package (looked in ${dir})`,
        {
          file: dir,
          fix: "train it with scripts/train_gpt_neo.py (it writes models/gpt-neo-brown), or pass a checkpoint directory: spg model forward DIR",
        },
      );
    }
    const ids = flags.ids !== undefined ? parseTokenIds(flags.ids) : encode(flags.text ?? "");
    const checkpoint = await readCheckpoint(dir);
    const vocab = checkpoint.config.vocabSize;
    const outside = ids.find((id) => id >= vocab);
    if (outside !== undefined) {
      throw new SpgError(
        "E_FORWARD_IDS",
        `token id ${outside} is outside the model's vocabulary (${vocab} tokens)`,
        {
          file: dir,
          field: flags.ids !== undefined ? "--ids" : "--text",
          fix:
            flags.text !== undefined
              ? "--text uses the GPT-2 vocabulary; this checkpoint has another one, pass --ids instead"
              : `pass ids below ${vocab}`,
        },
      );
    }
    if (ids.length > checkpoint.config.maxPositions) {
      throw new SpgError(
        "E_FORWARD_IDS",
        `${ids.length} tokens exceed max_position_embeddings (${checkpoint.config.maxPositions})`,
        { file: dir, field: "--ids", fix: `pass at most ${checkpoint.config.maxPositions} tokens` },
      );
    }
    const runtime = await loadRuntime(checkpoint, {
      device: flags.device as "cpu" | "cuda" | "webgpu",
      observationWindow: 1,
    });
    let logits: Float32Array;
    try {
      logits = (await prefillTokens(runtime, ids)).output.logits;
    } finally {
      await runtime.close();
    }
    const rows = ids.map((_, i) => logits.subarray(i * vocab, (i + 1) * vocab));
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ logits: rows.map((row) => Array.from(row)) })}\n`);
      return;
    }
    // Token text only when the checkpoint uses the tokenizer's (GPT-2) vocabulary.
    const showText = vocab === vocabularySize;
    const label = (id: number) => (showText ? ` ${JSON.stringify(decode([id]))}` : "");
    const lines = [`${checkpoint.dir}: ${ids.length} tokens, device ${runtime.executionProvider}`];
    rows.forEach((row, i) => {
      const next = topLogits(row, flags["top-k"])
        .map(({ id, logit }) => `${id}${label(id)} (${logit.toFixed(3)})`)
        .join(", ");
      lines.push(`[${i}] ${ids[i]}${label(ids[i])} -> ${next}`);
    });
    process.stdout.write(`${lines.join("\n")}\n`);
  }
}
