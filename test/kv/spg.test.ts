import assert from "node:assert/strict";
import { test } from "node:test";
import type { KvCache } from "../../src/kv/cache.js";
import { methods } from "../../src/kv/methods/index.js";
import {
  type BlockPlan,
  ElementwiseChoice,
  elementwiseBytes,
  type SpgParams,
  sparseFloorBytes,
} from "../../src/kv/methods/spg/index.js";
import { roundToHalf } from "../../src/numeric/fp16.js";
import { chooseGroupQuant } from "../../src/numeric/group-quant.js";
import {
  gramMatrix,
  lowRankBytes,
  multiplyFactors,
  symmetricEigen,
  symmetricTopEigen,
  topEigenvalueSumBound,
} from "../../src/numeric/lowrank.js";
import { lowRankFactor, symmetricEigenJacobi, symmetricEigenvalues } from "../helpers/lowrank-reference.js";
import { designedContext, randomCache, rng, row, testConfig } from "./helpers.js";

const config = testConfig(["global", "local"], 2, 4, 4);
const SLOTS = 10;

function offParams(): SpgParams {
  return {
    stage1: {
      keepRatio: 0.5,
      layerKeepRatios: null,
      sinkTokens: 0,
      recentTokens: 2,
      observationWindow: 2,
      poolingKernels: [{ maxContextTokens: 4096, kernel: 3 }],
      pooling: "max",
      magnitudeWeight: 0,
      selection: "per-head",
      localWindowTrim: false,
    },
    stage2: {
      reservedHeads: 0,
      magnitudeThreshold: 0,
      mixedPrecision: { enabled: false, highBits: 8, lowBits: 4, highFraction: 0.5, groupSize: 4 },
      lowRank: { enabled: false, energyThreshold: 0.99 },
    },
    decode: { sparseTopK: 0 },
  };
}

const asRecord = (p: SpgParams) => p as unknown as Record<string, unknown>;
const scoredContext = (cache: KvCache) =>
  designedContext(
    config,
    SLOTS,
    4,
    "fp16",
    (l, h, r, s) => ((l + 1) * (h + 2) * (r + 1) * (s + 5)) % 11,
    () => 0,
    cache,
  );

test("spg with every stage-2 component off equals SnapKV eviction, byte for byte", () => {
  const cache = randomCache(config, SLOTS, 21);
  const ctx = scoredContext(cache);
  const spg = methods.spg.compress(cache, ctx, asRecord(offParams()));
  const snap = methods.snapkv.compress(cache, ctx, {
    keepRatio: 0.5,
    observationWindow: 2,
    poolingKernel: 3,
    pooling: "max",
    selection: "per-head",
    localWindowTrim: false,
  });
  assert.equal(spg.bytes, snap.bytes);
  spg.layers.forEach((layer, l) => {
    assert.deepEqual(layer.serialized, snap.layers[l].serialized);
  });
  assert.deepEqual(spg.materialize(), snap.materialize());
  assert.deepEqual(spg.decode, {});
});

test("spg stage 1: sinks and recent protected, pooling kernel chosen by context length", () => {
  const cache = randomCache(config, SLOTS, 22);
  const ctx = scoredContext(cache);
  const p = offParams();
  p.stage1.sinkTokens = 1;
  p.stage1.recentTokens = 3;
  p.stage1.keepRatio = 0.4;
  const c = methods.spg.compress(cache, ctx, asRecord(p));
  for (const layer of c.materialize().layers) {
    for (const head of layer.heads) {
      const kept = [...head.positions];
      assert.equal(kept.length, 4);
      for (const protectedPos of [0, 7, 8, 9]) assert.ok(kept.includes(protectedPos));
    }
  }
  p.stage1.poolingKernels = [{ maxContextTokens: 8, kernel: 3 }];
  assert.throws(
    () => methods.spg.compress(cache, ctx, asRecord(p)),
    /stage1\.poolingKernels covers contexts up to 8 tokens, the run uses 10/,
  );
  p.stage1.poolingKernels = [
    { maxContextTokens: 8, kernel: 3 },
    { maxContextTokens: 16, kernel: 4 },
  ];
  assert.throws(() => methods.spg.compress(cache, ctx, asRecord(p)), /kernel must be odd/);
});

test("spg magnitude weight 1 keeps the largest-norm slots; per-layer budgets apply", () => {
  const cache = randomCache(config, SLOTS, 23, 0.1);
  // make slots 2 and 5 of every head loud
  for (const layer of cache.layers)
    for (const head of layer.heads)
      for (const s of [2, 5]) for (let c = 0; c < 4; c++) head.keys[s * 4 + c] = 5;
  const p = offParams();
  p.stage1.magnitudeWeight = 1;
  p.stage1.keepRatio = 0.4;
  p.stage1.layerKeepRatios = [0.4, 0.2];
  const m = methods.spg.compress(cache, scoredContext(cache), asRecord(p)).materialize();
  assert.deepEqual([...m.layers[0].heads[1].positions], [2, 5, 8, 9]);
  assert.deepEqual([...m.layers[1].heads[0].positions], [8, 9]);
  p.stage1.layerKeepRatios = [0.4];
  assert.throws(
    () => methods.spg.compress(cache, scoredContext(cache), asRecord(p)),
    /layerKeepRatios has 1 entries/,
  );
});

test("spg reserved heads: the most important head stays at fp16, the other is mixed precision", () => {
  const cache = randomCache(config, SLOTS, 24);
  // observation attention: head 1 attends much more (importance = attention x ||v||)
  const ctx = designedContext(
    config,
    SLOTS,
    4,
    "fp16",
    (_l, h, _r, s) => (h === 1 ? 1 : 0.01) * (1 + (s % 3)),
    () => 0,
    cache,
  );
  const p = offParams();
  p.stage2.reservedHeads = 1;
  p.stage2.mixedPrecision.enabled = true;
  const c = methods.spg.compress(cache, ctx, asRecord(p));
  const m = c.materialize();
  for (let l = 0; l < 2; l++) {
    assert.equal(c.layers[l].headsFullPrecision, 1);
    const head = m.layers[l].heads[1];
    [...head.positions].forEach((pos, i) => {
      assert.deepEqual(row(head.keys, i, 4), row(cache.layers[l].heads[1].keys, pos, 4).map(roundToHalf));
    });
    // head 0: 5 kept tokens, round(0.5 * 5) = 2 (rounded half up: 3) at 8 bits, rest at 4
    assert.deepEqual(c.layers[l].bitsHistogram, { "16": 5 * 4 * 2, "8": 3 * 4 * 2, "4": 2 * 4 * 2 });
    // bytes: per head kept subset (bitmask, 3 B) + mode byte; head 1: 5 x 4 x 2 x 2 B;
    // head 0: high-token subset of 5 (1 + 1 B bitmask) + K and V: 5 token groups x 4 B + codes
    const codes = (3 * 4 * 8 + 2 * 4 * 4) / 8;
    assert.equal(c.layers[l].bytes, 2 * (3 + 1) + 5 * 4 * 2 * 2 + 2 + 2 * (5 * 4 + codes));
    const quantized = m.layers[l].heads[0];
    [...quantized.positions].forEach((pos, i) => {
      const xs = row(cache.layers[l].heads[0].values, pos, 4);
      const q8 = chooseGroupQuant(Math.min(...xs), Math.max(...xs), 8);
      const q4 = chooseGroupQuant(Math.min(...xs), Math.max(...xs), 4);
      xs.forEach((x, ch) => {
        const err = Math.abs(quantized.values[i * 4 + ch] - x);
        assert.ok(err <= Math.max(q8.scale, q4.scale) / 2 + 1e-6);
      });
    });
  }
});

test('spg reservedHeads "all" keeps every head of the cache at fp16: the same bytes as a count of all heads', () => {
  const cache = randomCache(config, SLOTS, 26);
  const ctx = scoredContext(cache);
  const all = offParams();
  all.stage2.reservedHeads = "all";
  all.stage2.mixedPrecision.enabled = true;
  const counted = offParams();
  counted.stage2.reservedHeads = cache.layers[0].heads.length;
  counted.stage2.mixedPrecision.enabled = true;
  const a = methods.spg.compress(cache, ctx, asRecord(all));
  const b = methods.spg.compress(cache, ctx, asRecord(counted));
  const one = offParams();
  one.stage2.reservedHeads = 1;
  one.stage2.mixedPrecision.enabled = true;
  const fewer = methods.spg.compress(cache, ctx, asRecord(one));
  a.layers.forEach((layer, l) => {
    assert.equal(layer.headsFullPrecision, cache.layers[l].heads.length);
    assert.equal(layer.bytes, b.layers[l].bytes);
    assert.deepEqual(layer.bitsHistogram, b.layers[l].bitsHistogram);
    // Fewer reserved heads store fewer bytes: "all" is not read as 0 or 1.
    assert.ok(layer.bytes > fewer.layers[l].bytes);
  });
});

test("spg magnitude threshold drops small values exactly and stores survivors sparse", () => {
  const cache = randomCache(config, SLOTS, 25);
  const p = offParams();
  p.stage2.magnitudeThreshold = 0.5;
  const c = methods.spg.compress(cache, scoredContext(cache), asRecord(p));
  const m = c.materialize();
  for (let l = 0; l < 2; l++) {
    let survivors = 0;
    m.layers[l].heads.forEach((head, h) => {
      const src = cache.layers[l].heads[h];
      for (const matrix of ["keys", "values"] as const) {
        const kept = [...head.positions].flatMap((pos) => row(src[matrix], pos, 4));
        const max = Math.max(...kept.map(Math.abs));
        kept.forEach((x, i) => {
          const out = head[matrix][i];
          if (Math.abs(x) < 0.5 * max) assert.equal(out, 0);
          else {
            assert.equal(out, roundToHalf(x));
            survivors++;
          }
        });
      }
    });
    assert.deepEqual(c.layers[l].bitsHistogram, { "16": survivors });
  }
});

test("symmetric eigen and low-rank: an exactly rank-2 block gives rank 2 and reconstructs", () => {
  const next = rng(31);
  const rows = 20;
  const cols = 8;
  const u = Array.from({ length: 2 }, () => Array.from({ length: rows }, () => next() - 0.5));
  const v = Array.from({ length: 2 }, () => Array.from({ length: cols }, () => next() - 0.5));
  const block = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) block[r * cols + c] = u[0][r] * v[0][c] + 3 * u[1][r] * v[1][c];
  const f = lowRankFactor(block, rows, cols, 0.999999);
  assert.equal(f.rank, 2);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const x = f.left[r * 2] * f.right[c] + f.left[r * 2 + 1] * f.right[cols + c];
      assert.ok(Math.abs(x - block[r * cols + c]) < 1e-6);
    }
  // eigenvalues of a diagonal matrix are its entries
  const { values } = symmetricEigen(Float64Array.from([2, 0, 0, 0, 5, 0, 0, 0, 1]), 3);
  assert.deepEqual([...values], [5, 2, 1]);
  assert.equal(lowRankBytes(20, 8, 2), 2 + 2 * 2 * 28);
});

function rankOneHead(slots: number) {
  const next = rng(41);
  const u = Array.from({ length: slots }, () => next() + 0.5);
  const v = Array.from({ length: 8 }, () => next() - 0.5);
  const rank1 = Float32Array.from({ length: slots * 8 }, (_, i) => u[Math.floor(i / 8)] * v[i % 8]);
  const cache: KvCache = {
    headDim: 8,
    layers: [
      {
        heads: [
          { positions: Int32Array.from({ length: slots }, (_, i) => i), keys: rank1, values: rank1.slice() },
        ],
      },
    ],
  };
  const ctx = designedContext(
    testConfig(["global"], 1, 8, 4),
    slots,
    2,
    "fp16",
    () => 1,
    () => 0,
    cache,
  );
  return { rank1, cache, ctx };
}

test("spg low-rank without mixed precision stores a rank-1 head as fp16 factors when smaller", () => {
  const slots = 40;
  const { rank1, cache, ctx } = rankOneHead(slots);
  const p = offParams();
  p.stage1.keepRatio = 1;
  p.stage2.lowRank = { enabled: true, energyThreshold: 0.9999 };
  const c = methods.spg.compress(cache, ctx, asRecord(p));
  // kept subset "all" (1 B) + mode (1 B) + per block: kind (1 B) + rank (2 B) + fp16 factors
  assert.equal(c.bytes, 1 + 1 + 2 * (1 + lowRankBytes(slots, 8, 1)));
  assert.deepEqual(c.layers[0].bitsHistogram, { "16": 2 * (slots + 8) });
  const out = c.materialize().layers[0].heads[0];
  rank1.forEach((x, i) => {
    assert.ok(Math.abs(out.keys[i] - x) <= 2e-3 * Math.max(1, Math.abs(x)));
  });
  p.decode.sparseTopK = 16;
  assert.deepEqual(methods.spg.compress(cache, ctx, asRecord(p)).decode, { sparseTopK: 16 });
});

test("spg low-rank on a full-rank head keeps the element-wise form: one kind byte per block more, same cache", () => {
  const slots = 40;
  const { cache, ctx } = rankOneHead(slots);
  const next = rng(77);
  const head = cache.layers[0].heads[0];
  // Isotropic noise: no rank below 8 holds 99.99% of the energy, so factors cannot win.
  head.keys = Float32Array.from(head.keys, () => next() - 0.5);
  head.values = Float32Array.from(head.values, () => next() - 0.5);
  const p = offParams();
  p.stage1.keepRatio = 1;
  p.stage2.mixedPrecision.enabled = true;
  const without = methods.spg.compress(cache, ctx, asRecord(p));
  p.stage2.lowRank = { enabled: true, energyThreshold: 0.9999 };
  const withLowRank = methods.spg.compress(cache, ctx, asRecord(p));
  assert.equal(withLowRank.bytes, without.bytes + 2);
  assert.deepEqual(withLowRank.materialize(), without.materialize());
});

test("spg low-rank with mixed precision holds the factors to the precision tiers (closed-form bytes)", () => {
  const slots = 40;
  const { rank1, cache, ctx } = rankOneHead(slots);
  const p = offParams();
  p.stage1.keepRatio = 1;
  p.stage2.mixedPrecision.enabled = true; // high 8 bits for half the tokens, low 4 bits, groups of 4
  p.stage2.lowRank = { enabled: true, energyThreshold: 0.9999 };
  const c = methods.spg.compress(cache, ctx, asRecord(p));
  // Left factor [40, 1]: one group per token (4 B scale + zero), 20 codes at 8 bits + 20 at 4 bits.
  const left = 40 * 4 + 20 + 10;
  // Right factor [1, 8] at highBits: 2 groups of 4 (8 B) + 8 codes at 8 bits.
  const right = 2 * 4 + 8;
  const highSubset = 1 + 5; // 20 of 40 tokens: bitmask 1 + 5 B
  // Element-wise would need 80 groups (320 B) + 160 + 80 B of codes: the factors win.
  assert.equal(c.bytes, 1 + 1 + highSubset + 2 * (1 + 2 + left + right));
  assert.deepEqual(c.layers[0].bitsHistogram, { "8": 2 * (20 + 8), "4": 2 * 20 });
  // Reconstruction error is the factors' quantization error: at most half a step of each.
  const out = c.materialize().layers[0].heads[0];
  const maxAbs = Math.max(...rank1.map(Math.abs));
  rank1.forEach((x, i) => {
    assert.ok(Math.abs(out.keys[i] - x) <= 1e-2 * maxAbs, `${out.keys[i]} vs ${x}`);
  });
});

test("tridiagonal QL eigen solver agrees with the Jacobi reference and satisfies A v = λ v", () => {
  const next = rng(51);
  for (const n of [1, 2, 5, 12]) {
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = i; j < n; j++) {
        const x = next() * 2 - 1;
        a[i * n + j] = x;
        a[j * n + i] = x;
      }
    // Gram matrices are positive semi-definite: use AᵀA so eigenvalues are >= 0
    const gram = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) gram[i * n + j] += a[k * n + i] * a[k * n + j];
    const fast = symmetricEigen(gram, n);
    const reference = symmetricEigenJacobi(gram, n);
    const valuesOnly = symmetricEigenvalues(gram, n);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(fast.values[i] - reference.values[i]) < 1e-9);
    // Without vectors the QL iterations are the same: the same values, bit for bit.
    assert.deepEqual(Array.from(valuesOnly), Array.from(fast.values));
    // The bound on the top-k eigenvalue sum holds for every k, and is the trace at k = n.
    let top = 0;
    for (let k = 1; k <= n; k++) {
      top += reference.values[k - 1];
      const { bound, trace } = topEigenvalueSumBound(gram, n, k);
      assert.ok(bound >= top - 1e-9, `n ${n} k ${k}: bound ${bound} < top-k sum ${top}`);
      if (k === n) assert.ok(Math.abs(bound - trace) < 1e-9 && Math.abs(trace - top) < 1e-9);
    }
    for (let col = 0; col < n; col++) {
      for (let r = 0; r < n; r++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += gram[r * n + k] * fast.vectors[k * n + col];
        assert.ok(Math.abs(av - fast.values[col] * fast.vectors[r * n + col]) < 1e-9);
      }
    }
  }
});

/**
 * rows x n: random combinations of the basis rows plus uniform noise (low rank plus noise, as
 * K/V blocks are), drawing from `next` in row order.
 */
function lowRankBlock(next: () => number, rows: number, basis: Float32Array[], noise: number): Float32Array {
  const n = basis[0].length;
  const block = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < n; c++) {
      let v = noise * (next() - 0.5);
      for (const b of basis) v += b[c] * (next() - 0.5);
      block[r * n + c] = v;
    }
  return block;
}

test("symmetricTopEigen: symmetricEigenvalues' values bit for bit, and leading vectors that are eigenvectors", () => {
  const next = rng(63);
  const cases: { label: string; n: number; matrix: Float64Array; count: number }[] = [];
  for (const [rows, n, rank, noise] of [
    [64, 12, 3, 0.01],
    [40, 16, 16, 1],
    [5, 16, 2, 0],
  ]) {
    const basis = Array.from({ length: rank }, () => Float32Array.from({ length: n }, () => next() - 0.5));
    const block = lowRankBlock(next, rows, basis, noise);
    cases.push({
      label: `rank ${rank} of ${n}`,
      n,
      matrix: gramMatrix(block, rows, n),
      count: Math.min(n, rank + 2),
    });
  }
  const diagonal = (entries: number[]) => {
    const n = entries.length;
    const m = new Float64Array(n * n);
    entries.forEach((v, i) => {
      m[i * n + i] = v;
    });
    return m;
  };
  // repeated eigenvalues: the vectors must still come out orthonormal
  cases.push({ label: "identity", n: 5, matrix: diagonal([1, 1, 1, 1, 1]), count: 4 });
  cases.push({ label: "repeats", n: 6, matrix: diagonal([3, 3, 1, 1, 1, 0]), count: 5 });
  cases.push({ label: "zero", n: 4, matrix: diagonal([0, 0, 0, 0]), count: 2 });
  for (const { label, n, matrix, count } of cases) {
    let asked: Float64Array | undefined;
    const top = symmetricTopEigen(matrix, n, (values) => {
      asked = values;
      return count;
    });
    assert.deepEqual(Array.from(top.values), Array.from(symmetricEigenvalues(matrix, n)), label);
    assert.deepEqual(Array.from(asked ?? []), Array.from(top.values), label);
    const reference = symmetricEigenJacobi(matrix, n);
    const vectors = top.vectors!;
    const scale = Math.max(1, top.values[0]);
    for (let j = 0; j < count; j++) {
      for (let r = 0; r < n; r++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += matrix[r * n + k] * vectors[k * n + j];
        assert.ok(
          Math.abs(av - top.values[j] * vectors[r * n + j]) < 1e-10 * scale,
          `${label}: A v = λ v, vector ${j}`,
        );
      }
      for (let i = 0; i <= j; i++) {
        let dot = 0;
        for (let r = 0; r < n; r++) dot += vectors[r * n + i] * vectors[r * n + j];
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-10, `${label}: orthonormal ${i}, ${j}`);
      }
      // a simple eigenvalue's vector is the reference's, up to sign
      const simple =
        (j === 0 || top.values[j - 1] - top.values[j] > 1e-6 * scale) &&
        (j + 1 >= n || top.values[j] - top.values[j + 1] > 1e-6 * scale);
      if (simple) {
        let dot = 0;
        for (let r = 0; r < n; r++) dot += vectors[r * n + j] * reference.vectors[r * n + j];
        assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-8, `${label}: vector ${j} matches Jacobi's`);
      }
    }
    for (let j = count; j < n; j++) for (let r = 0; r < n; r++) assert.equal(vectors[r * n + j], 0);
  }
  assert.equal(symmetricTopEigen(cases[0].matrix, cases[0].n, () => 0).vectors, null);
});

test("symmetricTopEigen converges on Gram matrices of every kind of spectrum (low rank, graded, clustered, repeated)", () => {
  const next = rng(99);
  for (let trial = 0; trial < 120; trial++) {
    const n = [8, 16, 32][trial % 3];
    const rows = [n / 2, n, 4 * n][trial % 4 === 3 ? 2 : trial % 3];
    const rank = 1 + (trial % n);
    const weight = (k: number) => [1, 2 ** -k, k < 3 ? 100 : 1, 1e-3, 1e4][trial % 5];
    const basis = Array.from({ length: rank }, (_, k) =>
      Float32Array.from({ length: n }, () => (next() - 0.5) * weight(k)),
    );
    const block = lowRankBlock(next, rows, basis, [0, 1e-6, 1e-3, 0.1][trial % 4]);
    // two equal columns: an exactly repeated direction
    if (trial % 7 === 0) for (let r = 0; r < rows; r++) block[r * n + 1] = block[r * n];
    const gram = gramMatrix(block, rows, n);
    const count = Math.min(n, rank + 3);
    const { values, vectors } = symmetricTopEigen(gram, n, () => count);
    const scale = Math.max(values[0], Number.MIN_VALUE);
    for (let j = 0; j < count; j++)
      for (let r = 0; r < n; r++) {
        let av = 0;
        for (let c = 0; c < n; c++) av += gram[r * n + c] * vectors![c * n + j];
        assert.ok(
          Math.abs(av - values[j] * vectors![r * n + j]) <= 1e-10 * scale,
          `trial ${trial} vector ${j}`,
        );
      }
  }
});

/**
 * A random block plan (up to maxTokens tokens, up to 12 channels, 40% high tokens) and
 * params at this magnitude threshold, with mixed precision on in two trials of three at random
 * widths and group size.
 */
function randomBlockPlan(
  next: () => number,
  trial: number,
  maxTokens: number,
  magnitudeThreshold: number,
): { plan: BlockPlan; p: SpgParams } {
  const tokens = 1 + Math.floor(next() * maxTokens);
  const dim = 1 + Math.floor(next() * 12);
  const plan: BlockPlan = {
    tokens,
    dim,
    isHigh: Uint8Array.from({ length: tokens }, () => (next() < 0.4 ? 1 : 0)),
  };
  const p = offParams();
  p.stage2.magnitudeThreshold = magnitudeThreshold;
  const lowBits = 1 + Math.floor(next() * 8);
  p.stage2.mixedPrecision = {
    enabled: trial % 3 !== 0,
    highBits: lowBits + Math.floor(next() * 8),
    lowBits,
    highFraction: 0.5,
    groupSize: 1 + Math.floor(next() * 8),
  };
  return { plan, p };
}

test("the sparse form's floor from the survivor count never exceeds its exact bytes", () => {
  const next = rng(31);
  for (let trial = 0; trial < 300; trial++) {
    const { plan, p } = randomBlockPlan(next, trial, 20, 0.01);
    const size = plan.tokens * plan.dim;
    const alive = Int32Array.from({ length: size }, (_, i) => i).filter(() => next() < 0.8);
    const dtype = trial % 2 === 0 ? "fp16" : "fp32";
    const floor = sparseFloorBytes(alive.length, size, plan, p.stage2, dtype);
    const exact = elementwiseBytes(alive, plan, p.stage2, dtype);
    assert.ok(floor <= exact, `trial ${trial}: floor ${floor} > exact ${exact}`);
  }
});

test("ElementwiseChoice: its bounds hold, best() is the smaller of the dense and sparse forms, isBeatenBy is strict", () => {
  const next = rng(41);
  for (let trial = 0; trial < 300; trial++) {
    const { plan, p } = randomBlockPlan(next, trial, 24, [0, 0.001, 0.1, 0.5][trial % 4]);
    // blocks from dense to mostly zero, so either form can win
    const zeros = next();
    const block = Float32Array.from({ length: plan.tokens * plan.dim }, () =>
      next() < zeros ? 0 : next() * 2 - 1,
    );
    const dtype = trial % 2 === 0 ? "fp16" : "fp32";
    // brute force: list the survivors of the cut directly, price both forms, keep the smaller
    let max = 0;
    for (const x of block) max = Math.max(max, Math.abs(x));
    const cut = p.stage2.magnitudeThreshold * max;
    const dense = elementwiseBytes(null, plan, p.stage2, dtype);
    const alive = Int32Array.from({ length: block.length }, (_, i) => i).filter(
      (i) => block[i] !== 0 && Math.abs(block[i]) >= cut,
    );
    const sparseWins =
      p.stage2.magnitudeThreshold > 0 &&
      alive.length < block.length &&
      elementwiseBytes(alive, plan, p.stage2, dtype) < dense;
    const choice = new ElementwiseChoice(block, plan, p.stage2, dtype);
    const best = choice.best();
    assert.equal(best.alive === null, !sparseWins, `trial ${trial}`);
    assert.equal(
      best.bytes,
      sparseWins ? elementwiseBytes(alive, plan, p.stage2, dtype) : dense,
      `trial ${trial}`,
    );
    if (best.alive !== null) assert.deepEqual([...best.alive], [...alive], `trial ${trial}`);
    const fresh = new ElementwiseChoice(block, plan, p.stage2, dtype);
    assert.equal(fresh.upper, dense);
    assert.ok(fresh.lower() <= best.bytes && best.bytes <= fresh.upper, `trial ${trial}`);
    for (const bytes of [best.bytes - 1, best.bytes, best.bytes + 1, fresh.lower() - 1, dense]) {
      // asked before best() is known, as the low-rank choice asks
      assert.equal(new ElementwiseChoice(block, plan, p.stage2, dtype).isBeatenBy(bytes), bytes < best.bytes);
    }
  }
});

test("gramMatrix equals the naive row-order sums bit for bit, for widths inside and past whole tiles", () => {
  const next = rng(77);
  for (const cols of [1, 3, 4, 5, 8, 11, 32]) {
    const rows = 37;
    const block = Float32Array.from({ length: rows * cols }, () => next() * 2 - 1);
    const gram = gramMatrix(block, rows, cols);
    for (let i = 0; i < cols; i++)
      for (let j = 0; j < cols; j++) {
        let sum = 0;
        for (let r = 0; r < rows; r++) sum += block[r * cols + i] * block[r * cols + j];
        assert.equal(gram[i * cols + j], sum, `cols ${cols} (${i}, ${j})`);
      }
  }
});

test("spg drops small values only when the sparse form is smaller than keeping them all", () => {
  const cache = randomCache(config, SLOTS, 26);
  const p = offParams();
  p.stage2.mixedPrecision.enabled = true;
  const dense = methods.spg.compress(cache, scoredContext(cache), asRecord(p));
  // a threshold that drops at most a few elements: the mask (a bit per element) would cost more
  p.stage2.magnitudeThreshold = 0.01;
  const tiny = methods.spg.compress(cache, scoredContext(cache), asRecord(p));
  // same values, plus one "all elements" tag byte per K and V block of each of the 2 heads
  assert.equal(tiny.bytes, dense.bytes + 2 * 2 * 2);
  assert.deepEqual(tiny.materialize(), dense.materialize());
});

test("spg pooling kernel follows the context-length table", () => {
  const cache = randomCache(config, SLOTS, 27);
  const ctx = scoredContext(cache);
  const snap = (kernel: number) =>
    methods.snapkv.compress(cache, ctx, {
      keepRatio: 0.5,
      observationWindow: 2,
      poolingKernel: kernel,
      pooling: "max",
      selection: "per-head",
      localWindowTrim: false,
    });
  const p = offParams();
  // 10 context slots: the first entry covering 10 wins
  p.stage1.poolingKernels = [
    { maxContextTokens: 9, kernel: 1 },
    { maxContextTokens: 10, kernel: 5 },
    { maxContextTokens: 64, kernel: 3 },
  ];
  const spg = methods.spg.compress(cache, ctx, asRecord(p));
  assert.deepEqual(
    spg.layers.map((l) => l.serialized),
    snap(5).layers.map((l) => l.serialized),
  );
  assert.notDeepEqual(
    snap(5).layers.map((l) => l.serialized),
    snap(3).layers.map((l) => l.serialized),
  );
});

test("spg ablation overlays: stage 2 never changes the kept slots, and every variant decodes", () => {
  const cache = randomCache(config, SLOTS, 28);
  const ctx = scoredContext(cache);
  const on = offParams();
  on.stage2 = {
    reservedHeads: 1,
    magnitudeThreshold: 0.3,
    mixedPrecision: { enabled: true, highBits: 8, lowBits: 4, highFraction: 0.4, groupSize: 2 },
    lowRank: { enabled: true, energyThreshold: 0.9 },
  };
  const stage1Only = methods.spg.compress(cache, ctx, asRecord(offParams())).materialize();
  const variants: ((p: SpgParams) => void)[] = [
    () => {},
    (p) => {
      p.stage2.reservedHeads = 0;
    },
    (p) => {
      p.stage2.magnitudeThreshold = 0;
    },
    (p) => {
      p.stage2.mixedPrecision.enabled = false;
    },
    (p) => {
      p.stage2.lowRank.enabled = false;
    },
  ];
  for (const change of variants) {
    const p = structuredClone(on);
    change(p);
    const c = methods.spg.compress(cache, ctx, asRecord(p));
    c.layers.forEach((layer) => {
      assert.equal(layer.bytes, layer.serialized.length);
    });
    const m = c.materialize();
    m.layers.forEach((layer, l) => {
      layer.heads.forEach((head, h) => {
        assert.deepEqual(head.positions, stage1Only.layers[l].heads[h].positions);
      });
    });
  }
});

test("multiplyFactors equals a float64 dot product per element, bit for bit, for float32 and float64 factors", () => {
  const next = rng(91);
  for (const [rows, rank, cols] of [
    [1, 1, 1],
    [7, 3, 5],
    [33, 8, 32],
  ]) {
    for (const make of [
      (n: number) => Float32Array.from({ length: n }, () => next() * 4 - 2),
      (n: number) => Float64Array.from({ length: n }, () => next() * 4 - 2),
    ]) {
      const left = make(rows * rank);
      const right = make(rank * cols);
      const expected = new Float32Array(rows * cols);
      for (let t = 0; t < rows; t++)
        for (let c = 0; c < cols; c++) {
          let acc = 0;
          for (let k = 0; k < rank; k++) acc += left[t * rank + k] * right[k * cols + c];
          expected[t * cols + c] = acc;
        }
      assert.deepEqual(
        multiplyFactors(left, right, rows, rank, cols, new Float32Array(rows * cols)),
        expected,
      );
    }
  }
});

test("spg without the prefill's key/value norms fails with E_METHOD_INPUT, naming the statistic", () => {
  const cache = randomCache(config, SLOTS, 31);
  const withoutNorms = { ...scoredContext(cache), norms: { keys: [], values: [] } };
  assert.throws(() => methods.spg.compress(cache, withoutNorms, asRecord(offParams())), {
    code: "E_METHOD_INPUT",
    message: /keyNorms: one array per layer expected/,
  });
});
