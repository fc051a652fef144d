import { Mulberry32 } from "../data/prng.js";

/**
 * mulberry32 as uniform floats in [0, 1): the stream of src/data/prng.ts's generator (one
 * implementation), divided by 2^32. Not for secrets; it exists so the bootstrap in
 * summary.json is reproducible bit for bit by `spg verify` from the config's seed (a uint32,
 * as the config schema requires; anything else is a RangeError).
 */
export function mulberry32(seed: number): () => number {
  const generator = new Mulberry32(seed);
  return () => generator.nextUint32() / 4294967296;
}

/** A uniform integer in [0, n) drawn from `next` (a generator returning [0, 1)). */
export function uniformIndex(next: () => number, n: number): number {
  return Math.floor(next() * n);
}
