import { createHash } from "node:crypto";
import type { DatasetDocument } from "./types.js";

/**
 * A split's identity: sha256 over its documents in order, each id and text length-prefixed
 * (u64 little-endian byte length, then the UTF-8 bytes), so no two splits share a hash by
 * concatenation.
 */
export function hashDocuments(documents: readonly DatasetDocument[]): string {
  const hash = createHash("sha256");
  for (const document of documents) {
    for (const part of [document.id, document.text]) {
      const bytes = Buffer.from(part, "utf8");
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(bytes.length));
      hash.update(length);
      hash.update(bytes);
    }
  }
  return hash.digest("hex");
}
