/** The WebAssembly text of src/numeric/simd and its compilation (wabt), shared by scripts/compile-wasm.ts and the tests. */
import { join } from "node:path";
import wabt from "wabt";
import { packageRoot } from "../src/paths.js";

export function kernelsTextPath(): string {
  return join(packageRoot(), "src", "numeric", "simd", "kernels.wat");
}

/** The module's bytes: fixed-width LEB128s and no names section, so the same text gives the same bytes. */
export async function kernelsSource(text: string): Promise<Uint8Array> {
  const tools = await wabt();
  const module = tools.parseWat("kernels.wat", text, { simd: true, sat_float_to_int: true });
  try {
    module.validate();
    return module.toBinary({ canonicalize_lebs: true, write_debug_names: false }).buffer;
  } finally {
    module.destroy();
  }
}
