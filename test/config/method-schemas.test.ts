import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { resolveConfig } from "../../src/config/load.js";
import { weightsMethodParamsSchema } from "../../src/weights/method.js";

const schema = JSON.parse(
  readFileSync(new URL("../../../schemas/config.schema.json", import.meta.url), "utf8"),
);
const registryUrl = new URL("../../src/kv/methods/index.js", import.meta.url);

test("config schema's params-<kind> equal each method's own paramsSchema (src/kv/methods)", async (t) => {
  if (!existsSync(fileURLToPath(registryUrl))) {
    t.skip("src/kv/methods is not on this branch yet");
    return;
  }
  const registry = (await import(registryUrl.href)) as {
    methods: Record<string, { paramsSchema: Record<string, unknown> }>;
  };
  const kinds = Object.keys(registry.methods).sort();
  // Every kind but "weights" (src/weights, checked below) is a KV method of the registry.
  assert.deepEqual([...kinds, "weights"].sort(), [...schema.$defs.method.properties.kind.enum].sort());
  for (const kind of kinds) {
    assert.deepEqual(
      schema.$defs[`params-${kind}`],
      JSON.parse(JSON.stringify(registry.methods[kind].paramsSchema)),
      `params of ${kind} drifted: regenerate $defs/params-${kind} from the ${kind} method's paramsSchema (src/kv/methods/)`,
    );
  }
});

test("every kind has a params schema in the config schema, used by the method's if/then", () => {
  const config = resolveConfig();
  for (const kind of schema.$defs.method.properties.kind.enum as string[]) {
    assert.ok(schema.$defs[`params-${kind}`], kind);
  }
  assert.ok(config.methods.length >= 4);
});

test("config schema's params-weights equals src/weights/method.ts's weightsMethodParamsSchema()", () => {
  assert.deepEqual(schema.$defs["params-weights"], JSON.parse(JSON.stringify(weightsMethodParamsSchema())));
});
