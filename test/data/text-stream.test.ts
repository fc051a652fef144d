/**
 * Text files and directories stream: the documents of the two-pass reader against the rule
 * written out plainly on a string held whole, the file's sha256, order independence of a
 * directory, and every kind of bad entry a directory can hold.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gzipSync } from "node:zlib";
import { resolveConfig } from "../../src/config/load.js";
import { drawConfiguredSplit } from "../../src/data/draw.js";
import { Mulberry32 } from "../../src/data/prng.js";
import { drawSamples } from "../../src/data/sampling.js";
import { loadLocalSplit, streamLocalSplit } from "../../src/data/sources.js";
import { utf8Lines } from "../../src/data/streams.js";
import { TextDocumentSplitter } from "../../src/data/text-split.js";
import { encode } from "../../src/data/tokenizer.js";
import type { DatasetDocument } from "../../src/data/types.js";
import { spgErrorAsync } from "../helpers/spg-error.js";

const work = mkdtempSync(join(tmpdir(), "spg-text-stream-"));
after(() => {
  chmodSync(work, 0o755);
  rmSync(work, { recursive: true, force: true });
});

function file(name: string, content: string | Uint8Array): string {
  const path = join(work, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, content);
  return path;
}

/** The documented rule on a whole string, written out plainly (src/data/sources.ts), as a second implementation. */
function referenceSplit(text: string): DatasetDocument[] {
  const lines = text.split(/\r?\n/);
  const trim = (body: string[]) => {
    let a = 0;
    let b = body.length;
    while (a < b && body[a].trim() === "") a++;
    while (b > a && body[b - 1].trim() === "") b--;
    return body.slice(a, b).join("\n");
  };
  const out: DatasetDocument[] = [];
  const push = (id: string, body: string[]) => {
    const t = trim(body);
    if (t.trim() !== "") out.push({ id, text: t });
  };
  const heading = /^ ?= ([^=].*?) = ?$/;
  const starts = lines.map((l, i) => [i, heading.exec(l)] as const).filter(([, m]) => m !== null);
  if (starts.length > 0) {
    push("L1", lines.slice(0, starts[0][0]));
    for (const [k, [at, m]] of starts.entries()) {
      const end = k + 1 < starts.length ? starts[k + 1][0] : lines.length;
      push(`L${at + 1} ${m![1].trim()}`, lines.slice(at, end));
    }
    return out;
  }
  const blank = (l: string) => l.trim() === "";
  // A run of two blank lines with text on both sides.
  const runOfTwo = /\S[^\S\n]*\n[^\S\n]*\n[^\S\n]*\n[\s]*\S/.test(lines.join("\n"));
  const separator = runOfTwo ? 2 : 1;
  // Documents: maximal stretches without a run of `separator` blank lines.
  let body: string[] = [];
  let first = -1;
  let run = 0;
  lines.forEach((line, i) => {
    if (blank(line)) {
      run++;
      body.push(line);
      return;
    }
    if (run >= separator && first >= 0) {
      push(`L${first + 1}`, body);
      body = [];
      first = -1;
    }
    if (first < 0) first = i;
    run = 0;
    body.push(line);
  });
  if (first >= 0) push(`L${first + 1}`, body);
  return out;
}

function randomText(rng: Mulberry32): string {
  const pieces = ["alpha beta", "", "  ", " = Title = ", " = = Section = = ", "gamma\r", "δ é ✓"];
  const usable = rng.nextBelow(3) === 0 ? pieces : pieces.filter((p) => !p.includes("Title"));
  const lines = Array.from({ length: rng.nextBelow(40) }, () => usable[rng.nextBelow(usable.length)]);
  const breaks = rng.nextBelow(2) === 0 ? "\n" : "\r\n";
  return lines.join(breaks) + (rng.nextBelow(2) === 0 ? breaks : "");
}

async function streamedDocuments(path: string, source: "text" | "dir" = "text"): Promise<DatasetDocument[]> {
  return (await loadLocalSplit(source, path, "eval")).documents;
}

test("utf8Lines(asSplit) gives exactly String.split(/\\r?\\n/) however the bytes are chunked", async () => {
  const rng = new Mulberry32(7);
  for (let trial = 0; trial < 200; trial++) {
    const text = randomText(rng);
    const bytes = Buffer.from(text, "utf8");
    const cuts = Array.from({ length: rng.nextBelow(6) }, () => rng.nextBelow(bytes.length + 1)).sort(
      (a, b) => a - b,
    );
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        yield bytes.subarray(at, cut);
        at = cut;
      }
    }
    const lines: string[] = [];
    for await (const { text: line } of utf8Lines(chunks(), "x.txt", undefined, true)) lines.push(line);
    assert.deepEqual(lines, text.split(/\r?\n/), JSON.stringify(text));
  }
});

test("a streamed text file gives the documented rule's documents (random files against a second implementation)", async () => {
  const rng = new Mulberry32(11);
  let compared = 0;
  for (let trial = 0; trial < 150; trial++) {
    const text = randomText(rng);
    const expected = referenceSplit(text);
    if (expected.length === 0) continue;
    assert.deepEqual(
      await streamedDocuments(file(`random-${trial}.txt`, text)),
      expected,
      JSON.stringify(text),
    );
    compared++;
  }
  assert.ok(compared > 100, `${compared} files compared`);
});

test("a .gz or .zst text file gives the documents of the plain file; its sha256 is of the compressed bytes", async () => {
  const text = " = One = \n\n first article \n = Two = \n\n second article \n";
  const gz = gzipSync(Buffer.from(text));
  const plain = await loadLocalSplit("text", file("plain.raw", text), "eval");
  const compressed = await loadLocalSplit("text", file("wiki.test.raw.gz", gz), "eval");
  assert.deepEqual(compressed.documents, plain.documents);
  assert.equal(compressed.file?.sha256, createHash("sha256").update(gz).digest("hex"));
});

test("the text draw streams: recorded with the file's sha256 and size, rule 'stream', and redrawn identically", async () => {
  const articles = Array.from(
    { length: 12 },
    (_, a) => ` = Article ${a} = \n\n ${"the river ran north past a mill . ".repeat(20 + a)}\n`,
  );
  const text = articles.join("\n");
  const path = file("wiki.test.raw", text);
  const config = resolveConfig({
    overrides: {
      dataset: "text",
      datasetPath: path,
      calibrationPath: file("wiki.valid.raw", " = Other = \n\n other text \n"),
      context: 40,
      continuation: 8,
      samples: 5,
    },
  });
  const drawn = await drawConfiguredSplit(config.dataset, "eval", 5);
  assert.equal(drawn.identity.sampling, "stream");
  assert.equal(drawn.identity.format, "text");
  assert.equal(drawn.identity.documents, 12);
  assert.deepEqual(drawn.identity.file, {
    path,
    bytes: Buffer.byteLength(text),
    sha256: createHash("sha256").update(text).digest("hex"),
  });
  const again = await drawConfiguredSplit(config.dataset, "eval", 5);
  assert.deepEqual(again.samples, drawn.samples);
  // A bundle recorded before text streamed ("pool") is redrawn by the pool rule, from the same documents.
  const pool = await drawConfiguredSplit(config.dataset, "eval", 5, "pool");
  assert.equal(pool.identity.sampling, "pool");
  assert.equal(pool.identity.sha256, drawn.identity.sha256);
  const documents = (await loadLocalSplit("text", path, "eval")).documents;
  assert.deepEqual(
    pool.samples,
    drawSamples(
      documents.map((d) => ({ id: d.id, tokens: encode(d.text) })),
      {
        count: 5,
        contextTokens: 40,
        continuationTokens: 8,
        seed: config.dataset.seed,
        role: "eval",
        split: "test",
      },
    ),
  );
});

test("a text file that changes between the two passes is E_DATASET_CHANGED", async () => {
  // Larger than the reader's read-ahead, so the second pass has not reached the end when the file changes.
  const paragraph = `${"word ".repeat(200)}\n\n`;
  const path = file("changing.txt", paragraph.repeat(Math.ceil((8 << 20) / paragraph.length)));
  const split = streamLocalSplit("text", path, "eval");
  const iterator = split.documents[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).done, false);
  const fd = openSync(path, "r+");
  writeSync(fd, "X", (8 << 20) - 10);
  closeSync(fd);
  const error = await spgErrorAsync(async () => {
    for (let next = await iterator.next(); !next.done; next = await iterator.next());
  });
  assert.equal(error.code, "E_DATASET_CHANGED");
  assert.equal(error.file, path);
});

test("one document longer than the limit is E_DATASET_DOCUMENT_LENGTH naming the line", () => {
  const splitter = new TextDocumentSplitter({ headings: false, separatorRun: 1 }, "big.txt", 10);
  assert.equal(splitter.push(1, "abcd"), undefined);
  assert.throws(() => splitter.push(2, "efghijk"), { code: "E_DATASET_DOCUMENT_LENGTH", field: "line 2" });
});

test("a directory's documents and sha256 do not depend on the order its files were written in", async () => {
  const names = Array.from({ length: 30 }, (_, i) => `doc-${String(i).padStart(2, "0")}.txt`);
  names.forEach((name, i) => {
    file(`forward/${name}`, `document ${i} ${"text ".repeat(60)}`);
  });
  [...names].reverse().forEach((name) => {
    const i = names.indexOf(name);
    file(`backward/${name}`, `document ${i} ${"text ".repeat(60)}`);
  });
  file("calibration-dir/a.txt", "calibration");
  const config = (dir: string) =>
    resolveConfig({
      overrides: {
        dataset: "dir",
        datasetPath: join(work, dir),
        calibrationPath: join(work, "calibration-dir"),
        context: 40,
        continuation: 8,
        samples: 6,
      },
    }).dataset;
  const forward = await drawConfiguredSplit(config("forward"), "eval", 6);
  const backward = await drawConfiguredSplit(config("backward"), "eval", 6);
  assert.equal(forward.identity.sampling, "stream");
  assert.equal(forward.identity.documents, 30);
  assert.equal(backward.identity.sha256, forward.identity.sha256);
  assert.deepEqual(backward.samples, forward.samples);
});

test("directory entries: links inside are read, links leaving, broken or to directories are E_DATASET_LINK", async () => {
  file("linked/a.txt", "first document");
  file("linked/sub/b.txt", "second document");
  file("outside/c.txt", "not in the directory");
  symlinkSync(join(work, "linked/sub/b.txt"), join(work, "linked/b-link.txt"));
  assert.deepEqual(await streamedDocuments(join(work, "linked"), "dir"), [
    { id: "a.txt", text: "first document" },
    { id: "b-link.txt", text: "second document" },
    { id: "sub/b.txt", text: "second document" },
  ]);
  const refused = async (name: string, target: string, pattern: RegExp) => {
    const dir = join(work, `refuse-${name}`);
    file(`refuse-${name}/a.txt`, "document");
    symlinkSync(target, join(dir, name));
    const error = await spgErrorAsync(() => loadLocalSplit("dir", dir, "eval"));
    assert.equal(error.code, "E_DATASET_LINK", name);
    assert.equal(error.file, join(dir, name));
    assert.match(error.message, pattern);
  };
  await refused("out.txt", join(work, "outside/c.txt"), /outside the dataset directory/);
  await refused("gone.txt", join(work, "nowhere.txt"), /target does not exist/);
  await refused("loop", join(work, "linked"), /link to the directory/);
  // A broken link not named *.txt is not a document and is not read.
  file("stale/a.txt", "document");
  symlinkSync(join(work, "nowhere"), join(work, "stale/latest"));
  assert.equal((await streamedDocuments(join(work, "stale"), "dir")).length, 1);
});

test("FIFOs and sockets are never opened: E_DATASET_NOT_REGULAR, in a directory or as the text file", async (t) => {
  const fifo = join(work, "special/pipe.txt");
  file("special/a.txt", "document");
  if (spawnSync("mkfifo", [fifo]).status !== 0) {
    t.skip("mkfifo is not available");
    return;
  }
  const inDir = await spgErrorAsync(() => loadLocalSplit("dir", join(work, "special"), "eval"));
  assert.equal(inDir.code, "E_DATASET_NOT_REGULAR");
  assert.match(inDir.message, /pipe\.txt is a FIFO/);
  const asText = await spgErrorAsync(() => loadLocalSplit("text", fifo, "eval"));
  assert.equal(asText.code, "E_DATASET_NOT_REGULAR");
  rmSync(fifo);
  const socketPath = join(work, "special/socket.txt");
  const server = createServer();
  await new Promise<void>((done) => server.listen(socketPath, done));
  try {
    const socket = await spgErrorAsync(() => loadLocalSplit("dir", join(work, "special"), "eval"));
    assert.equal(socket.code, "E_DATASET_NOT_REGULAR");
    assert.match(socket.message, /socket\.txt is a socket/);
  } finally {
    await new Promise((done) => server.close(done));
  }
});

test("unreadable files and directories are E_DATASET_UNREADABLE; bad UTF-8 in a directory names the file", async (t) => {
  const latin1 = file("encoding/b.txt", Uint8Array.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
  file("encoding/a.txt", "fine");
  const encoding = await spgErrorAsync(() => loadLocalSplit("dir", join(work, "encoding"), "eval"));
  assert.equal(encoding.code, "E_DATASET_ENCODING");
  assert.equal(encoding.file, latin1);
  assert.match(encoding.message, /byte offset 4/);
  // A read that fails with an I/O error, whoever runs the test (Linux: /proc/self/mem at offset 0 is EIO).
  if (existsSync("/proc/self/mem")) {
    const io = await spgErrorAsync(() => loadLocalSplit("text", "/proc/self/mem", "eval"));
    assert.equal(io.code, "E_DATASET_UNREADABLE");
    assert.match(io.message, /EIO/);
  }
  if (process.getuid?.() === 0) {
    t.skip("running as root: permissions do not stop reads");
    return;
  }
  const locked = file("locked/a.txt", "document");
  chmodSync(locked, 0o000);
  const unreadable = await spgErrorAsync(() => loadLocalSplit("dir", join(work, "locked"), "eval"));
  assert.equal(unreadable.code, "E_DATASET_UNREADABLE");
  assert.equal(unreadable.file, locked);
  const asText = await spgErrorAsync(() => loadLocalSplit("text", locked, "eval"));
  assert.equal(asText.code, "E_DATASET_UNREADABLE");
  chmodSync(locked, 0o644);
  file("locked/sub/b.txt", "document");
  chmodSync(join(work, "locked/sub"), 0o000);
  const directory = await spgErrorAsync(() => loadLocalSplit("dir", join(work, "locked"), "eval"));
  assert.equal(directory.code, "E_DATASET_UNREADABLE");
  assert.equal(directory.file, join(work, "locked/sub"));
  chmodSync(join(work, "locked/sub"), 0o755);
});
