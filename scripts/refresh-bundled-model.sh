#!/bin/sh
# Replaces the bundled model with a freshly exported one and regenerates everything that renders
# from it, in order (README "Layout"; the model card's "Reproduce"):
#
#   scripts/refresh-bundled-model.sh [--with-bundles | --skip-example] EXPORTED_DIR
#   scripts/refresh-bundled-model.sh --example-only
#
#  1. removes the files derived from the old weights (so a failure below never leaves them beside
#     the new weights) and copies EXPORTED_DIR/{config.json,model.safetensors,training.json} (what
#     `train_gpt_neo.py --out DIR` exports) into models/gpt-neo-brown (nothing to copy when the
#     trainer exported into models/gpt-neo-brown itself, its default --out);
#  2. builds, writes the Brown tokens as spg reads them (tmp/refresh-data), and runs the trainer's
#     --check-fixtures (the torch GPT-Neo against the HF fixtures) into
#     fixture-check.json, and --dump-logits / --dump-compact on the new weights (the compact file
#     is test/fixtures/gpt-neo-brown-torch-logits.json, which the ONNX-vs-torch test reads);
#  3. scripts/measure_bundled_model.ts (perplexity, unigram baseline, attention
#     entropy, the card's greedy sample, max |ONNX - torch|) into measurements.json;
#  4. `spg model eval --window 1024 --json` into spg-model-eval-window1024.json (the card's CLI
#     cross-check);
#  5. scripts/model_card.ts: MODEL_CARD.md from the files above;
#  6. the python producer's example (examples/python-producer/example/), exported from
#     bundles/default.zip. That bundle must have been proved on the new model: --with-bundles runs
#     scripts/regenerate-bundles.sh first; otherwise, when bundles/default.zip was proved on
#     another model, the example is left as it is and the script exits 3 once steps 1-5 are
#     done (regenerate the bundles, then run it again with --example-only). --skip-example skips
#     step 6 on purpose (exit 0).
#
# Presets' claims are not touched here: they come from scripts/calibrate-claims.ts on the
# calibration split (configs/README.md "How presets' claims are set").
# Python: Debian's python3 with python3-torch, through scripts/train_env.sh (fast BLAS when
# tmp/openblas is unpacked, see there). Exit: 0 done, 2 bad usage or input, 3 example pending,
# other: the failing step's status.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=models/gpt-neo-brown
EXAMPLE=examples/python-producer/example
REFERENCE_BUNDLE=bundles/default.zip

usage() {
  echo "usage: scripts/refresh-bundled-model.sh [--with-bundles | --skip-example] EXPORTED_DIR" >&2
  echo "       scripts/refresh-bundled-model.sh --example-only" >&2
  exit 2
}

step() { printf '\n== %s\n' "$*" >&2; }

# The checkpoint identity spg records (sha256 over the files' digests), of the model in $1.
model_sha256() {
  node bin/run.js model inspect "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])'
}

bundle_model_sha256() {
  /usr/bin/python3 -c 'import json,sys,zipfile; print(json.loads(zipfile.ZipFile(sys.argv[1]).read("environment.json"))["model"]["sha256"])' "$1"
}

export_example() {
  model=$(model_sha256 "$MODEL")
  proved=$(bundle_model_sha256 "$REFERENCE_BUNDLE")
  if [ "$model" != "$proved" ]; then
    echo "python-producer example NOT regenerated: $REFERENCE_BUNDLE was proved on model $proved," >&2
    echo "the bundled model is $model. Regenerate the bundles (scripts/regenerate-bundles.sh), then run" >&2
    echo "  scripts/refresh-bundled-model.sh --example-only" >&2
    exit 3
  fi
  step "python-producer example from $REFERENCE_BUNDLE"
  work=$(mktemp -d)
  /usr/bin/python3 examples/python-producer/export_from_bundle.py "$REFERENCE_BUNDLE" "$work"
  for name in run.json records.csv layers.csv; do mv "$work/$name" "$EXAMPLE/$name"; done
  rmdir "$work"
}

MODE=all
case "${1:-}" in
  --with-bundles) MODE=bundles; shift ;;
  --skip-example) MODE=skip; shift ;;
  --example-only) MODE=example; shift ;;
  -h|--help) usage ;;
esac
cd "$ROOT"
if [ "$MODE" = example ]; then
  [ $# -eq 0 ] || usage
  npx tsc -p .
  export_example
  exit 0
fi
[ $# -eq 1 ] || usage
case "$1" in -*) usage ;; esac
SOURCE=$(cd "$1" 2>/dev/null && pwd) || { echo "no such directory: $1" >&2; exit 2; }
for name in config.json model.safetensors training.json; do
  [ -f "$SOURCE/$name" ] || {
    echo "$SOURCE/$name is missing: give the directory train_gpt_neo.py --out exported" >&2
    exit 2
  }
done
if [ "$MODE" = bundles ] && [ ! -x scripts/regenerate-bundles.sh ]; then
  echo "--with-bundles needs scripts/regenerate-bundles.sh, which this checkout lacks" >&2
  exit 2
fi

rm -f "$MODEL/measurements.json" "$MODEL/fixture-check.json" "$MODEL"/spg-model-eval*.json
if [ "$SOURCE" = "$ROOT/$MODEL" ]; then
  step "1. the trainer exported into $MODEL itself: nothing to copy"
else
  step "1. copy $SOURCE into $MODEL"
  for name in config.json model.safetensors training.json; do
    cp "$SOURCE/$name" "$MODEL/$name.tmp-$$"
    mv "$MODEL/$name.tmp-$$" "$MODEL/$name"
  done
fi

step "2. build; torch: fixture check, logits on the new weights"
npx tsc -p .
# The eval tokens the dump reads, as spg tokenizes Brown now (a directory of its own, so a
# training run's tmp/train-data is never touched).
node dist/scripts/export_brown_tokens.js tmp/refresh-data
scripts/train_env.sh --check-fixtures test/fixtures/gpt-neo-hf --check-report "$MODEL/fixture-check.json"
scripts/train_env.sh --out "$MODEL" --data-dir tmp/refresh-data --dump-logits tmp/torch-logits.json \
  --dump-compact test/fixtures/gpt-neo-brown-torch-logits.json --dump-length 600

step "3. measure with spg's ONNX runtime"
node dist/scripts/measure_bundled_model.js --model "$MODEL" --torch-logits tmp/torch-logits.json

step "4. spg model eval --window 1024"
node bin/run.js model eval --window 1024 --json > "$MODEL/spg-model-eval-window1024.json.tmp-$$"
mv "$MODEL/spg-model-eval-window1024.json.tmp-$$" "$MODEL/spg-model-eval-window1024.json"

step "5. model card"
node dist/scripts/model_card.js "$MODEL"

case "$MODE" in
  skip) echo "python-producer example skipped (--skip-example)" >&2 ;;
  bundles)
    step "6. reference bundles (scripts/regenerate-bundles.sh)"
    scripts/regenerate-bundles.sh
    export_example
    ;;
  *) export_example ;;
esac
step "done: review git diff, then run npm test"
