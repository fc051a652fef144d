/**
 * Text that reaches a terminal or a CI log made inert: file names, zip entry names and
 * anything else a user or a bundle chose. A name holding a newline, ESC or CSI could
 * otherwise forge a line ("PASS", a fake ::error workflow command) or hide one. Every
 * message that prints such text goes through terminalSafe (SpgError.describe does for
 * every error; the verify report for every finding).
 */

/**
 * Characters a terminal or viewer acts on rather than shows: C0 and C1 controls (ESC and
 * CSI start escape sequences), line and paragraph separators, and the invisible and
 * bidirectional formatting marks that reorder or hide text.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** The same less C0 controls, which JSON.stringify already escapes inside strings (and uses as layout outside). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

function codePointEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** `text` with every unsafe character shown as \uXXXX (a newline too: one line in, one line out). */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_CHARACTERS, codePointEscape);
}

/** Multi-line text (a model's output) made inert the same way, its newlines and tabs kept as layout. */
export function terminalSafeLines(text: string): string {
  return text.replace(UNSAFE_CHARACTERS, (char) =>
    char === "\n" || char === "\t" ? char : codePointEscape(char),
  );
}

/** JSON text (JSON.stringify's output) made inert the same way; the JSON value it denotes is unchanged. */
export function jsonTerminalSafe(json: string): string {
  return json.replace(UNSAFE_IN_JSON, codePointEscape);
}
