#!/usr/bin/env bash
# viridian vmms: the real daemon on a temporary socket and state dir, driven with
# curl --unix-socket. Lifecycle tests use fake_vmwp (the worker protocol without a
# partition) because this host has no /dev/kvm; one test starts the real worker
# and expects its one-line error. Prints TAP.
set -uo pipefail
VIRIDIAN=${1:?viridian binary}
FAKE=${2:?fake_vmwp binary}
DISKW=${3:?disk_write binary}
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
command -v curl >/dev/null || { echo "1..0 # SKIP curl is not installed"; exit 0; }

T=$(mktemp -d /tmp/vmms.XXXXXX)
SOCK=$T/api.sock
STATE=$T/state
DPID=
n=0
fails=0
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	# Workers outlive the daemon: end the ones this test started (by pid).
	for pid in $(cat "$T/pids" 2>/dev/null); do
		grep -q "$STATE" "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

note_pid() { echo "$1" >"$STATE/vms/$2/pid"; echo "$1" >>"$T/pids"; }
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name" "${DETAIL:-}"; fi; DETAIL=; }

start_daemon() {
	VIRIDIAN_VMWP=${WORKER:-$FAKE} "$VIRIDIAN" vmms --state-dir "$STATE" --socket "$SOCK" \
		--log-level "${LOGLEVEL:-info}" 2>>"$T/daemon.log" &
	DPID=$!
	for _ in $(seq 100); do [ -S "$SOCK" ] && curl -s --unix-socket "$SOCK" http://v/v1/host >/dev/null && return 0; sleep 0.05; done
	echo "# daemon did not come up:"; sed 's/^/# /' "$T/daemon.log"
	return 1
}
stop_daemon() { kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=; }

# req METHOD PATH [BODY] -> $code, $body (file $T/body)
req() {
	local m=$1 p=$2
	shift 2
	if [ $# -gt 0 ]; then
		code=$(curl -s --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' -X "$m" \
			-H 'Content-Type: application/json' --data-binary "$1" "http://v$p")
	else
		code=$(curl -s --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' -X "$m" "http://v$p")
	fi
	body=$(cat "$T/body")
}
jget() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); 
for k in sys.argv[2].split("."):
    d = d[int(k)] if isinstance(d, list) else d.get(k)
print("" if d is None else (str(d).lower() if isinstance(d, bool) else d))' "$T/body" "$1"; }
# An error answer: the status, one line, {"error":{"code","message"}}.
is_err() {
	local want=$1 wantcode=${2:-}
	DETAIL="got $code $body"
	[ "$code" = "$want" ] || return 1
	[ "$(wc -l <"$T/body")" -le 1 ] || return 1
	local c msg
	c=$(jget error.code) msg=$(jget error.message)
	[ -n "$c" ] && [ -n "$msg" ] || return 1
	[ -z "$wantcode" ] || [ "$c" = "$wantcode" ]
}
is_code() { DETAIL="got $code $body"; [ "$code" = "$1" ]; }
state_of() { req GET "/v1/vms/$1"; jget state; }
wait_state() { for _ in $(seq 100); do [ "$(state_of "$1")" = "$2" ] && return 0; sleep 0.05; done; DETAIL="state $(state_of "$1"), wanted $2"; return 1; }

KERNEL=$T/kernel
echo "not a kernel" >"$KERNEL"
qemu_ok=false
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null && qemu_ok=true

echo "1..88"
start_daemon || exit 1

# --- socket and host ---
check "socket is mode 0660 (not world-accessible)" test "$(stat -c %a "$SOCK")" = 660
req GET /v1/host
check "GET /v1/host reports version and KVM" bash -c "[ $code = 200 ] && grep -q '\"kvm\"' $T/body && grep -q '\"version\"' $T/body"

# --- create/list/get/patch ---
req POST /v1/vms "{\"name\":\"a\",\"kernel\":\"$KERNEL\",\"memory_mb\":64,\"cpus\":2,\"cmdline\":\"console=ttyS0\"}"
check "create VM a -> 201 Off, generation 1" bash -c "[ $code = 201 ] && [ '$(jget state)' = Off ] && [ '$(jget generation)' = 1 ]"
check "vm.json written" test -f "$STATE/vms/a/vm.json"
req GET /v1/vms
check "list has a" bash -c "[ $code = 200 ] && [ '$(jget vms.0.name)' = a ]"
req PATCH /v1/vms/a '{"memory_mb":128}'
check "patch memory -> 200, generation 2" bash -c "[ $code = 200 ] && [ '$(jget memory_mb)' = 128 ] && [ '$(jget generation)' = 2 ]"
check "patch reached vm.json" grep -q '"memory_mb": 128' "$STATE/vms/a/vm.json"
gen_a=2

# --- bad input: 4xx, one line, no change ---
bad() { # name status code method path [body]
	local name=$1 st=$2 ec=$3
	shift 3
	req "$@"
	check "$name" is_err "$st" "$ec"
}
bad "malformed JSON -> 400" 400 malformed_json POST /v1/vms '{"name": "x",'
bad "trailing garbage -> 400" 400 malformed_json POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\"} {}"
bad "unknown field -> 400" 400 unknown_field POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"colour\":1}"
bad "unknown disk field -> 400" 400 unknown_field POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"disks\":[{\"path\":\"$KERNEL\",\"cache\":1}]}"
bad "name with / -> 400" 400 invalid_name POST /v1/vms "{\"name\":\"a/b\",\"kernel\":\"$KERNEL\"}"
bad "name .. -> 400" 400 invalid_name POST /v1/vms "{\"name\":\"..\",\"kernel\":\"$KERNEL\"}"
bad "name ../x -> 400" 400 invalid_name POST /v1/vms "{\"name\":\"../x\",\"kernel\":\"$KERNEL\"}"
bad "name of 65 chars -> 400" 400 invalid_name POST /v1/vms "{\"name\":\"$(printf 'n%.0s' $(seq 65))\",\"kernel\":\"$KERNEL\"}"
bad "empty name -> 400" 400 invalid_name POST /v1/vms "{\"name\":\"\",\"kernel\":\"$KERNEL\"}"
bad "duplicate name -> 409" 409 already_exists POST /v1/vms "{\"name\":\"a\",\"kernel\":\"$KERNEL\"}"
bad "memory 16 MB -> 400" 400 out_of_range POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"memory_mb\":16}"
bad "memory 70000 MB -> 400" 400 out_of_range POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"memory_mb\":70000}"
bad "memory as a string -> 400" 400 invalid_type POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"memory_mb\":\"64\"}"
bad "cpus 0 -> 400" 400 out_of_range POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"cpus\":0}"
bad "cpus 65 -> 400" 400 out_of_range POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"cpus\":65}"
bad "missing kernel -> 400" 400 missing_field POST /v1/vms '{"name":"x"}'
bad "relative kernel path -> 400" 400 invalid_value POST /v1/vms '{"name":"x","kernel":"kernel"}'
bad "missing disk path -> 400" 400 file_not_found POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"disks\":[{\"path\":\"$T/nope.vhdx\"}]}"
bad "patch unknown field -> 400" 400 unknown_field PATCH /v1/vms/a '{"ram":1}'
bad "patch uuid -> 400" 400 read_only_field PATCH /v1/vms/a '{"uuid":"00000000-0000-0000-0000-000000000000"}'
bad "patch rename -> 400" 400 read_only_field PATCH /v1/vms/a '{"name":"b"}'
bad "unknown VM -> 404" 404 not_found GET /v1/vms/nope
bad "escaped ../ in the path -> 404" 404 not_found GET /v1/vms/..%2Fvms
bad "PUT -> 405" 405 method_not_allowed PUT /v1/vms
bad "stop an Off VM -> 409" 409 invalid_state POST /v1/vms/a/stop
bad "pause an Off VM -> 409" 409 invalid_state POST /v1/vms/a/pause
bad "unknown query parameter -> 400" 400 invalid_query DELETE "/v1/vms/a?forse=true"
code=$(curl -s --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: text/plain' -d x http://v/v1/vms)
body=$(cat "$T/body")
check "wrong content type -> 415" is_err 415 unsupported_media_type
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
code=$(curl -s --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$T/big" http://v/v1/vms)
body=$(cat "$T/body")
check "body over 64 KiB -> 413" is_err 413 body_too_large
req GET /v1/host
check "bad input changed nothing (1 VM)" test "$(jget vms.total)" = 1
req GET /v1/vms/a
check "bad input changed nothing (a at generation $gen_a)" test "$(jget generation)" = "$gen_a"
check "no stray VM directories" test "$(ls "$STATE/vms" | wc -l)" = 1

# --- worker lifecycle (fake worker) ---
req POST /v1/vms/a/start
check "start -> 200 Running with pid and console socket" bash -c "[ $code = 200 ] && [ '$(jget state)' = Running ] && [ -n '$(jget pid)' ] && [ -S '$(jget console_socket)' ]"
apid=$(jget pid)
note_pid "$apid" a
bad "start a Running VM -> 409" 409 invalid_state POST /v1/vms/a/start
bad "patch a Running VM -> 409" 409 invalid_state PATCH /v1/vms/a '{"cpus":1}'
bad "delete a Running VM without force -> 409" 409 invalid_state DELETE /v1/vms/a
req POST /v1/vms/a/pause
check "pause -> Paused" bash -c "[ $code = 200 ] && [ '$(jget state)' = Paused ]"
req POST /v1/vms/a/resume
check "resume -> Running" bash -c "[ $code = 200 ] && [ '$(jget state)' = Running ]"
req POST /v1/vms/a/reset
check "reset -> Running" bash -c "[ $code = 200 ] && [ '$(jget state)' = Running ]"

# Events stream while b starts and a is shut down.
curl -s -N --unix-socket "$SOCK" http://v/v1/events >"$T/events" 2>/dev/null &
EPID=$!
sleep 0.3
req POST /v1/vms "{\"name\":\"b\",\"kernel\":\"$KERNEL\",\"memory_mb\":32}"
req POST /v1/vms/b/start
note_pid "$(jget pid)" b
req POST "/v1/vms/a/shutdown?timeout=10"
check "graceful shutdown -> Off" bash -c "[ $code = 200 ] && [ '$(jget state)' = Off ]"
sleep 0.3
kill $EPID 2>/dev/null; wait $EPID 2>/dev/null
check "event stream saw b Running and a Off" bash -c "grep -q '\"vm\":\"b\",\"state\":\"Running\"' $T/events && grep -q '\"vm\":\"a\",\"state\":\"Off\"' $T/events"

req POST /v1/vms/a/start
note_pid "$(jget pid)" a
req POST /v1/vms/a/stop
check "hard stop -> Off, worker gone" bash -c "[ $code = 200 ] && [ '$(jget state)' = Off ] && ! kill -0 $(cat "$STATE/vms/a/pid") 2>/dev/null"

# kill -9 a worker: Critical with the reason, the other VM unaffected.
req POST /v1/vms/a/start
apid=$(jget pid); note_pid "$apid" a
kill -9 "$apid"
check "kill -9 worker -> Critical" wait_state a Critical
req GET /v1/vms/a
check "Critical reason names the signal and the log" bash -c "jr='$(jget reason)'; [[ \$jr == *'signal 9'* && \$jr == *'fake vmwp'* ]]"
check "other VM still Running" test "$(state_of b)" = Running
req POST /v1/vms/a/start
check "a Critical VM can start again" bash -c "[ $code = 200 ] && [ '$(jget state)' = Running ]"
note_pid "$(jget pid)" a

# kill -9 the daemon: workers keep running and are re-adopted.
kill -9 "$DPID"; wait "$DPID" 2>/dev/null; DPID=
start_daemon || exit 1
check "after daemon kill -9: a and b still Running" bash -c "[ '$(state_of a)' = Running ] && [ '$(state_of b)' = Running ]"
req GET /v1/vms/b
check "re-adopted VM keeps its pid and console" bash -c "[ '$(jget pid)' = '$(cat "$STATE/vms/b/pid")' ] && [ -S '$(jget console_socket)' ]"
req POST /v1/vms/b/stop
check "stop a re-adopted VM -> Off" bash -c "[ $code = 200 ] && [ '$(jget state)' = Off ]"
kill -9 "$(cat "$STATE/vms/a/pid")"
check "kill -9 a re-adopted worker -> Critical" wait_state a Critical

# A disk attached to a running VM cannot be attached elsewhere (create, patch, start).
: >"$T/shared.img"
truncate -s 1M "$T/shared.img"
req POST /v1/vms "{\"name\":\"d\",\"kernel\":\"$KERNEL\",\"disks\":[{\"path\":\"$T/shared.img\"}]}"
req POST /v1/vms "{\"name\":\"e\",\"kernel\":\"$KERNEL\"}"
req POST /v1/vms/d/start
note_pid "$(jget pid)" d
bad "create with a disk of a running VM -> 409" 409 disk_in_use POST /v1/vms "{\"name\":\"x\",\"kernel\":\"$KERNEL\",\"disks\":[{\"path\":\"$T/shared.img\"}]}"
bad "patch in a disk of a running VM -> 409" 409 disk_in_use PATCH /v1/vms/e "{\"disks\":[{\"path\":\"$T/shared.img\"}]}"
req DELETE "/v1/vms/d?force=true"
req DELETE /v1/vms/e

# Failed starts: the worker's one-line error, VM stays Off.
req POST /v1/vms "{\"name\":\"f\",\"kernel\":\"$KERNEL\",\"cmdline\":\"fake=fail\"}"
req POST /v1/vms/f/start
check "failing worker -> 409 start_failed with its message" bash -c "[ $code = 409 ] && [ '$(jget error.code)' = start_failed ] && grep -q 'dev/kvm is missing' $T/body"
check "failed start leaves the VM Off" test "$(state_of f)" = Off
req POST /v1/vms "{\"name\":\"n\",\"kernel\":\"$KERNEL\",\"cmdline\":\"fake=noshutdown\"}"
req POST /v1/vms/n/start
note_pid "$(jget pid)" n
req POST "/v1/vms/n/shutdown?timeout=1"
check "shutdown ignored by the guest -> hard stop after the timeout" bash -c "[ $code = 200 ] && [ '$(jget state)' = Off ]"
req DELETE /v1/vms/f
check "delete an Off VM -> 204, directory gone" bash -c "[ $code = 204 ] && [ ! -e $STATE/vms/f ]"
req POST /v1/vms/n/start
npid=$(jget pid)
note_pid "$npid" n
req DELETE "/v1/vms/n?force=true"
check "force delete of a Running VM -> 204, worker gone" bash -c "[ $code = 204 ] && [ -n '$npid' ] && ! kill -0 $npid 2>/dev/null"

"$VIRIDIAN" vmms --state-dir "$STATE" --socket "$T/other.sock" 2>"$T/other.log"
DETAIL=$(cat "$T/other.log")
check "a second vmms on the same state dir is refused" grep -q "another vmms uses this state directory" "$T/other.log"

# --- the real worker on this host (no /dev/kvm or no valid kernel): one-line error ---
stop_daemon
WORKER=/proc/self/exe start_daemon || exit 1
req GET /v1/vms/a
check "Critical and its reason survive a daemon restart" bash -c "[ '$(jget state)' = Critical ] && [[ '$(jget reason)' == *'adopted worker'* ]]"
req POST /v1/vms/b/start
check "real worker failure -> 409 start_failed, one line" is_err 409 start_failed
check "VM stays Off after the real worker failed" test "$(state_of b)" = Off
stop_daemon

# --- crash between write and rename: previous vm.json wins ---
cp "$STATE/vms/b/vm.json" "$T/b.before"
printf '{"name": "b", "memory_mb": 999' >"$STATE/vms/b/vm.json.tmp.4242"
start_daemon || exit 1
req GET /v1/vms/b
check "half-written vm.json ignored, previous config intact" bash -c "[ $code = 200 ] && [ '$(jget memory_mb)' = 32 ] && [ ! -e $STATE/vms/b/vm.json.tmp.4242 ] && cmp -s $T/b.before $STATE/vms/b/vm.json"

# --- concurrency: 8 clients x 200 mixed requests ---
# One curl per client chains its 200 requests with --next (one process, not 200).
client() {
	local i=$1 k a=()
	for k in $(seq 200); do
		[ "$k" -gt 1 ] && a+=(--next)
		a+=(-s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK")
		case $((k % 8)) in
		0) a+=(http://v/v1/vms) ;;
		1) a+=(-X PATCH -H 'Content-Type: application/json' -d "{\"memory_mb\":$((64 + k))}" http://v/v1/vms/b) ;;
		2) a+=(-X POST -H 'Content-Type: application/json' -d "{\"name\":\"c$i-$k\",\"kernel\":\"$KERNEL\"}" http://v/v1/vms) ;;
		3) a+=(-X DELETE "http://v/v1/vms/c$i-$((k - 1))") ;;
		4) a+=(-X POST -H 'Content-Type: application/json' -d '{"name":' http://v/v1/vms) ;;
		5) a+=(http://v/v1/vms/b) ;;
		6) a+=(-X POST http://v/v1/vms/b/stop) ;;
		7) a+=(http://v/v1/host) ;;
		esac
	done
	curl "${a[@]}" >"$T/client.$i"
}
for i in $(seq 8); do client "$i" & done
wait $(jobs -p | grep -v "^$DPID\$") 2>/dev/null
total=$(cat "$T"/client.* | wc -l)
fivexx=$(cat "$T"/client.* | grep -c '^5' || true)
check "8 clients x 200 requests: all answered, no 5xx" bash -c "[ $total = 1600 ] && [ $fivexx = 0 ]"
req GET /v1/vms/b
gen_api=$(jget generation)
gen_disk=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$STATE/vms/b/vm.json")
check "no torn state: b's vm.json and API agree (generation $gen_api)" test "$gen_api" = "$gen_disk"
req GET /v1/vms
check "no leftover VMs or directories from the create/delete mix" bash -c "[ \$(ls $STATE/vms | wc -l) = 2 ] && [ '$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["vms"]))' "$T/body")' = 2 ]"

# --- offline checkpoints with real images ---
# qemu cannot open differencing VHDX, so disk_write (our disk library) plays the guest
# writing to the child and `viridian vhd convert` flattens the chain for qemu-img compare.
flat() { "$VIRIDIAN" vhd convert -q -O raw "$1" "$2" >/dev/null; }
if $qemu_ok; then
	qemu-img create -q -f vhdx "$T/base.vhdx" 8M
	qemu-io -f vhdx -c 'write -P 0x11 0 1M' "$T/base.vhdx" >/dev/null
	qemu-img create -q -f raw "$T/raw.img" 8M
	req POST /v1/vms "{\"name\":\"c\",\"kernel\":\"$KERNEL\",\"disks\":[{\"path\":\"$T/base.vhdx\"}]}"
	req POST /v1/vms/c/checkpoints '{"name":"cp1"}'
	check "checkpoint cp1 -> 201" is_code 201
	req GET /v1/vms/c
	child=$(jget disks.0.path)
	check "VM now writes to a differencing child of the base" bash -c "[ '$child' != '$T/base.vhdx' ] && '$VIRIDIAN' vhd info '$child' | grep -q 'base.vhdx'"
	"$DISKW" "$child" 0 1048576 0x22
	flat "$child" "$T/changed.raw"
	check "the guest's write changed the disk" bash -c "! qemu-img compare -q -f raw '$T/changed.raw' -F vhdx '$T/base.vhdx'"
	req POST /v1/vms/c/start
	note_pid "$(jget pid)" c
	req POST /v1/vms/c/stop
	req POST /v1/vms/c/checkpoints/cp1/apply
	check "apply over changed state without discard -> 409" is_err 409 would_discard
	req POST "/v1/vms/c/checkpoints/cp1/apply?discard=true"
	newchild=$(jget disks.0.path)
	check "apply with discard -> 200, old child deleted" bash -c "[ $code = 200 ] && [ ! -e '$child' ] && [ -e '$newchild' ]"
	flat "$newchild" "$T/applied.raw"
	check "qemu-img compare: the checkpoint content is back" qemu-img compare -q -f raw "$T/applied.raw" -F vhdx "$T/base.vhdx"
	req POST /v1/vms/c/checkpoints '{"name":"cp2"}'
	req GET /v1/vms/c/checkpoints
	check "checkpoint tree: cp2's parent is cp1" "$PY" -c 'import json,sys; c={x["name"]:x for x in json.load(open(sys.argv[1]))["checkpoints"]}; sys.exit(0 if c["cp2"]["parent"]=="cp1" and c["cp1"]["parent"] is None and c["cp2"]["current"] else 1)' "$T/body"
	req GET /v1/vms/c
	cur=$(jget disks.0.path)
	"$DISKW" "$cur" 2097152 1048576 0x33
	flat "$cur" "$T/expect.raw"
	req DELETE /v1/vms/c/checkpoints/cp2
	req GET /v1/vms/c
	merged=$(jget disks.0.path)
	flat "$merged" "$T/merged.raw"
	check "delete cp2 merges the current child into its image (content kept)" bash -c "[ ! -e '$cur' ] && cmp -s '$T/merged.raw' '$T/expect.raw'"
	bad "apply after deleting the current checkpoint needs discard -> 409" 409 would_discard POST /v1/vms/c/checkpoints/cp1/apply
	bad "checkpoint name with / -> 400" 400 invalid_name POST /v1/vms/c/checkpoints '{"name":"x/y"}'
	req POST /v1/vms "{\"name\":\"r\",\"kernel\":\"$KERNEL\",\"disks\":[{\"path\":\"$T/raw.img\"}]}"
	bad "checkpoint of a raw disk -> 409" 409 checkpoint_unsupported POST /v1/vms/r/checkpoints '{"name":"x"}'
	req DELETE /v1/vms/r
	check "delete without delete_disks keeps the disk" test -e "$T/raw.img"
	# The same round trip with VHD (qemu reads the base as vpc).
	qemu-img create -q -f vpc -o subformat=dynamic "$T/vbase.vhd" 8M
	qemu-io -f vpc -c 'write -P 0x44 0 1M' "$T/vbase.vhd" >/dev/null
	flat "$T/vbase.vhd" "$T/vbase.raw"
	req POST /v1/vms "{\"name\":\"v\",\"kernel\":\"$KERNEL\",\"disks\":[{\"path\":\"$T/vbase.vhd\",\"format\":\"vhd\"}]}"
	req POST /v1/vms/v/checkpoints '{"name":"base"}'
	req GET /v1/vms/v
	vchild=$(jget disks.0.path)
	"$DISKW" "$vchild" 0 65536 0x55
	req POST /v1/vms/v/checkpoints/base/apply
	vnew=$(jget disks.0.path)
	flat "$vnew" "$T/vapplied.raw"
	check "VHD: checkpoint, write, apply -> content back" bash -c "[ $code = 200 ] && [[ '$vchild' == *.vhd ]] && [ ! -e '$vchild' ] && cmp -s '$T/vapplied.raw' '$T/vbase.raw'"
	req DELETE "/v1/vms/v?delete_disks=true"
	req DELETE "/v1/vms/c?delete_disks=true"
	check "delete with delete_disks removes the VM's images" bash -c "[ $code = 204 ] && ! ls $T/base*.vhdx 2>/dev/null | grep -q ."
else
	for t in $(seq 14); do n=$((n + 1)); echo "ok $n - checkpoint test $t # SKIP qemu-img/qemu-io not installed"; done
fi

stop_daemon
check "socket removed when the daemon exits" test ! -e "$SOCK"
DETAIL=$(grep -m3 -E 'Sanitizer|runtime error' "$T/daemon.log")
check "daemon log has no sanitizer reports" test -z "$DETAIL"
if [ "$n" != 88 ]; then echo "# ran $n tests, plan said 88"; fi
exit $((fails > 0))
