/**
 * What this machine has, from systeminformation, as a plain JSON-able snapshot (it goes
 * into a bundle's environment.json). The hardware check takes a snapshot as input, so
 * tests inject fake ones instead of probing.
 *
 * On Linux systeminformation lists GPUs from `lspci` and only then merges nvidia-smi's
 * memory figures into them; in containers without pciutils it lists none even when
 * nvidia-smi works. So when it reports no NVIDIA GPU, the probe asks nvidia-smi directly
 * (same query fields) and records such GPUs with source "nvidia-smi".
 */
import { execFile } from "node:child_process";
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
  /** Where this entry came from. */
  source: "systeminformation" | "nvidia-smi";
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

/** The nvidia-smi query the probe runs (CSV, no header, no units: MiB for memory). */
export const NVIDIA_SMI_ARGS = [
  "--query-gpu=name,memory.total,memory.used,memory.free,driver_version",
  "--format=csv,noheader,nounits",
];

/** Parses `nvidia-smi ${NVIDIA_SMI_ARGS}` output; "[N/A]" fields become null. */
export function parseNvidiaSmi(stdout: string): GpuSnapshot[] {
  const number = (field: string | undefined) => {
    const value = field === undefined ? Number.NaN : Number.parseFloat(field);
    return Number.isFinite(value) ? value : null;
  };
  return stdout
    .split(/\r?\n/)
    .filter((line) => line.trim() !== "")
    .map((line) => line.split(",").map((f) => f.trim()))
    .filter((fields) => fields.length >= 5)
    .map(([name, total, used, free, driver]) => ({
      vendor: "NVIDIA",
      model: name,
      vramMiB: number(total),
      vramDynamic: false,
      memoryTotalMiB: number(total),
      memoryUsedMiB: number(used),
      memoryFreeMiB: number(free),
      driverVersion: driver.includes("N/A") ? null : driver,
      source: "nvidia-smi" as const,
    }));
}

/** Runs nvidia-smi; resolves to its stdout, or null when it is absent or fails. */
export type NvidiaSmiRunner = () => Promise<string | null>;

const runNvidiaSmi: NvidiaSmiRunner = () =>
  new Promise((resolve) => {
    execFile("nvidia-smi", NVIDIA_SMI_ARGS, { timeout: 10_000 }, (error, stdout) =>
      resolve(error ? null : stdout),
    );
  });

/** Probes this machine with systeminformation (memory, GPUs, OS, CPU), nvidia-smi as above. */
export async function probeHardware(nvidiaSmi: NvidiaSmiRunner = runNvidiaSmi): Promise<HardwareSnapshot> {
  const [mem, graphics, os, cpu] = await Promise.all([si.mem(), si.graphics(), si.osInfo(), si.cpu()]);
  const gpus: GpuSnapshot[] = graphics.controllers.map((c) => ({
    vendor: c.vendor ?? "",
    model: c.model ?? "",
    vramMiB: numberOrNull(c.vram),
    vramDynamic: c.vramDynamic === true,
    memoryTotalMiB: numberOrNull(c.memoryTotal),
    memoryUsedMiB: numberOrNull(c.memoryUsed),
    memoryFreeMiB: numberOrNull(c.memoryFree),
    driverVersion: c.driverVersion ?? null,
    source: "systeminformation",
  }));
  if (!gpus.some((g) => /nvidia/i.test(`${g.vendor} ${g.model}`))) {
    const stdout = await nvidiaSmi();
    if (stdout !== null) gpus.push(...parseNvidiaSmi(stdout));
  }
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
    gpus,
  };
}
