#!/usr/bin/env bash
# Run one benchmark (bench/<name>/run.sh BUILD_DIR) or all of them.
# Each prints its headline figures as `bench: ...` lines (ARCHITECTURE.md).
# Usage: scripts/bench.sh BUILD_DIR [NAME]
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
names=()
if [ -n "${2:-}" ]; then
	[ -x "$root/bench/$2/run.sh" ] || { echo "bench: no benchmark '$2' (ls bench/)" >&2; exit 2; }
	names=("$2")
else
	for d in "$root"/bench/*/; do
		[ -x "$d/run.sh" ] && names+=("$(basename "$d")")
	done
fi
rc=0
for n in "${names[@]}"; do
	echo "== bench $n"
	"$root/bench/$n/run.sh" "$build" || rc=1
done
exit $rc
