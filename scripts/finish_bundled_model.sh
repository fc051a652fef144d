#!/bin/sh
# After scripts/train_gpt_neo.py has exported models/gpt-neo-brown: record the fixture check, dump
# torch logits on the exported weights, measure with spg's ONNX runtime, and render the card.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODEL=models/gpt-neo-brown
scripts/train_env.sh --check-fixtures test/fixtures/gpt-neo-hf --check-report "$MODEL/fixture-check.json"
scripts/train_env.sh --out "$MODEL" --dump-logits tmp/torch-logits.json \
  --dump-compact test/fixtures/gpt-neo-brown-torch-logits.json --dump-length 600
npx tsc -p .
node dist/scripts/measure_bundled_model.js --model "$MODEL" --torch-logits tmp/torch-logits.json
node dist/scripts/model_card.js "$MODEL"
