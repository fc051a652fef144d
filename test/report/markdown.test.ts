import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { summarize } from "../../src/measure/summary.js";
import { packageRoot } from "../../src/paths.js";
import { methodOrderOf } from "../../src/report/data.js";
import { escapeMarkdown, frontierMarkdown, methodsMarkdown } from "../../src/report/markdown.js";
import { writeReportBundle } from "./report-bundle.js";

const work = mkdtempSync(join(tmpdir(), "spg-readme-tables-"));
after(() => rmSync(work, { recursive: true, force: true }));

test("markdown escaping: no cell breaks, markup or HTML from bundle text", () => {
  assert.equal(escapeMarkdown("a|b"), "a\\|b");
  assert.equal(escapeMarkdown("<script>x</script>"), "&lt;script&gt;x&lt;/script&gt;");
  assert.equal(escapeMarkdown("*[link](http://x)*\nnext"), "\\*\\[link\\](http://x)\\* next");
  assert.equal(escapeMarkdown("window-trim"), "window-trim");
});

test("the README tables: one row per method with recomputed figures, the frontier by ratio", async () => {
  const made = await writeReportBundle(join(work, "unused.zip"));
  const summary = summarize(made.records, made.config);
  const order = methodOrderOf(
    made.config.methods.map((m) => m.name),
    made.records,
  );
  const table = methodsMarkdown(summary, made.config, order).split("\n");
  assert.equal(table.length, 2 + made.config.methods.length);
  for (const [i, method] of made.config.methods.entries()) {
    const cells = table[2 + i].split("|").map((c) => c.trim());
    assert.equal(cells[1], escapeMarkdown(method.name));
    assert.equal(
      Number(cells[3].replace("×", "")).toPrecision(3),
      summary.methods[method.name].compressionRatio.toPrecision(3),
    );
  }
  const frontier = frontierMarkdown(summary, order).split("\n").slice(2);
  const ratios = frontier.map((row) => Number(row.split("|")[2].trim().replace("×", "")));
  assert.deepEqual(
    ratios,
    [...ratios].sort((a, b) => a - b),
  );
  assert.ok(frontier.length >= 2);
});

test("scripts/readme_tables prints both tables for a verified bundle, and refuses one that fails", async () => {
  const run = promisify(execFile);
  const script = join(packageRoot(), "dist", "scripts", "readme_tables.js");
  const good = join(work, "good.zip");
  await writeReportBundle(good);
  const { stdout } = await run(process.execPath, [script, good]);
  assert.match(stdout, /^\| method \| kind \| compression ratio/);
  assert.match(stdout, /Pareto frontier/);
  const bad = join(work, "bad.zip");
  await writeReportBundle(bad, { statedRatio: 99 });
  await assert.rejects(
    run(process.execPath, [script, bad]),
    (error: { code?: number; stdout?: string; stderr?: string }) => {
      assert.equal(error.code, 5);
      assert.equal(error.stdout, "");
      assert.match(error.stderr ?? "", /recompute/);
      return true;
    },
  );
});
