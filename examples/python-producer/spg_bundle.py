"""Write spg bundle format version 1 (docs/bundle-format.md) from Python.

Standard library plus PyNaCl (Debian: python3-nacl) for Ed25519. Written from
docs/bundle-format.md alone; the section numbers below are that page's.
"""

import base64
import hashlib
import io
import json
import math
import os
import re
import struct
import zipfile

BUNDLE_FORMAT = "spg-bundle"
BUNDLE_VERSION = 1
# §2: every entry, in the order written; the manifest lists all but the first two.
ENTRY_ORDER = [
    "manifest.json",
    "signature.json",
    "config.json",
    "environment.json",
    "records.jsonl",
    "fingerprints.jsonl",
    "summary.json",
    "report.md",
]
LISTED_ENTRIES = ENTRY_ORDER[2:]
# §5: the signed message's domain separation.
SIGNING_PREFIX = "SPGBUNDLEv1"
PAYLOAD_TYPE = "application/vnd.spg.manifest+json;version=1"


class BundleError(Exception):
    """A clear error naming the file, the field and the fix."""

    def __init__(self, message, file=None, field=None, fix=None):
        parts = [message]
        if file is not None:
            parts.append(f"  file: {file}")
        if field is not None:
            parts.append(f"  field: {field}")
        if fix is not None:
            parts.append(f"  fix: {fix}")
        super().__init__("\n".join(parts))


# §3 Canonical JSON -----------------------------------------------------------------


def js_number(value):
    """ECMAScript Number::toString of a finite double (§3)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int) and abs(value) < 10**21:
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        raise BundleError(f"{value} is not finite; JSON cannot hold it")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = (whole + fraction).lstrip("0")
    digits = all_digits.rstrip("0")
    trailing = len(all_digits) - len(digits)
    k = len(digits)
    # value = digits × 10^(n − k)
    n = int(exponent or 0) - len(fraction) + trailing + k
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + text


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\ud800-\udfff]')


def js_string(text):
    """A string as ECMAScript JSON.stringify writes it (§3)."""

    def escape(match):
        char = match.group(0)
        return _ESCAPES.get(char) or f"\\u{ord(char):04x}"

    return '"' + _NEEDS_ESCAPE.sub(escape, text) + '"'


def utf16_order(key):
    return key.encode("utf-16-be", "surrogatepass")


def canonical_text(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, str):
        return js_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_text(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=utf16_order)
        return "{" + ",".join(js_string(key) + ":" + canonical_text(value[key]) for key in keys) + "}"
    raise BundleError(f"a {type(value).__name__} is not JSON data")


def canonical_json(value):
    return canonical_text(value).encode("utf-8", "surrogatepass")


def canonical_jsonl(rows):
    return b"".join(canonical_json(row) + b"\n" for row in rows)


# §7 The summary -------------------------------------------------------------------

INTERVAL_METRICS = ["compressionRatio", "perplexityIncreasePct", "meanKl", "top1Agreement", "generationAgreement"]
CLAIM_FIELD = {
    "compression_ratio": "compressionRatio",
    "perplexity_increase_pct": "perplexityIncreasePct",
    "mean_kl": "meanKl",
    "top1_agreement": "top1Agreement",
    "generation_agreement": "generationAgreement",
}
SUMMED = [
    ("scoredTokens", lambda r: r["scoredTokens"]),
    ("nllBaseline", lambda r: r["nllBaseline"]),
    ("nllCompressed", lambda r: r["nllCompressed"]),
    ("klSum", lambda r: r["klSum"]),
    ("top1Matches", lambda r: r["top1Matches"]),
    ("generationCompared", lambda r: r["generation"]["compared"]),
    ("generationMatches", lambda r: r["generation"]["matches"]),
    ("kvBytesBaseline", lambda r: r["kvBytesBaseline"]),
    ("kvBytesCompressed", lambda r: r["kvBytesCompressed"]),
]


def _high_word(x):
    return struct.unpack("<q", struct.pack("<d", x))[0] >> 32 & 0xFFFFFFFF


def _scale_by_power_of_two(y, k):
    return y * struct.unpack("<d", struct.pack("<q", (0x3FF + k) << 52))[0]


_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_P1, _P2, _P3, _P4, _P5 = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
                           -1.65339022054652515390e-06, 4.13813679705723846039e-08)


def js_exp(x):
    """Math.exp as ECMAScript engines built on fdlibm compute it (V8: FreeBSD msun e_exp.c).

    Why not math.exp: perplexityIncreasePct = 100 (exp(a) / exp(b) - 1) turns a last-bit
    difference between two exp implementations into a relative error of about 1e-16 / |increase|,
    beyond verify's 1e-9 tolerance when the increase is near 0 (docs/bundle-format.md §7.1).
    """
    high = _high_word(x)
    negative = high >> 31
    high &= 0x7FFFFFFF
    if not math.isfinite(x):
        return x if x != -math.inf else 0.0
    if x > 7.09782712893383973096e02:
        return math.inf
    if x < -7.45133219101941108420e02:
        return 0.0
    k = 0
    hi = lo = 0.0
    if high > 0x3FD62E42:  # |x| > 0.5 ln2
        if high < 0x3FF0A2B2:  # and |x| < 1.5 ln2
            hi = x - (-_LN2_HI if negative else _LN2_HI)
            lo = -_LN2_LO if negative else _LN2_LO
            k = 1 - negative - negative
        else:
            k = int(_INV_LN2 * x + (-0.5 if negative else 0.5))
            t = float(k)
            hi = x - t * _LN2_HI
            lo = t * _LN2_LO
        x = hi - lo
    elif high < 0x3E300000:  # |x| < 2^-28
        return 1.0 + x
    t = x * x
    c = x - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    if k == 0:
        return 1.0 - ((x * c) / (c - 2.0) - x)
    y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi)
    if k >= -1021:
        return y * 2.0 * 2.0**1023 if k == 1024 else _scale_by_power_of_two(y, k)
    return _scale_by_power_of_two(y, k + 1000) * 2.0**-1000


class Mulberry32:
    """§7.2."""

    def __init__(self, seed):
        if not (isinstance(seed, int) and 0 <= seed < 2**32):
            raise BundleError(f"bootstrap seed {seed!r} is not a uint32", file="config.json", field="bootstrap.seed")
        self.state = seed

    def next_uint32(self):
        self.state = (self.state + 0x6D2B79F5) & 0xFFFFFFFF
        t = self.state
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t = (t ^ ((t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        return (t ^ (t >> 14)) & 0xFFFFFFFF

    def uniform(self):
        return self.next_uint32() / 4294967296


def pooled_sums(columns, positions):
    sums = {}
    for name, column in columns.items():
        total = 0
        for i in positions:
            total += column[i]
        sums[name] = total
    return sums


def metrics_from_sums(sums, method):
    for field, value in [
        ("scoredTokens", sums["scoredTokens"]),
        ("generation.compared", sums["generationCompared"]),
        ("compressed bytes", sums["kvBytesCompressed"]),
    ]:
        if not value > 0:
            raise BundleError(f'method "{method}": summed {field} is {value}, so a metric divides by zero')
    ppl_baseline = js_exp(sums["nllBaseline"] / sums["scoredTokens"])
    ppl_compressed = js_exp(sums["nllCompressed"] / sums["scoredTokens"])
    return {
        "perplexityBaseline": ppl_baseline,
        "perplexityCompressed": ppl_compressed,
        "perplexityIncreasePct": 100 * (ppl_compressed / ppl_baseline - 1),
        "meanKl": sums["klSum"] / sums["scoredTokens"],
        "top1Agreement": sums["top1Matches"] / sums["scoredTokens"],
        "generationAgreement": sums["generationMatches"] / sums["generationCompared"],
        "compressionRatio": sums["kvBytesBaseline"] / sums["kvBytesCompressed"],
    }


def quantile(sorted_values, p):
    """Hyndman-Fan type 7 (§7.3)."""
    h = (len(sorted_values) - 1) * p
    lower = math.floor(h)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (h - lower) * (sorted_values[upper] - sorted_values[lower])


def summarize_method(records, method, bootstrap):
    ordered = sorted(records, key=lambda r: r["sampleIndex"])
    columns = {name: [get(r) for r in ordered] for name, get in SUMMED}
    n = len(ordered)
    sums = pooled_sums(columns, range(n))
    point = metrics_from_sums(sums, method)
    generator = Mulberry32(bootstrap["seed"])
    draws = {key: [] for key in INTERVAL_METRICS}
    for _ in range(bootstrap["resamples"]):
        positions = [math.floor(generator.uniform() * n) for _ in range(n)]
        resampled = metrics_from_sums(pooled_sums(columns, positions), method)
        for key in INTERVAL_METRICS:
            draws[key].append(resampled[key])
    alpha = (1 - bootstrap["confidence"]) / 2
    intervals = {}
    for key in INTERVAL_METRICS:
        values = sorted(draws[key])
        intervals[key] = {"low": quantile(values, alpha), "high": quantile(values, 1 - alpha)}
    return {
        "samples": n,
        "scoredTokens": sums["scoredTokens"],
        "nllBaseline": sums["nllBaseline"],
        "nllCompressed": sums["nllCompressed"],
        "perplexityBaseline": point["perplexityBaseline"],
        "perplexityCompressed": point["perplexityCompressed"],
        "perplexityIncreasePct": point["perplexityIncreasePct"],
        "meanKl": point["meanKl"],
        "top1Agreement": point["top1Agreement"],
        "generationAgreement": point["generationAgreement"],
        "kvBytesBaseline": sums["kvBytesBaseline"],
        "kvBytesCompressed": sums["kvBytesCompressed"],
        "compressionRatio": point["compressionRatio"],
        "intervals": intervals,
    }


def pareto_frontier(points):
    """§7.4: points are (name, ratio, increase)."""
    by_ratio = sorted(points, key=lambda p: (-p[1], p[2]))
    frontier = []
    best = math.inf
    start = 0
    while start < len(by_ratio):
        end = start
        while end < len(by_ratio) and by_ratio[end][1] == by_ratio[start][1]:
            end += 1
        lowest = by_ratio[start][2]
        if lowest < best:
            i = start
            while i < end and by_ratio[i][2] == lowest:
                frontier.append(by_ratio[i])
                i += 1
            best = lowest
        start = end
    frontier.sort(key=lambda p: (p[1], p[2], utf16_order(p[0])))
    return [name for name, _, _ in frontier]


def family_of(name):
    at = name.find("@")
    return name if at <= 0 else name[:at]


def summarize(records, config):
    """summary.json (§7) for these records under this config."""
    by_method = {method["name"]: [] for method in config["methods"]}
    for record in records:
        if record["method"] not in by_method:
            raise BundleError(
                f'a record names method "{record["method"]}", which config.methods does not list',
                field="method",
                fix="every record's method must be one of config.methods[].name",
            )
        by_method[record["method"]].append(record)
    methods = {name: summarize_method(rows, name, config["bootstrap"]) for name, rows in by_method.items()}
    claims = []
    for claim in config["claims"]:
        if claim["method"] not in methods:
            raise BundleError(f'a claim names method "{claim["method"]}", which the config does not run',
                              file="config.json", field="claims[].method")
        summary = methods[claim["method"]]
        field = CLAIM_FIELD[claim["metric"]]
        value = summary[field]
        interval = summary["intervals"][field]
        if claim["judge"] == "point":
            judged = value
        else:
            judged = interval["low"] if claim["op"] == ">=" else interval["high"]
        passed = judged >= claim["threshold"] if claim["op"] == ">=" else judged <= claim["threshold"]
        claims.append({**{k: claim[k] for k in ("method", "metric", "op", "threshold", "judge")},
                       "value": value, "judged": judged, "pass": passed})
    points = [(name, m["compressionRatio"], m["perplexityIncreasePct"]) for name, m in methods.items()]
    families = {}
    for point in points:
        families.setdefault(family_of(point[0]), []).append(point)
    return {
        "methods": methods,
        "claims": claims,
        "allClaimsPass": all(claim["pass"] for claim in claims),
        "frontiers": {
            "all": pareto_frontier(points),
            "byMethod": {family: pareto_frontier(members) for family, members in families.items()},
        },
    }


# §4, §5 Manifest, signature, zip -----------------------------------------------------


def pre_authentication_encoding(body):
    payload_type = PAYLOAD_TYPE.encode("utf-8")
    header = f"{SIGNING_PREFIX} {len(payload_type)} {PAYLOAD_TYPE} {len(body)} ".encode("utf-8")
    return header + body


def build_manifest(contents, tool, created_at):
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "tool": tool,
        "createdAt": created_at,
        "entries": [
            {"name": name, "sha256": hashlib.sha256(contents[name]).hexdigest(), "bytes": len(contents[name])}
            for name in LISTED_ENTRIES
        ],
    }


def sign_manifest(manifest_bytes, signing_key, ephemeral=False):
    """signing_key: a nacl.signing.SigningKey."""
    public_key = bytes(signing_key.verify_key)
    signature = signing_key.sign(pre_authentication_encoding(manifest_bytes)).signature
    return {
        "algorithm": "ed25519",
        "publicKey": base64.b64encode(public_key).decode("ascii"),
        "keyId": hashlib.sha256(public_key).hexdigest(),
        "signature": base64.b64encode(signature).decode("ascii"),
        "ephemeral": ephemeral,
    }


def zip_bytes(entries):
    """§2: the entries in order, fixed date and mode, deflated at level 6."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ENTRY_ORDER:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            archive.writestr(info, entries[name], compresslevel=6)
    return buffer.getvalue()


def write_bundle(path, config, environment, records, fingerprints, summary, report_md, signing_key, tool,
                 created_at):
    """Serialize canonically, build the manifest, sign it, zip; written atomically to `path`."""
    contents = {
        "config.json": canonical_json(config),
        "environment.json": canonical_json(environment),
        "records.jsonl": canonical_jsonl(records),
        "fingerprints.jsonl": canonical_jsonl(fingerprints),
        "summary.json": canonical_json(summary),
        "report.md": report_md.encode("utf-8"),
    }
    manifest = canonical_json(build_manifest(contents, tool, created_at))
    contents["manifest.json"] = manifest
    contents["signature.json"] = canonical_json(sign_manifest(manifest, signing_key))
    data = zip_bytes(contents)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return contents
