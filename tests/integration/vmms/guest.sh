#!/usr/bin/env bash
# vmms with the real worker and the test guest's `idle` scenario (needs /dev/kvm):
# start, console shows the guest ready, pause/resume, graceful shutdown through the
# power button, start again and hard stop. Without /dev/kvm every test is a TAP SKIP.
set -uo pipefail
VIRIDIAN=${1:?viridian binary}
GUEST=${2:?tguest.elf}
names=("start runs the idle guest" "console shows the guest ready" "pause -> Paused"
	"resume -> Running" "shutdown via the power button -> Off (not Critical)"
	"start again and hard stop -> Off")
echo "1..${#names[@]}"
skip() { for i in "${!names[@]}"; do echo "ok $((i + 1)) - ${names[$i]} # SKIP $1"; done; exit 0; }
[ -c /dev/kvm ] && [ -w /dev/kvm ] || skip "no /dev/kvm"
[ -f "$GUEST" ] || skip "no test guest at $GUEST"
command -v curl >/dev/null || skip "curl is not installed"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3

T=$(mktemp -d /tmp/vmms.XXXXXX)
SOCK=$T/api.sock
DPID=
cleanup() {
	[ -n "$DPID" ] && curl -s -o /dev/null --unix-socket "$SOCK" -X DELETE "http://v/v1/vms/g?force=true"
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
n=0 fails=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else fails=$((fails + 1)); echo "not ok $n - $1"; echo "# $(cat "$T/body" 2>/dev/null)"; fi; }
req() { curl -s --unix-socket "$SOCK" -o "$T/body" -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "http://v$2"; }
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$T/body" "$1"; }

"$VIRIDIAN" vmms --state-dir "$T/state" --socket "$SOCK" 2>"$T/daemon.log" &
DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
req POST /v1/vms "{\"name\":\"g\",\"kernel\":\"$GUEST\",\"memory_mb\":32,\"cmdline\":\"tests=idle\"}"
req POST /v1/vms/g/start
check "${names[0]}" '[ "$(field state)" = Running ]'
con=$(field console_socket)
check "${names[1]}" '"$PY" - "$con" <<"PYEOF"
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(1)
buf, end = b"", time.time() + 30
while time.time() < end and b"ready" not in buf.lower():
    try:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    except socket.timeout:
        pass
sys.exit(0 if b"ready" in buf.lower() else 1)
PYEOF'
req POST /v1/vms/g/pause
check "${names[2]}" '[ "$(field state)" = Paused ]'
req POST /v1/vms/g/resume
check "${names[3]}" '[ "$(field state)" = Running ]'
req POST "/v1/vms/g/shutdown?timeout=30"
check "${names[4]}" '[ "$(field state)" = Off ] && ! grep -q Critical "$T/body"'
req POST /v1/vms/g/start
req POST /v1/vms/g/stop
check "${names[5]}" '[ "$(field state)" = Off ]'
exit $((fails > 0))
