/**
 * Seeded lines for the one-pass line readers' differential tests (fingerprint-line, record-line):
 * a seeded draw, canonical text of a drawn value, and near misses of a line that every reader
 * must leave to the full path or read exactly as it does.
 */
import assert from "node:assert/strict";
import { canonicalJsonString } from "../../src/bundle/canonical.js";
import { MAX_JSON_NESTING } from "../../src/bundle/format.js";
import { Mulberry32 } from "../../src/data/prng.js";

export class Draw {
  private readonly generator: Mulberry32;
  constructor(seed: number) {
    this.generator = new Mulberry32(seed);
  }
  unit(): number {
    return this.generator.nextUint32() / 4294967296;
  }
  below(n: number): number {
    return Math.floor(this.unit() * n);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.below(list.length)];
  }
  chance(p: number): boolean {
    return this.unit() < p;
  }
}

const IDENTIFIER_FIRST = "ABCXYZabcxyz0189";
const IDENTIFIER_REST = `${IDENTIFIER_FIRST}._@=+-`;
const ODD_CHARS = ["/", " ", '"', "\\", "é", "\u0000", "\n", "~", "*", "\u2028"];
const HEX = "0123456789abcdef";

export function identifier(draw: Draw): string {
  // Lengths around the pattern's limit of 128 characters, mostly short.
  const length = draw.chance(0.1) ? 126 + draw.below(4) : 1 + draw.below(12);
  let text = draw.pick([...IDENTIFIER_FIRST]);
  for (let k = 1; k < length; k++) text += draw.pick([...IDENTIFIER_REST]);
  if (draw.chance(0.05)) text = draw.pick(["", ".x", "-1", "_a"]) + text.slice(1);
  if (draw.chance(0.05)) text += draw.pick(ODD_CHARS);
  return text;
}

/** Mostly counts, sometimes what a schema or the canonical form refuses or reads otherwise. */
export function count(draw: Draw): unknown {
  if (draw.chance(0.85)) return draw.pick([0, 1, 2, 7, 16, 32, 255, 4096, 123456789]) + draw.below(3);
  return draw.pick([
    -1,
    0.5,
    -0,
    1e15 - 1,
    1e15,
    2 ** 53,
    2 ** 53 + 2,
    1e21,
    1.5e300,
    "7",
    null,
    true,
    [1],
    {},
  ]);
}

export function sha256(draw: Draw): string {
  let text = "";
  for (let k = 0; k < 64; k++) text += draw.pick([...HEX]);
  if (draw.chance(0.05))
    return draw.pick([text.toUpperCase(), text.slice(1), `${text}0`, `${text.slice(1)}g`]);
  return text;
}

/** Canonical text where canonical JSON can hold the value, else JSON.stringify's. */
export function canonicalText(value: unknown): string {
  try {
    return canonicalJsonString(value);
  } catch {
    return JSON.stringify(value);
  }
}

const INSERTED = [
  ...'{}[]":,0123456789-+.eE \t\r\n\\/aefkstux',
  "\u00e9",
  "\ufeff",
  "\u0000",
  "NaN",
  "Infinity",
  "1e400",
  "-0",
  "00",
  "\\u0030",
  "true",
  "null",
];

/**
 * Near misses of one line that hold for any object line: bytes inserted, replaced or deleted,
 * members swapped, repeated or moved, whitespace, a byte order mark, numbers written otherwise,
 * too deep a value, an escaped or repeated key, an extra key, a cut line.
 */
export function lineMutations(text: string, draw: Draw): string[] {
  const out: string[] = [];
  const at = () => draw.below(text.length + 1);
  for (let k = 0; k < 6; k++) {
    const position = at();
    const piece = draw.pick(INSERTED);
    const kind = draw.below(3);
    if (kind === 0) out.push(text.slice(0, position) + piece + text.slice(position));
    else if (kind === 1) out.push(text.slice(0, position) + piece + text.slice(position + 1));
    else out.push(text.slice(0, position) + text.slice(position + 1 + draw.below(3)));
  }
  const members = text.slice(1, -1).match(/"[^"]+":(\{[^}]*\}|"[^"]*"|[^,]+)/g) ?? [];
  if (members.length > 1) {
    const i = draw.below(members.length);
    const j = draw.below(members.length);
    const swapped = [...members];
    [swapped[i], swapped[j]] = [swapped[j], swapped[i]];
    out.push(`{${swapped.join(",")}}`);
    out.push(`{${[...members, members[i]].join(",")}}`);
    out.push(`{${members.slice(0, i).concat(members.slice(i)).join(",")}}`);
    out.push(`{${[members[i], ...members].join(",")}}`);
  }
  const deep = `${"[".repeat(MAX_JSON_NESTING + 1)}1${"]".repeat(MAX_JSON_NESTING + 1)}`;
  out.push(
    `\ufeff${text}`,
    `${text}\r`,
    ` ${text}`,
    `${text} `,
    text.replace(/:(\d+)/, ":$1.0"),
    text.replace(/:(\d+)/, ":$1e0"),
    text.replace(/:(\d+)/, ":0$1"),
    text.replace(/:(\d+)/, ":-$1"),
    text.replace(/:(\d+)/, ":1e400"),
    text.replace(/:(\d+)/, ":NaN"),
    text.replace(/:(\d+)/, `:${deep}`),
    text.replace(/"(\d+)":/, '"\\u0031$1":'),
    text.replace(/"(\d+)":/, '"$1","$1":'),
    text.replace(/"method":"(.)/, '"method":"\\u00$1'),
    text.replace(/}$/, ',"zz":1}'),
    text.replace(/^\{/, '{"__proto__":{},'),
    text.slice(0, -1),
  );
  return out;
}

/** What one differential run saw: lines tried, read by the one-pass reader, meant to be read, accepted by the full path. */
export interface DifferentialCounts {
  lines: number;
  read: number;
  readable: number;
  fullAccepted: number;
}

/**
 * The seeded differential loop both one-pass readers are held to: each round draws a value,
 * writes its canonical text and the text's near misses, and reads each line both ways. Wherever
 * the reader reads a line, the full path must accept it and give the same value with the same
 * key order; every line the full path accepts that the reader is meant to read it must read.
 */
export function differentialRun(options: {
  seed: number;
  rounds: number;
  /** A drawn value, mostly valid. */
  value: (draw: Draw) => unknown;
  /** Near misses of a line's text. */
  mutations: (text: string, draw: Draw) => string[];
  /** The one-pass reader: the line in bytes [start, end), or undefined (left to the full path). */
  match: (bytes: Buffer, start: number, end: number) => unknown;
  /** The full path's verdict: its value when it parses strictly and matches the schema. */
  fullPath: (bytes: Buffer) => { ok: true; value: unknown } | { ok: false };
  /** Whether a value the full path accepts is one the reader is meant to read (some are left to the full path by design). */
  meantToRead: (value: unknown) => boolean;
}): DifferentialCounts {
  const draw = new Draw(options.seed);
  const counts: DifferentialCounts = { lines: 0, read: 0, readable: 0, fullAccepted: 0 };
  for (let round = 0; round < options.rounds; round++) {
    const original = canonicalText(options.value(draw));
    for (const text of [original, ...options.mutations(original, draw)]) {
      counts.lines += 1;
      const bytes = Buffer.from(text, "utf8");
      const full = options.fullPath(bytes);
      // Read from inside a larger buffer, as lines are read from a chunk.
      const framed = Buffer.concat([Buffer.from("x\n"), bytes, Buffer.from("\ny")]);
      const matched = options.match(framed, 2, 2 + bytes.length);
      if (full.ok) counts.fullAccepted += 1;
      if (matched !== undefined) {
        counts.read += 1;
        assert.ok(full.ok, `read a line the full path refuses: ${text}`);
        assert.deepStrictEqual(matched, full.value, text);
        assert.equal(JSON.stringify(matched), JSON.stringify(full.value), `key order: ${text}`);
      }
      if (full.ok && options.meantToRead(full.value)) {
        counts.readable += 1;
        assert.notEqual(matched, undefined, `a line the reader is meant to read was not read: ${text}`);
      }
    }
  }
  return counts;
}
