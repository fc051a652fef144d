/**
 * `spg report` and `spg inspect` over the adversarial corpus (scripts/adversarial-bundles.ts):
 * every hostile bundle renders (or is refused with a code) without a crash, a hang or unbounded
 * work, and nothing from it reaches the page as markup.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { adversarialCases } from "../../scripts/adversarial-bundles.js";
import { readBundleZip } from "../../src/bundle/read.js";
import { isSpgError } from "../../src/errors.js";
import { buildReport } from "../../src/report/render.js";
import { describeBundle, renderDescription } from "../../src/verify/inspect.js";
import { bundleFixture } from "../helpers/bundle-fixture.js";

const dir = mkdtempSync(join(tmpdir(), "spg-adversarial-report-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const cases = adversarialCases(bundleFixture().contents.entries);

for (const hostile of cases) {
  // The timeout turns a hang into a failure (the old report bootstrapped 1e9 resamples for minutes).
  test(`report and inspect on ${hostile.name}: no crash, no markup from the bundle`, {
    timeout: 60_000,
  }, async () => {
    const path = join(dir, `${hostile.name}.zip`);
    writeFileSync(path, hostile.build());
    for (const verify of [true, false]) {
      let html: string;
      try {
        html = (await buildReport(path, { verify })).html;
      } catch (error) {
        assert.ok(isSpgError(error), `verify=${verify}: ${(error as Error).stack}`);
        continue;
      }
      assert.doesNotMatch(html, /<script|javascript:/i, `verify=${verify}`);
      assert.equal(
        html.match(/<\/style>/gi)?.length,
        1,
        `verify=${verify}: one stylesheet, never closed early`,
      );
      if (hostile.name.endsWith("billion-resamples"))
        assert.match(html, /E_RECOMPUTE_LIMIT/, `verify=${verify}`);
    }
    const read = await readBundleZip(path);
    if (read.ok) renderDescription(path, describeBundle({ entries: read.entries }));
  });
}
