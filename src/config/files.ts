/**
 * Config files on disk: presets by name and YAML/JSON reading. Kept apart from load.ts (which
 * validates whole run configs and asks weights/ about policies) so weights/ can read its
 * policy presets without importing the loader back.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { isMap, parseDocument } from "yaml";
import { SpgError } from "../errors.js";
import { configsDir } from "../paths.js";
import { isPlainObject, type PlainObject } from "./merge.js";

export const CONFIG_EXTENSIONS = [".yaml", ".yml", ".json"];

/** Names of the presets in a presets directory (configs/*.yaml), sorted. */
export function listPresets(dir: string = configsDir()): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") && statSync(join(dir, f)).isFile())
    .map((f) => f.slice(0, -".yaml".length))
    .sort();
}

/** configs/<name>.yaml, or E_PRESET_UNKNOWN listing the available presets. */
export function presetPath(name: string, dir: string = configsDir()): string {
  const path = join(dir, `${name}.yaml`);
  if (/^[A-Za-z0-9._-]+$/.test(name) && existsSync(path)) return path;
  const available = listPresets(dir);
  throw new SpgError("E_PRESET_UNKNOWN", `no preset named "${name}"`, {
    file: path,
    field: "preset",
    fix: `use one of: ${available.join(", ") || `(none found in ${dir})`}`,
  });
}

/** Reads a YAML (.yaml/.yml) or JSON (.json) config file into a plain object. */
export function readConfigFile(path: string): PlainObject {
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new SpgError("E_CONFIG_MISSING", `config file not found: ${path}`, {
      file: path,
      fix: "check the path given to --config (YAML or JSON)",
    });
  }
  const extension = extname(path).toLowerCase();
  if (!CONFIG_EXTENSIONS.includes(extension)) {
    throw new SpgError(
      "E_CONFIG_PARSE",
      `config files are YAML or JSON, not "${extension || "no extension"}"`,
      {
        file: path,
        fix: "name the file *.yaml, *.yml or *.json",
      },
    );
  }
  const text = readFileSync(path, "utf8");
  let data: unknown;
  if (extension === ".json") {
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw new SpgError("E_CONFIG_PARSE", `invalid JSON: ${(error as Error).message}`, {
        file: path,
        fix: "fix the JSON syntax at the position named",
        cause: error,
      });
    }
  } else {
    const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
    const problem = document.errors[0];
    if (problem !== undefined) {
      const where = problem.linePos
        ? ` at line ${problem.linePos[0].line}, column ${problem.linePos[0].col}`
        : "";
      throw new SpgError("E_CONFIG_PARSE", `invalid YAML${where}: ${problem.message.split("\n")[0]}`, {
        file: path,
        fix: "fix the YAML syntax at the line named",
      });
    }
    if (!isMap(document.contents)) {
      throw new SpgError("E_CONFIG_PARSE", "a config file must be a mapping of fields (key: value)", {
        file: path,
        fix: "start from configs/default.yaml, or write `extends: default` and the fields to change",
      });
    }
    data = document.toJS();
  }
  if (!isPlainObject(data)) {
    throw new SpgError("E_CONFIG_PARSE", "a config file must be an object of fields", {
      file: path,
      fix: 'write an object, e.g. {"extends": "default", "dataset": {"samples": 4}}',
    });
  }
  return data;
}
