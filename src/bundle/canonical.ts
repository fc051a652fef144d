/**
 * Canonical JSON: object keys sorted (UTF-16 code unit order, as RFC 8785), no
 * insignificant whitespace, UTF-8, numbers in JavaScript's shortest round-trip form.
 * The same content always gives the same bytes, which is what lets a manifest hash it.
 * Values JSON cannot represent faithfully (NaN, Infinity, undefined, BigInt, functions,
 * class instances, cycles) are errors naming their path, never silently dropped.
 */
import { SpgError } from "../errors.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

function formatPath(keys: readonly (string | number)[]): string {
  let path = "$";
  for (const key of keys) {
    if (typeof key === "number") path += `[${key}]`;
    else path += /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
  }
  return path;
}

function nonFinite(keys: readonly (string | number)[], what: string): SpgError {
  const path = formatPath(keys);
  return new SpgError("E_NON_FINITE", `${path} is ${what}; JSON cannot hold it`, {
    field: path,
    fix:
      what === "undefined"
        ? "give the field a value (null when it is deliberately empty) or leave the key out"
        : "a measurement produced a non-finite number: find why and fail the run instead of writing it",
  });
}

function nonJson(keys: readonly (string | number)[], what: string, fix: string): SpgError {
  const path = formatPath(keys);
  return new SpgError("E_NON_JSON", `${path} ${what}`, { field: path, fix });
}

/**
 * Check that `value` is plain JSON data (finite numbers, no undefined, plain objects and
 * arrays, no cycles) and collect every object key into `names`. `keys` is the path from
 * the root, only turned into text for an error message.
 */
function validate(
  value: unknown,
  keys: (string | number)[],
  ancestors: Set<object>,
  names: Set<string>,
): void {
  switch (typeof value) {
    case "boolean":
    case "string":
      return;
    case "number":
      if (!Number.isFinite(value)) throw nonFinite(keys, String(value));
      return;
    case "undefined":
      throw nonFinite(keys, "undefined");
    case "object":
      if (value === null) return;
      break;
    default:
      throw nonJson(
        keys,
        `is a ${typeof value}; JSON cannot hold it`,
        "convert it to a number or string first",
      );
  }
  if (ancestors.has(value))
    throw nonJson(keys, "refers back to itself (a cycle)", "serialize a tree, not a graph");
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      keys.push(index);
      validate(value[index], keys, ancestors, names);
      keys.pop();
    }
  } else {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw nonJson(
        keys,
        `is a ${kind}, not a plain object`,
        "convert it to plain objects, arrays, strings and numbers (e.g. Array.from for typed arrays)",
      );
    }
    for (const key of Object.keys(value)) {
      names.add(key);
      keys.push(key);
      validate((value as Record<string, unknown>)[key], keys, ancestors, names);
      keys.pop();
    }
  }
  ancestors.delete(value);
}

/**
 * Past this many distinct keys in one document, JSON.stringify's property list (scanned
 * once per object) would cost more than serializing by hand.
 */
const MAX_PROPERTY_LIST = 512;

/**
 * Canonical text of an already validated value. JSON.stringify with a property list
 * writes every object's keys in the list's order (ECMA-262 SerializeJSONObject), integer-
 * like keys included, so the sorted list of all keys gives sorted objects, natively.
 */
function serializeValidated(value: unknown, names: Set<string>): string {
  if (names.size > MAX_PROPERTY_LIST) return canonicalJsonStringByHand(value);
  // The property list is looked up on every object, inherited properties included: a key that
  // Object.prototype has ("__proto__", "constructor", ...) would be written into objects that
  // lack it. Documents naming one (hostile input) are serialized by hand.
  for (const name of names) if (name in Object.prototype) return canonicalJsonStringByHand(value);
  return JSON.stringify(value, [...names].sort());
}

/**
 * The same canonical text built by hand, one value at a time: the reference the fast
 * path is tested against, and the path for documents with very many distinct keys.
 */
export function canonicalJsonStringByHand(value: unknown): string {
  return serialize(value, [], new Set());
}

/**
 * Serialize `value`; `keys` is the path from the root (only turned into text for an
 * error message, since building it for every value would dominate the cost).
 */
function serialize(value: unknown, keys: (string | number)[], ancestors: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) {
        const path = formatPath(keys);
        throw new SpgError("E_NON_FINITE", `${path} is ${String(value)}; JSON cannot hold it`, {
          field: path,
          fix: "a measurement produced a non-finite number: find why and fail the run instead of writing it",
        });
      }
      // JSON.stringify gives the shortest round-trip form and writes -0 as 0.
      return JSON.stringify(value);
    case "string":
      // Lone surrogates come out as \uXXXX escapes, so the result is always valid UTF-8.
      return JSON.stringify(value);
    case "undefined": {
      const path = formatPath(keys);
      throw new SpgError("E_NON_FINITE", `${path} is undefined; JSON cannot hold it`, {
        field: path,
        fix: "give the field a value (null when it is deliberately empty) or leave the key out",
      });
    }
    case "object":
      break;
    default: {
      const path = formatPath(keys);
      throw new SpgError("E_NON_JSON", `${path} is a ${typeof value}; JSON cannot hold it`, {
        field: path,
        fix: "convert it to a number or string before serializing",
      });
    }
  }
  const object = value as object;
  if (ancestors.has(object)) {
    const path = formatPath(keys);
    throw new SpgError("E_NON_JSON", `${path} refers back to itself (a cycle)`, {
      field: path,
      fix: "serialize a tree, not a graph",
    });
  }
  ancestors.add(object);
  let out: string;
  if (Array.isArray(object)) {
    out = "[";
    for (let index = 0; index < object.length; index++) {
      if (index > 0) out += ",";
      keys.push(index);
      out += serialize(object[index], keys, ancestors);
      keys.pop();
    }
    out += "]";
  } else {
    const prototype = Object.getPrototypeOf(object);
    if (prototype !== Object.prototype && prototype !== null) {
      const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? "object";
      const path = formatPath(keys);
      throw new SpgError("E_NON_JSON", `${path} is a ${kind}, not a plain object`, {
        field: path,
        fix: "convert it to plain objects, arrays, strings and numbers (e.g. Array.from for typed arrays)",
      });
    }
    const names = Object.keys(object).sort();
    out = "{";
    for (let index = 0; index < names.length; index++) {
      const key = names[index];
      if (index > 0) out += ",";
      keys.push(key);
      out += `${JSON.stringify(key)}:${serialize((object as Record<string, unknown>)[key], keys, ancestors)}`;
      keys.pop();
    }
    out += "}";
  }
  ancestors.delete(object);
  return out;
}

/** Canonical JSON text of a value. */
export function canonicalJsonString(value: unknown): string {
  const names = new Set<string>();
  validate(value, [], new Set(), names);
  return serializeValidated(value, names);
}

/** Canonical JSON as UTF-8 bytes. */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(canonicalJsonString(value), "utf8");
}

/** JSON Lines: one canonical JSON value per line, each line ending in "\n". */
export function canonicalJsonl(rows: readonly unknown[]): Buffer {
  const lines: string[] = [];
  const ancestors = new Set<object>();
  for (let index = 0; index < rows.length; index++) {
    const names = new Set<string>();
    validate(rows[index], [index], ancestors, names);
    lines.push(serializeValidated(rows[index], names), "\n");
  }
  return Buffer.from(lines.join(""), "utf8");
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array | string, file: string | undefined): string {
  if (typeof bytes === "string") return bytes;
  try {
    return strictUtf8.decode(bytes);
  } catch (cause) {
    throw new SpgError("E_JSON_PARSE", "not valid UTF-8", {
      file,
      fix: "JSON files in a bundle must be UTF-8",
      cause,
    });
  }
}

/** Parse JSON bytes (strict UTF-8); errors name the file. */
export function parseJson(bytes: Uint8Array | string, file?: string): JsonValue {
  const text = decodeUtf8(bytes, file);
  try {
    return JSON.parse(text) as JsonValue;
  } catch (cause) {
    throw new SpgError("E_JSON_PARSE", `not valid JSON: ${(cause as Error).message}`, {
      file,
      fix: "the file is damaged or was not written by spg",
      cause,
    });
  }
}

/**
 * Parse JSON Lines: every line (each ending in "\n") is one JSON value; errors name the
 * file and the 1-based line. An empty file is zero rows.
 */
export function parseJsonl(bytes: Uint8Array | string, file?: string): JsonValue[] {
  const text = decodeUtf8(bytes, file);
  if (text.length === 0) return [];
  if (!text.endsWith("\n")) {
    throw new SpgError("E_JSON_PARSE", "the last line does not end with a newline (truncated?)", {
      file,
      fix: "JSON Lines files written by spg end every line with \\n",
    });
  }
  const lines = text.slice(0, -1).split("\n");
  return lines.map((line, index) => {
    try {
      return JSON.parse(line) as JsonValue;
    } catch (cause) {
      throw new SpgError("E_JSON_PARSE", `line ${index + 1} is not valid JSON: ${(cause as Error).message}`, {
        file,
        field: `line ${index + 1}`,
        fix: "the file is damaged or was not written by spg",
        cause,
      });
    }
  });
}

/** True when the bytes are exactly the canonical form of what they parse to. */
export function isCanonicalJson(bytes: Uint8Array): boolean {
  try {
    return Buffer.from(bytes).equals(canonicalJson(parseJson(bytes)));
  } catch {
    return false;
  }
}

/** True when the bytes are exactly the canonical JSON Lines form of what they parse to. */
export function isCanonicalJsonl(bytes: Uint8Array): boolean {
  try {
    return Buffer.from(bytes).equals(canonicalJsonl(parseJsonl(bytes)));
  } catch {
    return false;
  }
}
