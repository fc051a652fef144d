import { createHash, type Hash } from "node:crypto";
import type { DatasetDocument } from "./types.js";

/**
 * A split's identity: sha256 over its documents in order, each id and text length-prefixed
 * (u64 little-endian byte length, then the UTF-8 bytes), so no two splits share a hash by
 * concatenation. Fed one document at a time, so a streamed split is hashed as it is read.
 */
export class DocumentsHash {
  private readonly hash: Hash = createHash("sha256");
  /** Documents added so far. */
  count = 0;

  add(document: DatasetDocument): void {
    for (const part of [document.id, document.text]) {
      const bytes = Buffer.from(part, "utf8");
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(bytes.length));
      this.hash.update(length);
      this.hash.update(bytes);
    }
    this.count++;
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

/** The identity of documents held in memory (see DocumentsHash). */
export function hashDocuments(documents: readonly DatasetDocument[]): string {
  const hash = new DocumentsHash();
  for (const document of documents) hash.add(document);
  return hash.digest();
}
