#!/usr/bin/env bash
# bench/mgmt: GET /v1/vms latency with 64 VMs registered, next to a canned reply of
# the same size (bench_mgmt); start latency needs /dev/kvm and a guest.
# Usage: bench/mgmt/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
T=$(mktemp -d /tmp/bench-mgmt.XXXXXX)
DPID=
cleanup() { [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
"$build/viridian" vmms --state-dir "$T/state" --socket "$T/api.sock" --log-level warn \
	2>"$T/daemon.log" &
DPID=$!
for _ in $(seq 100); do [ -S "$T/api.sock" ] && break; sleep 0.05; done
: >"$T/kernel"
for i in $(seq -w 64); do
	curl -sf -o /dev/null --unix-socket "$T/api.sock" -X POST -H 'Content-Type: application/json' \
		-d "{\"name\":\"bench-$i\",\"kernel\":\"$T/kernel\",\"memory_mb\":32,\"cmdline\":\"tests=idle\"}" \
		http://v/v1/vms
done
"$build/bench/mgmt/bench_mgmt" "$T/api.sock" 7 400
if [ -c /dev/kvm ] && [ -w /dev/kvm ]; then
	echo "bench: mgmt-start skipped (start latency against libvirt/QEMU is not implemented yet)"
else
	echo "bench: mgmt-start skipped (no /dev/kvm: start latency needs a running guest)"
fi
