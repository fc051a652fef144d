#!/usr/bin/env python3
"""Write an spg bundle's measurements as the CSV inputs produce.py reads.

    python3 export_from_bundle.py BUNDLE.zip OUT_DIR

Writes OUT_DIR/run.json, records.csv and layers.csv. This is how example/ was made from
bundles/default.zip, and how the test checks that produce.py rebuilds the same entries
from the same measurements. Your own harness writes these files itself.
"""

import csv
import json
import os
import sys
import zipfile

from produce import FLOAT_COLUMNS, INT_COLUMNS, LAYER_COLUMNS, RECORD_COLUMNS, TEXT_COLUMNS, TIMING_COLUMNS


def cell(value):
    # repr of a float round-trips exactly, so the CSV loses nothing.
    return repr(value) if isinstance(value, float) else str(value)


def main(bundle, out_dir):
    with zipfile.ZipFile(bundle) as archive:
        config = json.loads(archive.read("config.json"))
        environment = json.loads(archive.read("environment.json"))
        records = [json.loads(line) for line in archive.read("records.jsonl").splitlines()]
        layers = [json.loads(line) for line in archive.read("fingerprints.jsonl").splitlines()]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "run.json"), "w", encoding="utf-8") as handle:
        json.dump({"config": config, "environment": environment}, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    with open(os.path.join(out_dir, "records.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(RECORD_COLUMNS)
        for record in records:
            row = {c: record[f] for c, f in {**TEXT_COLUMNS, **INT_COLUMNS, **FLOAT_COLUMNS}.items()}
            row.update({c: record["timingsMs"][f] for c, f in TIMING_COLUMNS.items()})
            divergence = record["generation"]["firstDivergence"]
            row["generation_compared"] = record["generation"]["compared"]
            row["generation_matches"] = record["generation"]["matches"]
            row["generation_first_divergence"] = "" if divergence is None else divergence
            writer.writerow([cell(row[c]) for c in RECORD_COLUMNS])
    with open(os.path.join(out_dir, "layers.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LAYER_COLUMNS)
        for line in layers:
            if line.get("kind") == "weights":
                raise SystemExit(f"{bundle}: weights methods are not supported by this example")
            histogram = " ".join(f"{width}:{count}" for width, count in line["bitsHistogram"].items())
            writer.writerow([line["sampleId"], line["method"], line["layer"], line["tokensKept"],
                             line["tokensTotal"], line["headsFullPrecision"], histogram, line["bytes"],
                             line["sha256"]])
    print(f"wrote {out_dir}/run.json, records.csv ({len(records)} rows), layers.csv ({len(layers)} rows)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
