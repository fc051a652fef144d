/**
 * The GPT-Neo runtime on onnxruntime-node: builds (or reuses) the graph, opens a session on
 * exactly the requested execution provider, and maps ForwardInput/ForwardOutput to the
 * graph's batch-1 tensors. device "cuda" asks for the CUDA provider only; when it is not
 * installed this fails with E_DEVICE_UNAVAILABLE, it never falls back to the CPU.
 */
import ort from "onnxruntime-node";
import { SpgError } from "../errors.js";
import type { KvCache } from "../kv/cache.js";
import { appendTokens, cacheFromPrefill, emptyCache, pastInputs } from "../kv/layout.js";
import { PaddedCache } from "../kv/padded-cache.js";
import { executedWeightBytes, shapeOnlyPlacement } from "./executed.js";
import { graphNames, spgModel, validateGraphOptions } from "./graph.js";
import { type GraphCacheOptions, prepareGraph, storedPlacement } from "./graph-cache.js";
import { encodeModel, OnnxDataType } from "./onnx-proto.js";
import { type PrefillChunking, prefillChunkSizes } from "./prefill-chunks.js";
import { StoredWeights } from "./stored-weights.js";
import type {
  ForwardInput,
  ForwardOutput,
  GptNeoCheckpoint,
  GptNeoConfig,
  GptNeoRuntime,
  OutputSelection,
  RuntimeOptions,
} from "./types.js";

export const CUDA_INSTALL_FIX =
  "install onnxruntime-node with its CUDA provider: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci` " +
  "on a machine with an NVIDIA GPU, CUDA 12 and cuDNN 9 (or run with device cpu)";

export const WEBGPU_FIX =
  "run on a machine whose GPU driver offers a WebGPU adapter (Dawn: Vulkan on Linux, Metal on macOS, " +
  "D3D12 on Windows; software Vulkan such as lavapipe offers none), or use --device cpu or cuda";

/** How to get a device's provider working (for E_DEVICE_UNAVAILABLE). */
function deviceFix(device: RuntimeOptions["device"]): string {
  return device === "webgpu" ? WEBGPU_FIX : CUDA_INSTALL_FIX;
}

export type LoadRuntimeOptions = RuntimeOptions &
  Pick<GraphCacheOptions, "externalDataThresholdBytes"> & {
    /** onnxruntime intra-op threads (0 or absent: onnxruntime's default, one per physical core). */
    intraOpThreads?: number;
  };

/** Whether this onnxruntime-node build lists the CUDA provider at all. */
export function cudaProviderListed(): boolean {
  return ort.listSupportedBackends().some((backend) => backend.name === "cuda");
}

/** A one-node graph (Identity) to open a session with, so a missing provider fails before the model is built. */
function probeGraph(): Uint8Array {
  const io = (name: string) => ({
    name,
    type: { tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: [{ dim_value: 1 }] } } },
  });
  return encodeModel(
    spgModel({
      name: "provider_probe",
      node: [{ name: "identity", op_type: "Identity", input: ["x"], output: ["y"] }],
      initializer: [],
      input: [io("x")],
      output: [io("y")],
    }),
  );
}

/** Opens and closes a tiny session on the device's provider; E_DEVICE_UNAVAILABLE when it cannot start. */
export async function assertDeviceAvailable(device: RuntimeOptions["device"]): Promise<void> {
  const session = await createSession({ kind: "bytes", bytes: probeGraph() }, device);
  await session.release();
}

function executionProviders(device: RuntimeOptions["device"]): string[] {
  if (device === "cpu") return ["cpu"];
  if (device === "cuda") {
    if (!cudaProviderListed()) {
      throw new SpgError(
        "E_DEVICE_UNAVAILABLE",
        "this onnxruntime-node build has no CUDA execution provider",
        {
          field: "device",
          fix: CUDA_INSTALL_FIX,
        },
      );
    }
    return ["cuda"];
  }
  // onnxruntime-node bundles its WebGPU provider (Dawn); whether an adapter exists shows when a session starts.
  if (device === "webgpu") return ["webgpu"];
  throw new SpgError("E_RUNTIME_OPTION", `unknown device ${String(device)}`, {
    field: "device",
    fix: "use device cpu, cuda or webgpu",
  });
}

export async function createSession(
  graph: Awaited<ReturnType<typeof prepareGraph>>,
  device: RuntimeOptions["device"],
  intraOpThreads = 0,
): Promise<ort.InferenceSession> {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: executionProviders(device),
    graphOptimizationLevel: "all",
    // The memory pattern plans one block for every intermediate of a pass, per input shape;
    // with prefill chunks, continuations and decode steps of different shapes it kept blocks
    // for each (125m shape, 2032-token context: peak 2.22 GiB with it, 1.70 GiB without;
    // 6.82 and 4.19 GiB in one pass). The arena stays on: without it the peak did not drop.
    enableMemPattern: false,
    intraOpNumThreads: intraOpThreads,
    // onnxruntime's pool threads busy-wait after each run by default; between runs spg does
    // its own work (compression, metrics) on the same cores, which the spinning slowed ~5x.
    extra: {
      session: {
        intra_op: { allow_spinning: "0" },
        // A graph given as bytes whose weights stay in the checkpoint's files reads them from there.
        ...(graph.kind === "bytes" && graph.externalDataDir !== undefined
          ? { model_external_initializers_file_folder_path: graph.externalDataDir }
          : {}),
      },
    },
  };
  try {
    return graph.kind === "bytes"
      ? await ort.InferenceSession.create(graph.bytes, sessionOptions)
      : await ort.InferenceSession.create(graph.path, sessionOptions);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (device !== "cpu") {
      throw new SpgError(
        "E_DEVICE_UNAVAILABLE",
        `onnxruntime could not start the ${device === "cuda" ? "CUDA" : "WebGPU"} provider: ${message}`,
        {
          field: "device",
          fix: deviceFix(device),
          cause: error,
        },
      );
    }
    throw new SpgError("E_GRAPH_LOAD", `onnxruntime rejected the GPT-Neo graph: ${message}`, {
      fix: "report this as a bug in spg's graph builder, with the checkpoint's config.json",
      cause: error,
    });
  }
}

function inputError(message: string, field: string): SpgError {
  return new SpgError("E_FORWARD_INPUT", message, {
    field,
    fix: "build past and attentionBias with pastInputs() from src/kv/layout.ts",
  });
}

/** The graph's feeds for one forward call, checked against the config. */
export function forwardFeeds(config: GptNeoConfig, input: ForwardInput): Record<string, ort.Tensor> {
  const q = input.inputIds.length;
  if (q < 1) throw inputError("a forward pass needs at least one token", "inputIds");
  if (input.positionIds.length !== q) {
    throw inputError(`${q} input ids but ${input.positionIds.length} position ids`, "positionIds");
  }
  const sparseTopK = input.sparseTopK ?? 0;
  if (!Number.isInteger(sparseTopK) || sparseTopK < 0) {
    throw inputError(
      `sparseTopK must be a non-negative integer (0: dense attention), got ${sparseTopK}`,
      "sparseTopK",
    );
  }
  const logitRows = input.logitRows ?? q;
  if (!Number.isInteger(logitRows) || logitRows < 1 || logitRows > q) {
    throw inputError(`logitRows must be a whole number in [1, ${q}], got ${logitRows}`, "logitRows");
  }
  for (const id of input.inputIds) {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
      throw inputError(`token id ${id} is outside the vocabulary [0, ${config.vocabSize})`, "inputIds");
    }
  }
  for (const pos of input.positionIds) {
    if (!Number.isInteger(pos) || pos < 0 || pos >= config.maxPositions) {
      throw inputError(
        `position ${pos} is outside [0, ${config.maxPositions}) (max_position_embeddings)`,
        "positionIds",
      );
    }
  }
  if (input.past.length !== config.numLayers || input.attentionBias.length !== config.numLayers) {
    throw inputError(`past/attentionBias must have ${config.numLayers} layers`, "past");
  }
  const { numHeads: heads, headDim } = config;
  const scoredTargets = input.scored?.targets ?? [];
  const scoredProbs = input.scored?.probs ?? new Float32Array(0);
  if (scoredTargets.length > logitRows) {
    throw inputError(
      `${scoredTargets.length} scored rows but only ${logitRows} logit rows`,
      "scored.targets",
    );
  }
  if (scoredProbs.length !== scoredTargets.length * config.vocabSize) {
    throw inputError(
      `scored.probs must hold scored rows * vocab = ${scoredTargets.length * config.vocabSize} values, got ${scoredProbs.length}`,
      "scored.probs",
    );
  }
  for (const target of scoredTargets) {
    if (!Number.isInteger(target) || target < 0 || target >= config.vocabSize) {
      throw inputError(
        `scored target ${target} is outside the vocabulary [0, ${config.vocabSize})`,
        "scored.targets",
      );
    }
  }
  const feeds: Record<string, ort.Tensor> = {
    [graphNames.inputIds]: new ort.Tensor("int64", BigInt64Array.from(input.inputIds, BigInt), [1, q]),
    [graphNames.positionIds]: new ort.Tensor("int64", BigInt64Array.from(input.positionIds, BigInt), [1, q]),
    [graphNames.logitRows]: new ort.Tensor("int64", BigInt64Array.of(BigInt(logitRows)), [1]),
    [graphNames.sparseTopK]: new ort.Tensor("int64", BigInt64Array.of(BigInt(sparseTopK)), [1]),
    [graphNames.scoredProbs]: new ort.Tensor("float32", scoredProbs, [
      scoredTargets.length,
      config.vocabSize,
    ]),
    [graphNames.scoredTargets]: new ort.Tensor("int64", BigInt64Array.from(scoredTargets, BigInt), [
      scoredTargets.length,
    ]),
  };
  input.past.forEach((layerPast, layer) => {
    const { slots } = layerPast;
    const size = heads * slots * headDim;
    if (layerPast.keys.length !== size || layerPast.values.length !== size) {
      throw inputError(
        `layer ${layer}: past keys/values must hold heads*slots*headDim = ${size} values`,
        "past",
      );
    }
    const bias = input.attentionBias[layer];
    const biasHeads = bias.length / (q * (slots + q));
    if (biasHeads !== 1 && biasHeads !== heads) {
      throw inputError(
        `layer ${layer}: attention bias must be [heads, q, slots+q] = ${heads * q * (slots + q)} or [1, q, slots+q] = ${q * (slots + q)} values`,
        "attentionBias",
      );
    }
    feeds[graphNames.pastKey(layer)] = new ort.Tensor("float32", layerPast.keys, [1, heads, slots, headDim]);
    feeds[graphNames.pastValue(layer)] = new ort.Tensor("float32", layerPast.values, [
      1,
      heads,
      slots,
      headDim,
    ]);
    feeds[graphNames.attentionBias(layer)] = new ort.Tensor("float32", bias, [1, biasHeads, q, slots + q]);
  });
  return feeds;
}

/**
 * A graph output of the expected element type, or E_GRAPH_OUTPUT naming the graph and the
 * output (a missing or mistyped output is a bug in spg's graph builder).
 */
export function graphOutput<T>(
  outputs: ort.InferenceSession.OnnxValueMapType,
  name: string,
  type: new () => T,
  graph = "the graph",
): T {
  const data = outputs[name]?.data;
  if (!(data instanceof type)) {
    throw new SpgError("E_GRAPH_OUTPUT", `${graph} returned no ${type.name} output ${name}`, {
      fix: "report this as a bug in spg's graph builder",
    });
  }
  return data;
}

const floatOutput = (outputs: ort.InferenceSession.OnnxValueMapType, name: string) =>
  graphOutput(outputs, name, Float32Array);
const doubleOutput = (outputs: ort.InferenceSession.OnnxValueMapType, name: string) =>
  graphOutput(outputs, name, Float64Array);

function argmaxOutput(outputs: ort.InferenceSession.OnnxValueMapType): Int32Array {
  return Int32Array.from(graphOutput(outputs, graphNames.logitsArgmax, BigInt64Array), Number);
}

/** Opens a GPT-Neo runtime for the checkpoint on the requested device. */
export async function loadRuntime(
  checkpoint: GptNeoCheckpoint,
  options: LoadRuntimeOptions,
): Promise<GptNeoRuntime> {
  const graphOptions = { observationWindow: options.observationWindow, headLayout: options.headLayout };
  validateGraphOptions(graphOptions);
  // Check the device before building anything, so a missing provider fails fast.
  const providers = executionProviders(options.device);
  await assertDeviceAvailable(options.device);
  const graph = await prepareGraph(checkpoint, graphOptions, {
    cacheDir: options.cacheDir,
    externalDataThresholdBytes: options.externalDataThresholdBytes,
  });
  const session = await createSession(graph, options.device, options.intraOpThreads);
  const config = checkpoint.config;
  const layers = Array.from({ length: config.numLayers }, (_, layer) => layer);
  // Each optional output name, with the selection flag that asks for it.
  const optional = new Map<string, keyof OutputSelection>([[graphNames.logits, "logits"]]);
  for (const l of layers) {
    optional.set(graphNames.attentionLastRows(l), "attention");
    for (const name of [
      graphNames.attentionColumnSums(l),
      graphNames.attentionWindowSums(l),
      graphNames.keyNorms(l),
      graphNames.valueNorms(l),
    ])
      optional.set(name, "statistics");
    optional.set(graphNames.presentKey(l), "present");
    optional.set(graphNames.presentValue(l), "present");
  }
  // The output names to fetch, per selection: built once each, not on every forward pass.
  const fetchLists = new Map<string, string[]>();
  const fetched = (returns: Required<OutputSelection>) => {
    const key = JSON.stringify(returns);
    let names = fetchLists.get(key);
    if (names === undefined) {
      names = session.outputNames.filter((name) => {
        const flag = optional.get(name);
        return flag === undefined || returns[flag];
      });
      fetchLists.set(key, names);
    }
    return names;
  };
  // The same graph the session got, placed the same way: its constants as the session holds them.
  const placement =
    checkpoint.weights instanceof StoredWeights ? storedPlacement(checkpoint.weights) : shapeOnlyPlacement;
  return {
    config,
    executionProvider: providers[0],
    executedWeightBytes: executedWeightBytes(checkpoint, graphOptions, placement),
    async forward(input: ForwardInput): Promise<ForwardOutput> {
      const feeds = forwardFeeds(config, input);
      const returns = { logits: true, attention: true, statistics: true, present: true, ...input.returns };
      const outputs = await session.run(feeds, fetched(returns));
      // One array per layer from the named outputs, or empty arrays when not asked for.
      const floats = (asked: boolean, name: (l: number) => string) =>
        layers.map((l) => (asked ? floatOutput(outputs, name(l)) : new Float32Array(0)));
      const doubles = (asked: boolean, name: (l: number) => string) =>
        layers.map((l) => (asked ? doubleOutput(outputs, name(l)) : new Float64Array(0)));
      return {
        logits: returns.logits ? floatOutput(outputs, graphNames.logits) : new Float32Array(0),
        logitsLogSumExp: doubleOutput(outputs, graphNames.logitsLogSumExp),
        logitsArgmax: argmaxOutput(outputs),
        scoredExpectedLogit: doubleOutput(outputs, graphNames.scoredExpectedLogit),
        scoredTargetLogit: floatOutput(outputs, graphNames.scoredTargetLogit),
        presentKeys: floats(returns.present, graphNames.presentKey),
        presentValues: floats(returns.present, graphNames.presentValue),
        attentionLastRows: floats(returns.attention, graphNames.attentionLastRows),
        attentionRows:
          returns.attention || returns.statistics
            ? Math.min(options.observationWindow, input.inputIds.length)
            : 0,
        attentionColumnSums: floats(returns.statistics, graphNames.attentionColumnSums),
        attentionWindowSums: floats(returns.statistics, graphNames.attentionWindowSums),
        keyNorms: doubles(returns.statistics, graphNames.keyNorms),
        valueNorms: doubles(returns.statistics, graphNames.valueNorms),
      };
    },
    async close() {
      await session.release();
    },
  };
}

/**
 * The prefill's output as one pass over every token would give it, computed pass by pass on
 * a cache laid out once with room for the whole context (PaddedCache: no copy of the cache
 * per pass). A pass over tokens p..p+c-1 reads `capacity` slots (the first p written, the rest
 * masked) and its own c tokens, so its columns map to positions as: slot s < p is position s,
 * column capacity + j is position p + j. Column sums add up over passes (future positions get
 * no attention); the observation rows, window sums and logits come from the last pass.
 */
async function prefillInChunks(
  runtime: GptNeoRuntime,
  tokens: readonly number[],
  sizes: readonly number[],
  options: Pick<ForwardInput, "logitRows" | "returns">,
): Promise<ForwardOutput> {
  const { config } = runtime;
  const heads = config.numHeads;
  const count = tokens.length;
  const lastSize = sizes[sizes.length - 1];
  const logitRows = options.logitRows ?? count;
  if (logitRows > lastSize) {
    throw inputError(
      `a prefill in chunks returns logits of its last pass only (${lastSize} rows), ${logitRows} asked for`,
      "logitRows",
    );
  }
  const returns = { logits: true, attention: true, statistics: true, ...options.returns };
  const cache = PaddedCache.from(emptyCache(config), config, count);
  const layers = config.attentionLayers.map(() => 0);
  const columnSums = layers.map(() => new Float32Array(returns.statistics ? heads * count : 0));
  const keyNorms = layers.map(() => new Float64Array(returns.statistics ? heads * count : 0));
  const valueNorms = layers.map(() => new Float64Array(returns.statistics ? heads * count : 0));
  let start = 0;
  let last: ForwardOutput | undefined;
  for (const [index, size] of sizes.entries()) {
    const isLast = index === sizes.length - 1;
    const positions = Array.from({ length: size }, (_, j) => start + j);
    const output = await runtime.forward({
      inputIds: tokens.slice(start, start + size),
      positionIds: positions,
      ...cache.inputs(positions),
      logitRows: isLast ? logitRows : 1,
      returns: {
        logits: isLast && returns.logits,
        attention: isLast && returns.attention,
        statistics: returns.statistics,
        present: true,
      },
    });
    if (returns.statistics) {
      const total = count + size;
      layers.forEach((_, l) => {
        const sums = output.attentionColumnSums[l];
        for (let h = 0; h < heads; h++) {
          const into = columnSums[l].subarray(h * count, (h + 1) * count);
          const from = sums.subarray(h * total, (h + 1) * total);
          for (let s = 0; s < start; s++) into[s] += from[s];
          for (let j = 0; j < size; j++) into[start + j] += from[count + j];
          keyNorms[l].set(output.keyNorms[l].subarray(h * size, (h + 1) * size), h * count + start);
          valueNorms[l].set(output.valueNorms[l].subarray(h * size, (h + 1) * size), h * count + start);
        }
      });
    }
    cache.append(output, positions);
    if (isLast) last = output;
    start += size;
  }
  if (last === undefined) throw inputError("a prefill needs at least one token", "inputIds");
  const lastStart = count - lastSize;
  const rows = last.attentionRows;
  /** [heads, rows, count + lastSize] of the last pass as [heads, rows, count] by position. */
  const byPosition = (padded: Float32Array) => {
    if (padded.length === 0) return padded;
    const out = new Float32Array(heads * rows * count);
    const total = count + lastSize;
    for (let r = 0; r < heads * rows; r++) {
      const from = padded.subarray(r * total, (r + 1) * total);
      out.set(from.subarray(0, lastStart), r * count);
      out.set(from.subarray(count, total), r * count + lastStart);
    }
    return out;
  };
  const present = cache.written();
  return {
    ...last,
    presentKeys: present.keys,
    presentValues: present.values,
    attentionLastRows: last.attentionLastRows.map(byPosition),
    attentionWindowSums: last.attentionWindowSums.map(byPosition),
    attentionColumnSums: columnSums,
    keyNorms,
    valueNorms,
  };
}

/**
 * Prefill: the tokens at positions 0..n-1 with an empty past; returns the output and the full
 * cache. `logitRows` limits the logits to the last rows (default: every row); `returns` leaves
 * out outputs the caller does not read (the present keys and values always come back).
 */
export async function prefillTokens(
  runtime: GptNeoRuntime,
  tokens: readonly number[],
  options: Pick<ForwardInput, "logitRows" | "returns"> & { chunks?: PrefillChunking } = {},
): Promise<{ output: ForwardOutput; cache: KvCache; positions: number[] }> {
  const positions = tokens.map((_, i) => i);
  const { chunks, ...forwardOptions } = options;
  if (chunks !== undefined) {
    const sizes = prefillChunkSizes(tokens.length, chunks);
    if (sizes.length > 1) {
      const output = await prefillInChunks(runtime, tokens, sizes, forwardOptions);
      return { output, cache: cacheFromPrefill(runtime.config, output, positions), positions };
    }
  }
  const output = await runtime.forward({
    inputIds: tokens,
    positionIds: positions,
    ...forwardOptions,
    // the cache is built from the present keys and values
    returns: { ...forwardOptions.returns, present: true },
    ...pastInputs(emptyCache(runtime.config), runtime.config, positions),
  });
  return { output, cache: cacheFromPrefill(runtime.config, output, positions), positions };
}

/**
 * Runs new tokens at their true positions on top of a (possibly compressed) cache, in one
 * forward pass (causal among themselves), and returns the output; the cache is not changed.
 */
export async function forwardOnCache(
  runtime: GptNeoRuntime,
  cache: KvCache | PaddedCache,
  tokens: readonly number[],
  positions: readonly number[],
  options: Pick<ForwardInput, "scored" | "returns"> = {},
): Promise<ForwardOutput> {
  if (tokens.length === 0) {
    // Nothing to run (e.g. a one-token continuation has nothing to feed).
    const none = runtime.config.attentionLayers.map(() => new Float32Array(0));
    return {
      logits: new Float32Array(0),
      logitsLogSumExp: new Float64Array(0),
      logitsArgmax: new Int32Array(0),
      scoredExpectedLogit: new Float64Array(0),
      scoredTargetLogit: new Float32Array(0),
      presentKeys: none,
      presentValues: none,
      attentionLastRows: none,
      attentionRows: 0,
      attentionColumnSums: none,
      attentionWindowSums: none,
      keyNorms: runtime.config.attentionLayers.map(() => new Float64Array(0)),
      valueNorms: runtime.config.attentionLayers.map(() => new Float64Array(0)),
    };
  }
  const inputs =
    cache instanceof PaddedCache ? cache.inputs(positions) : pastInputs(cache, runtime.config, positions);
  return runtime.forward({ inputIds: tokens, positionIds: positions, ...inputs, ...options });
}

/** forwardOnCache, and the cache with the new tokens appended uncompressed. */
export async function extendCache(
  runtime: GptNeoRuntime,
  cache: KvCache,
  tokens: readonly number[],
  positions: readonly number[],
): Promise<{ output: ForwardOutput; cache: KvCache }> {
  const output = await forwardOnCache(runtime, cache, tokens, positions);
  return { output, cache: tokens.length === 0 ? cache : appendTokens(cache, output, positions) };
}

/**
 * Greedy decoding on top of a (possibly compressed) cache: feeds `firstToken` at
 * `startPosition`, then each step's argmax at the next position, `steps` times, and returns
 * the `steps` tokens chosen. The cache is laid out once with room for every step (or comes
 * laid out: a PaddedCache with that room, which the steps then fill), so a step costs one
 * forward pass and no copy of the cache.
 */
export async function generateGreedy(
  runtime: GptNeoRuntime,
  cache: KvCache | PaddedCache,
  firstToken: number,
  startPosition: number,
  steps: number,
  trace?: GreedyStep[],
): Promise<number[]> {
  const padded = cache instanceof PaddedCache ? cache : PaddedCache.from(cache, runtime.config, steps);
  const generated: number[] = [];
  let token = firstToken;
  for (let step = 0; step < steps; step++) {
    const positions = [startPosition + step];
    // Only the argmax and the new keys and values are read (the logits too when traced): the rest stays in onnxruntime.
    const output = await runtime.forward({
      inputIds: [token],
      positionIds: positions,
      ...padded.inputs(positions),
      returns: { logits: trace !== undefined, attention: false, statistics: false },
    });
    if (step + 1 < steps) padded.append(output, positions);
    token = output.logitsArgmax[0];
    generated.push(token);
    trace?.push(greedyStepOf(output.logits, token));
  }
  return generated;
}

/**
 * One greedy step as a replay judges a stored token that differs from its own: the token the
 * step ranked second and by how much its logit trails the chosen one's (its log-probability
 * gap: the softmax's normaliser cancels).
 */
export interface GreedyStep {
  runnerUp: number;
  gap: number;
}

/** The runner-up of one row of logits behind `chosen` (the graph's argmax). */
export function greedyStepOf(logits: Float32Array, chosen: number): GreedyStep {
  let runnerUp = -1;
  let best = Number.NEGATIVE_INFINITY;
  for (let id = 0; id < logits.length; id++) {
    if (id !== chosen && logits[id] > best) {
      best = logits[id];
      runnerUp = id;
    }
  }
  return { runnerUp, gap: logits[chosen] - best };
}
