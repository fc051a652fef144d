/** The one sha256 helper: hex digest of bytes (files, layers, keys, token streams). */
import { createHash } from "node:crypto";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
