#!/bin/sh
# Debian's python3-torch links the reference BLAS (libblas.so.3, ~0.5 GFLOP/s here). Point it at
# Debian's OpenBLAS, unpacked locally from the apt cache (no system change), for ~20x faster matmuls:
#   dpkg-deb -x /var/cache/apt/archives/libopenblas0-pthread_0.3.21+ds-4_amd64.deb tmp/openblas
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export LD_LIBRARY_PATH="$ROOT/tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
exec /usr/bin/python3 "$ROOT/scripts/train_gpt_neo.py" "$@"
