/**
 * The report's "Generated text" section: for a few samples, the baseline's greedy continuation
 * and each method's, decoded to text side by side, the first token where a method leaves the
 * baseline marked. Token ids come from the records (generation.baselineTokens / tokens); text
 * from a bundle is untrusted, so every piece goes through escapeHtml.
 */
import type { SampleRecord } from "../bundle/types.js";
import { decode, vocabularySize } from "../data/tokenizer.js";
import { escapeHtml, table } from "./html.js";

/** GPT-2 text of token ids, or null when an id is outside the GPT-2 vocabulary (another tokenizer's model). */
export function decodeIds(ids: readonly number[]): string | null {
  if (ids.some((id) => !Number.isInteger(id) || id < 0 || id >= vocabularySize)) return null;
  return decode(ids);
}

/** One continuation as HTML: escaped text, the part from `divergence` on inside <mark>. */
export function continuationHtml(ids: readonly number[], divergence: number | null): string {
  const text = decodeIds(ids);
  if (text === null)
    return `<span class="problem">ids outside the GPT-2 vocabulary: ${escapeHtml(ids.join(" "))}</span>`;
  const visible = (s: string) => escapeHtml(s).replaceAll("\n", "↵<br>");
  if (divergence === null) return `<span class="generated">${visible(text)}</span>`;
  const head = decode(ids.slice(0, divergence));
  const rest = decode(ids.slice(divergence));
  return `<span class="generated">${visible(head)}<mark title="first token that differs from the baseline">${visible(rest)}</mark></span>`;
}

/** The section: the first `samples` samples (by sample index) whose records hold token ids. */
export function continuationsSection(
  records: readonly SampleRecord[] | undefined,
  methodOrder: readonly string[],
  samples: number,
): string {
  const heading = "<h2>Generated text</h2>";
  const withTokens = (records ?? []).filter(
    (r) => r.generation.tokens !== undefined && r.generation.baselineTokens !== undefined,
  );
  if (withTokens.length === 0) {
    return `<section id="continuations">${heading}<p class="note">The records hold no generated token ids (bundles written before spg recorded them show agreement figures only).</p></section>`;
  }
  const indices = [...new Set(withTokens.map((r) => r.sampleIndex))].sort((a, b) => a - b).slice(0, samples);
  const rank = (method: string) => {
    const i = methodOrder.indexOf(method);
    return i < 0 ? methodOrder.length : i;
  };
  const blocks = indices.map((index) => {
    const rows = withTokens
      .filter((r) => r.sampleIndex === index)
      .sort((a, b) => rank(a.method) - rank(b.method) || (a.method < b.method ? -1 : 1));
    const first = rows[0];
    const baseline = first.generation.baselineTokens ?? [];
    const lines = [
      ["baseline", "", continuationHtml(baseline, null)],
      ...rows.map((r) => [
        escapeHtml(r.method),
        r.generation.firstDivergence === null
          ? `all ${r.generation.compared} agree`
          : `differs from token ${r.generation.firstDivergence}; ${r.generation.matches}/${r.generation.compared} agree`,
        continuationHtml(r.generation.tokens ?? [], r.generation.firstDivergence),
      ]),
    ];
    return `<h3>${escapeHtml(first.sampleId)} <span class="note">(${escapeHtml(first.document)}, token ${first.offset}; the ${first.contextTokens}-token context is not in the bundle)</span></h3>
${table(["cache", "agreement", "greedy continuation"], lines)}`;
  });
  return `<section id="continuations">${heading}
<p class="note">The greedy tokens each record compares, decoded with the GPT-2 tokenizer: the baseline's, then each method's. KV-cache methods start after the first generated token, which the shared prefill predicts for all of them; weights methods start with their own first token. Highlighted: from the first token that differs from the baseline on. ↵ is a line break.</p>
${blocks.join("\n")}</section>`;
}
