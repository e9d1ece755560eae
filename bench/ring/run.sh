#!/usr/bin/env bash
# bench/ring: VMBus ring throughput and signal rate (64 B, 1 KiB, 4 KiB packets through a
# 256 KiB ring) next to memcpy of the same bytes; medians of RUNS (default 5), interleaved.
# Usage: bench/ring/run.sh BUILD_DIR   (env: RUNS, MIB (1k/4k, default 1024), MIB64 (256))
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
B=$build/bench/ring/bench_ring
[ -x "$B" ] || { echo "bench ring: build $build first (bench_ring)" >&2; exit 1; }
exec "$B" "${RUNS:-5}" "${MIB:-1024}" "${MIB64:-256}"
