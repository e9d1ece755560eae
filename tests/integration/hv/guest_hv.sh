#!/usr/bin/env bash
# TAP: the test guest's scenarios for the hypervisor interface (issue 3: hv, synic, stimer,
# hv-crash) and VMBus (issue 4: vmbus with the echo device, vmbus-versions) under
# `viridian run`, with 1 and 4 vCPUs. Skipped without a usable /dev/kvm.
# Usage: guest_hv.sh VIRIDIAN TGUEST_ELF
set -u
. "$(dirname "$0")/../guest_lib.sh"
V=${1:?viridian binary}
G=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names=()
for cpus in 1 4; do
	names+=("cpus=$cpus: hv,synic,stimer,vmbus exit 0" "cpus=$cpus: hv,synic,stimer,vmbus guest TAP all ok")
done
names+=("vmbus-versions: every version Linux tries, forced one after another, all ok"
	"hv-crash: crash MSRs stop the VM with exit 4 and the five parameters logged")
echo "1..${#names[@]}"
reason=$(guest_skip_reason "$G")
if [ -n "$reason" ]; then
	for i in "${!names[@]}"; do echo "ok $((i + 1)) - ${names[$i]} # SKIP $reason"; done
	exit 0
fi
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }
check() { if [ "$1" = 0 ]; then ok "${names[$n]}"; else notok "${names[$n]}"; shift; "$@"; fi; }
show() { sed 's/^/#   /' "$1" | tail -25; }


run() { # OUT ERR ARGS...
	local out=$1 err=$2
	shift 2
	timeout -s INT 400 "$V" run --kernel "$G" --memory 128M --serial stdio --no-reboot \
		--device echo --hv-timers "$@" </dev/null >"$out" 2>"$err"
}

for cpus in 1 4; do
	run "$tmp/out$cpus" "$tmp/err$cpus" --cpus "$cpus" --cmdline "tests=hv,synic,stimer,vmbus"
	rc=$?
	check $([ $rc = 0 ] && echo 0 || echo 1) show "$tmp/err$cpus"
	tap_all_ok "$tmp/out$cpus"
	check $? show "$tmp/out$cpus"
done
run "$tmp/outv" "$tmp/errv" --cpus 2 --cmdline "tests=vmbus-versions"
rc=$?
[ $rc = 0 ] && tap_all_ok "$tmp/outv"
check $? show "$tmp/outv"
run "$tmp/outc" "$tmp/errc" --cpus 1 --cmdline "tests=hv-crash"
rc=$?
[ $rc = 4 ] && grep -q "P0=" "$tmp/errc"
check $? show "$tmp/errc"
exit $fail
