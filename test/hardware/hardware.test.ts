import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveConfig } from "../../src/config/load.js";
import type { RunConfig } from "../../src/config/types.js";
import { isSpgError } from "../../src/errors.js";
import {
  assertHardware,
  checkHardware,
  gpuFreeBytes,
  hardwareCheckRecord,
  runHardwareCheck,
} from "../../src/hardware/check.js";
import type { GpuSnapshot, HardwareSnapshot } from "../../src/hardware/probe.js";
import { type MemoryRequirement, memoryRequirement, parameterCount } from "../../src/hardware/requirement.js";
import type { PrefillChunkSplit } from "../../src/model/prefill-chunks.js";
import type { GptNeoConfig } from "../../src/model/types.js";
import { spgError } from "../helpers/spg-error.js";

const MIB = 2 ** 20;

function model(overrides: Partial<GptNeoConfig>): GptNeoConfig {
  return {
    vocabSize: 50257,
    hiddenSize: 768,
    numLayers: 12,
    numHeads: 12,
    headDim: 64,
    attentionLayers: Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? "global" : "local")),
    windowSize: 256,
    maxPositions: 2048,
    intermediateSize: 3072,
    layerNormEpsilon: 1e-5,
    activation: "gelu_new",
    bosTokenId: 50256,
    eosTokenId: 50256,
    ...overrides,
  };
}

/** A model small enough that every term of the requirement can be written out by hand. */
function tinyModel(): GptNeoConfig {
  return model({
    vocabSize: 10,
    hiddenSize: 4,
    numLayers: 2,
    numHeads: 2,
    headDim: 2,
    maxPositions: 32,
    intermediateSize: 16,
  });
}

function runConfig(change: (c: RunConfig) => void): RunConfig {
  const config = structuredClone(resolveConfig());
  change(config);
  return config;
}

function requirementOf(bytes: number): MemoryRequirement {
  return {
    device: "cuda",
    tokens: 1,
    parameters: 1,
    processBytes: 0,
    weightBytes: bytes,
    loadBytes: 0,
    passRows: 1,
    kvBytes: 0,
    logitsBytes: 0,
    attentionBytes: 0,
    activationBytes: 0,
    weightsMethodBytes: 0,
    subtotalBytes: bytes,
    marginFraction: 0,
    activationFactor: 1,
    logitsCopies: 1,
    kvCopies: 2,
    attentionCopies: 1,
    loadOverheadFraction: 0,
    fixedOverheadBytes: 0,
    requiredBytes: bytes,
  };
}

function gpu(overrides: Partial<GpuSnapshot>): GpuSnapshot {
  return {
    vendor: "NVIDIA Corporation",
    model: "NVIDIA T4",
    vramMiB: 16384,
    vramDynamic: false,
    memoryTotalMiB: null,
    memoryUsedMiB: null,
    memoryFreeMiB: null,
    driverVersion: "550.54",
    source: "systeminformation",
    ...overrides,
  };
}

function snapshot(gpus: GpuSnapshot[], availableBytes = 8 * 1024 * MIB): HardwareSnapshot {
  return {
    os: { platform: "linux", distro: "Debian", release: "12", kernel: "6", arch: "x64" },
    cpu: { manufacturer: "AMD", brand: "EPYC", cores: 2, physicalCores: 2, speedGHz: 2 },
    memory: { total: 16 * 1024 * MIB, free: availableBytes, available: availableBytes },
    gpus,
  };
}

test("parameter count of GPT-Neo 125M matches its published count (125,198,592)", () => {
  assert.equal(parameterCount(model({})), 125_198_592);
});

test("memory requirement of a tiny config, term by term (closed form)", () => {
  const tiny = tinyModel();
  const config = runConfig((c) => {
    c.dataset.contextTokens = 8;
    c.dataset.continuationTokens = 4;
    c.generation.tokens = 2;
    c.hardware.activationFactor = 3;
    c.hardware.marginFraction = 0.25;
    c.hardware.logitsCopies = 2;
    c.hardware.kvCopies = 2;
    c.hardware.attentionCopies = 1;
    c.hardware.loadOverheadFraction = 0.5;
    c.hardware.fixedOverheadBytes = 100;
  });
  const r = memoryRequirement(tiny, config, 1000);
  // wte 40 + wpe 128 + 2 layers * (LN 8 + LN 8 + qkv 48 + out 20 + fc 80 + proj 68) + ln_f 8
  assert.equal(r.parameters, 40 + 128 + 2 * (8 + 8 + 48 + 20 + 80 + 68) + 8);
  // one session holds the weights, spg's hybrid sparse top-k included (default preset)
  assert.equal(r.weightBytes, 640 * 4);
  assert.equal(r.tokens, 12);
  assert.equal(r.kvBytes, 2 * 2 * 2 * 4 * 12 * 4); // caches held * (K,V) * layers * hidden * tokens * fp32
  // 2 copies * 3 teacher-forced rows * vocab 10 * (f32 logits + f64 copy + f32 probabilities + 3 f64 intermediates + 2 f64 scoring copies)
  assert.equal(r.logitsBytes, 2 * 3 * 10 * (4 + 8 + 4 + 24 + 16));
  // the prefill chunk (256) covers the 8-token context: one pass, heads * context^2 * fp32
  assert.equal(r.passRows, 8);
  assert.equal(r.attentionBytes, 2 * 8 * 8 * 4);
  assert.equal(r.activationBytes, 3 * 8 * 16 * 4);
  assert.equal(r.processBytes, 1000); // counted on cpu
  assert.equal(r.loadBytes, 1280); // half the weights
  // running (KV + logits + attention + activations) outweighs loading here
  const running = 1536 + 3360 + 512 + 1536;
  // the head reads wte in place: no second copy of it
  assert.equal(r.subtotalBytes, 1000 + 100 + 2560 + running);
  assert.equal(r.requiredBytes, Math.ceil((1000 + 100 + 2560 + running) * 1.25));
  // loading outweighs running once its fraction does: the two never add up
  const heavyLoad = structuredClone(config);
  heavyLoad.hardware.loadOverheadFraction = 4;
  assert.equal(memoryRequirement(tiny, heavyLoad, 1000).subtotalBytes, 1000 + 100 + 2560 + 4 * 2560);
  // on a GPU the host process is not counted
  const onGpu = structuredClone(config);
  onGpu.model.device = "cuda";
  assert.equal(memoryRequirement(tiny, onGpu, 1000).processBytes, 0);
  const generationLonger = memoryRequirement(
    tiny,
    runConfig((c) => {
      c.dataset.contextTokens = 8;
      c.dataset.continuationTokens = 4;
      c.generation.tokens = 9;
    }),
  );
  assert.equal(generationLonger.tokens, 17);
});

test("memory requirement in prefill chunks: attention and activations scale with the pass's rows (closed form)", () => {
  const tiny = tinyModel();
  const chunked = (
    chunk: number | undefined,
    observationWindow: number,
    split: PrefillChunkSplit | "absent" = "balanced",
  ) =>
    memoryRequirement(
      tiny,
      runConfig((c) => {
        if (split === "absent") delete c.kv.prefillChunkSplit;
        else c.kv.prefillChunkSplit = split;
        c.dataset.contextTokens = 20;
        c.dataset.continuationTokens = 3;
        c.generation.tokens = 2;
        c.kv.observationWindow = observationWindow;
        if (chunk === undefined) delete c.kv.prefillChunkTokens;
        else c.kv.prefillChunkTokens = chunk;
        c.hardware.activationFactor = 3;
        c.hardware.attentionCopies = 5;
        c.hardware.kvCopies = 3.5;
      }),
    );
  // one pass: [heads, 20, 20]
  const whole = chunked(undefined, 2);
  assert.equal(whole.passRows, 20);
  assert.equal(whole.attentionBytes, 5 * 2 * 20 * 20 * 4);
  assert.equal(whole.activationBytes, 3 * 20 * 16 * 4);
  // passes of 4 rows read the 20 laid-out slots and their own 4 keys: [heads, 4, 24]
  const four = chunked(4, 2);
  assert.equal(four.passRows, 4);
  assert.equal(four.attentionBytes, 5 * 2 * 4 * 24 * 4);
  assert.equal(four.activationBytes, 3 * 4 * 16 * 4);
  // the last pass holds at least the observation window
  assert.equal(chunked(4, 6).attentionBytes, 5 * 2 * 6 * 26 * 4);
  // 20 rows in chunks of at most 8: balanced 6 + 7 + 7, remainder first 4 + 8 + 8 (also when the field is absent)
  const balanced = chunked(8, 2);
  assert.equal(balanced.passRows, 7);
  assert.equal(balanced.attentionBytes, 5 * 2 * 7 * 27 * 4);
  for (const split of ["remainder-first", "absent"] as const) {
    const remainderFirst = chunked(8, 2, split);
    assert.equal(remainderFirst.passRows, 8);
    assert.equal(remainderFirst.attentionBytes, 5 * 2 * 8 * 28 * 4);
  }
  // KV: copies * (K,V) * layers * hidden * (context + continuation) * fp32
  assert.equal(four.kvBytes, 3.5 * 2 * 2 * 4 * 23 * 4);
  assert.ok(four.requiredBytes < whole.requiredBytes);
});

test("cpu: enough available RAM is ok, too little is E_HARDWARE_INSUFFICIENT with needed, found and fix", () => {
  const ok = checkHardware(requirementOf(100 * MIB), snapshot([], 200 * MIB), "cpu");
  assert.equal(ok.verdict, "ok");
  assert.equal(ok.availableBytes, 200 * MIB);
  assertHardware(ok);
  const short = checkHardware(requirementOf(300 * MIB), snapshot([], 200 * MIB), "cpu");
  assert.equal(short.verdict, "insufficient");
  const error = spgError(() => assertHardware(short));
  assert.equal(error.code, "E_HARDWARE_INSUFFICIENT");
  assert.match(error.message, /needs 300\.0 MiB/);
  assert.match(error.message, /found 200\.0 MiB available RAM/);
  assert.ok(error.fix);
});

test("cuda without an NVIDIA GPU is E_NO_GPU, even with plenty of RAM", () => {
  const intel = gpu({
    vendor: "Intel Corporation",
    model: "UHD Graphics 630",
    vramMiB: 1024,
    vramDynamic: true,
  });
  for (const gpus of [[], [intel]]) {
    const check = checkHardware(requirementOf(MIB), snapshot(gpus), "cuda");
    assert.equal(check.verdict, "insufficient");
    assert.equal(check.reason, "no-nvidia-gpu");
    const error = spgError(() => assertHardware(check));
    assert.equal(error.code, "E_NO_GPU");
    assert.match(error.fix ?? "", /--device cpu/);
  }
});

test("cuda: free VRAM from memoryFree, else total - used, else total VRAM", () => {
  assert.deepEqual(
    gpuFreeBytes(gpu({ memoryFreeMiB: 1000, memoryTotalMiB: 16000, memoryUsedMiB: 100 }))?.bytes,
    1000 * MIB,
  );
  assert.equal(gpuFreeBytes(gpu({ memoryTotalMiB: 16000, memoryUsedMiB: 15000 }))?.bytes, 1000 * MIB);
  const totalOnly = gpuFreeBytes(gpu({ vramMiB: 4096 }));
  assert.equal(totalOnly?.bytes, 4096 * MIB);
  assert.match(totalOnly?.source ?? "", /vram total/);
  assert.equal(gpuFreeBytes(gpu({ vramMiB: null })), null);
});

test("cuda: GPU present but too small fails; enough VRAM passes; unreadable memory fails", () => {
  const small = gpu({ memoryFreeMiB: 512, memoryTotalMiB: 16384, memoryUsedMiB: 15872 });
  const tooSmall = checkHardware(requirementOf(1024 * MIB), snapshot([small]), "cuda");
  assert.equal(tooSmall.verdict, "insufficient");
  assert.equal(tooSmall.availableBytes, 512 * MIB);
  const error = spgError(() => assertHardware(tooSmall));
  assert.equal(error.code, "E_HARDWARE_INSUFFICIENT");
  assert.match(error.message, /1\.00 GiB/);
  assert.match(error.message, /512\.0 MiB free VRAM on NVIDIA/);
  assert.match(error.fix ?? "", /not fall back/);
  const big = gpu({ memoryFreeMiB: 15000 });
  const enough = checkHardware(requirementOf(1024 * MIB), snapshot([big]), "cuda");
  assert.equal(enough.verdict, "ok");
  assert.equal(enough.inputs.gpu, big);
  const unknown = checkHardware(requirementOf(MIB), snapshot([gpu({ vramMiB: null })]), "cuda");
  assert.equal(spgError(() => assertHardware(unknown)).code, "E_GPU_MEMORY_UNKNOWN");
});

test("runHardwareCheck uses the injected probe and throws before anything loads", async () => {
  const tiny = model({});
  const config = runConfig((c) => {
    c.model.device = "cuda";
  });
  const requirement = memoryRequirement(tiny, config);
  let probed = 0;
  const probe = async () => {
    probed++;
    return snapshot([gpu({ memoryFreeMiB: 1 })]);
  };
  await assert.rejects(
    runHardwareCheck(requirement, "cuda", probe),
    (e: unknown) => isSpgError(e) && e.code === "E_HARDWARE_INSUFFICIENT",
  );
  assert.equal(probed, 1);
  const fine = await runHardwareCheck(requirement, "cuda", async () =>
    snapshot([gpu({ memoryFreeMiB: 80_000 })]),
  );
  assert.equal(fine.check.verdict, "ok");
  assert.ok(fine.check.requiredBytes > requirement.weightBytes);
});

test("the check as environment.json records it: flat inputs, pass/fail", () => {
  const tiny = tinyModel();
  const config = runConfig((c) => {
    c.dataset.contextTokens = 8;
    c.dataset.continuationTokens = 4;
    c.generation.tokens = 2;
    c.hardware.activationFactor = 3;
    c.hardware.marginFraction = 0.25;
    c.hardware.logitsCopies = 1;
    c.hardware.kvCopies = 2;
    c.hardware.attentionCopies = 1;
    c.hardware.fixedOverheadBytes = 0;
    c.hardware.loadOverheadFraction = 0;
  });
  const requirement = memoryRequirement(tiny, config);
  const pass = hardwareCheckRecord(checkHardware(requirement, snapshot([], 20_000), "cpu"));
  assert.deepEqual(pass, {
    device: "cpu",
    requiredBytes: 9780,
    availableBytes: 20_000,
    marginFraction: 0.25,
    verdict: "pass",
    inputs: {
      reason: "enough-memory",
      tokens: 12,
      parameters: 640,
      processBytes: 0,
      weightBytes: 2560,
      loadBytes: 0,
      loadOverheadFraction: 0,
      logitsCopies: 1,
      kvCopies: 2,
      attentionCopies: 1,
      passRows: 8,
      fixedOverheadBytes: 0,
      kvBytes: 1536,
      logitsBytes: 1680,
      attentionBytes: 512,
      activationBytes: 1536,
      activationFactor: 3,
      weightsMethodBytes: 0,
      subtotalBytes: 7824,
      memorySource: "mem().available (free + reclaimable)",
      gpu: null,
      gpuSource: null,
    },
  });
  const fail = hardwareCheckRecord(checkHardware(requirement, snapshot([gpu({ memoryFreeMiB: 0 })]), "cuda"));
  assert.equal(fail.verdict, "fail");
  assert.equal(fail.inputs.gpu, "NVIDIA Corporation NVIDIA T4");
});

test("weights methods add one compressed runtime (rank bounds by selection), the compression's copies and kept baselines", () => {
  const tiny = tinyModel();
  const withWeights = (rules: unknown[]) =>
    runConfig((c) => {
      c.dataset.samples = 3;
      c.dataset.contextTokens = 8;
      c.dataset.continuationTokens = 4;
      c.generation.tokens = 2;
      c.hardware.activationFactor = 3;
      c.hardware.marginFraction = 0.25;
      c.hardware.logitsCopies = 1;
      c.hardware.kvCopies = 2;
      c.hardware.attentionCopies = 1;
      c.hardware.fixedOverheadBytes = 0;
      c.hardware.loadOverheadFraction = 0;
      c.methods = [
        { name: "full", kind: "full", params: {} },
        { name: "w", kind: "weights", params: { policy: "w", baselineDtype: "fp16", rules, keepDense: [] } },
      ];
    });
  const parameters = 640;
  const fixed = (runtime: number) => runtime * 4 + 2 * parameters * 4 + 3 * 3 * 10 * 4;
  // rank 1 on wte [10, 4]: 1 * (10 + 4) values instead of 40
  const rank = memoryRequirement(tiny, withWeights([{ modules: ["wte"], lowRank: { rank: 1 } }]));
  assert.equal(rank.weightsMethodBytes, fixed(parameters - 40 + 14));
  // an energy threshold may keep full rank: min(10, 4) * (10 + 4) = 56 values
  const energy = memoryRequirement(tiny, withWeights([{ modules: ["wte"], lowRank: { energy: 0.9 } }]));
  assert.equal(energy.weightsMethodBytes, fixed(parameters - 40 + 56));
  assert.equal(energy.subtotalBytes, 2560 + 1536 + 1680 + 512 + 1536 + energy.weightsMethodBytes);
  // plain quantization keeps the runtime dense
  const quantized = memoryRequirement(
    tiny,
    withWeights([{ modules: ["c_fc"], quantize: { bits: 8, scheme: "symmetric", groupSize: "row" } }]),
  );
  assert.equal(quantized.weightsMethodBytes, fixed(parameters));
});
