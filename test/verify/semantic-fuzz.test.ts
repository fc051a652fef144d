/**
 * The fuzzer's semantic level (scripts/fuzz-semantic.ts) and what it found: lies a dishonest
 * producer holding a trusted key signs, consistent with the summary and report remade.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { forgerKeyId, seededForgerKey } from "../../scripts/adversarial-bundles.js";
import { semanticMutant } from "../../scripts/fuzz-semantic.js";
import { Draw } from "../../scripts/fuzz-verify.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { verifySignature } from "../../src/bundle/sign.js";
import { packageRoot } from "../../src/paths.js";
import { remadeDefaultBundles } from "../helpers/remade-default.js";

const lies = remadeDefaultBundles("spg-semantic-fuzz-", 31);

test("the pre-flight's factors stated other than the config's: refused by protocol (E_PROTOCOL_HARDWARE_INPUTS)", async () => {
  // Found by `npm run fuzz -- --levels semantic --seed 5` (#6): loadOverheadFraction 0.2 -> a
  // subnormal in environment.json passed verify, with replay too.
  const honest = await lies.verifyNoReplay("hardware-honest", () => {});
  assert.equal(honest.exitCode, 0, lies.failingCodes(honest).join());
  for (const [field, value] of [
    ["loadOverheadFraction", 1.1125369292536007e-308],
    ["kvCopies", 1],
  ] as const) {
    const result = await lies.verifyNoReplay(`hardware-${field}`, ({ environment }) => {
      (environment.hardwareCheck.inputs as Record<string, unknown>)[field] = value;
    });
    // Only protocol fails (the checks that wait for it are skipped).
    assert.deepEqual(
      lies.failingCodes(result).filter((code) => !code.endsWith(":E_CHECK_SKIPPED")),
      ["protocol:E_PROTOCOL_HARDWARE_INPUTS"],
      field,
    );
    assert.match(result.findings.find((f) => !f.ok)?.message ?? "", new RegExp(field));
  }
  const margin = await lies.verifyNoReplay("hardware-margin", ({ environment }) => {
    environment.hardwareCheck.marginFraction = 0;
  });
  assert.ok(lies.failingCodes(margin).includes("protocol:E_PROTOCOL_HARDWARE_INPUTS"));
});

test("a generated token list longer than the tokens compared: refused by consistency (E_CONSISTENCY_GENERATION)", async () => {
  // Found by `npm run fuzz -- --seed 33 --replay-runs 40` (#417): one of baselineTokens' 198s
  // repeated (17 tokens, 16 compared), summary and report remade, passed with replay: the recount
  // reads the shorter list, and the report would show a token no agreement figure counts.
  for (const list of ["baselineTokens", "tokens"] as const) {
    const result = await lies.verifyNoReplay(`long-${list}`, ({ records }) => {
      const generation = records[3].generation;
      const tokens = generation[list];
      if (tokens === undefined) throw new Error(`record 3 has no ${list}`);
      tokens.push(tokens[tokens.length - 1]);
    });
    assert.ok(lies.failingCodes(result).includes("consistency:E_CONSISTENCY_GENERATION"), list);
    assert.equal(result.exitCode, 5);
  }
});

test("a semantic mutant changes the run and is re-signed: its signature holds, its run files differ", async () => {
  const read = await readBundleZip(join(packageRoot(), "bundles", "default.zip"));
  assert.ok(read.ok);
  const key = seededForgerKey(Buffer.alloc(32, 9));
  let made = 0;
  for (let seed = 0; made < 6 && seed < 50; seed++) {
    const mutant = semanticMutant(new Draw(seed), new Map(read.entries), key);
    if (mutant === undefined) continue;
    made++;
    const signature = JSON.parse(mutant.entries.get("signature.json")!.toString("utf8")) as { keyId: string };
    assert.equal(signature.keyId, forgerKeyId(key));
    assert.ok(verifySignature(mutant.entries.get("manifest.json")!, signature), mutant.what);
    assert.ok(
      ["config.json", "environment.json", "records.jsonl", "fingerprints.jsonl"].some(
        (name) => !mutant.entries.get(name)!.equals(read.entries.get(name)!),
      ),
      mutant.what,
    );
  }
  assert.equal(made, 6);
});
