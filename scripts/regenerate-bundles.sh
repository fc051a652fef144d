#!/usr/bin/env bash
# Regenerates the three committed reference bundles exactly as bundles/README.md lists them,
# signed with the given key, verifies each against bundles/trusted-keys.txt, then rewrites
# README.md's generated tables (scripts/readme_tables.ts). One command, no manual steps;
# rerunning it replaces the bundles and tables again.
#
#   scripts/regenerate-bundles.sh --key path/to/signing-key.json
#   SPG_SIGNING_KEY=path/to/signing-key.json scripts/regenerate-bundles.sh
#
# The key's id must be listed in bundles/trusted-keys.txt (and its public half in
# bundles/project-key.pub.json): a bundle that does not verify under that trust policy stops
# the script before README.md is touched. Each bundle is written to a temporary file first and
# moved into bundles/ only once all three verify, so a failed run leaves the old ones in place.
# Heavy: run it under `nice` on a shared machine (about 10-20 minutes on a 2-core CPU).
set -euo pipefail

key="${SPG_SIGNING_KEY:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="${2:?--key needs a file}"; shift 2 ;;
    --key=*) key="${1#--key=}"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "regenerate-bundles: unknown argument $1 (use --key FILE)" >&2; exit 2 ;;
  esac
done
if [ -z "$key" ]; then
  echo "regenerate-bundles: no signing key: pass --key FILE or set SPG_SIGNING_KEY" >&2
  exit 2
fi
if [ ! -r "$key" ]; then
  echo "regenerate-bundles: cannot read the signing key $key" >&2
  exit 2
fi
key="$(cd "$(dirname "$key")" && pwd)/$(basename "$key")"

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
npx tsc -p tsconfig.json

work="$(mktemp -d "${TMPDIR:-/tmp}/spg-regenerate.XXXXXX")"
trap 'rm -rf "$work"' EXIT
spg() { node "$root/bin/run.js" "$@"; }

# The commands of bundles/README.md, one per bundle (--out into the work folder).
spg prove --key "$key" --out "$work/default.zip"
spg prove --key "$key" --ablation --sweep 3 --samples 4 --name ablation-sweep --out "$work/ablation-sweep.zip"
spg prove --key "$key" --preset weights-naive-vs-surgical --samples 8 --sensitivity --out "$work/weights.zip"

for bundle in default ablation-sweep weights; do
  spg verify "$work/$bundle.zip" --trusted-keys bundles/trusted-keys.txt --require-trusted --no-replay
done
for bundle in default ablation-sweep weights; do
  mv "$work/$bundle.zip" "bundles/$bundle.zip"
done

node dist/scripts/readme_tables.js --readme README.md --bundles bundles --trusted-keys bundles/trusted-keys.txt
echo "regenerate-bundles: bundles/default.zip, ablation-sweep.zip, weights.zip and README.md's tables rewritten"
