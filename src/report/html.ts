/** HTML text helpers. Everything that comes from a bundle is untrusted and goes through escapeHtml. */

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escape text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A number for people: fixed significant digits, no exponent noise for ordinary magnitudes. */
export function formatNumber(value: number, digits = 4): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6 || magnitude < 1e-4) return value.toExponential(digits - 1);
  return String(Number(value.toPrecision(digits)));
}

export function formatPercent(fraction: number, digits = 4): string {
  return `${formatNumber(fraction * 100, digits)}%`;
}

/** An HTML table; cells are already-escaped HTML. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  className = "",
): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((row) => `<tr>${row.map((cell) => `<td>${cell}</td>`).join("")}</tr>`).join("\n");
  const cls = className === "" ? "" : ` class="${escapeHtml(className)}"`;
  return `<table${cls}><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}
