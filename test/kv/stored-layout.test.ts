/**
 * src/kv/stored-layout.ts against the encoders it describes: every method kind, with and
 * without local-window trimming, per-head and per-layer selection, spg with and without stage
 * 2, compressed on a random cache with global and local layers; each layer's kept slots,
 * full-precision heads, bytes and bit histogram must be what the closed form gives.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { MethodConfig } from "../../src/config/types.js";
import { methods } from "../../src/kv/methods/index.js";
import { protectedSlots, storedLayoutOf } from "../../src/kv/stored-layout.js";
import { everyMethodContext, everyMethodParams, randomCache, testConfig } from "./helpers.js";

const SLOTS = 10;
const WINDOW = 6;
const HEADS = 3;
const HEAD_DIM = 4;
const config = testConfig(["global", "local", "global", "local"], HEADS, HEAD_DIM, WINDOW);
/** Readable slots of a local layer after a prefill of positions 0..SLOTS-1: next - p < window. */
const LOCAL_READABLE = Math.min(SLOTS, WINDOW - 1);

function variants(): MethodConfig[] {
  const out: MethodConfig[] = [];
  for (const [kind, params] of Object.entries(everyMethodParams)) {
    out.push({ name: kind, kind: kind as MethodConfig["kind"], params: structuredClone(params) });
    const untrimmed = structuredClone(params);
    if ("localWindowTrim" in untrimmed) untrimmed.localWindowTrim = false;
    const stage1 = untrimmed.stage1 as Record<string, unknown> | undefined;
    if (stage1 !== undefined) stage1.localWindowTrim = false;
    out.push({ name: `${kind}-untrimmed`, kind: kind as MethodConfig["kind"], params: untrimmed });
  }
  const perHead = structuredClone(everyMethodParams.h2o);
  perHead.selection = "per-head";
  out.push({ name: "h2o-per-head", kind: "h2o", params: perHead });
  const perLayer = structuredClone(everyMethodParams.snapkv);
  perLayer.selection = "per-layer";
  out.push({ name: "snapkv-per-layer", kind: "snapkv", params: perLayer });
  const noStage2 = structuredClone(everyMethodParams.spg) as { stage2: Record<string, unknown> };
  noStage2.stage2 = {
    reservedHeads: "all",
    magnitudeThreshold: 0,
    mixedPrecision: { enabled: false, highBits: 8, lowBits: 4, highFraction: 0.5, groupSize: 3 },
    lowRank: { enabled: false, energyThreshold: 0.9 },
  };
  out.push({ name: "spg-eviction-only", kind: "spg", params: noStage2 });
  // spg's stage 2 per head (per-head selection: every head keeps the same count): mixed
  // precision alone (exact), a magnitude cut alone, low rank alone, and all three.
  const stage2Variants: [string, Record<string, unknown>][] = [
    ["mixed", { magnitudeThreshold: 0, lowRank: { enabled: false, energyThreshold: 0.9 } }],
    [
      "cut",
      {
        magnitudeThreshold: 0.5,
        mixedPrecision: { enabled: false, highBits: 8, lowBits: 3, highFraction: 0.3, groupSize: 3 },
        lowRank: { enabled: false, energyThreshold: 0.9 },
      },
    ],
    ["lowrank", { magnitudeThreshold: 0, lowRank: { enabled: true, energyThreshold: 0.3 } }],
    ["all", { reservedHeads: 2 }],
  ];
  for (const [name, stage2] of stage2Variants) {
    const params = structuredClone(everyMethodParams.spg) as {
      stage1: Record<string, unknown>;
      stage2: Record<string, unknown>;
    };
    params.stage1.selection = "per-head";
    Object.assign(params.stage2, stage2);
    out.push({ name: `spg-per-head-${name}`, kind: "spg", params });
  }
  const allResidual = structuredClone(everyMethodParams.quant);
  allResidual.residualTokens = 64;
  out.push({ name: "quant-all-residual", kind: "quant", params: allResidual });
  return out;
}

test("protected slots: sinks and the recent window among a readable suffix, counted by hand", () => {
  // context 10, sinks 2, recent 3: slots {0, 1, 7, 8, 9}; the last e are readable.
  assert.deepEqual(
    [0, 1, 3, 4, 8, 9, 10].map((e) => protectedSlots(e, 2, 3, 10)),
    [0, 1, 3, 3, 3, 4, 5],
  );
  // recent covers the whole context: every readable slot is protected.
  assert.equal(protectedSlots(4, 1, 50, 10), 4);
});

for (const method of variants()) {
  test(`${method.name}: every layer keeps and stores what the closed form gives`, () => {
    const cache = randomCache(config, SLOTS, 11);
    const compressed = methods[method.kind as keyof typeof methods].compress(
      cache,
      everyMethodContext(config, SLOTS, cache),
      method.params,
    );
    const ranged: [number, number, number][] = [];
    compressed.layers.forEach((layer, l) => {
      const layout = storedLayoutOf(method, {
        heads: HEADS,
        headDim: HEAD_DIM,
        contextTokens: SLOTS,
        dtype: "fp16",
        layer: l,
      });
      assert.ok(layout !== undefined && typeof layout !== "string");
      const eligible = layout.trims && config.attentionLayers[l] === "local" ? LOCAL_READABLE : SLOTS;
      assert.equal(layer.tokensKept, HEADS * layout.keptPerHead(eligible), `layer ${l} kept`);
      const form = layout.stored(layer.tokensKept);
      assert.equal(layer.headsFullPrecision, form.headsFullPrecision, `layer ${l} full-precision heads`);
      if (form.bytes !== undefined) {
        assert.ok(
          layer.bytes >= form.bytes.min && layer.bytes <= form.bytes.max,
          `layer ${l}: ${layer.bytes} bytes, closed form ${form.bytes.min}..${form.bytes.max}`,
        );
        const stage1 = method.params.stage1 as { selection?: string } | undefined;
        // Only per-layer selection leaves the heads' kept sets (their encodings) to the scores,
        // and spg's magnitude cut and low rank each block's form.
        if (
          method.params.selection !== "per-layer" &&
          stage1?.selection !== "per-layer" &&
          form.bitsBounds === undefined
        )
          assert.equal(form.bytes.min, form.bytes.max);
        if (form.bytes.min < form.bytes.max) ranged.push([form.bytes.min, layer.bytes, form.bytes.max]);
      }
      if (form.bitsHistogram !== undefined) assert.deepEqual(layer.bitsHistogram, form.bitsHistogram);
      if (form.bitsBounds !== undefined) {
        for (const [width, count] of Object.entries(layer.bitsHistogram)) {
          if (count > 0)
            assert.ok(form.bitsBounds.widths.includes(Number(width)), `layer ${l}: width ${width}`);
        }
        for (const [width, least] of Object.entries(form.bitsBounds.atLeast))
          assert.ok((layer.bitsHistogram[width] ?? 0) >= least, `layer ${l}: ${width}-bit values`);
      }
    });
    if (method.name === "spg-per-head-lowrank" || method.name === "spg-per-head-cut") {
      // The range is exercised: some block took a form below the dense one.
      assert.ok(
        ranged.some(([, bytes, max]) => bytes < max),
        JSON.stringify(ranged),
      );
    }
  });
}
