/**
 * Canonical JSON: object keys sorted (UTF-16 code unit order, as RFC 8785), no
 * insignificant whitespace, UTF-8, numbers in JavaScript's shortest round-trip form.
 * The same content always gives the same bytes, which is what lets a manifest hash it.
 * Values JSON cannot represent faithfully (NaN, Infinity, undefined, BigInt, functions,
 * class instances, cycles) are errors naming their path, never silently dropped.
 */
import { SpgError } from "../errors.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

function childPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function serialize(value: unknown, path: string, ancestors: Set<object>, out: string[]): void {
  if (value === null) {
    out.push("null");
    return;
  }
  switch (typeof value) {
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new SpgError("E_NON_FINITE", `${path} is ${String(value)}; JSON cannot hold it`, {
          field: path,
          fix: "a measurement produced a non-finite number: find why and fail the run instead of writing it",
        });
      }
      // JSON.stringify gives the shortest round-trip form and writes -0 as 0.
      out.push(JSON.stringify(value));
      return;
    case "string":
      // Lone surrogates come out as \uXXXX escapes, so the result is always valid UTF-8.
      out.push(JSON.stringify(value));
      return;
    case "undefined":
      throw new SpgError("E_NON_FINITE", `${path} is undefined; JSON cannot hold it`, {
        field: path,
        fix: "give the field a value (null when it is deliberately empty) or leave the key out",
      });
    case "object":
      break;
    default:
      throw new SpgError("E_NON_JSON", `${path} is a ${typeof value}; JSON cannot hold it`, {
        field: path,
        fix: "convert it to a number or string before serializing",
      });
  }
  const object = value as object;
  if (ancestors.has(object)) {
    throw new SpgError("E_NON_JSON", `${path} refers back to itself (a cycle)`, {
      field: path,
      fix: "serialize a tree, not a graph",
    });
  }
  ancestors.add(object);
  if (Array.isArray(object)) {
    out.push("[");
    for (let index = 0; index < object.length; index++) {
      if (index > 0) out.push(",");
      serialize(object[index], childPath(path, index), ancestors, out);
    }
    out.push("]");
  } else {
    const prototype = Object.getPrototypeOf(object);
    if (prototype !== Object.prototype && prototype !== null) {
      const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw new SpgError("E_NON_JSON", `${path} is a ${kind}, not a plain object`, {
        field: path,
        fix: "convert it to plain objects, arrays, strings and numbers (e.g. Array.from for typed arrays)",
      });
    }
    const keys = Object.keys(object).sort();
    out.push("{");
    keys.forEach((key, index) => {
      if (index > 0) out.push(",");
      out.push(JSON.stringify(key), ":");
      serialize((object as Record<string, unknown>)[key], childPath(path, key), ancestors, out);
    });
    out.push("}");
  }
  ancestors.delete(object);
}

/** Canonical JSON text of a value. */
export function canonicalJsonString(value: unknown): string {
  const out: string[] = [];
  serialize(value, "$", new Set(), out);
  return out.join("");
}

/** Canonical JSON as UTF-8 bytes. */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(canonicalJsonString(value), "utf8");
}

/** JSON Lines: one canonical JSON value per line, each line ending in "\n". */
export function canonicalJsonl(rows: readonly unknown[]): Buffer {
  const lines: string[] = [];
  rows.forEach((row, index) => {
    const out: string[] = [];
    serialize(row, `$[${index}]`, new Set(), out);
    lines.push(out.join(""), "\n");
  });
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
