import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  loadSweepSpec,
  methodOfVariant,
  rangePoints,
  type SweepSpec,
  spreadIndices,
  sweepVariants,
  validateSweepSpec,
} from "../../src/config/sweep.js";
import type { MethodConfig } from "../../src/config/types.js";
import { methods } from "../../src/kv/methods/index.js";
import { spgError } from "../helpers/spg-error.js";

const work = mkdtempSync(join(tmpdir(), "spg-sweep-"));
after(() => rmSync(work, { recursive: true, force: true }));

const code = (fn: () => unknown): string => spgError(fn).code;

const spec = loadSweepSpec();

test("the packaged sweep spec names, for every swept kind, parameters the method's schema has", () => {
  for (const [kind, sweep] of Object.entries(spec.kinds)) {
    if (sweep === null) continue;
    const schema = methods[kind as Exclude<MethodConfig["kind"], "weights">].paramsSchema;
    for (const path of sweep.params) {
      let node = schema as { properties?: Record<string, unknown> };
      for (const part of path.split(".")) {
        assert.ok(node.properties && Object.hasOwn(node.properties, part), `${kind}: params.${path}`);
        node = node.properties[part] as typeof node;
      }
      const leaf = node as { type?: string; enum?: number[] };
      assert.ok(
        leaf.type === "number" || leaf.type === "integer" || Array.isArray(leaf.enum),
        `${kind}: ${path}`,
      );
    }
  }
});

test("range points: log spacing by equal factors, linear by equal steps, ends included", () => {
  assert.deepEqual(rangePoints({ from: 2, to: 32, scale: "log", step: 0.25 }, 5), [2, 4, 8, 16, 32]);
  assert.deepEqual(rangePoints({ from: 0, to: 10, scale: "linear", step: 1 }, 3), [0, 5, 10]);
  // 0.1 steps print cleanly: 0.1 + 3·0.1 is 0.4, not 0.30000000000000004-style noise.
  assert.deepEqual(rangePoints({ from: 0.1, to: 0.4, scale: "linear", step: 0.1 }, 4), [0.1, 0.2, 0.3, 0.4]);
  assert.deepEqual(spreadIndices(3, 8), [0, 1, 2]);
  assert.deepEqual(spreadIndices(9, 3), [0, 4, 8]);
});

const spgMethod: MethodConfig = {
  name: "spg",
  kind: "spg",
  params: { stage1: { keepRatio: 0.25, recentTokens: 32 }, stage2: { reservedHeads: 1 } },
};

test("spg: stage1.keepRatio is swept as the compression factor it targets, on copies", () => {
  const variants = sweepVariants(spgMethod, 5, spec);
  assert.deepEqual(
    variants.map((v) => v.name),
    ["spg@ratio=2", "spg@ratio=4", "spg@ratio=8", "spg@ratio=16", "spg@ratio=32"],
  );
  assert.deepEqual(
    variants.map((v) => (v.params.stage1 as { keepRatio: number }).keepRatio),
    [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32],
  );
  for (const variant of variants) {
    assert.equal(variant.kind, "spg");
    assert.deepEqual(variant.params.stage2, { reservedHeads: 1 });
    assert.equal((variant.params.stage1 as { recentTokens: number }).recentTokens, 32);
  }
  for (const variant of variants) assert.equal(methodOfVariant(variant.name), "spg");
  // The input method is untouched.
  assert.equal((spgMethod.params.stage1 as { keepRatio: number }).keepRatio, 0.25);
});

test("quant: both bit widths move together over the listed domain, at most its length", () => {
  const quant: MethodConfig = {
    name: "q",
    kind: "quant",
    params: { keyBits: 4, valueBits: 4, groupSize: 32 },
  };
  const variants = sweepVariants(quant, 5, spec);
  assert.deepEqual(
    variants.map((v) => [v.name, v.params.keyBits, v.params.valueBits, v.params.groupSize]),
    [
      ["q@bits=8", 8, 8, 32],
      ["q@bits=4", 4, 4, 32],
      ["q@bits=2", 2, 2, 32],
    ],
  );
});

test("streaming: integer token counts; unswept kinds come back as they are", () => {
  const streaming: MethodConfig = {
    name: "s",
    kind: "streaming",
    params: { sinkTokens: 4, recentTokens: 100 },
  };
  const variants = sweepVariants(streaming, 5, spec);
  assert.deepEqual(
    variants.map((v) => v.params.recentTokens),
    [16, 32, 64, 128, 256],
  );
  const full: MethodConfig = { name: "full", kind: "full", params: {} };
  assert.deepEqual(sweepVariants(full, 3, spec), [full]);
});

test("errors: point count out of range, a parameter the method lacks, points that collapse, a bad spec", () => {
  assert.equal(
    code(() => sweepVariants(spgMethod, spec.points.max + 1, spec)),
    "E_SWEEP_POINTS",
  );
  assert.equal(
    code(() => sweepVariants(spgMethod, spec.points.min - 1, spec)),
    "E_SWEEP_POINTS",
  );
  assert.equal(
    code(() => sweepVariants({ name: "spg", kind: "spg", params: { stage1: {} } }, 3, spec)),
    "E_SWEEP_PARAM",
  );
  assert.equal(
    code(() => sweepVariants({ name: "h", kind: "h2o", params: { ratio: 4 } }, 3, spec)),
    "E_SWEEP_PARAM",
  );
  const narrow: SweepSpec = structuredClone(spec);
  narrow.kinds.h2o = {
    label: "ratio",
    params: ["keepRatio"],
    value: "reciprocal",
    range: { from: 2, to: 3, scale: "linear", step: 1 },
  };
  assert.equal(
    code(() => sweepVariants({ name: "h", kind: "h2o", params: { keepRatio: 0.5 } }, 3, narrow)),
    "E_SWEEP_POINTS",
  );
  assert.equal(
    code(() => validateSweepSpec({ points: { min: 3, max: 8 }, kinds: {} })),
    "E_SWEEP_SPEC",
  );
  const bad = join(work, "bad.yaml");
  writeFileSync(bad, "points: [\n");
  assert.equal(
    code(() => loadSweepSpec(bad)),
    "E_SWEEP_SPEC",
  );
  assert.equal(
    code(() => loadSweepSpec(join(work, "absent.yaml"))),
    "E_SWEEP_SPEC_MISSING",
  );
});
