/**
 * The adversarial corpus (scripts/adversarial-bundles.ts): every hostile bundle is refused
 * by the check and code it documents, with its exit status, without a crash, every failing
 * code one its check declares, and nothing from the bundle reaching the terminal raw.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { adversarialCases, adversarialCheckpointCases } from "../../scripts/adversarial-bundles.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { packageRoot } from "../../src/paths.js";
import { renderText } from "../../src/verify/report.js";
import { verifyBundleFile } from "../../src/verify/verify-bundle.js";
import { bundleFixture } from "../helpers/bundle-fixture.js";
import { assertRefused } from "../helpers/hostile.js";

const dir = mkdtempSync(join(tmpdir(), "spg-adversarial-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const cases = adversarialCases(bundleFixture().contents.entries);

test("the corpus covers every class of attack", () => {
  const kinds = new Set(cases.map((c) => c.kind));
  for (const kind of ["signature", "parsing", "zip", "integrity-first", "resources", "output", "dishonest"]) {
    assert.ok(kinds.has(kind as never), kind);
  }
  assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
});

for (const hostile of cases) {
  test(`${hostile.kind}: ${hostile.name} is refused with ${hostile.check}:${hostile.code} (exit ${hostile.exitCode})`, async () => {
    const path = join(dir, `${hostile.name}.zip`);
    writeFileSync(path, hostile.build());
    const result = await verifyBundleFile(path, { requireTrusted: false });
    assertRefused(result, hostile);
    // Whatever the bundle holds, the report shows it inert.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    assert.doesNotMatch(renderText(path, result), /[\u001b\u009b\r]/);
  });
}

test("a BOM in config.json with replay asked: refused before replay, no uncaught SyntaxError", async () => {
  const hostile = cases.find((c) => c.name === "bom-config.json")!;
  const path = join(dir, "bom-replay.zip");
  writeFileSync(path, hostile.build());
  const result = await verifyBundleFile(path, { requireTrusted: false, replay: { samples: 1 } });
  assert.equal(result.exitCode, 5);
  const replay = result.findings.find((finding) => finding.check === "replay");
  assert.equal(replay?.code, "E_CHECK_SKIPPED");
  assert.match(
    replay?.message ?? "",
    /skipped because schemas(, config-rules)?(, consistency)?(, budget)?(, protocol)?(, model)?(, draw)? failed/,
  );
});

test("lies only the verifier's checkpoint, spg's stage-2 bounds, the draw rule, the hardware check, the generated ids or replay refuse (from bundles/default.zip)", async () => {
  const base = await readBundleZip(join(packageRoot(), "bundles", "default.zip"));
  assert.ok(base.ok);
  for (const hostile of adversarialCheckpointCases(base.entries)) {
    const path = join(dir, `${hostile.name}.zip`);
    writeFileSync(path, hostile.build());
    const result = await verifyBundleFile(path, {
      requireTrusted: false,
      replay: false,
      ...hostile.verifyWith,
    });
    assertRefused(result, hostile);
  }
});
