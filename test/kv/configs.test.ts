import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { methodFor } from "../../src/kv/methods/index.js";
import { validateParams } from "../../src/kv/methods/shared.js";
import { configsDir } from "../../src/paths.js";

test("configs/methods/*.yaml: one per method kind, each valid against its paramsSchema", () => {
  const dir = join(configsDir(), "methods");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  const kinds = new Set<string>();
  for (const file of files) {
    const entry = parse(readFileSync(join(dir, file), "utf8")) as {
      name: string;
      kind: string;
      params: unknown;
    };
    assert.equal(`${entry.kind}.yaml`, file);
    const method = methodFor(entry.kind);
    validateParams(entry.kind, method.paramsSchema, entry.params);
    kinds.add(entry.kind);
  }
  assert.deepEqual([...kinds].sort(), ["full", "h2o", "quant", "snapkv", "spg", "streaming", "window-trim"]);
});
