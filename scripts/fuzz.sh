#!/usr/bin/env bash
# Run every libFuzzer target of a fuzz build for SECONDS each, seeded from
# tests/fuzz/corpus/<name>/ when present. Crashes fail the run.
# Usage: scripts/fuzz.sh FUZZ_BUILD_DIR SECONDS
set -euo pipefail
build=$(cd "${1:?fuzz build dir}" && pwd)
secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
targets=("$build"/tests/fuzz/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no targets built"
	exit 0
fi
pass=0
fail=0
for t in "${targets[@]}"; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	name=${name#fuzz_}
	work=$(mktemp -d)
	seeds=()
	[ -d "$root/tests/fuzz/corpus/$name" ] && seeds=("$root/tests/fuzz/corpus/$name")
	if (cd "$work" && "$t" -max_total_time="$secs" -print_final_stats=0 -rss_limit_mb=2048 \
		"$work" "${seeds[@]}" >"$work/log" 2>&1); then
		echo "ok - fuzz $name ($(grep -c . "$work/log" || true) log lines, ${secs}s)"
		pass=$((pass + 1))
	else
		echo "not ok - fuzz $name"
		tail -40 "$work/log"
		fail=$((fail + 1))
		mkdir -p "$root/build-fuzz-crashes"
		cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$root/build-fuzz-crashes/" 2>/dev/null || true
	fi
	rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
