/**
 * The committed default bundle as a dishonest producer holding a trusted key would edit it:
 * the change applied, summary.json and report.md made again (scripts/adversarial-bundles.ts
 * remadeRun), re-signed with a fixture key the returned trusted-keys file names, and written
 * to a temporary folder removed after the test file. Call at a test file's top level.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type RunParts, remadeRun } from "../../scripts/adversarial-bundles.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { zipEntries } from "../../src/bundle/write.js";
import { packageRoot } from "../../src/paths.js";
import type { VerifyResult } from "../../src/verify/runner.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { fixtureKey, resign } from "./bundle-fixture.js";

export interface RemadeDefaultBundles {
  /** A trusted-keys file naming the key every written bundle is signed with. */
  keysFile: string;
  /** Writes the default bundle with `change` applied and re-signed; returns the zip's path. */
  write(name: string, change: (parts: RunParts) => void): Promise<string>;
  /** Writes it (as `write`) and verifies it against keysFile, trust required, without replay. */
  verifyNoReplay(name: string, change: (parts: RunParts) => void, modelDir?: string): Promise<VerifyResult>;
  /** "check:code" of each failing finding of a result, once each. */
  failingCodes(result: VerifyResult): string[];
}

export function remadeDefaultBundles(folderPrefix: string, keySeedByte: number): RemadeDefaultBundles {
  const dir = mkdtempSync(join(tmpdir(), folderPrefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const key = fixtureKey(keySeedByte);
  const keysFile = join(dir, "trusted.txt");
  let honest: Map<string, Buffer> | undefined;
  before(async () => {
    const read = await readBundleZip(join(packageRoot(), "bundles", "default.zip"));
    if (!read.ok) throw new Error("bundles/default.zip is unreadable");
    honest = new Map(read.entries);
    writeFileSync(keysFile, `${key.keyId}\n`);
  });
  const bundles: RemadeDefaultBundles = {
    keysFile,
    async write(name, change) {
      if (honest === undefined) throw new Error("bundles/default.zip is read in before(): write from a test");
      const entries = new Map(honest);
      remadeRun(entries, change);
      resign(entries, key);
      const path = join(dir, `${name.replaceAll(/\W+/g, "-")}.zip`);
      writeFileSync(path, await zipEntries([...entries].map(([entry, data]) => ({ name: entry, data }))));
      return path;
    },
    async verifyNoReplay(name, change, modelDir) {
      const path = await bundles.write(name, change);
      return verifyBundleFile(path, {
        trustedKeysFile: keysFile,
        requireTrusted: true,
        replay: false,
        modelDir,
      });
    },
    failingCodes: (result) => [
      ...new Set(result.findings.filter((f) => !f.ok).map((f) => `${f.check}:${f.code}`)),
    ],
  };
  return bundles;
}
