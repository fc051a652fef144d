/**
 * mulberry32: a tiny, well-known 32-bit PRNG. Not for secrets; it exists so the bootstrap
 * in summary.json is reproducible bit for bit by `spg verify` from the config's seed.
 * Only 32-bit integer arithmetic (Math.imul, >>> 0), so every JS engine gives the same stream.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [0, n) drawn from `next` (a generator returning [0, 1)). */
export function uniformIndex(next: () => number, n: number): number {
  return Math.floor(next() * n);
}
