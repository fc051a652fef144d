/**
 * `npm run build` (after tsc): the bundled Brown splits' GPT-2 token ids, written once to
 * dist/src/data/brown-tokens.bin so prove, verify and replay do not tokenize them on every run
 * (src/data/brown-tokens.ts uses them only for the same split sha256 and tokenizer identity).
 */
import { writeFileSync } from "node:fs";
import { brownSplitNames, loadBrownSplit } from "../src/data/brown.js";
import { BROWN_TOKENS_FILE, brownTokensFile } from "../src/data/brown-tokens.js";

const bytes = brownTokensFile(brownSplitNames.map((name) => loadBrownSplit(name)));
writeFileSync(BROWN_TOKENS_FILE, bytes);
console.log(`Brown token ids (${brownSplitNames.join(", ")}) written to ${BROWN_TOKENS_FILE}`);
