/**
 * The fail-fast hardware check, before the model loads: does this machine's memory on the
 * configured device cover what the run needs (src/hardware/requirement.ts)? Never falls
 * back to another device.
 *
 * - cpu: available RAM = systeminformation's mem().available (free + reclaimable cache).
 * - cuda: the first NVIDIA controller (onnxruntime's CUDA provider runs on device 0). Its
 *   free VRAM is memoryFree (MiB, read through nvidia-smi) when reported; else
 *   memoryTotal - memoryUsed when both are; else the total VRAM (`vram`), which assumes
 *   nothing else uses the GPU (the inputs record which one was used). No NVIDIA GPU is
 *   E_NO_GPU; a GPU whose memory cannot be read at all is E_GPU_MEMORY_UNKNOWN.
 * - webgpu: the first GPU of any vendor that reports its memory (else the first GPU), read
 *   the same way; no GPU at all is E_NO_GPU.
 */
import { SpgError } from "../errors.js";
import { type GpuSnapshot, type HardwareProbe, type HardwareSnapshot, probeHardware } from "./probe.js";
import { formatBytes, type MemoryRequirement } from "./requirement.js";

const MIB = 2 ** 20;

export type HardwareVerdict = "ok" | "insufficient";
export type HardwareReason = "enough-memory" | "too-little-memory" | "no-nvidia-gpu" | "gpu-memory-unknown";

export interface HardwareCheck {
  device: "cpu" | "cuda" | "webgpu";
  verdict: HardwareVerdict;
  reason: HardwareReason;
  requiredBytes: number;
  /** Bytes found on the device (0 when none could be read). */
  availableBytes: number;
  inputs: {
    requirement: MemoryRequirement;
    /** Which reading availableBytes comes from. */
    memorySource: string;
    /** The GPU checked (cuda only). */
    gpu: GpuSnapshot | null;
    /** Every GPU the probe saw: "vendor model". */
    gpusSeen: string[];
  };
}

export function isNvidia(gpu: GpuSnapshot): boolean {
  return /nvidia/i.test(gpu.vendor) || /nvidia/i.test(gpu.model);
}

/** Free bytes on a GPU and where the number came from, or null when nothing was reported. */
export function gpuFreeBytes(gpu: GpuSnapshot): { bytes: number; source: string } | null {
  if (gpu.memoryFreeMiB !== null)
    return { bytes: gpu.memoryFreeMiB * MIB, source: "memoryFree (nvidia-smi)" };
  if (gpu.memoryTotalMiB !== null && gpu.memoryUsedMiB !== null) {
    return {
      bytes: (gpu.memoryTotalMiB - gpu.memoryUsedMiB) * MIB,
      source: "memoryTotal - memoryUsed (nvidia-smi)",
    };
  }
  if (gpu.vramMiB !== null && gpu.vramMiB > 0) {
    return { bytes: gpu.vramMiB * MIB, source: "vram total (free memory not reported; assumes an idle GPU)" };
  }
  return null;
}

/** Compares a requirement with a snapshot for a device; pure (no probing, no throwing). */
export function checkHardware(
  requirement: MemoryRequirement,
  snapshot: HardwareSnapshot,
  device: "cpu" | "cuda" | "webgpu",
): HardwareCheck {
  const gpusSeen = snapshot.gpus.map((g) => `${g.vendor} ${g.model}`.trim());
  const result = (
    reason: HardwareReason,
    availableBytes: number,
    memorySource: string,
    gpu: GpuSnapshot | null,
  ): HardwareCheck => ({
    device,
    verdict: reason === "enough-memory" ? "ok" : "insufficient",
    reason,
    requiredBytes: requirement.requiredBytes,
    availableBytes,
    inputs: { requirement, memorySource, gpu, gpusSeen },
  });
  if (device === "cpu") {
    const available = snapshot.memory.available;
    const enough = available >= requirement.requiredBytes;
    return result(
      enough ? "enough-memory" : "too-little-memory",
      available,
      "mem().available (free + reclaimable)",
      null,
    );
  }
  // CUDA runs on NVIDIA's device 0; WebGPU on whichever adapter Dawn picks: any GPU reporting memory.
  const gpu =
    device === "cuda"
      ? snapshot.gpus.find(isNvidia)
      : (snapshot.gpus.find((g) => gpuFreeBytes(g) !== null) ?? snapshot.gpus[0]);
  if (gpu === undefined)
    return result("no-nvidia-gpu", 0, device === "cuda" ? "no NVIDIA GPU found" : "no GPU found", null);
  const free = gpuFreeBytes(gpu);
  if (free === null) return result("gpu-memory-unknown", 0, "GPU memory not reported", gpu);
  const enough = free.bytes >= requirement.requiredBytes;
  return result(enough ? "enough-memory" : "too-little-memory", free.bytes, free.source, gpu);
}

function breakdown(r: MemoryRequirement): string {
  return (
    (r.processBytes > 0 ? `this process ${formatBytes(r.processBytes)} + ` : "") +
    (r.fixedOverheadBytes > 0 ? `runtime overhead ${formatBytes(r.fixedOverheadBytes)} + ` : "") +
    `weights ${formatBytes(r.weightBytes)}` +
    ` + the larger of loading ${formatBytes(r.loadBytes)} and running (KV ${formatBytes(r.kvBytes)} + logits ${formatBytes(r.logitsBytes)}` +
    ` + attention ${formatBytes(r.attentionBytes)} + activations ${formatBytes(r.activationBytes)}, passes of ${r.passRows} rows)` +
    (r.weightsMethodBytes > 0 ? ` + weights methods ${formatBytes(r.weightsMethodBytes)}` : "") +
    "," +
    ` plus ${Math.round(r.marginFraction * 100)}% margin, for ${r.tokens} tokens`
  );
}

/** Throws the SpgError a failed check stands for (E_NO_GPU, E_GPU_MEMORY_UNKNOWN, E_HARDWARE_INSUFFICIENT). */
export function assertHardware(check: HardwareCheck): void {
  if (check.verdict === "ok") return;
  const needed = `${formatBytes(check.requiredBytes)} (${breakdown(check.inputs.requirement)})`;
  const seen = check.inputs.gpusSeen.length > 0 ? check.inputs.gpusSeen.join(", ") : "none";
  switch (check.reason) {
    case "no-nvidia-gpu":
      if (check.device === "webgpu") {
        throw new SpgError("E_NO_GPU", `device webgpu needs a GPU; GPUs found: ${seen}`, {
          field: "model.device",
          fix: "run with --device cpu, or on a machine with a GPU whose driver offers a WebGPU adapter; spg never switches device itself",
        });
      }
      throw new SpgError("E_NO_GPU", `device cuda needs an NVIDIA GPU; GPUs found: ${seen}`, {
        field: "model.device",
        fix: "run with --device cpu, or on a machine with an NVIDIA GPU (CUDA 12 + cuDNN 9); spg never switches device itself",
      });
    case "gpu-memory-unknown":
      throw new SpgError(
        "E_GPU_MEMORY_UNKNOWN",
        `could not read the memory of ${check.inputs.gpu?.vendor} ${check.inputs.gpu?.model}; this run needs ${needed}`,
        {
          field: "model.device",
          fix: "install the NVIDIA driver utilities (nvidia-smi) so free VRAM can be read",
        },
      );
    default: {
      const where =
        check.device === "cpu"
          ? "available RAM"
          : `free VRAM on ${check.inputs.gpu?.vendor} ${check.inputs.gpu?.model}`;
      throw new SpgError(
        "E_HARDWARE_INSUFFICIENT",
        `this run needs ${needed} on ${check.device}; found ${formatBytes(check.availableBytes)} ${where} (${check.inputs.memorySource})`,
        {
          field: "model.device",
          fix:
            check.device === "cpu"
              ? "free memory, lower --context, or use a smaller model"
              : "free GPU memory, lower --context, use a smaller model or a GPU with more memory (spg will not fall back to cpu)",
        },
      );
    }
  }
}

/** Probes (or asks the injected probe), checks, and throws when the machine falls short. */
export async function runHardwareCheck(
  requirement: MemoryRequirement,
  device: "cpu" | "cuda" | "webgpu",
  probe: HardwareProbe = probeHardware,
): Promise<{ snapshot: HardwareSnapshot; check: HardwareCheck }> {
  const snapshot = await probe();
  const check = checkHardware(requirement, snapshot, device);
  assertHardware(check);
  return { snapshot, check };
}

/** The hardware check as environment.json records it (schemas/environment.schema.json: hardwareCheck). */
export interface HardwareCheckRecord {
  device: "cpu" | "cuda" | "webgpu";
  requiredBytes: number;
  availableBytes: number;
  marginFraction: number;
  verdict: "pass" | "fail";
  /** Flat: every number the requirement came from, and where the available memory was read. */
  inputs: Record<string, number | string | boolean | null>;
}

export function hardwareCheckRecord(check: HardwareCheck): HardwareCheckRecord {
  const r = check.inputs.requirement;
  const gpu = check.inputs.gpu;
  return {
    device: check.device,
    requiredBytes: check.requiredBytes,
    availableBytes: Math.floor(check.availableBytes),
    marginFraction: r.marginFraction,
    verdict: check.verdict === "ok" ? "pass" : "fail",
    inputs: {
      reason: check.reason,
      tokens: r.tokens,
      parameters: r.parameters,
      processBytes: r.processBytes,
      weightBytes: r.weightBytes,
      loadBytes: r.loadBytes,
      loadOverheadFraction: r.loadOverheadFraction,
      logitsCopies: r.logitsCopies,
      kvCopies: r.kvCopies,
      attentionCopies: r.attentionCopies,
      passRows: r.passRows,
      fixedOverheadBytes: r.fixedOverheadBytes,
      kvBytes: r.kvBytes,
      logitsBytes: r.logitsBytes,
      attentionBytes: r.attentionBytes,
      activationBytes: r.activationBytes,
      activationFactor: r.activationFactor,
      weightsMethodBytes: r.weightsMethodBytes,
      subtotalBytes: r.subtotalBytes,
      memorySource: check.inputs.memorySource,
      gpu: gpu === null ? null : `${gpu.vendor} ${gpu.model}`.trim(),
      gpuSource: gpu === null ? null : gpu.source,
    },
  };
}
