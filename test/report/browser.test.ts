/**
 * The report in a real browser: headless Debian Chromium driven by playwright-core opens the
 * page from file:// with every network request refused, and checks that each plot rendered
 * (SVG marks present, non-zero size), nothing was requested, no console error and no page
 * error occurred, and no script ran; a screenshot goes to test-artifacts/report.png.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { packageRoot } from "../../src/paths.js";
import { renderReport } from "../../src/report/render.js";
import { writeReportBundle } from "./report-bundle.js";

// Debian's chromium (what .ci/run installs); SPG_CHROMIUM or a preinstalled Chrome elsewhere (GitHub runners).
const CHROMIUM =
  [process.env.SPG_CHROMIUM, "/usr/bin/chromium", "/usr/bin/google-chrome"].find(
    (path): path is string => path !== undefined && path !== "" && existsSync(path),
  ) ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const PLOTS = ["pareto", "run-cost", "layers-kept", "layers-bytes", "samples-ppl", "samples-kl"];

/**
 * Runs in the page (this project compiles without DOM types, hence a string): each plot's
 * SVG size and how many of its marks have a non-empty box.
 */
const MEASURE_PLOTS = `[...document.querySelectorAll("figure.plot")].map((figure) => {
  const svg = figure.querySelector("svg");
  const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
  const marks = svg
    ? [...svg.querySelectorAll("path, text, line, rect")].filter((e) => {
        const r = e.getBoundingClientRect();
        return r.width > 0 || r.height > 0;
      }).length
    : 0;
  return { name: figure.dataset.plot, marks, width: box.width, height: box.height };
})`;

const work = mkdtempSync(join(tmpdir(), "spg-report-browser-"));
after(() => rmSync(work, { recursive: true, force: true }));

test("the report renders in headless Chromium: every plot drawn, no errors, no requests, no scripts", async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) {
      assert.fail(
        `${CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium); CI must run this test`,
      );
    }
    t.skip(`${CHROMIUM} not installed (apt-get install -y chromium); the browser check did not run`);
    return;
  }
  const bundle = join(work, "run.zip");
  // A run name that would run a script if it were not escaped (schema-valid, so the page is complete).
  await writeReportBundle(bundle, {
    runName: "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>",
  });
  const htmlPath = join(work, "report.html");
  writeFileSync(htmlPath, await renderReport(bundle, { verify: true }));

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning")
        problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    const pageUrl = pathToFileURL(htmlPath).href;
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url === pageUrl) return route.continue();
      requests.push(url);
      return route.abort();
    });
    await page.goto(pageUrl, { waitUntil: "load" });

    const plots = (await page.evaluate(MEASURE_PLOTS)) as {
      name: string;
      marks: number;
      width: number;
      height: number;
    }[];
    assert.deepEqual(
      plots.map((p) => p.name),
      PLOTS,
    );
    for (const plot of plots) {
      assert.ok(plot.marks > 0, `${plot.name}: no visible SVG marks`);
      assert.ok(plot.width > 0 && plot.height > 0, `${plot.name}: zero-size SVG`);
    }
    const verdict = await page.locator("[data-verdict]").getAttribute("data-verdict");
    assert.equal(verdict, "pass");
    assert.equal(await page.locator("h1").count(), 1);
    assert.equal(await page.locator("script").count(), 0);
    assert.equal(await page.evaluate("typeof window.__pwned"), "undefined");
    assert.deepEqual(problems, []);
    assert.deepEqual(requests, []);

    const artifacts = join(packageRoot(), "test-artifacts");
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "report.png"), fullPage: true });
  } finally {
    await browser.close();
  }
});
