/**
 * Hostile archives, built byte by byte with the raw zip writer: each must be refused
 * with its own code, and none may crash the process or leave an error unhandled.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import zlib from "node:zlib";
import {
  buildRawZip,
  DIRECTORY_ATTRIBUTES,
  extraField,
  FIFO_ATTRIBUTES,
  FLAG_ENCRYPTED,
  FLAG_UTF8,
  METHOD_STORED,
  type RawZipEntry,
  SYMLINK_ATTRIBUTES,
  unicodePathExtraField,
} from "../../scripts/raw-zip.js";
import { BUNDLE_ENTRY_ORDER } from "../../src/bundle/format.js";
import { keyFromSeed } from "../../src/bundle/keys.js";
import { type BundleZipRead, readBundleZip, readBundleZipBuffer } from "../../src/bundle/read.js";
import { writeBundle } from "../../src/bundle/write.js";
import { sampleContents } from "./sample-contents.js";

const problems: unknown[] = [];
const onProblem = (error: unknown) => problems.push(error);
process.on("unhandledRejection", onProblem);
process.on("uncaughtException", onProblem);
after(() => {
  process.removeListener("unhandledRejection", onProblem);
  process.removeListener("uncaughtException", onProblem);
});

/** A well-formed bundle-shaped archive: every format entry, small JSON contents. */
function validEntries(): RawZipEntry[] {
  return BUNDLE_ENTRY_ORDER.map((name, index) => ({
    name,
    data: Buffer.from(`{"entry":${JSON.stringify(name)},"n":${index},"pad":"${"x".repeat(40 * index)}"}`),
  }));
}

function withEntry(name: string, change: Partial<RawZipEntry>): RawZipEntry[] {
  return validEntries().map((entry) => (entry.name === name ? { ...entry, ...change } : entry));
}

function codes(result: BundleZipRead): string[] {
  return result.ok ? [] : result.findings.map((finding) => finding.code);
}

async function expectRefused(zip: Buffer, code: string, limits = {}): Promise<BundleZipRead> {
  const result = await readBundleZipBuffer(zip, { limits });
  assert.equal(result.ok, false, `accepted an archive that should fail with ${code}`);
  assert.ok(codes(result).includes(code), `expected ${code}, got ${codes(result).join(", ")}`);
  for (const finding of result.ok ? [] : result.findings) {
    assert.equal(finding.check, "zip-safety");
    assert.equal(finding.ok, false);
    assert.match(finding.code, /^E_ZIP_[A-Z0-9_]+$/);
    assert.ok(finding.message.length > 0);
    // Findings go out as --json: they must survive a JSON round trip unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(finding)), finding);
  }
  return result;
}

test("the raw writer's well-formed archive is accepted (so each rejection below is the defect's doing)", async () => {
  const result = await readBundleZipBuffer(buildRawZip(validEntries()));
  assert.ok(result.ok, JSON.stringify(result.ok ? [] : result.findings));
  assert.deepEqual([...result.entries.keys()], [...BUNDLE_ENTRY_ORDER]);
  assert.equal(result.entries.get("report.md")!.toString(), validEntries()[7].data!.toString());
  const stored = await readBundleZipBuffer(
    buildRawZip(validEntries().map((entry) => ({ ...entry, method: METHOD_STORED }))),
  );
  assert.ok(stored.ok);
});

test("unsafe names: zip-slip, absolute, drive letter, backslash, NUL, invalid UTF-8", async () => {
  const names: (string | Buffer)[] = [
    "../x",
    "a/../../x",
    "..",
    "/etc/passwd",
    "C:evil.json",
    "c:/windows/x",
    "..\\x",
    "dir\\config.json",
    "config.json\0.txt",
    "",
    Buffer.from([0x63, 0xff, 0xfe]),
  ];
  for (const name of names) {
    const zip = buildRawZip([...validEntries(), { name, data: Buffer.from("x") }]);
    const result = await expectRefused(zip, "E_ZIP_PATH");
    assert.ok(!codes(result).includes("E_ZIP_UNEXPECTED_ENTRY"), "an unsafe name is reported as unsafe");
  }
  // A name that becomes unsafe only through the Info-ZIP Unicode path field.
  const raw = Buffer.from("config.json");
  await expectRefused(
    buildRawZip(withEntry("config.json", { extra: unicodePathExtraField(raw, "../config.json") })),
    "E_ZIP_PATH",
  );
});

test("a duplicate entry is refused", async () => {
  const entries = validEntries();
  entries.push({ name: "summary.json", data: Buffer.from('{"allClaimsPass":true}') });
  const result = await expectRefused(buildRawZip(entries), "E_ZIP_DUPLICATE");
  assert.equal((result.ok ? {} : result.findings[0].details).entry, "summary.json");
});

test("links, directories and special files are refused", async () => {
  await expectRefused(
    buildRawZip(withEntry("config.json", { externalAttributes: SYMLINK_ATTRIBUTES })),
    "E_ZIP_LINK",
  );
  await expectRefused(
    buildRawZip([...validEntries(), { name: "bundle/", data: Buffer.alloc(0) }]),
    "E_ZIP_DIRECTORY",
  );
  await expectRefused(
    buildRawZip(withEntry("report.md", { externalAttributes: DIRECTORY_ATTRIBUTES, data: Buffer.alloc(0) })),
    "E_ZIP_DIRECTORY",
  );
  // MS-DOS directory attribute alone (archive made on a FAT host).
  await expectRefused(
    buildRawZip(
      withEntry("report.md", { externalAttributes: 0x10, versionMadeBy: 20, data: Buffer.alloc(0) }),
    ),
    "E_ZIP_DIRECTORY",
  );
  await expectRefused(
    buildRawZip(withEntry("config.json", { externalAttributes: FIFO_ATTRIBUTES })),
    "E_ZIP_SPECIAL_FILE",
  );
});

test("unexpected and missing entries are refused", async () => {
  await expectRefused(
    buildRawZip([...validEntries(), { name: "extra.txt", data: Buffer.from("hi") }]),
    "E_ZIP_UNEXPECTED_ENTRY",
  );
  await expectRefused(
    buildRawZip([...validEntries(), { name: "Manifest.json", data: Buffer.from("{}") }]),
    "E_ZIP_UNEXPECTED_ENTRY",
  );
  const missing = await expectRefused(
    buildRawZip(validEntries().filter((entry) => entry.name !== "records.jsonl")),
    "E_ZIP_MISSING_ENTRY",
  );
  assert.deepEqual(codes(missing), ["E_ZIP_MISSING_ENTRY"]);
  const optional = await readBundleZipBuffer(buildRawZip(validEntries().slice(0, 3)), {
    requireAllEntries: false,
  });
  assert.ok(optional.ok);
});

test("a zip bomb (small declared size, huge inflation) stops at the limit", async () => {
  const huge = 32 * 1024 * 1024;
  const bomb = zlib.deflateRawSync(Buffer.alloc(huge), { level: 9 });
  const zip = buildRawZip(
    withEntry("records.jsonl", {
      compressed: bomb,
      uncompressedSize: 1000,
      crc32: 0,
      data: Buffer.alloc(1000),
    }),
  );
  const rssBefore = process.memoryUsage().rss;
  const result = await expectRefused(zip, "E_ZIP_RATIO");
  const details = result.ok ? {} : result.findings[0].details;
  const limit = 200 * bomb.length;
  // Stopped within one inflate chunk of the ratio limit, far short of the 32 MiB inside.
  assert.ok((details.inflatedAtLeast as number) > limit);
  assert.ok((details.inflatedAtLeast as number) < limit + 1024 * 1024, String(details.inflatedAtLeast));
  const grewBy = process.memoryUsage().rss - rssBefore;
  console.log(
    `bomb: ${bomb.length} compressed bytes, stopped after ${details.inflatedAtLeast} inflated; RSS grew ${grewBy} bytes`,
  );
  // With a per-entry byte limit below the ratio limit, that limit stops it first.
  await expectRefused(zip, "E_ZIP_TOO_LARGE", { maxEntryBytes: 256 * 1024 });
  // And a total limit across entries.
  const spread = buildRawZip(
    validEntries().map((entry) => ({ ...entry, data: Buffer.alloc(300 * 1024, 0x61) })),
  );
  await expectRefused(spread, "E_ZIP_TOO_LARGE", { maxTotalBytes: 1024 * 1024 });
});

test("huge declared sizes and ratios are refused before inflating anything", async () => {
  const tiny = zlib.deflateRawSync(Buffer.from("{}"));
  const declaredHuge = await expectRefused(
    buildRawZip(withEntry("records.jsonl", { compressed: tiny, uncompressedSize: 0xfffffff0, crc32: 0 })),
    "E_ZIP_TOO_LARGE",
  );
  assert.ok(codes(declaredHuge).includes("E_ZIP_RATIO"));
  const honestBomb = zlib.deflateRawSync(Buffer.alloc(2 * 1024 * 1024));
  await expectRefused(
    buildRawZip(withEntry("records.jsonl", { data: Buffer.alloc(2 * 1024 * 1024), compressed: honestBomb })),
    "E_ZIP_RATIO",
  );
  await expectRefused(buildRawZip(validEntries()), "E_ZIP_TOO_LARGE", { maxEntryBytes: 100 });
  await expectRefused(buildRawZip(validEntries()), "E_ZIP_TOO_LARGE", { maxArchiveBytes: 100 });
  await expectRefused(buildRawZip(validEntries()), "E_ZIP_TOO_MANY_ENTRIES", { maxEntries: 4 });
  // Declared count far beyond what the file holds.
  await expectRefused(buildRawZip(validEntries(), { declaredEntryCount: 65535 }), "E_ZIP_TOO_MANY_ENTRIES");
});

test("declared-size lies are refused (too small and too large)", async () => {
  const data = Buffer.from('{"records":"are longer than declared"}');
  await expectRefused(
    buildRawZip(withEntry("config.json", { data, uncompressedSize: 10 })),
    "E_ZIP_SIZE_MISMATCH",
  );
  await expectRefused(
    buildRawZip(withEntry("config.json", { data, uncompressedSize: data.length + 5 })),
    "E_ZIP_SIZE_MISMATCH",
  );
  await expectRefused(
    buildRawZip(withEntry("config.json", { data, method: METHOD_STORED, compressedSize: data.length - 1 })),
    "E_ZIP_SIZE_MISMATCH",
  );
});

test("CRC mismatches are refused, in deflated and stored entries", async () => {
  const entries = validEntries();
  const target = entries[4];
  const crc = zlib.crc32(target.data!);
  await expectRefused(buildRawZip(withEntry("records.jsonl", { crc32: (crc ^ 1) >>> 0 })), "E_ZIP_CRC");
  await expectRefused(
    buildRawZip(withEntry("records.jsonl", { crc32: (crc ^ 1) >>> 0, method: METHOD_STORED })),
    "E_ZIP_CRC",
  );
  // Same length, one byte changed, the old CRC kept: what a careless edit looks like.
  const edited = Buffer.from(target.data!);
  edited[3] ^= 0x20;
  await expectRefused(buildRawZip(withEntry("records.jsonl", { data: edited, crc32: crc })), "E_ZIP_CRC");
});

test("encryption, unknown compression, invalid deflate and header disagreements are refused", async () => {
  await expectRefused(
    buildRawZip(withEntry("config.json", { flags: FLAG_UTF8 | FLAG_ENCRYPTED })),
    "E_ZIP_ENCRYPTED",
  );
  await expectRefused(buildRawZip(withEntry("config.json", { method: 12 })), "E_ZIP_METHOD");
  await expectRefused(
    buildRawZip(withEntry("config.json", { compressed: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]) })),
    "E_ZIP_CORRUPT",
  );
  const cut = zlib.deflateRawSync(Buffer.from("x".repeat(100) + "y".repeat(100)));
  await expectRefused(
    buildRawZip(
      withEntry("config.json", {
        compressed: cut.subarray(0, cut.length - 3),
        data: Buffer.from("x".repeat(100) + "y".repeat(100)),
      }),
    ),
    "E_ZIP_CORRUPT",
  );
  await expectRefused(
    buildRawZip(withEntry("config.json", { localName: "../config.json" })),
    "E_ZIP_HEADER_MISMATCH",
  );
  const overlapping = validEntries();
  overlapping[7] = { ...overlapping[7], shareLocalHeaderOf: 2 };
  await expectRefused(buildRawZip(overlapping), "E_ZIP_OVERLAP");
});

test("local headers must repeat the central directory: sizes, CRC-32, flags", async () => {
  for (const local of [{ compressedSize: 3 }, { uncompressedSize: 1 }, { crc32: 0x1234 }, { flags: 0 }]) {
    await expectRefused(buildRawZip(withEntry("config.json", { local })), "E_ZIP_HEADER_MISMATCH");
  }
});

test("no bytes outside the entries: polyglot prefix, gaps, bytes before the central directory", async () => {
  const html = Buffer.from("<html><script>alert(1)</script></html>");
  await expectRefused(buildRawZip(validEntries(), { prefix: html }), "E_ZIP_PREFIX");
  await expectRefused(
    buildRawZip(withEntry("config.json", { trailingBytes: Buffer.from("hidden") })),
    "E_ZIP_GAP",
  );
  await expectRefused(buildRawZip(validEntries(), { beforeCentralDirectory: Buffer.alloc(9) }), "E_ZIP_GAP");
});

test("comments and zip64 fields are refused", async () => {
  await expectRefused(buildRawZip(validEntries(), { comment: Buffer.from("PK trailer") }), "E_ZIP_COMMENT");
  await expectRefused(buildRawZip(withEntry("report.md", { comment: Buffer.from("note") })), "E_ZIP_COMMENT");
  await expectRefused(
    buildRawZip(withEntry("report.md", { extra: extraField(0x0001, Buffer.alloc(8)) })),
    "E_ZIP_ZIP64",
  );
});

test("a truncated bundle is refused at every cut, with E_ZIP_TRUNCATED", async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), "spg-trunc-"));
  try {
    const file = path.join(directory, "proof.zip");
    await writeBundle(file, sampleContents(), keyFromSeed(new Uint8Array(32).fill(3)), {
      name: "spg",
      version: "0.1.0",
      commit: null,
    });
    const zip = await readFile(file);
    assert.ok((await readBundleZipBuffer(zip)).ok);
    const cuts = [
      1,
      4,
      30,
      100,
      Math.floor(zip.length / 3),
      Math.floor(zip.length / 2),
      zip.length - 100,
      zip.length - 23,
      zip.length - 1,
    ];
    for (const cut of cuts) {
      await expectRefused(zip.subarray(0, cut), "E_ZIP_TRUNCATED");
    }
    // The same through the file-reading path.
    const cutFile = path.join(directory, "cut.zip");
    await writeFile(cutFile, zip.subarray(0, zip.length - 10));
    const fromFile = await readBundleZip(cutFile);
    assert.deepEqual(codes(fromFile), ["E_ZIP_TRUNCATED"]);
    // A central directory pointing past the end of the data.
    const raw = buildRawZip(validEntries());
    const shortened = Buffer.concat([raw.subarray(0, 40), raw.subarray(raw.length - 22)]);
    shortened.writeUInt32LE(18, shortened.length - 22 + 16);
    assert.equal((await readBundleZipBuffer(shortened)).ok, false);
    await expectRefused(Buffer.alloc(0), "E_ZIP_UNREADABLE");
    assert.deepEqual(codes(await readBundleZip(path.join(directory, "absent.zip"))), ["E_ZIP_UNREADABLE"]);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test("random garbage and single-byte damage never crash the reader", async () => {
  let seed = 99;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let round = 0; round < 20; round++) {
    const garbage = Buffer.from(
      Array.from({ length: 1 + Math.floor(random() * 4096) }, () => Math.floor(random() * 256)),
    );
    await expectRefused(garbage, "E_ZIP_UNREADABLE");
  }
  const valid = buildRawZip(validEntries());
  const seen = new Set<string>();
  for (let offset = 0; offset < valid.length; offset += 13) {
    const damaged = Buffer.from(valid);
    damaged[offset] ^= 0xff;
    const result = await readBundleZipBuffer(damaged);
    for (const code of codes(result)) seen.add(code);
  }
  // Damage shows up under several distinct codes, each a zip-safety code.
  assert.ok(seen.size >= 4, [...seen].join(","));
  for (const code of seen) assert.match(code, /^E_ZIP_/);
});

test("no error escaped as an unhandled rejection or exception", async () => {
  // Give late stream errors a chance to surface.
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(problems, []);
});
