#!/bin/sh
# After scripts/train_gpt_neo.py has exported into models/gpt-neo-brown (its default --out):
# the fixture check, torch logits, measurements and card (scripts/refresh-bundled-model.sh,
# which also takes an export from another directory and regenerates the python-producer example).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec "$ROOT/scripts/refresh-bundled-model.sh" --skip-example "$ROOT/models/gpt-neo-brown"
