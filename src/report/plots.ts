/**
 * The report's plots as vega-lite specs, compiled with vega-lite and rendered to SVG by
 * vega in Node (no browser, no network: every spec carries its data inline). Method
 * names from the bundle reach the SVG only as data, which vega escapes as text.
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import type { LayerCell, MethodPoint, SamplePoint } from "./data.js";

type Spec = vl.TopLevelSpec;

const BASE_CONFIG = {
  font: "system-ui, sans-serif",
  background: "white",
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 220 },
  view: { stroke: "#ddd" },
};

/** tableau10's ten hues are easier to tell apart; tableau20 (paired shades) only beyond ten. */
function methodScheme(count: number): string {
  return count <= 10 ? "tableau10" : "tableau20";
}

function methodColor(methodOrder: readonly string[], field: "method" | "family" = "method") {
  return {
    field,
    type: "nominal" as const,
    title: "method",
    scale: { domain: [...methodOrder], scheme: methodScheme(methodOrder.length) },
  };
}

/**
 * A method axis in `methodOrder`, sorted by a rank field on each datum: vega-lite compiles a
 * sort array into one nested conditional per name, and a bundle naming tens of thousands of
 * methods overflowed the expression parser's stack.
 */
function methodAxis(methodOrder: readonly string[]) {
  const rank = new Map(methodOrder.map((method, i) => [method, i]));
  return {
    rankOf: (method: string) => rank.get(method) ?? methodOrder.length,
    y: {
      field: "method",
      type: "nominal" as const,
      title: "method",
      sort: { field: "methodRank", op: "min" as const },
    },
  };
}

/** Points at the same coordinates share one label ("a, b, c") on the first of them. */
function labelled(points: readonly MethodPoint[]): (MethodPoint & { label: string; labelBelow: boolean })[] {
  // Neighbouring frontier points put their labels on alternate sides of the line.
  const frontierRank = new Map(
    points
      .filter((p) => p.onFrontier)
      .sort((a, b) => a.ratio - b.ratio)
      .map((p, i) => [p.method, i]),
  );
  const names = new Map<string, string[]>();
  for (const p of points) {
    const key = JSON.stringify([p.ratio, p.pplIncreasePct]);
    names.set(key, [...(names.get(key) ?? []), p.method]);
  }
  const labelledAt = new Set<string>();
  return points.map((p) => {
    const key = JSON.stringify([p.ratio, p.pplIncreasePct]);
    const first = !labelledAt.has(key);
    labelledAt.add(key);
    const rank = frontierRank.get(p.method) ?? 0;
    return { ...p, label: first ? (names.get(key) ?? []).join(", ") : "", labelBelow: rank % 2 === 1 };
  });
}

/** Up to this many methods, every point of the trade-off plot carries its name. */
const LABEL_ALL_UP_TO = 10;

/**
 * Compression ratio (log x) against perplexity increase: every method with its interval and
 * label, colored by method family (sweep variants share their method's color and are joined
 * along their own frontier), and the frontier of all methods as a dashed line.
 */
export function paretoSpec(points: readonly MethodPoint[]): Spec {
  const families = [...new Set(points.map((p) => p.family))];
  const x = {
    field: "ratio",
    type: "quantitative" as const,
    title: "compression ratio (baseline bytes / compressed bytes, log scale)",
    scale: { type: "log" as const, nice: false, padding: 20 },
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 640,
    height: 380,
    data: { values: labelled(points) },
    config: BASE_CONFIG,
    layer: [
      {
        transform: [{ filter: "datum.onFrontier" }],
        mark: { type: "line", color: "#222", strokeDash: [6, 4], point: false },
        encoding: { x, y: { field: "pplIncreasePct", type: "quantitative" }, order: { field: "ratio" } },
      },
      {
        transform: [{ filter: "datum.onFamilyFrontier" }],
        mark: { type: "line", strokeWidth: 1.5, opacity: 0.7 },
        encoding: {
          x,
          y: { field: "pplIncreasePct", type: "quantitative" },
          color: methodColor(families, "family"),
          order: { field: "ratio" },
        },
      },
      {
        mark: { type: "rule", strokeWidth: 2, opacity: 0.6 },
        encoding: {
          x,
          y: { field: "pplLow", type: "quantitative", title: "perplexity increase (%), bootstrap CI" },
          y2: { field: "pplHigh" },
          color: methodColor(families, "family"),
        },
      },
      {
        mark: { type: "point", filled: true, opacity: 0.9 },
        encoding: {
          size: { condition: { test: "datum.onFrontier", value: 170 }, value: 70 },
          x,
          y: { field: "pplIncreasePct", type: "quantitative" },
          color: methodColor(families, "family"),
          shape: {
            field: "onFrontier",
            type: "nominal",
            legend: null,
            scale: { domain: [true, false], range: ["diamond", "circle"] },
          },
        },
      },
      {
        // Beyond LABEL_ALL_UP_TO methods the labels would pile up: only the frontier is named
        // (the legend and the methods table name the rest).
        transform: [
          {
            filter:
              points.length > LABEL_ALL_UP_TO ? "datum.onFrontier && !datum.labelBelow" : "!datum.labelBelow",
          },
        ],
        mark: { type: "text", align: "left", dx: 8, dy: -8, fontSize: 11 },
        encoding: { x, y: { field: "pplIncreasePct", type: "quantitative" }, text: { field: "label" } },
      },
      {
        transform: [{ filter: "datum.labelBelow" }],
        mark: { type: "text", align: "left", dx: 8, dy: 14, fontSize: 11 },
        encoding: { x, y: { field: "pplIncreasePct", type: "quantitative" }, text: { field: "label" } },
      },
    ],
  } as Spec;
}

/** Layer × method heatmap of one per-cell figure, the value written in each cell. */
export function heatmapSpec(
  cells: readonly LayerCell[],
  methodOrder: readonly string[],
  field: "keptFraction" | "meanBytes",
  title: string,
  format: string,
): Spec {
  const domain = field === "keptFraction" ? [0, 1] : undefined;
  const layers = new Set(cells.map((c) => c.layer)).size;
  // Text over dark cells is white: shade = the cell's position on the color scale.
  const max = domain === undefined ? Math.max(0, ...cells.map((c) => c[field])) : domain[1];
  const axis = methodAxis(methodOrder);
  const values = cells.map((c) => ({
    ...c,
    shade: max > 0 ? c[field] / max : 0,
    methodRank: axis.rankOf(c.method),
  }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: Math.max(160, 56 * layers),
    height: { step: 24 },
    data: { values },
    config: BASE_CONFIG,
    encoding: {
      x: { field: "layer", type: "ordinal", title: "layer" },
      y: axis.y,
    },
    layer: [
      {
        mark: "rect",
        encoding: {
          color: {
            field,
            type: "quantitative",
            title,
            scale: domain === undefined ? { scheme: "blues" } : { scheme: "blues", domain },
          },
        },
      },
      {
        mark: { type: "text", fontSize: 10 },
        encoding: {
          text: { field, type: "quantitative", format },
          color: { condition: { test: "datum.shade > 0.6", value: "white" }, value: "black" },
        },
      },
    ],
  } as Spec;
}

/** Per-sample distribution of one figure per method: a box (min–max whiskers) and every sample as a tick. */
export function distributionSpec(
  samples: readonly SamplePoint[],
  methodOrder: readonly string[],
  field: "pplIncreasePct" | "klPerToken",
  title: string,
): Spec {
  const axis = methodAxis(methodOrder);
  const y = axis.y;
  const x = { field, type: "quantitative" as const, title };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 560,
    height: { step: 28 },
    data: { values: samples.map((s) => ({ ...s, methodRank: axis.rankOf(s.method) })) },
    config: BASE_CONFIG,
    layer: [
      {
        mark: { type: "boxplot", extent: "min-max", opacity: 0.35, size: 18 },
        encoding: { x, y, color: { ...methodColor(methodOrder), legend: null } },
      },
      {
        mark: { type: "tick", thickness: 2, size: 16 },
        encoding: { x, y, color: { ...methodColor(methodOrder), legend: null } },
      },
    ],
  } as Spec;
}

/**
 * Element ids vega gives gradients, clip paths and patterns come from a process-wide counter;
 * renumbering them per page (unique across its SVGs) makes the same bundle give the same page.
 */
export class SvgIdRenumbering {
  private next = 0;

  apply(svg: string): string {
    const renamed = new Map<string, string>();
    for (const match of svg.matchAll(/\bid="([A-Za-z_]+\d+)"/g)) {
      if (!renamed.has(match[1])) renamed.set(match[1], `spg-svg-${this.next++}`);
    }
    const rename = (id: string) => renamed.get(id) ?? id;
    // Only id attributes and references to them; text (which may quote bundle data) is left alone.
    return svg
      .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${rename(id)}"`)
      .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${rename(id)})`)
      .replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${rename(id)}"`);
  }
}

/** Compile a vega-lite spec and render it to an SVG string in Node (no DOM, no network). */
export async function renderSvg(spec: Spec, ids: SvgIdRenumbering): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return ids.apply(await view.toSVG());
  } finally {
    view.finalize();
  }
}

/** One method's stored and executed ratios, as the run-cost plot reads them. */
export interface RunCostPoint {
  method: string;
  storedRatio: number;
  executedMemoryRatio: number;
  /** Stored smaller while executed larger (src/measure/run-cost.ts): drawn red. */
  executedLarger: boolean;
}

/**
 * Stored ratio (log x) against executed memory ratio (log y), one point per method, with the
 * lines where either is 1: a point right of x = 1 and below y = 1 stores less but executes
 * more, and is red.
 */
export function runCostSpec(points: readonly RunCostPoint[]): Spec {
  const axis = (field: string, title: string) => ({
    field,
    type: "quantitative" as const,
    title,
    scale: { type: "log" as const, nice: false, padding: 20 },
  });
  const x = axis("storedRatio", "stored ratio (baseline bytes / stored bytes, log scale)");
  const y = axis("executedMemoryRatio", "executed memory ratio (baseline executed / executed, log scale)");
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 640,
    height: 320,
    config: BASE_CONFIG,
    layer: [
      {
        data: { values: [{ one: 1 }] },
        mark: { type: "rule", color: "#999", strokeDash: [4, 4] },
        encoding: { x: { field: "one", type: "quantitative", scale: x.scale } },
      },
      {
        data: { values: [{ one: 1 }] },
        mark: { type: "rule", color: "#999", strokeDash: [4, 4] },
        encoding: { y: { field: "one", type: "quantitative", scale: y.scale } },
      },
      {
        data: { values: [...points] },
        mark: { type: "point", filled: true, size: 90, opacity: 0.9 },
        encoding: {
          x,
          y,
          color: {
            field: "executedLarger",
            type: "nominal",
            title: "stored smaller, executed larger",
            scale: { domain: [false, true], range: ["#4c78a8", "#c0392b"] },
          },
        },
      },
      {
        data: {
          values: points.length > LABEL_ALL_UP_TO ? points.filter((p) => p.executedLarger) : [...points],
        },
        mark: { type: "text", align: "left", dx: 8, dy: -8, fontSize: 11 },
        encoding: { x, y, text: { field: "method" } },
      },
    ],
  } as Spec;
}
