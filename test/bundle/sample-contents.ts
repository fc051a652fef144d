/** A small, schema-shaped bundle content for writer/reader tests (values are arbitrary, not measurements). */
import type { BundleContents } from "../../src/bundle/write.js";

export function sampleContents(records = 3): BundleContents {
  const methods = ["full", "spg"];
  const rows = [];
  const fingerprints = [];
  for (let index = 0; index < records; index++) {
    for (const method of methods) {
      rows.push({
        sampleId: `s${index}`,
        sampleIndex: index,
        method,
        tokenHash: index.toString(16).padStart(64, "0"),
        document: `doc-${index}`,
        offset: index * 100,
        contextTokens: 64,
        continuationTokens: 16,
        scoredTokens: 15,
        nllBaseline: 40.25 + index,
        nllCompressed: 41.5 + index,
        klSum: 0.125 * index,
        top1Matches: 14,
        generation: { compared: 8, matches: 8 - index, firstDivergence: index === 0 ? null : 8 - index },
        kvBytesBaseline: 4096,
        kvBytesCompressed: method === "full" ? 4096 : 1024,
        timingsMs: { prefill: 1.5, compress: 0.25, decompress: 0.25, continuation: 3, generation: 4 },
        peakRssBytes: 123456789,
      });
      for (let layer = 0; layer < 2; layer++) {
        fingerprints.push({
          sampleId: `s${index}`,
          method,
          layer,
          tokensKept: 64,
          tokensTotal: 64,
          headsFullPrecision: 2,
          bitsHistogram: { "16": 1024, "4": 256 },
          bytes: 2048,
          sha256: (index * 2 + layer).toString(16).padStart(64, "a"),
        });
      }
    }
  }
  return {
    config: { name: "test", dataset: { samples: records, seed: 7 }, methods },
    environment: { node: process.version, os: { platform: "linux" } },
    records: rows,
    fingerprints,
    summary: { methods: {}, claims: [], allClaimsPass: true, frontiers: { all: [], byMethod: {} } },
    reportMd: "# Report\n\nNothing measured here: a test fixture.\n",
  };
}
