/**
 * The fuzzer's semantic level (scripts/fuzz-verify.ts `--levels semantic`): mutants a dishonest
 * producer holding a trusted key makes. Each stays well-formed JSON of the run's shape (most
 * stay schema-valid), summary.json and report.md are made again from the changed run
 * (adversarial-bundles.ts writeRunParts) and every entry is re-hashed and re-signed, so only the
 * checks after schemas can refuse it: two samples' records swapped, one method's params moved
 * within their ranges, a sample id given to another sample, a fingerprint's layer shifted,
 * numbers at the edges (0, -0, subnormals, 2^53, the largest float32, "NaN" as a string).
 *
 * A semantic mutant that passes verify is a finding unless what it changed is the signer's word
 * by design (docs/THREAT-MODEL.md's table: timings, peak memory, descriptive environment fields,
 * the bootstrap seed, the generated token lists): the fuzzer then replays the sample it changed,
 * and one that passes the replay too is flagged.
 */
import type { FingerprintLine, SampleRecord } from "../src/bundle/types.js";
import { type ForgerKey, type RunParts, resign, runParts, writeRunParts } from "./adversarial-bundles.js";
import type { Draw } from "./fuzz-verify.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonPath = (string | number)[];

/** A record's fields that say which sample it is (the rest is what was measured on it). */
const IDENTITY_FIELDS = ["sampleId", "sampleIndex", "tokenHash", "document", "offset"] as const;

/**
 * Paths (as dotted prefixes) THREAT-MODEL.md lists as the signer's word even with a full
 * replay, or never checked: a mutant that only changes these passing verify is no finding.
 */
const SIGNERS_WORD = [
  "records.timingsMs",
  "records.peakRssBytes",
  "records.generation.tokens",
  "records.generation.baselineTokens",
  "config.bootstrap.seed",
  "config.tolerances",
  "config.name",
  "config.hardware",
  "environment.os",
  "environment.cpu",
  "environment.memory",
  "environment.gpus",
  "environment.node",
  "environment.onnxruntime",
  "environment.packages",
  "environment.createdAt",
  "environment.tool",
];

/** Numbers at the edges a float64 and JSON allow, and one that is a string. */
export const SEMANTIC_EDGE_VALUES: readonly Json[] = [
  0,
  -0,
  5e-324,
  2.2250738585072014e-308 / 2,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  3.4028234663852886e38,
  -3.4028234663852886e38,
  "NaN",
  "-0",
];

export interface SemanticMutant {
  entries: Map<string, Buffer>;
  what: string;
  /** The change is to a field that stays the signer's word: passing verify is no finding. */
  signersWord: boolean;
  /** The evaluation sample (its index) a replay must re-run to see the change. */
  sample: number;
}

function numericLeaves(value: Json, path: JsonPath, into: JsonPath[], limit = 20000): JsonPath[] {
  if (into.length >= limit) return into;
  if (typeof value === "number") into.push(path);
  else if (Array.isArray(value))
    for (const [i, child] of value.entries()) numericLeaves(child, [...path, i], into);
  else if (value !== null && typeof value === "object")
    for (const [key, child] of Object.entries(value)) numericLeaves(child, [...path, key], into);
  return into;
}

function setAt(root: Json, path: JsonPath, value: Json): void {
  let node = root as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, Json>;
  node[path[path.length - 1]] = value;
}

function getAt(root: Json, path: JsonPath): Json {
  return path.reduce<Json>((node, key) => (node as Record<string | number, Json>)[key], root);
}

function dotted(entry: string, path: JsonPath): string {
  return [entry, ...path.filter((key) => typeof key === "string")].join(".");
}

function isSignersWord(entry: string, path: JsonPath): boolean {
  const at = dotted(entry, path);
  return SIGNERS_WORD.some((prefix) => at === prefix || at.startsWith(`${prefix}.`));
}

function sampleIds(records: readonly SampleRecord[]): string[] {
  return [...new Set(records.map((record) => record.sampleId))];
}

function show(value: Json): string {
  return Object.is(value, -0) ? "-0" : JSON.stringify(value);
}

/** A value moved within what its kind of param allows: booleans flipped, counts by one or twice, fractions nudged. */
function movedParam(draw: Draw, old: number | boolean): number | boolean {
  if (typeof old === "boolean") return !old;
  if (Number.isInteger(old))
    return draw.pick([old + 1, Math.max(0, old - 1), old * 2, Math.max(1, old >> 1)]);
  if (old > 0 && old < 1) return draw.pick([old / 2, Math.min(1, old * 1.5), old + 0.01, old - 0.01]);
  return draw.pick([old * 2, old / 2, old + 1]);
}

/** One semantic change to the run's parts; returns what was done, whether it is the signer's word, and the sample. */
function change(draw: Draw, parts: RunParts): { what: string; signersWord: boolean; sample: number } {
  const records = parts.records as unknown as Record<string, Json>[];
  const ids = sampleIds(parts.records);
  const indexOf = (id: string) => parts.records.find((record) => record.sampleId === id)?.sampleIndex ?? 0;
  const two = () => {
    const a = draw.pick(ids);
    const others = ids.filter((id) => id !== a);
    return [a, others.length > 0 ? draw.pick(others) : a] as const;
  };
  const methods = [...new Set(parts.records.map((record) => record.method))];
  switch (draw.int(6)) {
    case 0: {
      // The measured part of two samples' records swapped, for one method or every method.
      const [a, b] = two();
      const every = draw.chance(0.5);
      const method = draw.pick(methods);
      for (const m of every ? methods : [method]) {
        const ra = records.find((r) => r.sampleId === a && r.method === m);
        const rb = records.find((r) => r.sampleId === b && r.method === m);
        if (ra === undefined || rb === undefined) continue;
        for (const key of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
          if ((IDENTITY_FIELDS as readonly string[]).includes(key) || key === "method") continue;
          [ra[key], rb[key]] = [rb[key], ra[key]];
        }
      }
      return {
        what: `records of ${a} and ${b} swapped (${every ? "every method" : method})`,
        signersWord: false,
        sample: indexOf(a),
      };
    }
    case 1: {
      // One method's param moved within its kind's range.
      const candidates = parts.config.methods
        .map((method, at) => ({ at, leaves: paramLeaves(method.params as Json) }))
        .filter((m) => m.leaves.length > 0);
      if (candidates.length === 0) return { what: "no params to move", signersWord: true, sample: 0 };
      const { at, leaves } = draw.pick(candidates);
      const path = draw.pick(leaves);
      const params = parts.config.methods[at].params as Json;
      const old = getAt(params, path) as number | boolean;
      const moved = movedParam(draw, old);
      setAt(params, path, moved);
      return {
        what: `config methods[${at}] (${parts.config.methods[at].name}) params.${path.join(".")} ${old} -> ${moved}`,
        signersWord: false,
        sample: indexOf(ids[0]),
      };
    }
    case 2: {
      // A sample's records (and fingerprints) given another sample's identity.
      const [a, b] = two();
      const source = records.find((r) => r.sampleId === a) as Record<string, Json>;
      const fields = draw.chance(0.5) ? ["sampleId"] : [...IDENTITY_FIELDS];
      for (const record of records)
        if (record.sampleId === b) for (const field of fields) record[field] = source[field];
      if (fields.includes("sampleId"))
        for (const line of parts.fingerprints as unknown as Record<string, Json>[])
          if (line.sampleId === b) line.sampleId = a;
      return {
        what: `sample ${b} given ${a}'s ${fields.join(", ")}`,
        signersWord: false,
        sample: indexOf(b),
      };
    }
    case 3: {
      // A layer fingerprint's layer shifted, or a (sample, method)'s layers rotated.
      const layers = parts.fingerprints.filter(
        (line): line is Extract<FingerprintLine, { layer: number }> => "layer" in line,
      );
      if (layers.length === 0) return { what: "no layer fingerprints", signersWord: true, sample: 0 };
      const line = draw.pick(layers);
      const count = parts.environment.model.layers;
      if (draw.chance(0.5)) {
        const old = line.layer;
        line.layer = draw.pick([old + 1, old - 1, count, count - 1 - old]);
        return {
          what: `fingerprint ${line.sampleId}/${line.method} layer ${old} -> ${line.layer}`,
          signersWord: false,
          sample: indexOf(line.sampleId),
        };
      }
      for (const other of layers)
        if (other.sampleId === line.sampleId && other.method === line.method)
          other.layer = (other.layer + 1) % count;
      return {
        what: `fingerprints ${line.sampleId}/${line.method} layers rotated by one`,
        signersWord: false,
        sample: indexOf(line.sampleId),
      };
    }
    default: {
      // A number at the edges, anywhere in the run's files.
      const entry = draw.pick(["records", "records", "fingerprints", "config", "environment"] as const);
      let root: Json;
      let sample = 0;
      let prefix: JsonPath = [];
      if (entry === "records" || entry === "fingerprints") {
        const lines = (entry === "records" ? parts.records : parts.fingerprints) as unknown as Json[];
        const at = draw.int(lines.length);
        root = lines[at];
        sample = indexOf((root as { sampleId: string }).sampleId);
        prefix = [at];
      } else {
        root = (entry === "config" ? parts.config : parts.environment) as unknown as Json;
      }
      const leaves = numericLeaves(root, [], []);
      if (leaves.length === 0) return { what: `no numbers in ${entry}`, signersWord: true, sample };
      const path = draw.pick(leaves);
      const old = getAt(root, path);
      const value = draw.pick(SEMANTIC_EDGE_VALUES);
      setAt(root, path, value);
      return {
        what: `${entry}${JSON.stringify([...prefix, ...path])} ${show(old)} -> ${show(value)}`,
        signersWord: isSignersWord(entry, path),
        sample,
      };
    }
  }
}

function paramLeaves(params: Json): JsonPath[] {
  const leaves: JsonPath[] = [];
  const walk = (node: Json, path: JsonPath) => {
    if (typeof node === "number" || typeof node === "boolean") leaves.push(path);
    else if (Array.isArray(node)) for (const [i, child] of node.entries()) walk(child, [...path, i]);
    else if (node !== null && typeof node === "object")
      for (const [key, child] of Object.entries(node)) walk(child, [...path, key]);
  };
  walk(params, []);
  return leaves;
}

const RUN_ENTRIES = ["config.json", "environment.json", "records.jsonl", "fingerprints.jsonl"];

/**
 * One semantic mutant of a bundle's entries, re-made and re-signed with `key`; undefined when
 * the change left the run's files as they were (a no-op is not a mutant) or the changed run no
 * longer summarizes.
 */
export function semanticMutant(
  draw: Draw,
  entries: Map<string, Buffer>,
  key: ForgerKey,
): SemanticMutant | undefined {
  const parts = runParts(entries);
  const made = change(draw, parts);
  const mutated = new Map(entries);
  let what = made.what;
  try {
    writeRunParts(mutated, parts);
  } catch {
    // A value summarize refuses ("NaN" as a string, say): the run's files changed, the old summary kept.
    try {
      writeRunParts(mutated, parts, false);
      what += " (does not summarize: summary and report kept)";
    } catch {
      return undefined;
    }
  }
  // writeRunParts writes canonical JSON, as prove does: compare with the original run made the same way.
  const unchanged = new Map(entries);
  writeRunParts(unchanged, runParts(entries), false);
  if (RUN_ENTRIES.every((name) => (mutated.get(name) as Buffer).equals(unchanged.get(name) as Buffer)))
    return undefined;
  resign(mutated, key);
  return { entries: mutated, what, signersWord: made.signersWord, sample: made.sample };
}
