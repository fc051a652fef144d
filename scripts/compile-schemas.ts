/**
 * `npm run build` (after tsc): the bundle schemas and the methods' params schemas compiled
 * ahead of time, so `spg verify` and the first compress of `spg prove` load ajv's standalone
 * validators instead of compiling them on every run (src/verify/schemas.ts and
 * src/kv/methods/params-validators.ts use them only while every schema is the one compiled;
 * otherwise they compile).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { methods } from "../src/kv/methods/index.js";
import { precompiledParamsSource } from "../src/kv/methods/params-validators.js";
import { packageRoot } from "../src/paths.js";
import { precompiledSchemasSource } from "../src/verify/schemas.js";

const bundleTarget = join(packageRoot(), "dist", "src", "verify", "compiled-schemas.cjs");
writeFileSync(bundleTarget, precompiledSchemasSource());
console.log(`bundle schemas compiled to ${bundleTarget}`);

const paramsTarget = join(packageRoot(), "dist", "src", "kv", "methods", "compiled-params.cjs");
const schemas = Object.fromEntries(
  Object.entries(methods).map(([kind, method]) => [kind, method.paramsSchema]),
);
writeFileSync(paramsTarget, precompiledParamsSource(schemas));
console.log(`method params schemas compiled to ${paramsTarget}`);
