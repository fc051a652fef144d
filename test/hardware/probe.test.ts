import assert from "node:assert/strict";
import { test } from "node:test";
import { checkHardware } from "../../src/hardware/check.js";
import { parseNvidiaSmi, probeHardware } from "../../src/hardware/probe.js";
import type { MemoryRequirement } from "../../src/hardware/requirement.js";

test("probeHardware returns a plain JSON snapshot of this machine (smoke)", async () => {
  const snapshot = await probeHardware(async () => null);
  assert.deepEqual(JSON.parse(JSON.stringify(snapshot)), snapshot);
  assert.ok(snapshot.memory.total > 0);
  assert.ok(snapshot.memory.available > 0 && snapshot.memory.available <= snapshot.memory.total);
  assert.ok(snapshot.cpu.cores >= 1);
  assert.equal(typeof snapshot.os.platform, "string");
  assert.ok(Array.isArray(snapshot.gpus));
  for (const gpu of snapshot.gpus) {
    assert.equal(typeof gpu.vendor, "string");
    assert.ok(gpu.vramMiB === null || typeof gpu.vramMiB === "number");
  }
});

const SMI = "NVIDIA H100 80GB HBM3, 81559, 1024, 80535, 550.54.15\nTesla T4, 15360, [N/A], [N/A], [N/A]\n";

test("nvidia-smi CSV parses into GPU entries (MiB, [N/A] as null)", () => {
  assert.deepEqual(parseNvidiaSmi(SMI), [
    {
      vendor: "NVIDIA",
      model: "NVIDIA H100 80GB HBM3",
      vramMiB: 81559,
      vramDynamic: false,
      memoryTotalMiB: 81559,
      memoryUsedMiB: 1024,
      memoryFreeMiB: 80535,
      driverVersion: "550.54.15",
      source: "nvidia-smi",
    },
    {
      vendor: "NVIDIA",
      model: "Tesla T4",
      vramMiB: 15360,
      vramDynamic: false,
      memoryTotalMiB: 15360,
      memoryUsedMiB: null,
      memoryFreeMiB: null,
      driverVersion: null,
      source: "nvidia-smi",
    },
  ]);
  assert.deepEqual(parseNvidiaSmi(""), []);
});

test("when systeminformation lists no NVIDIA GPU, nvidia-smi's answer is used", async (t) => {
  const snapshot = await probeHardware(async () => SMI);
  if (
    snapshot.gpus.some((g) => g.source === "systeminformation" && /nvidia/i.test(`${g.vendor} ${g.model}`))
  ) {
    t.skip("this machine has an NVIDIA GPU that systeminformation lists");
    return;
  }
  const fromSmi = snapshot.gpus.filter((g) => g.source === "nvidia-smi");
  assert.equal(fromSmi.length, 2);
  const requirement = { requiredBytes: 2 ** 30, marginFraction: 0 } as MemoryRequirement;
  const check = checkHardware(requirement, snapshot, "cuda");
  assert.equal(check.verdict, "ok");
  assert.equal(check.availableBytes, 80535 * 2 ** 20);
});
