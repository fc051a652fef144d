/**
 * `npm run fuzz -- [--seed S] [--iterations N] [--levels zip,entry,input,semantic,merge] [--replay-runs R]
 *   [--timeout-s T] [--max-rss-mib M] [--heap-mib H] [--keep DIR] [--report]`
 *
 * A seeded, deterministic mutation fuzzer for `spg verify`. From the committed bundles
 * (bundles/*.zip) it makes hostile inputs at three levels:
 * - zip: the raw archive bytes (bit flips, truncation, length and offset fields of the local
 *   headers, central directory and end record set to edge values, entries duplicated,
 *   reordered or dropped), still signed by the project key the committed trusted-keys names;
 * - entry: one JSON or JSON Lines entry (fields dropped, duplicated or retyped, extreme
 *   numbers, very long strings, deep nesting, empty lines, invalid UTF-8, duplicate keys),
 *   re-zipped and re-signed with a test key the verifier is told to trust, so the mutant gets
 *   past the signature and exercises every later check;
 * - input: the verifier's own inputs (the trusted-keys file, the policy YAML, a --model
 *   directory's config.json) against the valid default bundle;
 * - semantic (scripts/fuzz-semantic.ts): a dishonest producer's consistent lies, schema-valid,
 *   summary and report remade, re-signed; one that passes verify is replayed on the sample it
 *   changed (unless the change is the signer's word by design) and flagged if it passes again;
 * - merge (scripts/fuzz-merge.ts; asked for by name, it proves a 3-shard run first): `spg merge`
 *   of a sharded run with one shard mutated (zip, entry or semantic, re-signed by the producer's
 *   trusted key) or the list changed; only an exit-2 SpgError may stop it, leaving nothing at
 *   --out, and a merge that is written is verified and must end in verify's table.
 * Each mutant is verified (replay off; `--replay-runs` entry mutants of default.zip with replay
 * on) in a worker process with a heap cap; the parent kills a worker that passes the time
 * limit. A mutant is flagged when verify throws anything but an SpgError (a crash and its
 * stack), an SpgError or result exits outside the documented table (0, 3-6 for a bundle; 2 for
 * the verifier's own input), a check crashed (E_CHECK_CRASHED), a failing finding has no
 * E_ code, it hangs past the limit, or the worker's peak resident memory passes the bound.
 * With --report each bundle mutant is also rendered as `spg report --no-verify` renders it: only
 * an SpgError may stop the page, and nothing from the bundle may reach it as markup.
 * The same seed gives the same mutants; flagged ones are written to --keep DIR.
 */
import { type ChildProcess, fork } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import YAML from "yaml";
import { canonicalJsonString, parseJsonl } from "../src/bundle/canonical.js";
import { readBundleZipBuffer } from "../src/bundle/read.js";
import type { EnvironmentFile, SampleRecord } from "../src/bundle/types.js";
import type { RunConfig } from "../src/config/types.js";
import { isSpgError } from "../src/errors.js";
import { peakRssBytes } from "../src/measure/evaluate.js";
import { mulberry32 } from "../src/measure/prng.js";
import { renderReportMarkdown } from "../src/measure/report-md.js";
import { summarize } from "../src/measure/summary.js";
import { packageRoot } from "../src/paths.js";
import { buildReport } from "../src/report/render.js";
import { replayIndices } from "../src/verify/checks/replay.js";
import { defaultPolicyPath } from "../src/verify/policy.js";
import { renderJson, renderText } from "../src/verify/report.js";
import { verifyBundleFile } from "../src/verify/verify-bundle.js";
import { forgerKeyId, resign, seededForgerKey } from "./adversarial-bundles.js";
import {
  type MergeBase,
  type MergeJob,
  mergeBase as makeMergeBase,
  mergeMutant,
  runMergeJob,
} from "./fuzz-merge.js";
import { type SemanticMutant, semanticMutant } from "./fuzz-semantic.js";
import { buildRawZip, type RawZipEntry } from "./raw-zip.js";

const MiB = 1024 * 1024;
/** Exit codes verify documents for a bundle (verify/README.md) and for the verifier's own bad input. */
const BUNDLE_EXIT_CODES = new Set([0, 3, 4, 5, 6]);
const INPUT_EXIT_CODE = 2;

export type FuzzLevel = "zip" | "entry" | "input" | "semantic" | "merge";
/** The default levels; `merge` proves a sharded run first (minutes), so it is asked for by name. */
export const FUZZ_LEVELS: readonly FuzzLevel[] = ["zip", "entry", "input", "semantic"];
const ALL_LEVELS: readonly FuzzLevel[] = [...FUZZ_LEVELS, "merge"];

/** A generator of [0, 1) and the helpers every mutator draws with. */
export class Draw {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed >>> 0);
  }
  float(): number {
    return this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** What one mutant is: its files, how verify is called on it, and what made it. */
export interface Mutant {
  level: FuzzLevel;
  /** The base bundle's file name and the mutation applied, enough to make it again from the seed. */
  description: string;
  bundle: Buffer;
  /** Trusted-keys file text (the project's, or the test key's). */
  trustedKeys: string;
  policy?: string;
  /** A --model config.json (the rest of the bundled model's files beside it). */
  modelConfig?: string;
  replay: boolean;
  /** A semantic mutant's change is the signer's word by design: passing verify is no finding. */
  signersWord?: boolean;
  /** A semantic mutant: the evaluation sample a replay must re-run to see the change, of how many. */
  sample?: { index: number; of: number };
}

// ---------------------------------------------------------------- zip level

/** Offsets of every record with this 4-byte signature. */
function recordOffsets(zip: Buffer, signature: number): number[] {
  const found: number[] = [];
  for (let at = zip.indexOf(0x50); at >= 0 && at + 4 <= zip.length; at = zip.indexOf(0x50, at + 1)) {
    if (zip.readUInt32LE(at) === signature) found.push(at);
  }
  return found;
}

/** Field offsets (relative, width) of the length and offset fields of each zip record. */
const LOCAL_FIELDS: readonly [number, 2 | 4][] = [
  [6, 2], // flags
  [8, 2], // method
  [14, 4], // crc
  [18, 4], // compressed size
  [22, 4], // uncompressed size
  [26, 2], // name length
  [28, 2], // extra length
];
const CENTRAL_FIELDS: readonly [number, 2 | 4][] = [
  [4, 2], // version made by
  [8, 2], // flags
  [10, 2], // method
  [16, 4], // crc
  [20, 4], // compressed size
  [24, 4], // uncompressed size
  [28, 2], // name length
  [30, 2], // extra length
  [32, 2], // comment length
  [34, 2], // disk number
  [38, 4], // external attributes
  [42, 4], // local header offset
];
const END_FIELDS: readonly [number, 2 | 4][] = [
  [4, 2], // disk
  [8, 2], // entries on disk
  [10, 2], // entries
  [12, 4], // central directory size
  [16, 4], // central directory offset
  [20, 2], // comment length
];

function edgeValue(draw: Draw, old: number, width: 2 | 4): number {
  const max = width === 2 ? 0xffff : 0xffffffff;
  const candidates = [
    0,
    1,
    max,
    max - 1,
    old + 1,
    Math.max(0, old - 1),
    old * 2,
    old >>> 1,
    draw.int(max + 1),
  ];
  return draw.pick(candidates) % (max + 1);
}

function setField(zip: Buffer, at: number, width: 2 | 4, value: number): void {
  if (at + width > zip.length) return;
  if (width === 2) zip.writeUInt16LE(value, at);
  else zip.writeUInt32LE(value >>> 0, at);
}

async function zipMutant(draw: Draw, base: Buffer): Promise<{ bytes: Buffer; what: string }> {
  const zip = Buffer.from(base);
  switch (draw.int(6)) {
    case 0: {
      const flips = 1 + draw.int(8);
      for (let i = 0; i < flips; i++) zip[draw.int(zip.length)] ^= 1 << draw.int(8);
      return { bytes: zip, what: `${flips} bit flips` };
    }
    case 1: {
      const length = draw.int(zip.length);
      return { bytes: zip.subarray(0, length), what: `truncated to ${length} bytes` };
    }
    case 2:
    case 3: {
      const kinds = [
        { name: "local header", signature: 0x04034b50, fields: LOCAL_FIELDS },
        { name: "central header", signature: 0x02014b50, fields: CENTRAL_FIELDS },
        { name: "end record", signature: 0x06054b50, fields: END_FIELDS },
      ] as const;
      const kind = draw.pick(kinds);
      const offsets = recordOffsets(zip, kind.signature);
      if (offsets.length === 0) return { bytes: zip, what: `no ${kind.name}` };
      const record = draw.pick(offsets);
      const [field, width] = draw.pick(kind.fields);
      const old = width === 2 ? zip.readUInt16LE(record + field) : zip.readUInt32LE(record + field);
      const value = edgeValue(draw, old, width);
      setField(zip, record + field, width, value);
      return { bytes: zip, what: `${kind.name} @${record} field +${field} ${old} -> ${value}` };
    }
    default: {
      // Entry-level restructuring of the same (signed) contents.
      const read = await readBundleZipBuffer(base);
      if (!read.ok) return { bytes: zip, what: "unreadable base" };
      const list: RawZipEntry[] = [...read.entries].map(([name, data]) => ({ name, data }));
      const index = draw.int(list.length);
      const op = draw.int(4);
      if (op === 0) list.push({ ...list[index] });
      else if (op === 1) list.reverse();
      else if (op === 2) list.splice(index, 1);
      else list[index] = { ...list[index], method: 0 };
      const ops = ["duplicated", "reversed order at", "dropped", "stored (not deflated)"];
      return { bytes: buildRawZip(list), what: `entry ${ops[op]} #${index}` };
    }
  }
}

// ---------------------------------------------------------------- entry level

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path into a JSON value (bounded), root included. */
function jsonPaths(value: Json, limit = 4000): (string | number)[][] {
  const paths: (string | number)[][] = [];
  const walk = (node: Json, path: (string | number)[]) => {
    if (paths.length >= limit) return;
    paths.push(path);
    if (Array.isArray(node)) for (const [i, child] of node.entries()) walk(child, [...path, i]);
    else if (node !== null && typeof node === "object")
      for (const [key, child] of Object.entries(node)) walk(child, [...path, key]);
  };
  walk(value, []);
  return paths;
}

const EXTREME_NUMBERS = [
  0,
  -0,
  -1,
  1,
  0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53 + 2,
  -(2 ** 53),
  1e308,
  -1e308,
  5e-324,
  1e21,
  Number.MAX_SAFE_INTEGER,
  4294967295,
  65536,
];

function deepNest(depth: number, leaf: Json, asArray: boolean): Json {
  let node: Json = leaf;
  for (let i = 0; i < depth; i++) node = asArray ? [node] : { a: node };
  return node;
}

/** One structural change at a random place in the value; returns the new root and what was done. */
function mutateJson(draw: Draw, root: Json): { value: Json; what: string } {
  const paths = jsonPaths(root);
  const path = draw.pick(paths);
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1];
  const get = (p: (string | number)[]) =>
    p.reduce<Json>((node, k) => (node as Record<string | number, Json>)[k], root);
  const old = get(path);
  const replace = (value: Json): Json => {
    if (path.length === 0) return value;
    (get(parentPath) as Record<string | number, Json>)[key] = value;
    return root;
  };
  const at = JSON.stringify(path);
  const op = draw.int(9);
  switch (op) {
    case 0: {
      if (path.length === 0) return { value: null, what: "root -> null" };
      const parent = get(parentPath);
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as Record<string, Json>)[key as string];
      return { value: root, what: `deleted ${at}` };
    }
    case 1: {
      const parent = path.length === 0 ? undefined : get(parentPath);
      if (Array.isArray(parent)) {
        parent.splice(key as number, 0, structuredClone(old));
        return { value: root, what: `duplicated element ${at}` };
      }
      if (Array.isArray(old) && old.length > 0) {
        const copies = 1 + draw.int(old.length > 100 ? 2 : 200);
        for (let i = 0; i < copies; i++) old.push(structuredClone(old[draw.int(old.length)]));
        return { value: root, what: `array ${at} grew by ${copies}` };
      }
      if (old !== null && typeof old === "object") {
        (old as Record<string, Json>)[`extra${draw.int(100)}`] = draw.pick([1, "x", null, [], {}]);
        return { value: root, what: `unknown field added to ${at}` };
      }
      return { value: replace([old, old]), what: `${at} doubled into an array` };
    }
    case 2: {
      const types: Json[] = [null, true, "1", 1, [], {}, [old], { value: old }, String(old)];
      const value = draw.pick(types);
      return { value: replace(value), what: `${at} retyped to ${JSON.stringify(value)?.slice(0, 40)}` };
    }
    case 3: {
      const value = draw.pick(EXTREME_NUMBERS);
      return { value: replace(value), what: `${at} = ${Object.is(value, -0) ? "-0" : value}` };
    }
    case 4: {
      if (typeof old === "number") {
        const scaled = old * draw.pick([-1, 2, 1e6, 1e-6, 1 + 1e-12]) + draw.pick([0, 1, -1]);
        return { value: replace(scaled), what: `${at} ${old} -> ${scaled}` };
      }
      const length = draw.pick([256, 65536, 1 << 20, 8 << 20]);
      const unit = draw.pick(["a", "é", "\u0000", "\u202e", "../", "\ud83d\ude00"]);
      return {
        value: replace(unit.repeat(Math.ceil(length / unit.length))),
        what: `${at} = ${length}-char string of ${JSON.stringify(unit)}`,
      };
    }
    case 5: {
      const depth = draw.pick([100, 1000, 10000, 100000]);
      const asArray = draw.chance(0.5);
      return { value: replace(deepNest(depth, old, asArray)), what: `${at} nested ${depth} deep` };
    }
    case 6: {
      if (typeof old === "string") {
        const value = draw.pick(["", " ", "NaN", "Infinity", "-1", "0x10", old.toUpperCase(), `${old}\n`]);
        return { value: replace(value), what: `${at} string -> ${JSON.stringify(value).slice(0, 40)}` };
      }
      return { value: replace(""), what: `${at} -> ""` };
    }
    case 7: {
      if (Array.isArray(old)) {
        old.reverse();
        return { value: root, what: `${at} reversed` };
      }
      return { value: replace([]), what: `${at} -> []` };
    }
    default: {
      // Swap with a sibling value elsewhere in the tree.
      const other = draw.pick(paths);
      const otherValue = structuredClone(get(other));
      return { value: replace(otherValue), what: `${at} = value of ${JSON.stringify(other)}` };
    }
  }
}

/** Serialized as the bundle writer would, or plainly when canonical JSON refuses the value. */
function serialize(value: Json): string {
  try {
    return canonicalJsonString(value);
  } catch {
    try {
      return JSON.stringify(value);
    } catch {
      return "null";
    }
  }
}

/** YAML of a value; JSON (also YAML) when it is too deep for the YAML writer. */
function yamlText(value: Json): string {
  try {
    return YAML.stringify(value);
  } catch {
    return serialize(value);
  }
}

/** Byte-level changes to an entry's text that no JSON value can express. */
function mutateText(draw: Draw, bytes: Buffer): { bytes: Buffer; what: string } {
  const at = draw.int(bytes.length + 1);
  const insert = (inserted: Buffer, what: string) => ({
    bytes: Buffer.concat([bytes.subarray(0, at), inserted, bytes.subarray(at)]),
    what: `${what} at byte ${at}`,
  });
  switch (draw.int(9)) {
    case 0:
      return insert(Buffer.from(draw.pick(["\n", "\n\n", "\r\n", " \n"])), "empty line");
    case 1:
      return insert(
        Buffer.from(draw.pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x88, 0x80]])),
        "invalid UTF-8",
      );
    case 2:
      return { bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]), what: "BOM prepended" };
    case 3:
      return { bytes: bytes.subarray(0, at), what: `cut at byte ${at}` };
    case 4: {
      // A duplicate key: the first "key": of the text again, with another value.
      const text = bytes.toString("latin1");
      const match = /"([A-Za-z_]+)":/.exec(text.slice(at));
      if (match === null) return insert(Buffer.from("{}"), "garbage");
      const where = at + match.index;
      return {
        bytes: Buffer.concat([
          bytes.subarray(0, where),
          Buffer.from(`"${match[1]}":${draw.pick(["0", "null", '"x"', "[]"])},`),
          bytes.subarray(where),
        ]),
        what: `duplicate key ${match[1]} at byte ${where}`,
      };
    }
    case 5:
      return insert(
        Buffer.from(draw.pick(["NaN", "Infinity", "-0", "1e999", "00", "1.", ".5"])),
        "bad number",
      );
    case 6: {
      const lines = bytes.toString("latin1").split("\n");
      const line = draw.int(lines.length);
      const copies = 1 + draw.int(3);
      for (let i = 0; i < copies; i++) lines.splice(line, 0, lines[line]);
      return { bytes: Buffer.from(lines.join("\n"), "latin1"), what: `line ${line} repeated ${copies}x` };
    }
    case 7:
      return insert(Buffer.from("[".repeat(draw.pick([1000, 100000]))), "open brackets");
    default: {
      const flips = 1 + draw.int(4);
      const copy = Buffer.from(bytes);
      for (let i = 0; i < flips && copy.length > 0; i++) copy[draw.int(copy.length)] ^= 1 << draw.int(8);
      return { bytes: copy, what: `${flips} bit flips` };
    }
  }
}

const REMADE_FROM = ["config.json", "environment.json", "records.jsonl", "fingerprints.jsonl"];

/** summary.json and report.md made from the (changed) run as prove makes them; false when it does not summarize. */
function remade(entries: Map<string, Buffer>): boolean {
  try {
    const json = (name: string) => JSON.parse((entries.get(name) as Buffer).toString("utf8"));
    const config = json("config.json") as RunConfig;
    const records = parseJsonl(entries.get("records.jsonl") as Buffer) as unknown as SampleRecord[];
    const summary = summarize(records, config);
    entries.set("summary.json", Buffer.from(canonicalJsonString(summary)));
    entries.set(
      "report.md",
      Buffer.from(renderReportMarkdown(config, summary, json("environment.json") as EnvironmentFile)),
    );
    return true;
  } catch {
    return false;
  }
}

/** One entry of the bundle changed (as value or as text), then every entry re-hashed and re-signed. */
function entryMutant(
  draw: Draw,
  entries: Map<string, Buffer>,
  key: ReturnType<typeof seededForgerKey>,
): { entries: Map<string, Buffer>; what: string } {
  const names = [...entries.keys()].filter((name) => name !== "signature.json");
  const name = draw.pick(names);
  const original = entries.get(name) as Buffer;
  const mutated = new Map(entries);
  let what: string;
  const jsonLines = name.endsWith(".jsonl");
  if (name.endsWith(".md") || draw.chance(0.35)) {
    const text = mutateText(draw, original);
    mutated.set(name, text.bytes);
    what = text.what;
  } else if (jsonLines) {
    const lines = original
      .toString("utf8")
      .split("\n")
      .filter((line) => line.length > 0);
    const line = draw.int(lines.length);
    const change = mutateJson(draw, JSON.parse(lines[line]) as Json);
    lines[line] = serialize(change.value);
    mutated.set(name, Buffer.from(`${lines.join("\n")}\n`));
    what = `line ${line}: ${change.what}`;
  } else {
    const change = mutateJson(draw, JSON.parse(original.toString("utf8")) as Json);
    mutated.set(name, Buffer.from(serialize(change.value)));
    what = change.what;
  }
  // A dishonest producer also makes summary.json and report.md again from the changed run, so the
  // mutant gets past recompute and report-md (when the changed run still summarizes).
  if (REMADE_FROM.includes(name) && draw.chance(0.5) && remade(mutated))
    what += " (summary and report remade)";
  // A changed manifest is signed as it is; anything else is re-hashed into it first.
  if (name === "manifest.json") {
    const hashed = new Map(mutated);
    try {
      resign(hashed, key);
      mutated.set("signature.json", hashed.get("signature.json") as Buffer);
    } catch {
      // The manifest no longer parses: leave the old signature (the bundle fails signature).
    }
  } else {
    resign(mutated, key);
  }
  return { entries: mutated, what: `${name} ${what}` };
}

// ---------------------------------------------------------------- verifier inputs

function inputMutant(
  draw: Draw,
  policyText: string,
  modelConfigText: string,
  trustedKeys: string,
): { policy?: string; modelConfig?: string; trustedKeys: string; what: string } {
  const target = draw.pick(["policy", "model", "keys"] as const);
  if (target === "keys") {
    const variants = [
      () => ({ text: mutateText(draw, Buffer.from(trustedKeys)).bytes.toString("latin1"), what: "text" }),
      () => ({ text: `${"a".repeat(draw.pick([64, 65, 1 << 20]))}\n`, what: "long line" }),
      () => ({ text: `${trustedKeys}\n`.repeat(draw.pick([2, 10000])), what: "repeated" }),
      () => ({
        text: `${Buffer.alloc(32, draw.int(256)).toString("base64")} ${draw.pick(["run", "merge", "x", ""])}\n`,
        what: "raw key",
      }),
      () => ({ text: "", what: "empty" }),
      () => ({ text: '{"type":"spg-ed25519-public","publicKey":1}', what: "json key file" }),
      () => {
        // Many distinct keys (ids drawn from the stream), the project's among them, near and over the file limit.
        const count = draw.pick([1000, 50_000, 70_000]);
        const ids = Array.from({ length: count }, () =>
          Array.from({ length: 8 }, () => (draw.int(2 ** 32) >>> 0).toString(16).padStart(8, "0")).join(""),
        );
        return { text: `${ids.join("\n")}\n${trustedKeys}`, what: `${count} keys` };
      },
      () => {
        // The project's key listed again and again with conflicting roles.
        const id =
          trustedKeys
            .split("\n")
            .find((line) => /^[0-9a-f]{64}/.test(line))
            ?.slice(0, 64) ?? "";
        const roles = ["run", "shard", "merge", "run,merge", "bogus", ""];
        return {
          text: Array.from({ length: draw.pick([2, 100, 20_000]) }, () => `${id} ${draw.pick(roles)}`).join(
            "\n",
          ),
          what: "duplicate keys, conflicting roles",
        };
      },
      () => ({
        text: `# ${"x".repeat(draw.pick([1 << 20, 5 << 20]))}\n${trustedKeys}`,
        what: "huge comment line",
      }),
    ];
    const made = draw.pick(variants)();
    return { trustedKeys: made.text, what: `trusted keys: ${made.what}` };
  }
  if (target === "policy") {
    if (draw.chance(0.3)) {
      const bombs = [
        `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n`,
        `${"[".repeat(10000)}`,
        `${"- ".repeat(5000)}x\n`,
        "!!binary AAAA",
        "key: !!js/function 'x'\n",
        `# ${"y".repeat(draw.pick([1 << 19, 2 << 20]))}\n${policyText}`,
        `${policyText}\nsamples:\n  minimum: 1\n`,
        `${"k: 1\n".repeat(200_000)}`,
        mutateText(draw, Buffer.from(policyText)).bytes.toString("latin1"),
      ];
      return { policy: draw.pick(bombs), trustedKeys, what: "policy text" };
    }
    const change = mutateJson(draw, YAML.parse(policyText) as Json);
    return { policy: yamlText(change.value), trustedKeys, what: `policy ${change.what}` };
  }
  if (draw.chance(0.3)) {
    return {
      modelConfig: mutateText(draw, Buffer.from(modelConfigText)).bytes.toString("latin1"),
      trustedKeys,
      what: "model config.json text",
    };
  }
  const change = mutateJson(draw, JSON.parse(modelConfigText) as Json);
  return { modelConfig: serialize(change.value), trustedKeys, what: `model config.json ${change.what}` };
}

// ---------------------------------------------------------------- the worker

export interface FuzzJob {
  index: number;
  level: FuzzLevel;
  bundlePath: string;
  trustedKeysFile: string;
  policyFile?: string;
  modelDir?: string;
  /** Replay off, every sample, or the samples a seed chooses (a semantic mutant's changed one). */
  replay: boolean | { samples: number; seed: string };
  /** Also render the mutant as `spg report --no-verify` does (its page from unverified entries). */
  report?: boolean;
  /** A merge mutant: merge these shards (then verify the result) instead of verifying bundlePath. */
  merge?: MergeJob;
}

/** `spg report`'s page for the mutant, unverified: only an SpgError may stop it, and no bundle text is markup (as test/report/adversarial-report.test.ts holds the corpus). */
async function reportProblems(job: FuzzJob): Promise<string[]> {
  try {
    const { html } = await buildReport(job.bundlePath, { verify: false });
    if (/<script|javascript:/i.test(html) || html.match(/<\/style>/gi)?.length !== 1)
      return ["report: markup from the bundle in the page"];
    return [];
  } catch (error) {
    if (isSpgError(error))
      return error.exitCode === INPUT_EXIT_CODE
        ? []
        : [`report: SpgError ${error.code} exit ${error.exitCode}`];
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return [`report crash (uncaught): ${stack.split("\n").slice(0, 4).join(" | ")}`];
  }
}

export interface FuzzOutcome {
  index: number;
  exitCode: number;
  /** Why the mutant is flagged (empty: verify handled it). */
  problems: string[];
  /** The failing codes, for the tally. */
  codes: string[];
  seconds: number;
  peakRssBytes: number;
  /** Every check passed (exit 0). */
  passed?: boolean;
}

/** Verify one mutant in this process and judge how verify handled it. */
export async function verifyMutant(job: FuzzJob): Promise<FuzzOutcome> {
  const start = performance.now();
  if (job.merge !== undefined) {
    const merged = await runMergeJob(job.merge);
    return {
      index: job.index,
      ...merged,
      seconds: (performance.now() - start) / 1000,
      peakRssBytes: peakRssBytes(),
    };
  }
  const problems: string[] = [];
  let exitCode: number;
  let codes: string[] = [];
  let passed = false;
  try {
    const result = await verifyBundleFile(job.bundlePath, {
      trustedKeysFile: job.trustedKeysFile,
      requireTrusted: true,
      replay:
        job.replay === false
          ? false
          : job.replay === true
            ? { samples: "all", required: false, modelDir: job.modelDir }
            : { ...job.replay, required: true, modelDir: job.modelDir },
      modelDir: job.modelDir,
      policyFile: job.policyFile,
    });
    // The command's own output paths must survive whatever the bundle says.
    renderText(job.bundlePath, result);
    renderJson(job.bundlePath, result);
    exitCode = result.exitCode;
    const failing = result.findings.filter((finding) => !finding.ok);
    codes = [
      ...new Set(
        failing
          .filter((finding) => finding.code !== "E_CHECK_SKIPPED")
          .map((finding) => `${finding.check}:${finding.code}`),
      ),
    ];
    for (const finding of failing) {
      if (!/^E_[A-Z0-9_]+$/.test(finding.code))
        problems.push(`failing finding without an E_ code: ${finding.code}`);
      if (finding.code === "E_CHECK_CRASHED")
        problems.push(`check crashed: ${finding.check}: ${finding.message}`);
    }
    if (!BUNDLE_EXIT_CODES.has(exitCode)) problems.push(`exit ${exitCode} is not in the documented table`);
    if (result.passed && job.level !== "input" && failing.length > 0)
      problems.push("passed with failing findings");
    passed = result.passed;
    // A semantic mutant replayed on the sample it changed (the parent asks only for one whose
    // change is not the signer's word) and still passing: a lie verify does not see.
    if (result.passed && job.level === "semantic" && typeof job.replay === "object")
      problems.push("semantic mutant passed verify with its changed sample replayed");
  } catch (error) {
    if (isSpgError(error)) {
      exitCode = error.exitCode;
      codes = [`thrown:${error.code}`];
      // Only the verifier's own inputs may end verify with exit 2 (and its registry code).
      if (job.level !== "input" || exitCode !== INPUT_EXIT_CODE)
        problems.push(
          `SpgError ${error.code} (exit ${exitCode}) for a ${job.level} mutant: ${error.message.split("\n")[0]}`,
        );
    } else {
      exitCode = 1;
      const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
      problems.push(`crash (uncaught): ${stack.split("\n").slice(0, 4).join(" | ")}`);
    }
  }
  if (job.report === true && job.level !== "input") problems.push(...(await reportProblems(job)));
  return {
    index: job.index,
    exitCode,
    problems,
    codes,
    seconds: (performance.now() - start) / 1000,
    peakRssBytes: peakRssBytes(),
    passed,
  };
}

function runWorker(): void {
  process.on("message", (job: FuzzJob) => {
    verifyMutant(job).then(
      (outcome) => process.send?.(outcome),
      (error: unknown) =>
        process.send?.({
          index: job.index,
          exitCode: 1,
          problems: [`worker: ${String(error)}`],
          codes: [],
          seconds: 0,
          peakRssBytes: peakRssBytes(),
        }),
    );
  });
}

// ---------------------------------------------------------------- the parent

/** How many evaluation samples a bundle's environment.json lists (0 when it does not parse). */
function evaluationSamples(entries: Map<string, Buffer>): number {
  try {
    const environment = JSON.parse(
      (entries.get("environment.json") as Buffer).toString("utf8"),
    ) as EnvironmentFile;
    return environment.evaluation.samples.length;
  } catch {
    return 0;
  }
}

/** A replay seed under which replay's own choice of one sample (replayIndices) is `index`. */
export function replaySeedChoosing(index: number, total: number): string {
  for (let n = 0; n < 1_000_000; n++) {
    const seed = n.toString(16);
    if (replayIndices(total, 1, seed)[0] === index) return seed;
  }
  throw new Error(`no replay seed below 1e6 chooses sample ${index} of ${total}`);
}

export interface FuzzOptions {
  seed: number;
  iterations: number;
  levels: readonly FuzzLevel[];
  replayRuns: number;
  timeoutSeconds: number;
  maxRssMiB: number;
  heapMiB: number;
  keep?: string;
  /** Also render every bundle mutant as `spg report --no-verify` does. */
  report?: boolean;
  /** Print one line per mutant. */
  verbose?: boolean;
  /** Asked before each mutant: true ends the run there, with the report of what ran (SIGTERM, SIGINT). */
  stopped?: () => boolean;
}

export interface FuzzReport {
  iterations: number;
  flagged: { index: number; description: string; problems: string[]; file?: string }[];
  exitCodes: Map<number, number>;
  codes: Map<string, number>;
  maxPeakRssBytes: number;
  maxSeconds: number;
  /** The slowest mutant: its index, level and description. */
  slowest?: string;
  /** Semantic draws that changed nothing (skipped), mutants that passed verify without replay, of those the signer's word, and those replayed. */
  noOps: number;
  semanticPassed: number;
  semanticSignersWord: number;
  semanticReplayed: number;
}

/** The first line of each problem with numbers blurred: one class per distinct shape. */
export function problemClass(problem: string): string {
  return problem
    .split(" | ")[0]
    .replace(/[0-9]+/g, "N")
    .slice(0, 160);
}

class Worker {
  private child: ChildProcess | undefined;
  /** The worker's last stderr, drained always (a full pipe would stall it). */
  private stderr = "";
  constructor(private readonly heapMiB: number) {}

  private start(): ChildProcess {
    const script = fileURLToPath(import.meta.url);
    this.stderr = "";
    this.child = fork(script, ["--worker"], {
      execArgv: [`--max-old-space-size=${this.heapMiB}`],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-2000);
    });
    return this.child;
  }

  /** The outcome, or why none came: the time limit, or the worker died (out of memory, a native crash). */
  run(job: FuzzJob, timeoutSeconds: number): Promise<FuzzOutcome> {
    const child = this.child ?? this.start();
    return new Promise((resolve) => {
      const finish = (outcome: FuzzOutcome, restart: boolean) => {
        clearTimeout(timer);
        child.removeListener("message", onMessage);
        child.removeListener("exit", onExit);
        if (restart) {
          child.kill("SIGKILL");
          this.child = undefined;
        }
        resolve(outcome);
      };
      const failed = (problem: string): FuzzOutcome => ({
        index: job.index,
        exitCode: -1,
        problems: [problem],
        codes: [],
        seconds: timeoutSeconds,
        peakRssBytes: 0,
      });
      const timer = setTimeout(
        () => finish(failed(`hang: no result within ${timeoutSeconds} s`), true),
        timeoutSeconds * 1000,
      );
      const onMessage = (outcome: FuzzOutcome) => finish(outcome, false);
      const onExit = (code: number | null, signal: string | null) =>
        finish(
          failed(
            `worker died (exit ${code}, signal ${signal}): ${this.stderr.trim().split("\n").slice(-3).join(" | ")}`,
          ),
          true,
        );
      child.on("message", onMessage);
      child.once("exit", onExit);
      child.send(job);
    });
  }

  /** Peak RSS is the process's: a fresh worker measures each flagged mutant's own. */
  restart(): void {
    this.child?.kill("SIGKILL");
    this.child = undefined;
  }
}

/** The committed bundles, their read entries, and the inputs the verifier is given by default. */
async function fuzzBase(): Promise<{
  bundles: { name: string; zip: Buffer; entries: Map<string, Buffer> }[];
  projectKeys: string;
  policy: string;
  modelDir: string;
}> {
  const root = packageRoot();
  const bundles = [];
  for (const name of readdirSync(join(root, "bundles"))
    .filter((file) => file.endsWith(".zip"))
    .sort()) {
    const zip = readFileSync(join(root, "bundles", name));
    const read = await readBundleZipBuffer(zip);
    if (!read.ok) throw new Error(`bundles/${name} does not read: the fuzzer needs valid bases`);
    bundles.push({ name, zip, entries: read.entries });
  }
  return {
    bundles,
    projectKeys: readFileSync(join(root, "bundles", "trusted-keys.txt"), "utf8"),
    policy: readFileSync(defaultPolicyPath(), "utf8"),
    modelDir: join(root, "models", "gpt-neo-brown"),
  };
}

export async function fuzzVerify(options: FuzzOptions): Promise<FuzzReport> {
  const base = await fuzzBase();
  const dir = mkdtempSync(join(tmpdir(), "spg-fuzz-"));
  const key = seededForgerKey(Buffer.alloc(32, options.seed & 0xff));
  const testKeys = `${forgerKeyId(key)}\n`;
  // A --model directory: the bundled model's files, config.json replaced per mutant.
  const modelDir = join(dir, "model");
  mkdirSync(modelDir);
  for (const file of readdirSync(base.modelDir))
    copyFileSync(join(base.modelDir, file), join(modelDir, file));
  const modelConfig = readFileSync(join(base.modelDir, "config.json"), "utf8");
  const worker = new Worker(options.heapMiB);
  const report: FuzzReport = {
    iterations: 0,
    flagged: [],
    exitCodes: new Map(),
    codes: new Map(),
    maxPeakRssBytes: 0,
    maxSeconds: 0,
    noOps: 0,
    semanticPassed: 0,
    semanticSignersWord: 0,
    semanticReplayed: 0,
  };
  let mergeBase: MergeBase | undefined;
  const defaultBundle = base.bundles.find((bundle) => bundle.name === "default.zip") ?? base.bundles[0];
  try {
    for (let index = 0; index < options.iterations + options.replayRuns; index++) {
      if (options.stopped?.() === true) break;
      // Each mutant has its own stream: mutant i of seed S is the same whatever ran before it.
      const draw = new Draw(((options.seed * 0x9e3779b1) ^ (index * 0x85ebca6b)) >>> 0);
      const replay = index >= options.iterations;
      const level: FuzzLevel = replay ? "entry" : draw.pick(options.levels);
      const bundle = replay || level === "input" ? defaultBundle : draw.pick(base.bundles);
      let mutant: Mutant;
      let mergeJob: MergeJob | undefined;
      if (level === "zip") {
        const made = await zipMutant(draw, bundle.zip);
        mutant = {
          level,
          description: `${bundle.name}: ${made.what}`,
          bundle: made.bytes,
          trustedKeys: base.projectKeys,
          replay,
        };
      } else if (level === "entry") {
        const made = entryMutant(draw, bundle.entries, key);
        const list = [...made.entries].map(([name, data]) => ({ name, data }));
        mutant = {
          level,
          description: `${bundle.name}: ${made.what}`,
          bundle: buildRawZip(list),
          trustedKeys: testKeys,
          replay,
        };
      } else if (level === "merge") {
        mergeBase ??= await makeMergeBase();
        const made = await mergeMutant(draw, mergeBase, dir, {
          zip: zipMutant,
          entry: entryMutant,
        });
        mergeJob = made.job;
        mutant = {
          level,
          description: made.what,
          bundle: made.files.get("mutant-shard.zip") as Buffer,
          trustedKeys: base.projectKeys,
          replay,
        };
      } else if (level === "semantic") {
        // A change that leaves the run's files as they were is no mutant: draw again (bounded).
        let made: SemanticMutant | undefined;
        for (let attempt = 0; attempt < 20 && made === undefined; attempt++)
          made = semanticMutant(draw, bundle.entries, key);
        if (made === undefined) {
          report.noOps++;
          continue;
        }
        mutant = {
          level,
          description: `${bundle.name}: ${made.what}`,
          bundle: buildRawZip([...made.entries].map(([name, data]) => ({ name, data }))),
          trustedKeys: testKeys,
          replay,
          signersWord: made.signersWord,
          sample: { index: made.sample, of: evaluationSamples(bundle.entries) },
        };
      } else {
        const made = inputMutant(draw, base.policy, modelConfig, base.projectKeys);
        mutant = {
          level,
          description: `${bundle.name}: ${made.what}`,
          bundle: bundle.zip,
          trustedKeys: made.trustedKeys,
          policy: made.policy,
          modelConfig: made.modelConfig,
          replay,
        };
      }
      const bundlePath = join(dir, "mutant.zip");
      writeFileSync(bundlePath, mutant.bundle);
      const trustedKeysFile = join(dir, "trusted-keys.txt");
      writeFileSync(trustedKeysFile, mutant.trustedKeys);
      let policyFile: string | undefined;
      if (mutant.policy !== undefined) {
        policyFile = join(dir, "policy.yaml");
        writeFileSync(policyFile, mutant.policy);
      }
      writeFileSync(join(modelDir, "config.json"), mutant.modelConfig ?? modelConfig);
      const job: FuzzJob = {
        index,
        level,
        bundlePath,
        trustedKeysFile,
        policyFile,
        modelDir: mutant.modelConfig === undefined ? undefined : modelDir,
        replay,
        report: options.report,
      };
      if (mergeJob !== undefined) job.merge = mergeJob;
      const limit = replay ? options.timeoutSeconds * 10 : options.timeoutSeconds;
      let outcome = await worker.run(job, limit);
      if (level === "semantic" && outcome.passed === true) {
        report.semanticPassed++;
        if (mutant.signersWord === true) report.semanticSignersWord++;
        else if (mutant.sample !== undefined && mutant.sample.of > 0) {
          // Passing without replay is the signer's word; a replay of the changed sample must refuse it.
          report.semanticReplayed++;
          outcome = await worker.run(
            {
              ...job,
              replay: {
                samples: 1,
                seed: replaySeedChoosing(
                  Number.isInteger(mutant.sample.index) && mutant.sample.index < mutant.sample.of
                    ? Math.max(0, mutant.sample.index)
                    : 0,
                  mutant.sample.of,
                ),
              },
            },
            options.timeoutSeconds * 10,
          );
        }
      }
      if (outcome.peakRssBytes > options.maxRssMiB * MiB) {
        // Peak RSS is the worker's lifetime peak: measure this mutant again in a fresh worker.
        worker.restart();
        outcome = await worker.run(job, limit);
        if (outcome.peakRssBytes > options.maxRssMiB * MiB)
          outcome.problems.push(
            `peak RSS ${(outcome.peakRssBytes / MiB).toFixed(0)} MiB over the ${options.maxRssMiB} MiB bound`,
          );
        worker.restart();
      }
      report.iterations++;
      report.exitCodes.set(outcome.exitCode, (report.exitCodes.get(outcome.exitCode) ?? 0) + 1);
      for (const code of outcome.codes) report.codes.set(code, (report.codes.get(code) ?? 0) + 1);
      report.maxPeakRssBytes = Math.max(report.maxPeakRssBytes, outcome.peakRssBytes);
      if (outcome.seconds > report.maxSeconds) {
        report.maxSeconds = outcome.seconds;
        report.slowest = `#${index} ${level} ${mutant.description.slice(0, 160)}`;
      }
      if (options.verbose)
        console.log(
          `#${index} ${level}${replay ? " (replay)" : ""} ${mutant.description} -> exit ${outcome.exitCode} ${outcome.codes.slice(0, 3).join(" ")} (${outcome.seconds.toFixed(1)} s)`,
        );
      if (outcome.problems.length > 0) {
        let file: string | undefined;
        if (options.keep !== undefined) {
          mkdirSync(options.keep, { recursive: true });
          file = join(options.keep, `seed${options.seed}-${index}`);
          mkdirSync(file, { recursive: true });
          writeFileSync(join(file, "bundle.zip"), mutant.bundle);
          writeFileSync(join(file, "trusted-keys.txt"), mutant.trustedKeys);
          if (mutant.policy !== undefined) writeFileSync(join(file, "policy.yaml"), mutant.policy);
          if (mutant.modelConfig !== undefined) writeFileSync(join(file, "config.json"), mutant.modelConfig);
          writeFileSync(join(file, "what.txt"), `${mutant.description}\n${outcome.problems.join("\n")}\n`);
        }
        report.flagged.push({ index, description: mutant.description, problems: outcome.problems, file });
        console.log(
          `FLAG #${index} ${level} ${mutant.description.slice(0, 200)}\n  ${outcome.problems.map((p) => p.slice(0, 400)).join("\n  ")}`,
        );
      }
    }
  } finally {
    worker.restart();
    rmSync(dir, { recursive: true, force: true });
    if (mergeBase !== undefined) rmSync(mergeBase.run.dir, { recursive: true, force: true });
  }
  return report;
}

function printReport(options: FuzzOptions, report: FuzzReport): void {
  console.log(
    `fuzz-verify seed ${options.seed}: ${report.iterations} mutants (${options.iterations} replay off at levels ${options.levels.join(",")}, ${options.replayRuns} replay on)`,
  );
  console.log(
    `  exit codes: ${[...report.exitCodes]
      .sort((a, b) => a[0] - b[0])
      .map(([code, n]) => `${code}:${n}`)
      .join(" ")}`,
  );
  const top = [...report.codes].sort((a, b) => b[1] - a[1]).slice(0, 25);
  console.log(`  codes: ${top.map(([code, n]) => `${code} ${n}`).join(", ")}`);
  console.log(
    `  slowest mutant ${report.maxSeconds.toFixed(1)} s (${report.slowest ?? "none"}); worker peak RSS ${(report.maxPeakRssBytes / MiB).toFixed(0)} MiB (bound ${options.maxRssMiB} MiB)`,
  );
  if (options.levels.includes("semantic"))
    console.log(
      `  semantic: ${report.semanticPassed} passed without replay (${report.semanticSignersWord} the signer's word by design, ${report.semanticReplayed} replayed on the changed sample); ${report.noOps} draws changed nothing`,
    );
  const classes = new Map<string, number[]>();
  for (const flagged of report.flagged)
    for (const problem of flagged.problems) {
      const shape = problemClass(problem);
      classes.set(shape, [...(classes.get(shape) ?? []), flagged.index]);
    }
  console.log(`  flagged: ${report.flagged.length} mutants, ${classes.size} classes`);
  for (const [shape, indices] of classes)
    console.log(`    [${indices.length}x, first #${indices[0]}] ${shape}`);
}

export async function fuzzMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: "string", default: "1" },
      iterations: { type: "string", default: "200" },
      levels: { type: "string", default: FUZZ_LEVELS.join(",") },
      "replay-runs": { type: "string", default: "0" },
      "timeout-s": { type: "string", default: "120" },
      "max-rss-mib": { type: "string", default: "1024" },
      "heap-mib": { type: "string", default: "2048" },
      keep: { type: "string" },
      report: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
    },
  });
  const levels = values.levels.split(",") as FuzzLevel[];
  for (const level of levels)
    if (!ALL_LEVELS.includes(level))
      throw new Error(`--levels: ${level} is not one of ${ALL_LEVELS.join(", ")}`);
  const options: FuzzOptions = {
    seed: Number(values.seed),
    iterations: Number(values.iterations),
    levels,
    replayRuns: Number(values["replay-runs"]),
    timeoutSeconds: Number(values["timeout-s"]),
    maxRssMiB: Number(values["max-rss-mib"]),
    heapMiB: Number(values["heap-mib"]),
    keep: values.keep,
    report: values.report,
    verbose: values.verbose,
  };
  // A run cut short (`timeout`, Ctrl-C) still prints the figures of the mutants it made.
  let stop = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const)
    process.once(signal, () => {
      stop = true;
    });
  const report = await fuzzVerify({ ...options, stopped: () => stop });
  if (stop) console.log(`stopped by a signal after ${report.iterations} mutants`);
  printReport(options, report);
  return report.flagged.length > 0 ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  if (process.argv.includes("--worker")) runWorker();
  else
    fuzzMain(process.argv.slice(2)).then(
      (code) => {
        process.exitCode = code;
      },
      (error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
}
