import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { packageRoot } from "../../src/paths.js";

test("Ctrl-C (SIGINT) while a bundle is being written leaves nothing at the destination", {
  skip: process.platform === "win32",
}, async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), "spg-interrupt-"));
  try {
    const writer = pathToFileURL(path.join(packageRoot(), "dist", "src", "bundle", "write.js")).href;
    const script = path.join(directory, "child.mjs");
    // Incompressible data so deflating takes long enough to interrupt.
    await writeFile(
      script,
      `import { randomBytes } from "node:crypto";
       import { writeZipAtomic } from ${JSON.stringify(writer)};
       const data = randomBytes(48 * 1024 * 1024);
       await writeZipAtomic(process.argv[2], [{ name: "records.jsonl", data }]);
       console.log("finished");`,
    );
    const out = path.join(directory, "out");
    await import("node:fs/promises").then((fs) => fs.mkdir(out));
    const destination = path.join(out, "proof.zip");
    const child = spawn(process.execPath, [script, destination], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on("exit", (code, signal) => resolve({ code, signal }));
    });
    // Interrupt as soon as the temporary file exists.
    const deadline = Date.now() + 20_000;
    let sawTemporary = false;
    while (Date.now() < deadline && child.exitCode === null) {
      const names = await readdir(out);
      if (names.some((name) => name.startsWith("proof.zip.tmp-"))) {
        sawTemporary = true;
        child.kill("SIGINT");
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const { signal } = await exited;
    assert.ok(sawTemporary, `the temporary file was never seen (child said: ${stdout.trim()})`);
    assert.equal(signal, "SIGINT");
    assert.equal(stdout, "");
    assert.deepEqual(await readdir(out), []);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
