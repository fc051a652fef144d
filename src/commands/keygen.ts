import path from "node:path";
import { Flags } from "@oclif/core";
import { defaultKeyDirectory, writeKeyPair } from "../bundle/keys.js";
import { SpgCommand } from "../spg-command.js";
import { jsonTerminalSafe, terminalSafe } from "../terminal-safe.js";

export default class Keygen extends SpgCommand {
  static override summary = "Create an Ed25519 key pair for signing proof bundles.";

  static override description =
    `Writes signing-key.json (the secret key, file mode 0600: keep it private, never commit it)
and signing-key.pub.json (the public key: hand it to verifiers, e.g. as --trusted-keys).
Without --out the pair goes to the user's default location ($XDG_CONFIG_HOME/spg or ~/.config/spg),
which \`spg prove\` uses when no --key is given.`;

  static override examples = ["<%= config.bin %> keygen", "<%= config.bin %> keygen --out ./keys --force"];

  static override flags = {
    out: Flags.string({
      description: "directory to write the key pair into (default: the user's spg config directory)",
    }),
    force: Flags.boolean({
      description: "replace an existing key pair (bundles signed with the old key stop matching it)",
    }),
    json: Flags.boolean({ description: "print the result as JSON" }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Keygen);
    const directory = path.resolve(flags.out ?? defaultKeyDirectory());
    const written = await writeKeyPair(directory, { force: flags.force });
    if (flags.json) {
      this.log(
        jsonTerminalSafe(
          JSON.stringify({
            keyId: written.key.keyId,
            secretKey: written.secretPath,
            publicKey: written.publicPath,
          }),
        ),
      );
      return;
    }
    this.log(`key id:      ${written.key.keyId}`);
    this.log(`public key:  ${terminalSafe(written.publicPath)}`);
    this.log(`secret key:  ${terminalSafe(written.secretPath)} (mode 0600; keep it private)`);
  }
}
