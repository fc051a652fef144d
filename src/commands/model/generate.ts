import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Args, Flags } from "@oclif/core";
import { resolveConfig } from "../../config/load.js";
import type { MethodConfig, RunConfig } from "../../config/types.js";
import { decode, encode, vocabularySize } from "../../data/tokenizer.js";
import { SpgError } from "../../errors.js";
import { createBackend } from "../../measure/backend.js";
import { generateText, generateWithMethod } from "../../measure/generate.js";
import { resolveModelDir } from "../../measure/prove.js";
import { readCheckpoint } from "../../model/checkpoint.js";
import { SpgCommand } from "../../spg-command.js";
import { terminalSafe, terminalSafeLines } from "../../terminal-safe.js";

/** Model text made safe for a terminal (terminalSafeLines: newlines and tabs kept). */
export const printable = terminalSafeLines;

function methodNamed(config: RunConfig, name: string, source: string): MethodConfig {
  const method = config.methods.find((m) => m.name === name);
  const kvMethods = config.methods.filter((m) => m.kind !== "weights").map((m) => m.name);
  if (method === undefined) {
    throw new SpgError("E_GENERATE_METHOD", `no method "${name}" in ${source}`, {
      field: "--method",
      fix: `use one of ${kvMethods.join(", ")} (or name another --preset / --config)`,
    });
  }
  if (method.kind === "weights") {
    throw new SpgError("E_GENERATE_METHOD", `"${name}" compresses the weights, not the KV cache`, {
      field: "--method",
      fix: `use a KV-cache method (${kvMethods.join(", ")}); weights methods are measured by spg prove`,
    });
  }
  return method;
}

export default class ModelGenerate extends SpgCommand {
  static override summary = "Print a greedy continuation of a prompt, alone or beside a compressed cache's";

  static override description =
    `Greedy decoding (deterministic): the prompt is prefilled once, the first token is the
argmax of its last row, then each step feeds the previous token. Without --method the cache is
the model's own float32 cache. With --method NAME (a KV-cache method of the preset or config),
the prompt runs through the baseline cache (kv.baselineDtype, what spg prove compares against)
and through that method's compressed cache, from the same prefill, and both continuations are
printed side by side with the first diverging token marked and the bytes each cache stores.
--tokens defaults to the preset's generation.tokens.`;

  static override examples = [
    '<%= config.bin %> model generate --prompt "The jury said"',
    '<%= config.bin %> model generate --prompt "The jury said" --method spg --tokens 40',
    '<%= config.bin %> model generate ./gpt-neo-125m --prompt "Once upon a time" --preset conservative --method quant --json',
  ];

  static override args = {
    dir: Args.string({
      description: "GPT-Neo checkpoint directory (default: the config's model, the bundled one)",
    }),
  };

  static override flags = {
    prompt: Flags.string({ description: "text to continue (GPT-2 tokenizer)", required: true }),
    tokens: Flags.integer({
      description: "tokens to generate (default: the preset's generation.tokens)",
      min: 1,
    }),
    method: Flags.string({
      description: "a KV-cache method of the preset/config to compare with the baseline",
    }),
    preset: Flags.string({ description: "preset in configs/ the method comes from (default: default)" }),
    config: Flags.string({
      description: "YAML/JSON run config the method comes from",
      exclusive: ["preset"],
    }),
    device: Flags.string({ description: "cpu or cuda (never falls back)", options: ["cpu", "cuda"] }),
    json: Flags.boolean({ description: "print the result as JSON" }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ModelGenerate);
    const config = resolveConfig({ file: flags.config, preset: flags.preset });
    const source = flags.config ?? `preset ${flags.preset ?? "default"}`;
    const method = flags.method === undefined ? undefined : methodNamed(config, flags.method, source);
    const dir = args.dir === undefined ? resolveModelDir(config) : resolve(args.dir);
    if (!existsSync(dir)) {
      throw new SpgError("E_CHECKPOINT_MISSING", `no checkpoint directory at ${dir}`, {
        file: dir,
        fix: "pass a GPT-Neo checkpoint directory: spg model generate DIR --prompt ...",
      });
    }
    const checkpoint = await readCheckpoint(dir);
    const tokens = flags.tokens ?? config.generation.tokens;
    const prompt = encode(flags.prompt);
    if (checkpoint.config.vocabSize !== vocabularySize) {
      throw new SpgError(
        "E_GENERATE_PROMPT",
        `the checkpoint has ${checkpoint.config.vocabSize} tokens, not the GPT-2 vocabulary (${vocabularySize}) the prompt is tokenized with`,
        { file: dir, field: "--prompt", fix: "use a GPT-Neo checkpoint with the GPT-2 vocabulary" },
      );
    }
    if (prompt.length === 0) {
      throw new SpgError("E_GENERATE_PROMPT", "the prompt is empty", {
        field: "--prompt",
        fix: 'give some text: --prompt "The jury said"',
      });
    }
    const maxPositions = checkpoint.config.maxPositions;
    if (prompt.length + tokens > maxPositions) {
      throw new SpgError(
        "E_GENERATE_LENGTH",
        `${prompt.length} prompt tokens + ${tokens} generated exceed max_position_embeddings (${maxPositions})`,
        {
          file: dir,
          field: "--tokens",
          fix: `lower --tokens to at most ${maxPositions - prompt.length}, or shorten the prompt`,
        },
      );
    }
    const backend = await createBackend(checkpoint, {
      device: (flags.device as "cpu" | "cuda" | undefined) ?? config.model.device,
      observationWindow: config.kv.observationWindow,
      baselineDtype: config.kv.baselineDtype,
    });
    const head = {
      model: dir,
      modelSha256: checkpoint.sha256,
      prompt: flags.prompt,
      promptTokens: prompt,
      tokens,
    };
    try {
      if (method === undefined) {
        const ids = await generateText(backend, prompt, tokens);
        if (flags.json) {
          this.log(JSON.stringify({ ...head, continuation: { ids, text: decode(ids) } }));
          return;
        }
        this.log(`model    ${terminalSafe(dir)} (sha256 ${checkpoint.sha256.slice(0, 16)})`);
        this.log(`prompt   ${JSON.stringify(flags.prompt)} (${prompt.length} tokens)`);
        this.log(`greedy   ${tokens} tokens, float32 cache\n`);
        this.log(printable(`${flags.prompt}${decode(ids)}`));
        return;
      }
      const result = await generateWithMethod(backend, prompt, tokens, method);
      const ratio = result.kvBytesBaseline / result.kvBytesCompressed;
      if (flags.json) {
        this.log(
          JSON.stringify({
            ...head,
            method: method.name,
            kind: method.kind,
            baselineDtype: config.kv.baselineDtype,
            baseline: { ids: result.baseline, text: decode(result.baseline) },
            compressed: { ids: result.compressed, text: decode(result.compressed) },
            firstDivergence: result.firstDivergence,
            kvBytesBaseline: result.kvBytesBaseline,
            kvBytesCompressed: result.kvBytesCompressed,
            compressionRatio: ratio,
          }),
        );
        return;
      }
      this.log(
        renderSideBySide(
          flags.prompt,
          method,
          config.kv.baselineDtype,
          result,
          ratio,
          dir,
          checkpoint.sha256,
        ),
      );
    } finally {
      await backend.close();
    }
  }
}

/** The text view of a comparison: both continuations, the first divergence, and a token-by-token table. */
export function renderSideBySide(
  promptText: string,
  method: MethodConfig,
  baselineDtype: string,
  result: Awaited<ReturnType<typeof generateWithMethod>>,
  ratio: number,
  dir: string,
  modelSha256: string,
): string {
  const at = result.firstDivergence;
  const withMark = (ids: number[]) =>
    at === null ? decode(ids) : `${decode(ids.slice(0, at))}⟦${decode(ids.slice(at))}`;
  const baselineLabel = `baseline (${baselineDtype} cache)`;
  const lines = [
    `model    ${terminalSafe(dir)} (sha256 ${modelSha256.slice(0, 16)})`,
    `prompt   ${JSON.stringify(promptText)}`,
    `bytes    ${baselineLabel}: ${result.kvBytesBaseline.toLocaleString("en-US")}; ${method.name}: ${result.kvBytesCompressed.toLocaleString("en-US")} (${ratio.toFixed(2)}x smaller)`,
    at === null
      ? `agree    all ${result.baseline.length} tokens`
      : `diverge  at token ${at} (marked ⟦ below and ▶ in the table)`,
    "",
    `${baselineLabel}:`,
    printable(`${promptText}${withMark(result.baseline)}`),
    "",
    `${method.name}:`,
    printable(`${promptText}${withMark(result.compressed)}`),
    "",
  ];
  const cells = (ids: number[]) => ids.map((id) => printable(JSON.stringify(decode([id]))));
  const left = cells(result.baseline);
  const right = cells(result.compressed);
  const width = Math.max(baselineLabel.length, ...left.map((c) => c.length));
  lines.push(`     #  ${baselineLabel.padEnd(width)}  ${method.name}`);
  left.forEach((cell, i) => {
    const mark = i === at ? "▶" : " ";
    lines.push(`${mark} ${String(i).padStart(4)}  ${cell.padEnd(width)}  ${right[i] ?? ""}`);
  });
  return lines.join("\n");
}
