#!/usr/bin/env bash
# For a session lent a GPU machine: prove on the GPU (bundled model, then the 125m shape)
# and replay each bundle on cpu, printing the replay's differences against the config's
# tolerances. Sized for about 10 minutes. Nothing in CI runs this.
#
#   scripts/device-check.sh [webgpu|cuda]     (default webgpu: needs no download)
#
# Needs: a built tree (npm run build), node on PATH (the GPU machines have no Node.js:
# carry a Node.js binary with the working tree and put its folder first on PATH), and for
# cuda an onnxruntime-node installed with ONNXRUNTIME_NODE_INSTALL=cuda12.
set -euo pipefail
device="${1:-webgpu}"
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${OUT:-$(mktemp -d)}"
spg() { node "$here/bin/run.js" "$@"; }

echo "== device-check on $device, $(date -u +%FT%TZ), $(uname -n)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv || true

run_one() {
  local label="$1"
  shift
  echo "== prove $label on $device"
  /usr/bin/time -v -o "$out/$label-time.txt" node "$here/bin/run.js" prove --preset ci-smoke \
    --device "$device" --ephemeral-key --out "$out/$label.zip" "$@"
  grep -E "Maximum resident|Elapsed" "$out/$label-time.txt"
  echo "== replay $label on cpu (differences against the tolerances)"
  spg verify "$out/$label.zip" --replay 2 --device cpu --json "$@" >"$out/$label-replay.json" || true
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    for (const f of r.findings ?? r) if (f.check === "replay") console.log(JSON.stringify(f, null, 1));
  ' "$out/$label-replay.json"
}

run_one bundled
shape_dir="$(node --input-type=module -e '
  const { syntheticCheckpointDir } = await import(process.argv[1]);
  console.log(syntheticCheckpointDir("125m"));
' "$here/dist/scripts/synthetic-checkpoint.js" | tail -1)"
run_one 125m --model "$shape_dir"
echo "== bundles and replay reports in $out"
