/**
 * The ONNX graph against Hugging Face transformers' own outputs (test/fixtures/gpt-neo-hf):
 * full forwards, prefill + 8 cached decode steps through the layout helpers, attention
 * probabilities, present keys/values, and a left-padded batch row via the padding bias.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  appendTokens,
  cacheFromPrefill,
  emptyCache,
  MASKED_ATTENTION_BIAS,
  pastInputs,
} from "../../src/kv/layout.js";
import { loadRuntime } from "../../src/model/session.js";
import type { GptNeoCheckpoint, GptNeoRuntime } from "../../src/model/types.js";
import { fixtureCase, loadFixtureCheckpoint, maxAbsDiff } from "../helpers/fixture-checkpoint.js";
import { rowNorms, windowSumsFromRows } from "../helpers/statistics.js";

const TOLERANCE = 1e-4;

for (const name of ["A", "B"] as const) {
  describe(`GPT-Neo graph vs Hugging Face fixtures, config ${name}`, () => {
    let checkpoint: GptNeoCheckpoint;
    let runtime: GptNeoRuntime;
    const observationWindow = 4;

    before(async () => {
      checkpoint = loadFixtureCheckpoint(name);
      runtime = await loadRuntime(checkpoint, { device: "cpu", observationWindow });
    });
    after(async () => {
      await runtime.close();
    });

    const prefill = async (ids: number[]) => {
      const positions = ids.map((_, i) => i);
      const inputs = pastInputs(emptyCache(checkpoint.config), checkpoint.config, positions);
      return {
        positions,
        output: await runtime.forward({ inputIds: ids, positionIds: positions, ...inputs }),
      };
    };

    const lengths = name === "A" ? [1, 7, 24] : [1, 6, 17];
    for (const length of lengths) {
      test(`full_len${length}: logits within ${TOLERANCE}`, async () => {
        const reference = fixtureCase(name, `full_len${length}`);
        const { output } = await prefill(reference.input_ids[0]);
        assert.deepEqual(reference.logits!.shape, [1, length, checkpoint.config.vocabSize]);
        assert.ok(maxAbsDiff(output.logits, reference.logits!.data) <= TOLERANCE);
      });
    }

    const incremental = name === "A" ? "incremental_prefill16_decode8" : "incremental_prefill12_decode8";
    test(`${incremental}: prefill, then 8 steps from the cache built by the layout helpers`, async () => {
      const reference = fixtureCase(name, incremental);
      const config = checkpoint.config;
      const ids = reference.input_ids[0];
      const prefillLength = reference.prefill_length!;
      const { positions, output } = await prefill(ids.slice(0, prefillLength));
      assert.ok(maxAbsDiff(output.logits, reference.prefill_logits!.data) <= TOLERANCE);
      let cache = cacheFromPrefill(config, output, positions);
      for (const step of reference.steps!) {
        const inputs = pastInputs(cache, config, [step.position]);
        const stepOutput = await runtime.forward({
          inputIds: [step.input_id],
          positionIds: [step.position],
          ...inputs,
        });
        const diff = maxAbsDiff(stepOutput.logits, step.logits.data);
        assert.ok(diff <= TOLERANCE, `step at position ${step.position}: max diff ${diff}`);
        cache = appendTokens(cache, stepOutput, [step.position]);
      }
      // The cache the helpers assembled equals HF's final past key/values (layer 0 and the last).
      const total = ids.length;
      for (const layer of [0, config.numLayers - 1]) {
        const hf = reference.final_past_key_values![`layer_${layer}`];
        assert.deepEqual(hf.key.shape, [1, config.numHeads, total, config.headDim]);
        const ours = pastInputs(cache, config, [total]).past[layer];
        assert.equal(ours.slots, total);
        assert.ok(maxAbsDiff(ours.keys, hf.key.data) <= TOLERANCE);
        assert.ok(maxAbsDiff(ours.values, hf.value.data) <= TOLERANCE);
      }
    });

    const attentionLength = name === "A" ? 24 : 17;
    test(`attentions_len${attentionLength}: last rows, column and window sums equal HF's probabilities; norms`, async () => {
      const reference = fixtureCase(name, `attentions_len${attentionLength}`);
      const config = checkpoint.config;
      const q = attentionLength;
      const { output } = await prefill(reference.input_ids[0]);
      assert.ok(maxAbsDiff(output.logits, reference.logits!.data) <= TOLERANCE);
      assert.equal(output.attentionRows, Math.min(observationWindow, q));
      for (let layer = 0; layer < config.numLayers; layer++) {
        const probs = reference.attentions![layer].data; // [1, heads, q, q]
        const expectedLast: number[] = [];
        const expectedSums = new Array<number>(config.numHeads * q).fill(0);
        for (let h = 0; h < config.numHeads; h++) {
          for (let i = 0; i < q; i++) {
            for (let j = 0; j < q; j++) {
              const p = probs[(h * q + i) * q + j];
              expectedSums[h * q + j] += p;
              if (i >= q - output.attentionRows) expectedLast.push(p);
            }
          }
        }
        assert.ok(
          maxAbsDiff(output.attentionLastRows[layer], expectedLast) <= TOLERANCE,
          `layer ${layer} last rows`,
        );
        assert.ok(
          maxAbsDiff(output.attentionColumnSums[layer], expectedSums) <= TOLERANCE,
          `layer ${layer} sums`,
        );
        // Window sums: HF's rows summed, and bit for bit the JS running sum over the graph's rows.
        const rows = output.attentionRows;
        const fromHf = windowSumsFromRows(Float32Array.from(expectedLast), config.numHeads, rows, q);
        assert.ok(
          maxAbsDiff(output.attentionWindowSums[layer], fromHf) <= rows * TOLERANCE,
          `layer ${layer} window sums`,
        );
        assert.deepEqual(
          output.attentionWindowSums[layer],
          windowSumsFromRows(output.attentionLastRows[layer], config.numHeads, rows, q),
        );
        // Norms: the float64 norms of the keys and values the graph returned.
        for (const [norms, matrix] of [
          [output.keyNorms[layer], output.presentKeys[layer]],
          [output.valueNorms[layer], output.presentValues[layer]],
        ] as const) {
          const expected = rowNorms(matrix, config.numHeads * q, config.headDim);
          assert.equal(norms.length, expected.length);
          assert.ok(maxAbsDiff(norms, expected) <= 1e-12 * Math.max(...expected), `layer ${layer} norms`);
        }
      }
    });

    if (name === "A") {
      test("batch2_left_padded row 0: pads masked by the bias give HF's logits at non-pad positions", async () => {
        const reference = fixtureCase(name, "batch2_left_padded");
        const config = checkpoint.config;
        const ids = reference.input_ids[0];
        const mask = reference.attention_mask![0];
        const positionIds = reference.position_ids![0];
        const q = ids.length;
        // HF masks by sequence index (causal, local window) and by the padding mask.
        const attentionBias = config.attentionLayers.map((kind) => {
          const bias = new Float32Array(config.numHeads * q * q).fill(MASKED_ATTENTION_BIAS);
          for (let h = 0; h < config.numHeads; h++) {
            for (let i = 0; i < q; i++) {
              for (let j = 0; j <= i; j++) {
                const inWindow = kind === "global" || i - j < config.windowSize;
                // A pad query reads only itself so its row stays finite; its logits are not compared.
                if ((mask[j] === 1 && inWindow) || (mask[i] === 0 && i === j)) bias[(h * q + i) * q + j] = 0;
              }
            }
          }
          return bias;
        });
        const past = config.attentionLayers.map(() => ({
          slots: 0,
          keys: new Float32Array(0),
          values: new Float32Array(0),
        }));
        const output = await runtime.forward({ inputIds: ids, positionIds, past, attentionBias });
        const vocab = config.vocabSize;
        let compared = 0;
        for (let i = 0; i < q; i++) {
          if (mask[i] !== 1) continue;
          const ours = output.logits.subarray(i * vocab, (i + 1) * vocab);
          const theirs = reference.logits!.data.slice(i * vocab, (i + 1) * vocab);
          assert.ok(maxAbsDiff(ours, theirs) <= TOLERANCE, `position ${i}`);
          compared += 1;
        }
        assert.equal(compared, mask.filter((m) => m === 1).length);
      });
    }
  });
}
