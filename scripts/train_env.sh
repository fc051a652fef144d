#!/bin/sh
# Debian's python3-torch links the reference BLAS (libblas.so.3, ~0.5 GFLOP/s here). Point it at
# Debian's OpenBLAS, unpacked locally from the apt cache (no system change), for ~20x faster matmuls:
#   dpkg-deb -x /var/cache/apt/archives/libopenblas0-pthread_0.3.21+ds-4_amd64.deb tmp/openblas
# glibc hands tensors above its mmap threshold back to the kernel when freed, so every step faults
# its activations in again (measured: 40 million minor faults in 16 minutes, 44% of the trainer's CPU
# in the kernel). jemalloc, told never to purge, keeps those pages; unpack it the same way:
#   apt-get download libjemalloc2 && dpkg-deb -x libjemalloc2_*.deb tmp/alloc
# Neither changes a number the training computes. OMP_WAIT_POLICY=PASSIVE: on a shared machine,
# spinning OpenMP workers burn the CPU the other thread needs.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export LD_LIBRARY_PATH="$ROOT/tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
JEMALLOC="$ROOT/tmp/alloc/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
if [ -f "$JEMALLOC" ]; then
  export LD_PRELOAD="$JEMALLOC${LD_PRELOAD:+:$LD_PRELOAD}"
  export MALLOC_CONF=${MALLOC_CONF:-dirty_decay_ms:-1,muzzy_decay_ms:-1}
fi
exec /usr/bin/python3 "$ROOT/scripts/train_gpt_neo.py" "$@"
