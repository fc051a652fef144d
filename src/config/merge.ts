/**
 * Overlay merging for run configurations, with provenance: every value in the merged
 * result remembers which layer (a preset file, a config file, a flag) set it, so a
 * validation error can name the file or flag to fix.
 *
 * Rules (documented in configs/README.md):
 * - objects merge key by key, recursively;
 * - arrays and scalars are replaced as a whole (claims, poolingKernels, layerKeepRatios);
 * - `methods` merge by `name`: an entry whose name exists deep-merges into it (a changed
 *   `kind` replaces the entry instead), a new name is appended, `remove: true` deletes;
 * - after all layers, a method with `from: <name>` starts from that method's kind and
 *   params and deep-merges its own params on top (ablation variants are written so).
 */
import { SpgError } from "../errors.js";

export type PlainObject = Record<string, unknown>;

/** One overlay: where it came from (a path, or a flag such as "--samples") and its data. */
export interface ConfigLayer {
  source: string;
  data: PlainObject;
}

/** Provenance keys are JSON pointers; methods are keyed by name (`/methods/@spg/params`). */
export type Provenance = Map<string, string>;

export interface MergedConfig {
  value: PlainObject;
  provenance: Provenance;
}

export function isPlainObject(value: unknown): value is PlainObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function pointerToken(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function setProvenance(provenance: Provenance, pointer: string, source: string): void {
  for (const key of [...provenance.keys()]) {
    if (key.startsWith(`${pointer}/`)) provenance.delete(key);
  }
  provenance.set(pointer, source);
}

function mergeObject(
  target: PlainObject,
  overlay: PlainObject,
  pointer: string,
  source: string,
  provenance: Provenance,
): void {
  for (const [key, overlayValue] of Object.entries(overlay)) {
    const childPointer = `${pointer}/${pointerToken(key)}`;
    if (pointer === "" && key === "methods") {
      mergeMethods(target, overlayValue, source, provenance);
    } else if (isPlainObject(overlayValue) && isPlainObject(target[key])) {
      mergeObject(target[key] as PlainObject, overlayValue, childPointer, source, provenance);
    } else {
      target[key] = clone(overlayValue);
      setProvenance(provenance, childPointer, source);
    }
  }
}

function methodKey(entry: unknown, position: number): string {
  return isPlainObject(entry) && typeof entry.name === "string" ? entry.name : `#${position}`;
}

function mergeMethods(target: PlainObject, overlay: unknown, source: string, provenance: Provenance): void {
  if (!Array.isArray(overlay) || !Array.isArray(target.methods)) {
    // Not a list (the schema will say so), or nothing to merge into: take it as it is.
    target.methods = clone(overlay);
    setProvenance(provenance, "/methods", source);
    return;
  }
  if (!provenance.has("/methods")) provenance.set("/methods", source);
  const methods = target.methods as unknown[];
  overlay.forEach((entry, position) => {
    const name = methodKey(entry, position);
    const pointer = `/methods/@${pointerToken(name)}`;
    const index = methods.findIndex((existing, i) => methodKey(existing, i) === name);
    if (isPlainObject(entry) && entry.remove === true) {
      if (index < 0) {
        throw new SpgError(
          "E_CONFIG_INVALID",
          `method "${name}" is marked remove: true but no earlier layer defines it`,
          {
            file: source,
            field: "methods",
            fix: `drop the entry, or name one of: ${methods.map(methodKey).join(", ")}`,
          },
        );
      }
      methods.splice(index, 1);
      setProvenance(provenance, pointer, source);
      provenance.delete(pointer);
      return;
    }
    const existing = index >= 0 ? methods[index] : undefined;
    const sameKind =
      isPlainObject(existing) && isPlainObject(entry) && (entry.kind ?? existing.kind) === existing.kind;
    if (isPlainObject(existing) && isPlainObject(entry) && sameKind) {
      mergeObject(existing, entry, pointer, source, provenance);
    } else if (index >= 0) {
      methods[index] = clone(entry);
      setProvenance(provenance, pointer, source);
    } else {
      methods.push(clone(entry));
      setProvenance(provenance, pointer, source);
    }
  });
}

/** Deep-merges plain objects (arrays and scalars replaced); inputs are not modified. */
export function deepMerge(base: PlainObject, overlay: PlainObject): PlainObject {
  const result = clone(base);
  mergeObject(result, overlay, "/~deep", "", new Map());
  return result;
}

/** Applies the layers in order (later wins) and resolves `from` in methods. */
export function mergeLayers(layers: readonly ConfigLayer[]): MergedConfig {
  const value: PlainObject = {};
  const provenance: Provenance = new Map();
  for (const layer of layers) mergeObject(value, layer.data, "", layer.source, provenance);
  if (Array.isArray(value.methods)) value.methods = resolveMethodBases(value.methods, provenance);
  return { value, provenance };
}

/** A method with `from: <name>` inherits that method's kind and params; its own params win. */
function resolveMethodBases(methods: unknown[], provenance: Provenance): unknown[] {
  const byName = new Map<string, PlainObject>();
  methods.forEach((entry, i) => {
    if (isPlainObject(entry)) byName.set(methodKey(entry, i), entry);
  });
  const resolved = new Map<string, PlainObject>();
  const resolve = (entry: PlainObject, name: string, chain: string[]): PlainObject => {
    const done = resolved.get(name);
    if (done) return done;
    if (entry.from === undefined) return entry;
    const source = provenance.get(`/methods/@${pointerToken(name)}`) ?? "configuration";
    const baseName = entry.from;
    if (typeof baseName !== "string" || !byName.has(baseName) || chain.includes(baseName)) {
      const why =
        typeof baseName === "string" && chain.includes(baseName)
          ? `"from" makes a cycle: ${[...chain, baseName].join(" -> ")}`
          : `"from" names no method: ${JSON.stringify(baseName)}`;
      throw new SpgError("E_CONFIG_INVALID", `method "${name}": ${why}`, {
        file: source,
        field: `methods.${name}.from`,
        fix: `set from to one of: ${[...byName.keys()].filter((n) => n !== name).join(", ")}`,
      });
    }
    const base = resolve(byName.get(baseName)!, baseName, [...chain, name]);
    if (entry.kind !== undefined && entry.kind !== base.kind) {
      throw new SpgError(
        "E_CONFIG_INVALID",
        `method "${name}" derives from "${baseName}" (kind ${String(base.kind)}) but sets kind ${String(entry.kind)}`,
        { file: source, field: `methods.${name}.kind`, fix: `drop kind, or drop from and give all params` },
      );
    }
    const ownParams = isPlainObject(entry.params) ? entry.params : {};
    const baseParams = isPlainObject(base.params) ? base.params : {};
    const { from: _from, ...rest } = entry;
    const result: PlainObject = { ...rest, kind: base.kind, params: deepMerge(baseParams, ownParams) };
    resolved.set(name, result);
    return result;
  };
  return methods.map((entry, i) =>
    isPlainObject(entry) ? resolve(entry, methodKey(entry, i), [methodKey(entry, i)]) : entry,
  );
}

/**
 * The layer that set the value at a JSON pointer of the final config (as ajv reports it,
 * methods by index), or undefined when nothing set it (a missing required field).
 */
export function sourceOf(pointer: string, merged: MergedConfig): string | undefined {
  let key = pointer;
  const match = /^\/methods\/(\d+)(\/.*)?$/.exec(pointer);
  if (match && Array.isArray(merged.value.methods)) {
    const position = Number(match[1]);
    const entry = merged.value.methods[position];
    if (entry !== undefined) key = `/methods/@${pointerToken(methodKey(entry, position))}${match[2] ?? ""}`;
  }
  for (;;) {
    const found = merged.provenance.get(key);
    if (found !== undefined) return found;
    if (key === "") return undefined;
    key = key.slice(0, key.lastIndexOf("/"));
  }
}
