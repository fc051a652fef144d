#!/usr/bin/env python3
"""Turn a harness's per-sample measurements (CSV) into a signed spg bundle (format version 1).

    python3 produce.py --run run.json --records records.csv --layers layers.csv \
        --key signing-key.json --out bundle.zip
    python3 produce.py --new-key DIR        # an Ed25519 key pair for --key and --trusted-keys

See README.md beside this file for the inputs, and docs/bundle-format.md for the format.
Exit status: 0 written, 2 bad input (the message names the file, line and field).
"""

import argparse
import base64
import csv
import datetime
import json
import os
import sys
from decimal import ROUND_HALF_UP, Decimal

import nacl.signing

from spg_bundle import BundleError, summarize, write_bundle

TOOL = {"name": "spg-python-producer", "version": "0.1.0", "commit": None}

# records.csv columns -> record fields (§6.3 of docs/bundle-format.md).
INT_COLUMNS = {
    "sample_index": "sampleIndex",
    "offset": "offset",
    "context_tokens": "contextTokens",
    "continuation_tokens": "continuationTokens",
    "scored_tokens": "scoredTokens",
    "top1_matches": "top1Matches",
    "kv_bytes_baseline": "kvBytesBaseline",
    "kv_bytes_compressed": "kvBytesCompressed",
    "peak_rss_bytes": "peakRssBytes",
}
FLOAT_COLUMNS = {"nll_baseline": "nllBaseline", "nll_compressed": "nllCompressed", "kl_sum": "klSum"}
TEXT_COLUMNS = {"sample_id": "sampleId", "method": "method", "token_hash": "tokenHash", "document": "document"}
TIMING_COLUMNS = {
    "prefill_ms": "prefill",
    "compress_ms": "compress",
    "decompress_ms": "decompress",
    "continuation_ms": "continuation",
    "generation_ms": "generation",
}
GENERATION_COLUMNS = ["generation_compared", "generation_matches", "generation_first_divergence"]
RECORD_COLUMNS = [*TEXT_COLUMNS, *INT_COLUMNS, *FLOAT_COLUMNS, *TIMING_COLUMNS, *GENERATION_COLUMNS]
LAYER_COLUMNS = ["sample_id", "method", "layer", "tokens_kept", "tokens_total", "heads_full_precision",
                 "bits_histogram", "bytes", "sha256"]


def number(text, kind, file, line, column):
    try:
        return int(text) if kind is int else float(text)
    except ValueError:
        raise BundleError(f"line {line}: {column} is {text!r}, not {'an integer' if kind is int else 'a number'}",
                          file=file, field=column, fix="write the measured value") from None


def read_csv(path, columns):
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as error:
        raise BundleError(f"cannot read it ({error.strerror})", file=path) from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise BundleError(f"missing columns: {', '.join(missing)}", file=path, field="header",
                              fix=f"the header must name: {','.join(columns)}")
        return [(index + 2, row) for index, row in enumerate(reader)]


def read_records(path):
    records = []
    for line, row in read_csv(path, RECORD_COLUMNS):
        record = {field: row[column] for column, field in TEXT_COLUMNS.items()}
        record.update({field: number(row[c], int, path, line, c) for c, field in INT_COLUMNS.items()})
        record.update({field: number(row[c], float, path, line, c) for c, field in FLOAT_COLUMNS.items()})
        record["timingsMs"] = {field: number(row[c], float, path, line, c) for c, field in TIMING_COLUMNS.items()}
        divergence = row["generation_first_divergence"]
        record["generation"] = {
            "compared": number(row["generation_compared"], int, path, line, "generation_compared"),
            "matches": number(row["generation_matches"], int, path, line, "generation_matches"),
            "firstDivergence": None if divergence == "" else number(divergence, int, path, line,
                                                                      "generation_first_divergence"),
        }
        records.append(record)
    return records


def parse_histogram(text, path, line):
    """'16:262144 4:1024' -> {"16": 262144, "4": 1024} (bit width: element count)."""
    histogram = {}
    for part in text.split():
        width, _, count = part.partition(":")
        if not width.isdigit() or not 1 <= int(width) <= 32 or not count.isdigit():
            raise BundleError(f"line {line}: bits_histogram part {part!r} is not WIDTH:COUNT", file=path,
                              field="bits_histogram", fix="write e.g. 16:262144 4:1024 (widths 1..32)")
        histogram[str(int(width))] = int(count)
    return histogram


def read_layers(path):
    lines = []
    for line, row in read_csv(path, LAYER_COLUMNS):
        lines.append({
            "sampleId": row["sample_id"],
            "method": row["method"],
            "layer": number(row["layer"], int, path, line, "layer"),
            "tokensKept": number(row["tokens_kept"], int, path, line, "tokens_kept"),
            "tokensTotal": number(row["tokens_total"], int, path, line, "tokens_total"),
            "headsFullPrecision": number(row["heads_full_precision"], int, path, line, "heads_full_precision"),
            "bitsHistogram": parse_histogram(row["bits_histogram"], path, line),
            "bytes": number(row["bytes"], int, path, line, "bytes"),
            "sha256": row["sha256"],
        })
    return lines


def check_inputs(config, environment, records, layers, paths):
    """The rules of docs/bundle-format.md §6 a producer can check before signing anything."""
    kinds = {method["name"]: method["kind"] for method in config["methods"]}
    if any(kind == "weights" for kind in kinds.values()):
        raise BundleError("methods of kind weights are not supported by this example", file=paths["run"],
                          field="config.methods[].kind", fix="measure KV-cache methods only")
    model = environment["model"]
    dtype_bytes = {"fp16": 2, "fp32": 4}[config["kv"]["baselineDtype"]]
    baseline = 2 * model["layers"] * model["hiddenSize"] * config["dataset"]["contextTokens"] * dtype_bytes
    evaluation = {s["sampleId"]: s["tokenHash"] for s in environment["evaluation"]["samples"]}
    stored = {}
    for record in records:
        where = f'record {record["sampleId"]}/{record["method"]}'
        if record["method"] not in kinds:
            raise BundleError(f"{where}: method is not in config.methods", file=paths["records"], field="method")
        if evaluation.get(record["sampleId"]) != record["tokenHash"]:
            raise BundleError(f"{where}: token_hash is not that of a listed evaluation sample",
                              file=paths["records"], field="token_hash",
                              fix="list the sample in run.json environment.evaluation.samples")
        if record["scoredTokens"] != record["continuationTokens"] - 1:
            raise BundleError(f"{where}: scored_tokens must be continuation_tokens - 1", file=paths["records"],
                              field="scored_tokens")
        if record["kvBytesBaseline"] != baseline:
            raise BundleError(f"{where}: kv_bytes_baseline {record['kvBytesBaseline']}, but "
                              f"2 * layers * hiddenSize * contextTokens * dtype bytes = {baseline}",
                              file=paths["records"], field="kv_bytes_baseline")
        stored[(record["sampleId"], record["method"])] = [record["kvBytesCompressed"], 0]
    for line in layers:
        key = (line["sampleId"], line["method"])
        if key not in stored:
            raise BundleError(f"layer line {key[0]}/{key[1]} has no record", file=paths["layers"])
        stored[key][1] += line["bytes"]
    for (sample, method), (compressed, layer_bytes) in stored.items():
        if compressed != layer_bytes:
            raise BundleError(f"{sample}/{method}: layer bytes sum to {layer_bytes}, kv_bytes_compressed is "
                              f"{compressed}", file=paths["layers"], field="bytes",
                              fix="one line per model layer, its bytes being what the method stores for it")


def _js_fixed(value, digits):
    """JavaScript's Number.prototype.toFixed: exact decimal value, ties away from zero."""
    if value == 0:
        value = 0.0  # -0 prints as 0, as in JavaScript
    if abs(value) >= 1e21:
        return _js_string(value)
    magnitude = Decimal(abs(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return ("-" if value < 0 else "") + f"{magnitude:f}"


def _js_exponential(value, digits):
    """JavaScript's Number.prototype.toExponential(digits), e.g. 1.27e-5."""
    if value == 0:
        return f"{0:.{digits}f}e+0"
    magnitude = Decimal(abs(value))
    exponent = magnitude.adjusted()
    mantissa = magnitude.scaleb(-exponent).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    if mantissa >= 10:
        exponent += 1
        mantissa = magnitude.scaleb(-exponent).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    return f"{sign}{mantissa:f}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _js_string(value):
    """String(number) in JavaScript: the shortest round-trip digits, decimal from 1e-7 to 1e21."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (value == int(value) and abs(value) < 1e21):
        return str(int(value))
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + exponent  # position of the decimal point after the first digits
    prefix = "-" if sign else ""
    if -6 < point <= 21:
        if point <= 0:
            return f"{prefix}0.{'0' * -point}{text}"
        if point >= len(text):
            return prefix + text + "0" * (point - len(text))
        return f"{prefix}{text[:point]}.{text[point:]}"
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{prefix}{mantissa}e{'+' if point - 1 >= 0 else '-'}{abs(point - 1)}"


def report_markdown(config, summary, environment):
    """report.md exactly as spg renders it (src/measure/report-md.ts): spg verify renders it again
    from the summary it recomputes and compares byte for byte."""
    dataset = config["dataset"]
    lines = [f"# spg proof bundle: {config['name']}", "",
             f"Model `{config['model']['path']}` (sha256 {environment['model']['sha256'][:16]}\u2026), "
             f"{dataset['samples']} samples of {dataset['contextTokens']} context + "
             f"{dataset['continuationTokens']} continuation tokens from {dataset['source']}/{dataset['split']}, "
             f"baseline cache counted in {config['kv']['baselineDtype']}.", "",
             "| method | ratio | ppl base | ppl comp | ppl +% (CI) | mean KL | top-1 | gen agree |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in summary["methods"].items():
        if "weights" in m:
            raise BundleError(f"method {name} compresses weights, which this producer does not write",
                              field="methods", fix="produce KV-cache methods only")
        ci = m["intervals"]["perplexityIncreasePct"]
        lines.append(
            f"| {name} | {_js_fixed(m['compressionRatio'], 2)}x | {_js_fixed(m['perplexityBaseline'], 3)} | "
            f"{_js_fixed(m['perplexityCompressed'], 3)} | {_js_fixed(m['perplexityIncreasePct'], 2)} "
            f"[{_js_fixed(ci['low'], 2)}, {_js_fixed(ci['high'], 2)}] | {_js_exponential(m['meanKl'], 2)} | "
            f"{_js_fixed(100 * m['top1Agreement'], 1)}% | {_js_fixed(100 * m['generationAgreement'], 1)}% |")
    lines += ["", "## Claims", ""]
    if not summary["claims"]:
        lines.append("No claims configured.")
    for claim in summary["claims"]:
        lines.append(f"- {'PASS' if claim['pass'] else 'FAIL'} {claim['method']} {claim['metric']} {claim['op']} "
                     f"{_js_string(claim['threshold'])} ({claim['judge']}: {_js_string(claim['judged'])}; "
                     f"point {_js_string(claim['value'])})")
    lines += ["", "Recompute everything with `spg verify <bundle.zip>`.", ""]
    return "\n".join(lines)


def read_signing_key(path):
    """An spg secret key file ({"secretKey": base64 of seed || public key, ...}, as `spg keygen` writes)."""
    try:
        with open(path, encoding="utf-8") as handle:
            secret = base64.b64decode(json.load(handle)["secretKey"], validate=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BundleError(f"not a readable key file ({error})", file=path, field="secretKey",
                          fix="pass a file written by `produce.py --new-key` or `spg keygen`") from None
    if len(secret) != 64:
        raise BundleError("secretKey is not 64 bytes", file=path, field="secretKey")
    return nacl.signing.SigningKey(secret[:32])


def new_key(directory):
    os.makedirs(directory, exist_ok=True)
    key = nacl.signing.SigningKey.generate()
    public = bytes(key.verify_key)
    secret_path = os.path.join(directory, "signing-key.json")
    descriptor = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"secretKey": base64.b64encode(bytes(key) + public).decode("ascii"),
                   "publicKey": base64.b64encode(public).decode("ascii")}, handle)
    public_path = os.path.join(directory, "trusted-keys.txt")
    with open(public_path, "x", encoding="utf-8") as handle:
        handle.write(base64.b64encode(public).decode("ascii") + "\n")
    print(f"secret key: {secret_path} (mode 0600)\npublic key: {public_path} (pass to spg verify --trusted-keys)")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="run.json: {config, environment} of the measured run")
    parser.add_argument("--records", help="records.csv: one row per (evaluation sample, method)")
    parser.add_argument("--layers", help="layers.csv: one row per (sample, method, model layer)")
    parser.add_argument("--key", help="secret key file")
    parser.add_argument("--out", help="bundle zip to write (must not exist)")
    parser.add_argument("--created-at", help="ISO 8601 UTC time for the manifest (default: now)")
    parser.add_argument("--new-key", metavar="DIR", help="write a new key pair into DIR and exit")
    args = parser.parse_args(argv)
    if args.new_key:
        new_key(args.new_key)
        return 0
    needed = [name for name in ("run", "records", "layers", "key", "out") if getattr(args, name) is None]
    if needed:
        parser.error("missing " + ", ".join(f"--{name}" for name in needed))
    if os.path.exists(args.out):
        raise BundleError("the output exists", file=args.out, fix="choose another --out or remove it")
    try:
        with open(args.run, encoding="utf-8") as handle:
            run = json.load(handle)
        config, environment = run["config"], run["environment"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BundleError(f"not a run description ({error})", file=args.run,
                          fix='write {"config": {...}, "environment": {...}} (docs/bundle-format.md §6)') from None
    records = read_records(args.records)
    layers = read_layers(args.layers)
    check_inputs(config, environment, records, layers,
                 {"run": args.run, "records": args.records, "layers": args.layers})
    summary = summarize(records, config)
    created_at = args.created_at or datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    write_bundle(args.out, config, environment, records, layers, summary, report_markdown(config, summary, environment),
                 read_signing_key(args.key), TOOL, created_at)
    print(f"bundle: {args.out} ({len(records)} records, {len(layers)} layer fingerprints)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
