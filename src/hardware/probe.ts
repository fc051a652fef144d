/**
 * What this machine has, from systeminformation, as a plain JSON-able snapshot (it goes
 * into a bundle's environment.json). The hardware check takes a snapshot as input, so
 * tests inject fake ones instead of probing.
 */
import si from "systeminformation";

export interface GpuSnapshot {
  vendor: string;
  model: string;
  /** Total VRAM in MiB as the OS reports it, or null when unknown. */
  vramMiB: number | null;
  /** True for shared/dynamically allocated memory (integrated GPUs). */
  vramDynamic: boolean;
  /** nvidia-smi's view, in MiB, when systeminformation could read it; else null. */
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  driverVersion: string | null;
}

export interface HardwareSnapshot {
  os: { platform: string; distro: string; release: string; kernel: string; arch: string };
  cpu: { manufacturer: string; brand: string; cores: number; physicalCores: number; speedGHz: number };
  /** Bytes. `available` = free plus reclaimable cache (what a new process can get). */
  memory: { total: number; free: number; available: number };
  gpus: GpuSnapshot[];
}

/** A function returning a snapshot: `probeHardware` in production, a fake in tests. */
export type HardwareProbe = () => Promise<HardwareSnapshot>;

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Probes this machine with systeminformation (memory, GPUs, OS, CPU). */
export async function probeHardware(): Promise<HardwareSnapshot> {
  const [mem, graphics, os, cpu] = await Promise.all([si.mem(), si.graphics(), si.osInfo(), si.cpu()]);
  return {
    os: { platform: os.platform, distro: os.distro, release: os.release, kernel: os.kernel, arch: os.arch },
    cpu: {
      manufacturer: cpu.manufacturer,
      brand: cpu.brand,
      cores: cpu.cores,
      physicalCores: cpu.physicalCores,
      speedGHz: cpu.speed,
    },
    memory: { total: mem.total, free: mem.free, available: mem.available },
    gpus: graphics.controllers.map((c) => ({
      vendor: c.vendor ?? "",
      model: c.model ?? "",
      vramMiB: numberOrNull(c.vram),
      vramDynamic: c.vramDynamic === true,
      memoryTotalMiB: numberOrNull(c.memoryTotal),
      memoryUsedMiB: numberOrNull(c.memoryUsed),
      memoryFreeMiB: numberOrNull(c.memoryFree),
      driverVersion: c.driverVersion ?? null,
    })),
  };
}
