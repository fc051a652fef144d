/**
 * Real-shape GPT-Neo checkpoints for benchmarks: a Hugging Face layout (config.json +
 * model.safetensors in F16, as the published GPT-Neo checkpoints are) with random weights,
 * written to a temporary folder and read back through spg's own loading path. Their outputs
 * mean nothing; their sizes, memory and timings are the real model's. The shapes are the
 * published configs, in scripts/shapes/NAME.json, and "bundled": the bundled model's own
 * config.json, so that shape follows the model whenever it is retrained.
 *
 * The file is streamed tensor by tensor (never held whole), and kept under
 * $TMPDIR/spg-bench-checkpoints/NAME for the next run (a `complete` marker names the config
 * it was written for; delete the folder to reclaim the disk).
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectedWeightShapes } from "../src/model/checkpoint.js";
import { readGptNeoConfig } from "../src/model/config.js";
import { floatToHalfBits } from "../src/numeric/fp16.js";
import { bundledModelDir, packageRoot } from "../src/paths.js";

const SHAPES_DIR = join(packageRoot(), "scripts", "shapes");
/** Distinct random F16 codes a tensor draws from (spread evenly over its range). */
const CODES = 4096;
/** Elements generated and written per step. */
const CHUNK_ELEMENTS = 1 << 22;
/** Weights are uniform in [-spread, spread]; LayerNorm weights in 1 +- spread. */
const SPREAD = 0.02;

/** The shape read from the bundled model's config.json rather than from scripts/shapes/. */
const BUNDLED_SHAPE = "bundled";

export function syntheticShapeNames(): string[] {
  const published = readdirSync(SHAPES_DIR)
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -".json".length));
  return [...new Set([BUNDLED_SHAPE, ...published])].sort();
}

function shapeConfigText(name: string): string {
  if (!syntheticShapeNames().includes(name)) {
    throw new Error(`unknown --shape ${name} (shapes: ${syntheticShapeNames().join(", ")})`);
  }
  const file =
    name === BUNDLED_SHAPE ? join(bundledModelDir(), "config.json") : join(SHAPES_DIR, `${name}.json`);
  return readFileSync(file, "utf8");
}

/** F16 codes of `count` values spread evenly over [center - spread, center + spread]. */
function codeTable(center: number): Uint16Array {
  const codes = new Uint16Array(CODES);
  for (let i = 0; i < CODES; i++) codes[i] = floatToHalfBits(center + SPREAD * ((2 * i + 1) / CODES - 1));
  return codes;
}

/** Writes config.json and an F16 model.safetensors of the shape's tensors (sorted by name). */
function writeCheckpoint(dir: string, configText: string): void {
  writeFileSync(join(dir, "config.json"), configText);
  const config = readGptNeoConfig(dir);
  const shapes = [...expectedWeightShapes(config)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: "F16", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - (Buffer.byteLength(headerText) % 8)) % 8);
  const headerBytes = Buffer.from(headerText, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  const weights = openSync(join(dir, "model.safetensors"), "w");
  try {
    writeSync(weights, length);
    writeSync(weights, headerBytes);
    const noise = codeTable(0);
    const nearOne = codeTable(1);
    const chunk = new Uint16Array(CHUNK_ELEMENTS);
    let state = 0x2545f491; // xorshift32 seed
    for (const [name, shape] of shapes) {
      const codes = /ln_(1|2|f)\.weight$/.test(name) ? nearOne : noise;
      let left = shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(left, CHUNK_ELEMENTS);
        for (let i = 0; i < n; i++) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          chunk[i] = codes[(state >>> 20) & (CODES - 1)];
        }
        writeSync(weights, new Uint8Array(chunk.buffer, 0, n * 2));
        left -= n;
      }
    }
  } finally {
    closeSync(weights);
  }
}

/**
 * The folder of a real-shape checkpoint with random F16 weights: written on first use (minutes
 * for the large shapes), then reused while its marker matches the shape's config.
 */
export function syntheticCheckpointDir(name: string): string {
  const configText = shapeConfigText(name);
  const dir = join(tmpdir(), "spg-bench-checkpoints", name);
  const marker = join(dir, "complete");
  if (existsSync(marker) && readFileSync(marker, "utf8") === configText) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  writeCheckpoint(dir, configText);
  writeFileSync(marker, configText);
  console.log(
    `wrote the ${name} checkpoint (F16, random weights) to ${dir} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return dir;
}
