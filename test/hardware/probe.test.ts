import assert from "node:assert/strict";
import { test } from "node:test";
import { probeHardware } from "../../src/hardware/probe.js";

test("probeHardware returns a plain JSON snapshot of this machine (smoke)", async () => {
  const snapshot = await probeHardware();
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
