/** The dtypes values are stored at when not quantized (a KV cache's or a weight tensor's baseline). */
export type BaselineDtype = "fp16" | "fp32";

/** Bytes of one stored element at a baseline dtype. */
export function dtypeBytes(dtype: BaselineDtype): number {
  return dtype === "fp16" ? 2 : 4;
}

/** Bit width label of a baseline dtype for bits histograms. */
export function dtypeBits(dtype: BaselineDtype): number {
  return dtype === "fp16" ? 16 : 32;
}
