#!/usr/bin/env bash
# vmms at scale with the stand-in worker: VMS VMs running at once (listed Running, all
# shut down gracefully), then CYCLES create/start/stop/remove cycles with no leaked
# worker processes, daemon file descriptors or state directories. Prints TAP.
# Usage: scale.sh VIRIDIAN FAKE_VMWP VMS CYCLES
set -uo pipefail
VIRIDIAN=${1:?viridian binary}
FAKE=${2:?fake_vmwp binary}
VMS=${3:-16}
CYCLES=${4:-20}
command -v curl >/dev/null || { echo "1..0 # SKIP curl is not installed"; exit 0; }
T=$(mktemp -d /tmp/vmms.XXXXXX)
SOCK=$T/api.sock
STATE=$T/state
DPID=
n=0
fails=0
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	for pid in $(cat "$T/pids" 2>/dev/null); do
		grep -q "$STATE" "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
check() { local name=$1; shift; n=$((n + 1)); if "$@"; then echo "ok $n - $name"; else fails=$((fails + 1)); echo "not ok $n - $name"; [ -n "${DETAIL:-}" ] && echo "# $DETAIL"; fi; DETAIL=; }
# Workers of this test: processes running `vmwp --vm-dir` on this state dir.
workers() {
	# One grep over every cmdline; "vm[s]" keeps grep from matching itself.
	grep -las "$STATE/vm[s]/" /proc/[0-9]*/cmdline 2>/dev/null | wc -l
}
api() { curl -s --unix-socket "$SOCK" "$@"; }

echo "1..8"
SECONDS=0
VIRIDIAN_VMWP=$FAKE "$VIRIDIAN" vmms --state-dir "$STATE" --socket "$SOCK" --log-level warn \
	2>"$T/daemon.log" &
DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
: >"$T/kernel"

a=()
for i in $(seq "$VMS"); do
	[ "$i" -gt 1 ] && a+=(--next)
	a+=(-s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json'
		-d "{\"name\":\"vm$i\",\"kernel\":\"$T/kernel\",\"memory_mb\":32,\"cmdline\":\"tests=idle\"}" http://v/v1/vms
		--next -s -o "$T/start.$i" -w '%{http_code}\n' --unix-socket "$SOCK" -X POST "http://v/v1/vms/vm$i/start")
done
curl "${a[@]}" >"$T/codes"
for i in $(seq "$VMS"); do sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$T/start.$i" >>"$T/pids"; done
DETAIL="codes: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
check "$VMS VMs created and started" test "$(grep -c '^20[01]$' "$T/codes")" = $((VMS * 2))
running=$(api http://v/v1/vms | grep -o '"state":"Running"' | wc -l)
DETAIL="$running Running"
check "all $VMS listed as Running" test "$running" = "$VMS"
check "$VMS worker processes" test "$(workers)" = "$VMS"
a=()
for i in $(seq "$VMS"); do
	[ "$i" -gt 1 ] && a+=(--next)
	a+=(-s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -X POST "http://v/v1/vms/vm$i/shutdown?timeout=20")
done
curl "${a[@]}" >"$T/codes"
off=$(api http://v/v1/vms | grep -o '"state":"Off"' | wc -l)
DETAIL="$off Off; codes: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
check "all shut down gracefully (Off, no workers left)" bash -c "[ $off = $VMS ] && [ $(workers) = 0 ]"

fds_before=$(ls /proc/$DPID/fd | wc -l)
a=()
for i in $(seq "$CYCLES"); do
	[ "$i" -gt 1 ] && a+=(--next)
	a+=(-s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json'
		-d "{\"name\":\"cyc$i\",\"kernel\":\"$T/kernel\",\"memory_mb\":32}" http://v/v1/vms
		--next -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -X POST "http://v/v1/vms/cyc$i/start"
		--next -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -X POST "http://v/v1/vms/cyc$i/stop"
		--next -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -X DELETE "http://v/v1/vms/cyc$i")
done
curl "${a[@]}" >"$T/codes"
DETAIL="codes: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
check "$CYCLES create/start/stop/remove cycles all succeed" test "$(grep -c '^20[014]$' "$T/codes")" = $((CYCLES * 4))
fds_after=$(ls /proc/$DPID/fd | wc -l)
DETAIL="daemon fds $fds_before -> $fds_after, workers $(workers)"
check "no leaked worker processes or daemon fds" bash -c "[ $(workers) = 0 ] && [ $fds_after -le $((fds_before + 2)) ]"
DETAIL="$(ls "$STATE/vms" | grep -c '^cyc') cycle directories left"
check "no leftover state directories" test "$(ls "$STATE/vms" | grep -c '^cyc')" = 0
echo "# $SECONDS s"
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=
DETAIL=$(grep -m3 -E 'Sanitizer|runtime error' "$T/daemon.log")
check "daemon log has no sanitizer reports" test -z "$DETAIL"
exit $((fails > 0))
