/**
 * The methods' params validators precompiled at build pass and fail exactly what the schemas
 * compiled now do, with the same errors; a schema that is not the one compiled is compiled now.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { resolveConfig } from "../../src/config/load.js";
import { methods } from "../../src/kv/methods/index.js";
import { paramsValidators, precompiledParamsSource } from "../../src/kv/methods/params-validators.js";

/** Each field of a params object broken in the ways a config can break it, and the object whole. */
function variants(params: Record<string, unknown>): unknown[] {
  const out: unknown[] = [params, {}, { ...params, extra: 1 }, null, [], "x"];
  for (const [field, value] of Object.entries(params)) {
    for (const bad of ["x", -1, 0, 1.5, null, true, {}, [], 1e9]) out.push({ ...params, [field]: bad });
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      out.push({ ...params, [field]: { ...value, extra: 1 } });
      for (const inner of Object.keys(value)) {
        for (const bad of ["x", -1, null, {}]) out.push({ ...params, [field]: { ...value, [inner]: bad } });
      }
    }
    const { [field]: _dropped, ...without } = params;
    out.push(without);
  }
  return out;
}

test("precompiled params validators give the verdicts and errors of validators compiled now", () => {
  // The module as the build writes it, beside this test so its requires resolve to the package's ajv.
  const here = dirname(fileURLToPath(import.meta.url));
  const precompiledFile = join(here, "params-validators-compiled.cjs");
  const schemas = Object.fromEntries(Object.entries(methods).map(([kind, m]) => [kind, m.paramsSchema]));
  try {
    writeFileSync(precompiledFile, precompiledParamsSource(schemas));
    const ahead = paramsValidators(precompiledFile);
    const now = paramsValidators(join(here, "no-such-module.cjs"));
    const configured = ["default", "ci-smoke"].flatMap((preset) => resolveConfig({ preset }).methods);
    let checked = 0;
    let failures = 0;
    for (const [kind, schema] of Object.entries(schemas)) {
      const fast = ahead(kind, schema);
      const slow = now(kind, schema);
      assert.equal(fast.precompiled, true, kind);
      assert.equal(slow.precompiled, false, kind);
      const given = configured.filter((method) => method.kind === kind);
      assert.ok(given.length > 0, `the presets configure ${kind}`);
      for (const method of given) {
        for (const value of variants(method.params as Record<string, unknown>)) {
          const shown = `${kind} ${JSON.stringify(value)}`;
          const verdict = slow.validate(value);
          assert.equal(fast.validate(value), verdict, shown);
          assert.deepEqual(fast.validate.errors, slow.validate.errors, shown);
          checked += 1;
          if (!verdict) failures += 1;
        }
      }
    }
    // both verdicts were exercised
    assert.ok(failures > 0 && failures < checked, `${failures} of ${checked} failed`);
    // The same schema with other text (a changed method) is not the one compiled: compiled now.
    const changed = { ...schemas.spg, description: "changed" };
    assert.equal(ahead("spg", changed).precompiled, false);
  } finally {
    rmSync(precompiledFile, { force: true });
  }
});
