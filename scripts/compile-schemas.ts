/**
 * `npm run build` (after tsc): the bundle schemas compiled ahead of time, so `spg verify` loads
 * ajv's standalone validators instead of compiling them on every run (src/verify/schemas.ts
 * uses them only while every schema text is the one compiled; otherwise it compiles).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { precompiledSchemasSource } from "../src/verify/schemas.js";

const target = join(packageRoot(), "dist", "src", "verify", "compiled-schemas.cjs");
writeFileSync(target, precompiledSchemasSource());
console.log(`bundle schemas compiled to ${target}`);
