import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  githubAnnotations,
  githubSummaryMarkdown,
  renderJson,
  renderText,
  reportToGitHub,
} from "../../src/verify/report.js";
import { runAllChecks, type VerifyResult } from "../../src/verify/runner.js";
import { CHECK_ORDER, warn } from "../../src/verify/types.js";
import { bundleFixture, fixtureSignedMessage, fixtureValidators } from "../helpers/bundle-fixture.js";

async function failingResult(): Promise<VerifyResult> {
  const { contents } = bundleFixture();
  const report = Buffer.from(contents.entries.get("report.md")!);
  report[5] ^= 1;
  contents.entries.set("report.md", report);
  return await runAllChecks(contents, {
    signedMessage: fixtureSignedMessage,
    requireTrusted: true,
    validators: fixtureValidators(),
  });
}

test("text report: one line per check, ✓/✗, codes under failures, verdict last", async () => {
  const passing = await runAllChecks(bundleFixture().contents, {
    signedMessage: fixtureSignedMessage,
    requireTrusted: false,
    validators: fixtureValidators(),
  });
  const text = renderText("b.zip", passing);
  // Every check the runner runs on a plain bundle (zip-safety and replay are verify-bundle.ts's; shards only speaks for
  // shards; model warns: the fixture's synthetic model is not here).
  assert.equal(text.split("\n").filter((line) => line.startsWith("  ✓")).length, CHECK_ORDER.length - 4);
  assert.match(text, /^ {2}! model\s+not checked/m);
  assert.match(text, /^ {2}thresholds: replay NLL .*\/token/m);
  assert.match(text, /PASS b\.zip/);

  const failing = await failingResult();
  const failedText = renderText("b.zip", failing);
  assert.match(failedText, /✗ integrity\s+1 failure\n\s+E_INTEGRITY_HASH: report\.md has sha256/);
  assert.match(failedText, /✗ trust\s+1 failure\n\s+E_NO_TRUSTED_KEYS/);
  assert.match(
    failedText,
    /✗ schemas\s+1 failure\n\s+E_CHECK_SKIPPED: skipped because integrity, trust failed/,
  );
  assert.match(failedText, /FAIL b\.zip: 15 failing findings \(exit 4\)\n$/);
  const json = JSON.parse(renderJson("b.zip", failing));
  assert.equal(json.exitCode, 4);
  assert.equal(json.passed, false);
  assert.equal(json.findings.length, failing.findings.length);
});

test("GitHub: escaped ::error per failure, and the table is appended to the step summary", async () => {
  const result = await failingResult();
  result.findings.push({ check: "claims", code: "E_CLAIM_FAILED", ok: false, message: "50% | a\nb" });
  result.findings.push(warn("replay", "W_REPLAY_OFF", "not replayed"));
  const annotations = githubAnnotations("bundles/a,b.zip", result);
  assert.equal(annotations.length, 17);
  assert.match(
    annotations[0],
    /^::error file=bundles\/a%2Cb\.zip,title=spg verify::E_INTEGRITY_HASH \[integrity\] /,
  );
  assert.equal(
    annotations[15],
    "::error file=bundles/a%2Cb.zip,title=spg verify::E_CLAIM_FAILED [claims] 50%25 | a%0Ab",
  );
  assert.match(
    githubSummaryMarkdown("x.zip", result),
    /\| claims \| ❌ \| `E_CLAIM_FAILED` \| 50% \\\| a b \|/,
  );

  const dir = mkdtempSync(join(tmpdir(), "spg-report-"));
  try {
    const summaryFile = join(dir, "summary.md");
    writeFileSync(summaryFile, "earlier step\n");
    const printed: string[] = [];
    const env = { GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summaryFile };
    assert.equal(
      reportToGitHub("a.zip", result, env, (line) => printed.push(line)),
      true,
    );
    reportToGitHub("b.zip", result, env, (line) => printed.push(line));
    const summary = readFileSync(summaryFile, "utf8");
    assert.ok(summary.startsWith("earlier step\n### spg verify a.zip: ❌ fail (exit 4)"));
    assert.match(summary, /### spg verify b\.zip/);
    assert.equal(printed.length, 34);
    assert.equal(
      reportToGitHub("a.zip", result, {}, () => assert.fail("printed outside Actions")),
      false,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("strings from a bundle are inert in the terminal, in annotations, in the step summary and in JSON", async () => {
  const result = await failingResult();
  const hostile =
    "m\u001b[2K\r\u001b[32m✓ PASS everything\u001b[0m\u009b31m\u202eevil\n::error::forged [x](http://e) <img src=x> `code`";
  result.findings.push({ check: "claims", code: "E_CLAIM_FAILED", ok: false, message: hostile });
  const text = renderText("b\u001b[1m.zip", result);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  assert.doesNotMatch(text, /[\u001b\u009b\u202e\r]/);
  assert.match(text, /\\u001b\[32m✓ PASS everything/);
  // The forged newline does not start a line of its own.
  assert.ok(!text.split("\n").some((line) => line.startsWith("::error::forged")));
  for (const line of githubAnnotations("b.zip", result)) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u202e]/);
  }
  const markdown = githubSummaryMarkdown("b.zip", result);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  assert.doesNotMatch(markdown, /<img|\]\(http|[\u001b\u009b\u202e]/);
  assert.match(markdown, /&lt;img src=x&gt; \\`code\\`/);
  const json = renderJson("b.zip", result);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  assert.doesNotMatch(json, /[\u001b\u009b\u202e]/);
  assert.equal(JSON.parse(json).findings.at(-1).message, hostile);
});
