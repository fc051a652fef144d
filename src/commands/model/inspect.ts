import { Args, Flags } from "@oclif/core";
import { describeCheckpointDir, formatDescription } from "../../model/describe.js";
import { SpgCommand } from "../../spg-command.js";

export default class ModelInspect extends SpgCommand {
  static override summary =
    "Describe a GPT-Neo checkpoint: shape, attention pattern, parameters, files, KV-cache memory";

  static override description =
    "Reads and validates a Hugging Face GPT-Neo checkpoint directory (config.json + model.safetensors or a " +
    "sharded model.safetensors.index.json). With no DIR, describes the model bundled with spg.";

  static override examples = [
    "<%= config.bin %> model inspect",
    "<%= config.bin %> model inspect ./gpt-neo-125m --context 1024",
    "<%= config.bin %> model inspect ./gpt-neo-125m --json",
  ];

  static override args = {
    dir: Args.string({ description: "checkpoint directory (default: the bundled model)", required: false }),
  };

  static override flags = {
    json: Flags.boolean({ description: "print the description as JSON", default: false }),
    context: Flags.integer({
      description: "context length (tokens) for the memory figures (default: max_position_embeddings)",
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ModelInspect);
    const description = await describeCheckpointDir(args.dir, flags.context);
    process.stdout.write(
      `${flags.json ? JSON.stringify(description, null, 2) : formatDescription(description)}\n`,
    );
  }
}
