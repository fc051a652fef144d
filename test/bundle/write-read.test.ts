import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import yauzl from "yauzl";
import { parseJson, parseJsonl } from "../../src/bundle/canonical.js";
import { BUNDLE_ENTRY_ORDER, BUNDLE_FORMAT_VERSION } from "../../src/bundle/format.js";
import { generateKeyPair, keyFromSeed } from "../../src/bundle/keys.js";
import type { Manifest } from "../../src/bundle/manifest.js";
import { readBundleZip, readBundleZipBuffer } from "../../src/bundle/read.js";
import { checkManifestSignature } from "../../src/bundle/sign.js";
import { assembleBundle, serializeContents, writeBundle, zipEntries } from "../../src/bundle/write.js";
import { SpgError } from "../../src/errors.js";
import { sampleContents } from "./sample-contents.js";

const tool = { name: "spg", version: "0.1.0", commit: "0123456789abcdef0123456789abcdef01234567" };
const createdAt = "2026-11-23T12:00:00.000Z";
const fixedKey = keyFromSeed(new Uint8Array(32).fill(7));

async function withTempDir(run: (directory: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "spg-bundle-"));
  try {
    await run(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

test("write then read: every entry comes back byte-identical, listed and signed", async () => {
  await withTempDir(async (directory) => {
    const destination = path.join(directory, "proof.zip");
    const contents = sampleContents();
    const written = await writeBundle(destination, contents, fixedKey, tool, { createdAt });
    const zip = await readFile(destination);
    assert.equal(written.bytes, zip.length);
    assert.equal(written.sha256, createHash("sha256").update(zip).digest("hex"));

    const read = await readBundleZip(destination);
    assert.ok(read.ok, read.ok ? "" : JSON.stringify(read.findings));
    assert.deepEqual([...read.entries.keys()], [...BUNDLE_ENTRY_ORDER]);
    const serialized = serializeContents(contents);
    for (const [name, bytes] of serialized) assert.ok(read.entries.get(name)!.equals(bytes), name);
    assert.equal(read.entries.get("report.md")!.toString("utf8"), contents.reportMd);
    assert.deepEqual(
      parseJsonl(read.entries.get("records.jsonl")!),
      JSON.parse(JSON.stringify(contents.records)),
    );
    assert.deepEqual(parseJson(read.entries.get("config.json")!), contents.config);

    const manifestBytes = read.entries.get("manifest.json")!;
    const manifest = parseJson(manifestBytes) as unknown as Manifest;
    assert.equal(manifest.format, "spg-bundle");
    assert.equal(manifest.version, BUNDLE_FORMAT_VERSION);
    assert.deepEqual(manifest.tool, tool);
    assert.equal(manifest.createdAt, createdAt);
    assert.deepEqual(
      manifest.entries.map((entry) => entry.name),
      BUNDLE_ENTRY_ORDER.filter((name) => name !== "manifest.json" && name !== "signature.json"),
    );
    for (const entry of manifest.entries) {
      const bytes: Buffer = read.entries.get(entry.name)!;
      assert.equal(entry.bytes, bytes.length);
      assert.equal(entry.sha256, createHash("sha256").update(bytes).digest("hex"));
    }
    const signature = checkManifestSignature(manifestBytes, read.entries.get("signature.json")!);
    assert.ok(signature.ok);
    assert.equal(signature.keyId, fixedKey.keyId);
    assert.deepEqual(await readdir(directory), ["proof.zip"]);
  });
});

test("identical inputs give identical zip bytes; a different time or key does not", async () => {
  await withTempDir(async (directory) => {
    const paths = ["a.zip", "b.zip", "c.zip", "d.zip"].map((name) => path.join(directory, name));
    await writeBundle(paths[0], sampleContents(), fixedKey, tool, { createdAt });
    await writeBundle(paths[1], sampleContents(), fixedKey, tool, { createdAt });
    await writeBundle(paths[2], sampleContents(), fixedKey, tool, { createdAt: "2026-11-23T12:00:01.000Z" });
    await writeBundle(paths[3], sampleContents(), generateKeyPair(), tool, { createdAt });
    const [a, b, c, d] = await Promise.all(paths.map((file) => readFile(file)));
    assert.ok(a.equals(b));
    assert.ok(!a.equals(c));
    assert.ok(!a.equals(d));
    // The in-memory zipper produces the same bytes as the file writer.
    const assembled = assembleBundle(serializeContents(sampleContents()), fixedKey, tool, createdAt);
    assert.ok((await zipEntries(assembled.entries)).equals(a));
  });
});

test("zip entries carry a fixed date, a regular-file mode and no directories", async () => {
  const assembled = assembleBundle(serializeContents(sampleContents()), fixedKey, tool, createdAt);
  const zip = await zipEntries(assembled.entries);
  const entries = await new Promise<yauzl.Entry[]>((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: false }, (error, zipfile) => {
      if (error !== null) return reject(error);
      const list: yauzl.Entry[] = [];
      zipfile.on("entry", (entry: yauzl.Entry) => list.push(entry));
      zipfile.on("end", () => resolve(list));
      zipfile.on("error", reject);
    });
  });
  assert.deepEqual(
    entries.map((entry) => entry.fileName),
    [...BUNDLE_ENTRY_ORDER],
  );
  for (const entry of entries) {
    assert.equal(entry.getLastModDate({ timezone: "UTC" }).toISOString(), "1980-01-01T00:00:00.000Z");
    assert.equal(entry.externalFileAttributes >>> 16, 0o100644);
  }
});

test("a NaN in the records fails the write with its path, and nothing is left behind", async () => {
  await withTempDir(async (directory) => {
    const destination = path.join(directory, "proof.zip");
    const contents = sampleContents();
    (contents.records[1] as { klSum: number }).klSum = Number.NaN;
    await assert.rejects(
      writeBundle(destination, contents, fixedKey, tool, { createdAt }),
      (error: unknown) => {
        return error instanceof SpgError && error.code === "E_NON_FINITE" && error.field === "$[1].klSum";
      },
    );
    assert.deepEqual(await readdir(directory), []);
  });
});

test("a write that fails midway leaves neither the destination nor a temporary file", async () => {
  await withTempDir(async (directory) => {
    const missingDirectory = path.join(directory, "no-such-dir", "proof.zip");
    await assert.rejects(writeBundle(missingDirectory, sampleContents(), fixedKey, tool, { createdAt }), {
      code: "E_BUNDLE_WRITE",
    });
    // The destination is a directory: the rename (--force) fails after the zip was fully written.
    const blocked = path.join(directory, "blocked.zip");
    await import("node:fs/promises").then((fs) => fs.mkdir(blocked));
    await assert.rejects(
      writeBundle(blocked, sampleContents(), fixedKey, tool, { createdAt, overwrite: true }),
      { code: "E_BUNDLE_WRITE" },
    );
    // Without --force the existing name is refused as such.
    await assert.rejects(writeBundle(blocked, sampleContents(), fixedKey, tool, { createdAt }), {
      code: "E_FILE_EXISTS",
    });
    assert.deepEqual(await readdir(directory), ["blocked.zip"]);
    assert.deepEqual(await readdir(blocked), []);
  });
});

test("an existing bundle is refused (E_FILE_EXISTS, left as it was) unless overwrite, then replaced whole", async () => {
  await withTempDir(async (directory) => {
    const destination = path.join(directory, "proof.zip");
    await writeBundle(destination, sampleContents(1), fixedKey, tool, { createdAt });
    const first = await readFile(destination);
    await assert.rejects(writeBundle(destination, sampleContents(2), fixedKey, tool, { createdAt }), {
      code: "E_FILE_EXISTS",
    });
    assert.deepEqual(await readFile(destination), first);
    assert.deepEqual(await readdir(directory), ["proof.zip"]);
    await writeBundle(destination, sampleContents(2), fixedKey, tool, { createdAt, overwrite: true });
    const read = await readBundleZipBuffer(await readFile(destination));
    assert.ok(read.ok);
    assert.equal(parseJsonl(read.entries.get("records.jsonl")!).length, 4);
  });
});

test("a read bundle can be edited and re-signed (how tampering tests build signed forgeries)", async () => {
  const original = await zipEntries(
    assembleBundle(serializeContents(sampleContents()), fixedKey, tool, createdAt).entries,
  );
  const read = await readBundleZipBuffer(original);
  assert.ok(read.ok);
  const edited = new Map(read.entries);
  edited.set("summary.json", Buffer.from('{"allClaimsPass":true,"claims":[],"methods":{}}'));
  const forger = generateKeyPair();
  const forged = await zipEntries(assembleBundle(edited, forger, tool, createdAt).entries);
  const reread = await readBundleZipBuffer(forged);
  assert.ok(reread.ok);
  const signature = checkManifestSignature(
    reread.entries.get("manifest.json")!,
    reread.entries.get("signature.json")!,
  );
  // The forgery is internally consistent; only trust in the signer can reject it.
  assert.ok(signature.ok);
  assert.equal(signature.keyId, forger.keyId);
  assert.notEqual(signature.keyId, fixedKey.keyId);
  const manifest = parseJson(reread.entries.get("manifest.json")!) as unknown as Manifest;
  const summaryEntry = manifest.entries.find((entry) => entry.name === "summary.json")!;
  assert.equal(summaryEntry.sha256, createHash("sha256").update(edited.get("summary.json")!).digest("hex"));
});

test("a bundle file is opened once and checked by its handle: the file expected, a link only when allowed", async () => {
  await withTempDir(async (directory) => {
    const { stat, symlink } = await import("node:fs/promises");
    const bundle = path.join(directory, "proof.zip");
    const other = path.join(directory, "other.zip");
    await writeBundle(bundle, sampleContents(1), fixedKey, tool, { createdAt });
    await writeBundle(other, sampleContents(1), fixedKey, tool, { createdAt });
    const identity = async (file: string) => {
      const stats = await stat(file);
      return { dev: stats.dev, ino: stats.ino };
    };
    assert.ok((await readBundleZip(bundle, { opening: { identity: await identity(bundle) } })).ok);
    // Same bytes, another file: what is read must be the file that was checked.
    const swapped = await readBundleZip(bundle, { opening: { identity: await identity(other) } });
    assert.ok(!swapped.ok);
    assert.equal(swapped.findings[0].code, "E_ZIP_UNREADABLE");
    assert.match(swapped.findings[0].message, /not the file that was checked/);
    const link = path.join(directory, "link.zip");
    await symlink(bundle, link);
    assert.ok((await readBundleZip(link)).ok, "verify follows a link it is given");
    const refused = await readBundleZip(link, { opening: { noFollow: true } });
    assert.ok(!refused.ok);
    assert.match(refused.findings[0].message, /symbolic link/);
    // A directory is refused by its handle's fstat.
    const folder = await readBundleZip(directory);
    assert.ok(!folder.ok);
    assert.match(folder.findings[0].message, /a directory, not a regular file/);
  });
});

test("prove's early check refuses an existing --out before any work (E_FILE_EXISTS), and allows it with overwrite", async () => {
  await withTempDir(async (directory) => {
    const { refuseExisting } = await import("../../src/bundle/atomic.js");
    const out = path.join(directory, "run.zip");
    await refuseExisting(out, false);
    await import("node:fs/promises").then((fs) => fs.writeFile(out, "earlier"));
    await assert.rejects(refuseExisting(out, false), { code: "E_FILE_EXISTS" });
    await refuseExisting(out, true);
  });
});
