#!/usr/bin/env bash
# TAP: `viridian vm` against the real daemon (viridian vmms) on a temporary socket and state
# dir. With the real worker (no /dev/kvm here) a start fails with the worker's one-line
# reason; with the vmms tests' stand-in worker (FAKE_VMWP, the worker protocol without a
# partition) the CLI goes through the whole lifecycle and the console.
# Usage: vm_daemon.sh VIRIDIAN [FAKE_VMWP]
set -u
V=${1:?viridian binary}
FAKE=${2:-}
T=$(mktemp -d /tmp/vm-daemon.XXXXXX)
S=$T/vmms.sock
DPID=
n=0
fail=0
cleanup() {
	# Workers outlive the daemon: end the ones it reports running (by pid), then the daemon.
	if [ -n "$DPID" ]; then
		for p in $("$V" vm --socket "$S" list --json 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin).get("vms", []):
    if v.get("pid"): print(v["pid"])' 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
		kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
echo "1..32"
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
show() { sed 's/^/#   /' "$@"; }
vm() { "$V" vm --socket "$S" "$@" </dev/null >"$T/out" 2>"$T/err"; }
# ok_if NAME CMD...: pass when the command succeeds, else show the last vm output.
ok_if() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else
		notok "$name"
		show "$T/out" "$T/err"
	fi
}
one_err() { [ "$(wc -l <"$T/err")" = 1 ] && grep -q -- "$1" "$T/err"; }

start_daemon() { # [WORKER]
	if [ -n "${1:-}" ]; then
		VIRIDIAN_VMWP=$1 "$V" vmms --state-dir "$T/state" --socket "$S" 2>>"$T/daemon.log" &
	else
		env -u VIRIDIAN_VMWP "$V" vmms --state-dir "$T/state" --socket "$S" 2>>"$T/daemon.log" &
	fi
	DPID=$!
	for _ in $(seq 400); do
		"$V" vm --socket "$S" list >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "# vmms did not come up:"
	show "$T/daemon.log"
	return 1
}
stop_daemon() { kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=; }

if ! command -v python3 >/dev/null; then
	for i in $(seq 32); do echo "ok $i - vm CLI with vmms # SKIP python3 missing"; done
	exit 0
fi
printf 'not a kernel\n' >"$T/kernel"
"$V" vhd create -f vhdx "$T/d.vhdx" 16M >/dev/null 2>&1

# --- the real worker: configuration commands, and a start that fails without KVM ---
start_daemon || exit 1
vm list
ok_if "list with no VMs: header only" bash -c "[ \$(wc -l <'$T/out') = 1 ] && grep -q '^Name *State *CPUs *Memory(MB)' '$T/out'"
vm create web --memory 64M --cpus 1 --kernel "$T/kernel" --cmdline "console=ttyS0" --disk "$T/d.vhdx"
ok_if "create: exit 0" grep -q "created web" "$T/out"
vm list
ok_if "list: aligned row Name State CPUs Memory" grep -qE '^web +Off +1 +64$' "$T/out"
vm list --json
ok_if "list --json: valid JSON with the VM" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["vms"][0]["name"]=="web"' "$T/out"
vm show web
ok_if "show: fields as a list" bash -c "grep -q '^State  *Off' '$T/out' && grep -q '^Memory(MB)  *64' '$T/out' && grep -q 'd.vhdx (vhdx)' '$T/out'"
vm show web --json
ok_if "show --json: the VM object" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["cpus"]==1 and d["state"]=="Off" and d["disks"][0]["format"]=="vhdx"' "$T/out"
vm create web --memory 64 --cpus 1 --kernel "$T/kernel"
rc=$?
ok_if "duplicate name: exit 1, one line from the service" bash -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ]"
vm create 'a/b' --memory 64 --cpus 1 --kernel "$T/kernel"
rc=$?
ok_if "name with '/': exit 1, one line" bash -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ]"
vm create big --memory 999999 --cpus 1 --kernel "$T/kernel"
rc=$?
ok_if "memory out of range: exit 1, one line" bash -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ]"
vm show nosuch
rc=$?
ok_if "show of an unknown VM: exit 1, one line" bash -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ]"
vm modify web --cpus 2 --memory 128
rc=$?
vm show web --json
ok_if "modify (Off): new values stored" bash -c "[ $rc = 0 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"cpus\"]==2 and d[\"memory_mb\"]==128' '$T/out'"
vm checkpoint create web before
rc=$?
vm checkpoint list web
ok_if "checkpoint create + list: a table with the checkpoint" bash -c "[ $rc = 0 ] && grep -q '^Checkpoint' '$T/out' && grep -q '^before ' '$T/out'"
vm checkpoints web --json
ok_if "checkpoints --json" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["checkpoints"][0]["name"]=="before"' "$T/out"
vm restore web before
ok_if "restore (checkpoint apply): exit 0" grep -q "applied" "$T/out"
vm checkpoint remove web before
ok_if "checkpoint remove: exit 0" grep -q "removed" "$T/out"
vm start web
rc=$?
ok_if "start with the real worker and no usable KVM/kernel: exit 1, one line" bash -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ]"
vm show web --json
ok_if "the VM is Off after the failed start" python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["state"]=="Off"' "$T/out"
vm pause web
rc=$?
ok_if "pause of an Off VM: exit 1, one line" bash -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ]"
vm console web
rc=$?
ok_if "console of an Off VM: exit 1, one line" bash -c "[ $rc = 1 ] && grep -q 'start it first' '$T/err'"
vm remove web
ok_if "remove: exit 0, disk kept" bash -c "grep -q 'removed web' '$T/out' && [ -f '$T/d.vhdx' ]"
stop_daemon

# --- the real worker with its seccomp test hook: the filter kills the worker, not vmms ---
export VIRIDIAN_VMWP_TEST_SECCOMP=1
start_daemon || exit 1
unset VIRIDIAN_VMWP_TEST_SECCOMP
vm create sc --memory 32 --cpus 1 --kernel "$T/kernel"
vm start sc
rc=$?
ok_if "worker killed by its seccomp filter (SIGSYS): start fails, exit 1, one line" \
	bash -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ]"
vm list
ok_if "vmms keeps serving after the worker was killed" grep -qE '^sc +Off ' "$T/out"
vm remove sc
stop_daemon

# --- the lifecycle, with the stand-in worker ---
names=("start: Running" "pause: Paused" "resume: Running" "console: output, exit 0 when it closes"
	"console on a terminal: banner, output, Detached, exit 0"
	"remove of a running VM without --force: exit 1" "stop: Off" "shutdown --timeout: Off"
	"remove --force --delete-disks: VM and disk gone" "events: the state changes as they happen")
if [ -z "$FAKE" ] || [ ! -x "$FAKE" ]; then
	for x in "${names[@]}"; do skip "$x" "stand-in worker (fake_vmwp) not built"; done
	exit $fail
fi
start_daemon "$FAKE" || exit 1
"$V" vhd create -f vhdx "$T/e.vhdx" 16M >/dev/null 2>&1
vm create app --memory 32 --cpus 1 --kernel "$T/kernel" --disk "$T/e.vhdx"
"$V" vm --socket "$S" events >"$T/events" 2>&1 &
EPID=$!
sleep 0.3
vm start app
ok_if "${names[0]}" grep -q "app: Running" "$T/out"
vm pause app
ok_if "${names[1]}" grep -q "app: Paused" "$T/out"
vm resume app
ok_if "${names[2]}" grep -q "app: Running" "$T/out"
timeout 10 "$V" vm --socket "$S" console app </dev/null >"$T/out" 2>"$T/err"
rc=$?
ok_if "${names[3]}" bash -c "[ $rc = 0 ] && grep -q ready '$T/out'"
# On a terminal (raw mode): the banner, the output, and the detach message.
python3 - "$V" "$S" >"$T/out" 2>"$T/err" <<'PY'
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "vm", "--socket", sys.argv[2], "console", "app"])
out = b""
end = time.time() + 10
while time.time() < end:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, status = os.waitpid(pid, 0)
print(out.decode(errors="replace"))
print("exit", os.waitstatus_to_exitcode(status))
PY
ok_if "${names[4]}" bash -c \
	"grep -q 'Ctrl-] detaches' '$T/out' && grep -q ready '$T/out' && grep -q 'Detached from app' '$T/out' && grep -q '^exit 0' '$T/out'"
vm remove app
rc=$?
ok_if "${names[5]}" bash -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ]"
vm stop app
ok_if "${names[6]}" grep -q "app: Off" "$T/out"
sleep 0.3
kill "$EPID" 2>/dev/null
wait "$EPID" 2>/dev/null
if grep -qE '^app +Running' "$T/events" && grep -qE '^app +Paused' "$T/events" &&
	grep -qE '^app +Off' "$T/events"; then
	ok "${names[9]}"
else
	notok "${names[9]}"
	show "$T/events"
fi
vm start app
vm shutdown app --timeout 5
ok_if "${names[7]}" grep -q "app: Off" "$T/out"
vm start app
vm remove app --force --delete-disks
rc=$?
vm show app
ok_if "${names[8]}" bash -c "[ $rc = 0 ] && grep -q -i 'no\|not' '$T/err' && [ ! -e '$T/e.vhdx' ]"
stop_daemon
exit $fail
