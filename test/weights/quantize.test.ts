/**
 * Weight quantization: every element within half a step of its original, where the step is
 * bounded from the group's own range (fp16 rounding of the scale adds at most 2^-10 relative,
 * plus one fp16 step-up); serialized length equal to the closed form; exact round trip of
 * the decoder over the encoder's bytes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { halfFloor } from "../../src/numeric/fp16.js";
import {
  dequantizeMatrix,
  type QuantSpec,
  quantizedByteLength,
  quantizeMatrix,
} from "../../src/weights/quantize.js";
import { randomMatrix } from "./helpers.js";

const SCALE_SLACK = 1 + 2 ** -9;
const FLOAT32_SLACK = 2 ** -22;

function groupBound(values: Float32Array, spec: QuantSpec): number {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let maxAbs = 0;
  for (const x of values) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    maxAbs = Math.max(maxAbs, Math.abs(x));
  }
  const step =
    spec.scheme === "symmetric"
      ? maxAbs / (2 ** (spec.bits - 1) - 1)
      : (max - halfFloor(min)) / (2 ** spec.bits - 1);
  return (step * SCALE_SLACK) / 2 + maxAbs * FLOAT32_SLACK;
}

const rows = 7;
const cols = 45;
const matrix = randomMatrix(rows, cols, 17, 0.3);
// a few outliers, as real weights have
matrix[3] = 2.5;
matrix[100] = -1.75;

describe("weight quantization", () => {
  for (const scheme of ["asymmetric", "symmetric"] as const) {
    for (const bits of [8, 4]) {
      for (const groupSize of [16, "row"] as const) {
        const spec: QuantSpec = { bits, scheme, groupSize };
        test(`${scheme} INT${bits}, groups of ${groupSize}: error ≤ half a step, length = closed form`, () => {
          const bytes = quantizeMatrix(matrix, rows, cols, spec);
          const group = groupSize === "row" ? cols : groupSize;
          const groupsPerRow = Math.ceil(cols / group);
          const metaBytes = scheme === "symmetric" ? 2 : 4;
          const expected = rows * groupsPerRow * metaBytes + Math.ceil((rows * cols * bits) / 8);
          assert.equal(bytes.length, expected);
          assert.equal(quantizedByteLength(rows, cols, spec), expected);
          const decoded = dequantizeMatrix(bytes, rows, cols, spec);
          let worstRatio = 0;
          for (let r = 0; r < rows; r++) {
            for (let c0 = 0; c0 < cols; c0 += group) {
              const from = r * cols + c0;
              const to = r * cols + Math.min(c0 + group, cols);
              const bound = groupBound(matrix.subarray(from, to), spec);
              for (let i = from; i < to; i++) {
                const error = Math.abs(decoded[i] - matrix[i]);
                assert.ok(error <= bound, `element ${i}: error ${error} > bound ${bound}`);
                worstRatio = Math.max(worstRatio, error / bound);
              }
            }
          }
          // the bound is not vacuous: some element uses a good part of it
          assert.ok(worstRatio > 0.5, `worst error / bound = ${worstRatio}`);
        });
      }
    }
  }

  test("symmetric keeps zeros exactly zero; an all-zero group decodes to zeros", () => {
    const m = randomMatrix(3, 8, 5);
    m.fill(0, 8, 16);
    m[2] = 0;
    const spec: QuantSpec = { bits: 4, scheme: "symmetric", groupSize: 4 };
    const decoded = dequantizeMatrix(quantizeMatrix(m, 3, 8, spec), 3, 8, spec);
    assert.equal(decoded[2], 0);
    for (let i = 8; i < 16; i++) assert.equal(decoded[i], 0);
  });

  test("truncated or overlong bytes and bad specs fail with stable codes", () => {
    const spec: QuantSpec = { bits: 8, scheme: "asymmetric", groupSize: 16 };
    const bytes = quantizeMatrix(matrix, rows, cols, spec);
    assert.throws(() => dequantizeMatrix(bytes.subarray(0, bytes.length - 1), rows, cols, spec), {
      code: "E_KV_DECODE",
    });
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.throws(() => dequantizeMatrix(longer, rows, cols, spec), { code: "E_KV_DECODE" });
    assert.throws(() => quantizeMatrix(matrix, rows, cols, { ...spec, bits: 1, scheme: "symmetric" }), {
      code: "E_WEIGHTS_QUANT",
    });
    assert.throws(() => quantizeMatrix(matrix, rows, cols, { ...spec, groupSize: 0 }), {
      code: "E_WEIGHTS_QUANT",
    });
  });
});
