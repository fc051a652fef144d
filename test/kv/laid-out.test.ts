import assert from "node:assert/strict";
import { test } from "node:test";
import type { KvCache } from "../../src/kv/cache.js";
import { atBaselineDtype } from "../../src/kv/compressed.js";
import { packHeads, widestHead, zeroedFloats } from "../../src/kv/layout.js";
import { methodFor } from "../../src/kv/methods/index.js";
import { PaddedCache } from "../../src/kv/padded-cache.js";
import {
  designedContext,
  everyMethodContext,
  everyMethodParams,
  randomCache,
  testConfig,
} from "./helpers.js";

const config = testConfig(["global", "local"], 2, 4, 4);
const SLOTS = 10;
const ROOM = 3;

/** Per layer, the graph's keys and values as the copying layout (packHeads) builds them. */
function packed(cache: KvCache, room: number): { keys: Float32Array; values: Float32Array }[] {
  return cache.layers.map((layer, l) => packHeads(layer, l, config, widestHead(layer) + room));
}

function assertSameCache(actual: KvCache, expected: KvCache, what: string): void {
  assert.equal(actual.layers.length, expected.layers.length, what);
  actual.layers.forEach((layer, l) => {
    layer.heads.forEach((head, h) => {
      const other = expected.layers[l].heads[h];
      assert.deepEqual([...head.positions], [...other.positions], `${what} layer ${l} head ${h} positions`);
      assert.deepEqual([...head.keys], [...other.keys], `${what} layer ${l} head ${h} keys`);
      assert.deepEqual([...head.values], [...other.values], `${what} layer ${l} head ${h} values`);
    });
  });
}

/** The padded cache's graph inputs, compared with what the copying layout feeds. */
function assertGraphReads(padded: PaddedCache, expected: { keys: Float32Array; values: Float32Array }[]) {
  const { past } = padded.inputs([SLOTS]);
  past.forEach((layer, l) => {
    assert.deepEqual([...layer.keys], [...expected[l].keys], `layer ${l} keys`);
    assert.deepEqual([...layer.values], [...expected[l].values], `layer ${l} values`);
  });
}

test("every method decoded straight into the graph's layout equals the decoded cache laid out by copying", () => {
  const cache = randomCache(config, SLOTS, 8);
  const ctx = everyMethodContext(config, SLOTS, cache);
  for (const [kind, params] of Object.entries(everyMethodParams)) {
    const compressed = methodFor(kind).compress(cache, ctx, params);
    const copied = compressed.materialize();
    const direct = compressed.materialize(ROOM);
    assertSameCache(direct, copied, kind);
    const expected = packed(copied, ROOM);
    assertGraphReads(PaddedCache.from(direct, config, ROOM), expected);
    // laid out a second time: a copy, not the buffers the first layout appends to
    assertGraphReads(PaddedCache.from(direct, config, ROOM), expected);
  }
});

test("a laid-out layer is taken over once, only at its own capacity", () => {
  const cache = randomCache(config, SLOTS, 9);
  const ctx = designedContext(
    config,
    SLOTS,
    4,
    "fp16",
    () => 0,
    () => 0,
  );
  const direct = methodFor("full").compress(cache, ctx, {}).materialize(ROOM);
  const buffers = direct.layers.map((layer) => layer.laidOut);
  assert.ok(buffers.every((b) => b !== undefined));
  const first = PaddedCache.from(direct, config, ROOM).inputs([SLOTS]).past;
  first.forEach((layer, l) => {
    assert.equal(layer.keys, buffers[l]?.keys, `layer ${l} taken over`);
  });
  assert.ok(direct.layers.every((layer) => layer.laidOut === undefined));
  const second = PaddedCache.from(direct, config, ROOM).inputs([SLOTS]).past;
  second.forEach((layer, l) => {
    assert.notEqual(layer.keys, first[l].keys, `layer ${l} copied`);
  });

  // other room than decoded for: copied
  const other = methodFor("full").compress(cache, ctx, {}).materialize(ROOM);
  const wider = PaddedCache.from(other, config, ROOM + 1);
  assert.ok(other.layers.every((layer) => layer.laidOut !== undefined));
  assertGraphReads(wider, packed(other, ROOM + 1));
});

test("the baseline rounded straight into the graph's layout equals the rounded cache laid out by copying", () => {
  const cache = randomCache(config, SLOTS, 10);
  for (const dtype of ["fp16", "fp32"] as const) {
    const copied = atBaselineDtype(cache, dtype);
    const direct = atBaselineDtype(cache, dtype, ROOM);
    assertSameCache(direct, copied, dtype);
    assert.ok(direct.layers.every((layer) => layer.laidOut !== undefined));
    assertGraphReads(PaddedCache.from(direct, config, ROOM), packed(copied, ROOM));
  }
});

test("a recycled layout's buffers come back zeroed to the next layouts, and the recycled cache refuses use", () => {
  const cache = randomCache(config, SLOTS, 11);
  const ctx = everyMethodContext(config, SLOTS, cache);
  // every method decoded into buffers a recycled, written-to layout lends: the same graph inputs
  for (const [kind, params] of Object.entries(everyMethodParams)) {
    const lender = PaddedCache.from(randomCache(config, SLOTS + 2, 12), config, ROOM);
    const lent = new Set(
      lender.inputs([SLOTS + 2]).past.flatMap((layer) => [layer.keys.buffer, layer.values.buffer]),
    );
    lender.recycle();
    assert.throws(() => lender.inputs([SLOTS + 2]), { code: "E_KV_LAYOUT" }, kind);
    assert.throws(() => lender.recycle(), { code: "E_KV_LAYOUT" }, kind);
    const compressed = methodFor(kind).compress(cache, ctx, params);
    const direct = compressed.materialize(ROOM);
    const reads = PaddedCache.from(direct, config, ROOM).inputs([SLOTS]).past;
    assert.ok(
      reads.some((layer) => lent.has(layer.keys.buffer)),
      `${kind}: a lent buffer was used`,
    );
    assertSameCache(direct, compressed.materialize(), kind);
    assertGraphReads(PaddedCache.from(direct, config, ROOM), packed(compressed.materialize(), ROOM));
  }
  // a view of the smallest buffer that holds the length, zeroed; longer than any lent: new
  const lender = PaddedCache.from(cache, config, ROOM);
  const past = lender.inputs([SLOTS]).past;
  lender.recycle();
  const size = past[0].keys.length;
  const view = zeroedFloats(size - 5);
  assert.ok(past.some((layer) => layer.keys.buffer === view.buffer || layer.values.buffer === view.buffer));
  assert.equal(view.length, size - 5);
  assert.ok(view.every((x) => x === 0));
  const fresh = zeroedFloats(size + 1);
  assert.ok(
    past.every((layer) => layer.keys.buffer !== fresh.buffer && layer.values.buffer !== fresh.buffer),
  );
});
