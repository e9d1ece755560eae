#!/usr/bin/env bash
# Run the Meson test suites of one build dir and print one summary line:
#   check: N passed, N failed, N skipped
# Usage: scripts/run-tests.sh BUILD_DIR [slow]
set -uo pipefail
build=${1:?build dir}
mode=${2:-normal}
if [ "$mode" = slow ]; then
	args=(--suite slow)
else
	args=(--no-suite slow)
fi
meson test -C "$build" --print-errorlogs --num-processes 2 "${args[@]}"
rc=$?
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(f"check: {p} passed, {f} failed, {s} skipped")
PY
exit $rc
