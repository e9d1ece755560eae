#!/usr/bin/env bash
# TAP: `viridian vmwp` without a VM manager: argument and vm.json errors, the missing-KVM path
# (one line in the log, Off event with the reason to control clients, exit 1), the control
# protocol, socket modes, the seccomp filter (a forbidden syscall kills the worker with
# SIGSYS), and with a usable /dev/kvm a boot of the test guest through the worker's sockets.
# Usage: vmwp.sh VIRIDIAN CLIENT_PY [TGUEST_ELF]
set -u
. "$(dirname "$0")/../guest_lib.sh"
V=${1:?viridian binary}
C=${2:?client.py}
G=${3:-}
tmp=$(mktemp -d /tmp/vmwp-it.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
echo "1..17"
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { # NAME COND...
	local name=$1
	shift
	if "$@"; then ok "$name"; else notok "$name"; fi
}
show() { sed 's/^/#   /' "$@"; }

K=${G:-$tmp/kernel}
[ -n "$G" ] || printf 'not a kernel\n' >"$K"
vmjson() { # DIR [EXTRA-JSON-FIELDS]
	mkdir -p "$1"
	printf '{"name":"it","uuid":"12345678-1234-1234-1234-123456789abc","generation":1,"memory_mb":32,"cpus":1,"kernel":"%s"%s}\n' \
		"$K" "${2:-}" >"$1/vm.json"
}
# expect NAME RC PATTERN DIR: worker exit code, its last stderr line matches.
expect() {
	local name=$1 want=$2 pat=$3 dir=$4 rc
	VIRIDIAN_KVM_DEVICE="$tmp/no-kvm" "$V" vmwp --vm-dir "$dir" </dev/null 2>"$tmp/log"
	rc=$?
	if [ $rc = "$want" ] && [ "$(wc -l <"$tmp/log")" -ge 1 ] && tail -1 "$tmp/log" | grep -q -- "$pat"; then
		ok "$name"
	else
		notok "$name"
		echo "# rc=$rc (want $want)"
		show "$tmp/log"
	fi
}

"$V" vmwp 2>"$tmp/log"
rc=$?
check "no --vm-dir: usage error, one line" [ $rc = 2 -a "$(wc -l <"$tmp/log")" = 1 ]
expect "missing vm.json: exit 1" 1 "cannot open .*vm.json" "$tmp/empty"
mkdir -p "$tmp/bad"
printf '{"name":"../x","memory_mb":32,"cpus":1,"kernel":"/k"}' >"$tmp/bad/vm.json"
expect "bad name in vm.json: exit 1, field named" 1 "vm.json: name '../x'" "$tmp/bad"
vmjson "$tmp/nouser" ',"user":"no-such-user-vmwp"'
expect "unknown user: exit 1 before anything runs" 1 "user 'no-such-user-vmwp' does not exist" "$tmp/nouser"

# No KVM (forced with VIRIDIAN_KVM_DEVICE so this holds on KVM hosts too).
vmjson "$tmp/vm"
if [ -z "$G" ]; then
	expect "not a kernel: exit 1, reason in the log" 1 "not a Linux bzImage" "$tmp/vm"
else
	expect "no KVM: exit 1, one-line reason in the log" 1 "/dev/kvm\|KVM" "$tmp/vm"
fi
check "sockets removed when the worker exits" [ ! -e "$tmp/vm/worker.sock" -a ! -e "$tmp/vm/console.sock" ]

# A control client connected while the worker starts sees Starting, then Off with the reason.
# Clients first (they retry until the socket exists); the worker waits for them (test hook).
rm -f "$tmp/vm/worker.sock"
"$C" control "$tmp/vm/worker.sock" '{"id":1,"cmd":"status"}' '{"id":2,"cmd":"pause"}' \
	'{"id":3,"cmd":"reboot"}' 'garbage' >"$tmp/ctl" &
cpid=$!
"$C" control "$tmp/vm/worker.sock" >"$tmp/ctl2" &
c2pid=$!
VIRIDIAN_KVM_DEVICE="$tmp/no-kvm" VIRIDIAN_VMWP_TEST_WAIT=2,4 "$V" vmwp --vm-dir "$tmp/vm" \
	</dev/null 2>"$tmp/log" &
wpid=$!
wait $wpid
wrc=$?
wait $cpid $c2pid
check "status while starting: ok, state Starting, pid" \
	grep -q "^{\"id\":1,\"ok\":true,\"state\":\"Starting\",\"pid\":$wpid}$" "$tmp/ctl"
check "pause before the VM runs: ok false with one-line error" \
	grep -q '^{"id":2,"ok":false,"error":"cannot pause: the VM is Starting"}$' "$tmp/ctl"
if grep -q '"id":3,"ok":false,"error":"unknown cmd' "$tmp/ctl" &&
	grep -q '"ok":false,"error":"request is not a JSON object"' "$tmp/ctl"; then
	ok "unknown command and non-JSON line: errors, connection kept"
else
	notok "unknown command and non-JSON line: errors, connection kept"
	show "$tmp/ctl"
fi
if [ $wrc = 1 ] && grep -q '^{"event":"state","state":"Off","reason":".\+"}$' "$tmp/ctl" &&
	grep -q '"state":"Off"' "$tmp/ctl2" &&
	grep -qF "$(tail -1 "$tmp/log" | sed 's/^viridian vmwp: //')" "$tmp/ctl2"; then
	ok "Off event with the log's reason to every control client, exit 1"
else
	notok "Off event with the log's reason to every control client, exit 1"
	echo "# rc=$wrc"
	show "$tmp/ctl" "$tmp/ctl2" "$tmp/log"
fi

# The seccomp filter: installed, then ptrace must kill the worker with SIGSYS.
vmjson "$tmp/sc"
# In an inner shell whose own "Bad system call" notice goes nowhere.
rc=$(VIRIDIAN_VMWP_TEST_SECCOMP=1 sh -c '"$0" vmwp --vm-dir "$1" </dev/null 2>"$2"; echo $?' \
	"$V" "$tmp/sc" "$tmp/log" 2>/dev/null)
if [ $rc = $((128 + 31)) ]; then ok "seccomp: a forbidden syscall (ptrace) kills the worker (SIGSYS)"; else
	notok "seccomp: a forbidden syscall (ptrace) kills the worker (SIGSYS)"
	echo "# rc=$rc"
	show "$tmp/log"
fi
modes=$(stat -c '%a %F' "$tmp/sc/worker.sock" "$tmp/sc/console.sock" 2>&1 | sort -u)
check "worker.sock and console.sock are mode 0600 sockets" [ "$modes" = "600 socket" ]

# Under the filter the sockets keep working and the worker exits normally.
vmjson "$tmp/sv"
"$C" control "$tmp/sv/worker.sock" '{"id":7,"cmd":"status"}' >"$tmp/ctl" &
cpid=$!
VIRIDIAN_VMWP_TEST_WAIT=1,1 VIRIDIAN_VMWP_TEST_SECCOMP=serve "$V" vmwp --vm-dir "$tmp/sv" </dev/null 2>"$tmp/log" &
wpid=$!
wait $wpid
rc=$?
wait $cpid
if [ $rc = 0 ] && grep -q '^{"id":7,"ok":true' "$tmp/ctl" &&
	grep -q '"state":"Off","reason":"test: served under the seccomp filter"' "$tmp/ctl"; then
	ok "seccomp: control requests and events still work under the filter"
else
	notok "seccomp: control requests and events still work under the filter"
	echo "# rc=$rc"
	show "$tmp/ctl" "$tmp/log"
fi
check "seccomp: normal exit under the filter removes the sockets" \
	[ ! -e "$tmp/sv/worker.sock" -a ! -e "$tmp/sv/console.sock" ]

# "user": the worker drops to it before the filter goes on (root only; "nobody" must exist).
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
	skip "user in vm.json: the sandboxed worker runs as that user" "needs root and user nobody"
else
	# The user reads the kernel again on every reboot, so it must be able to reach it; the
	# checkout may sit under a 0700 directory, so the kernel is copied next to the VM.
	chmod 0755 "$tmp"
	cp "$K" "$tmp/kernel.elf"
	chmod 0644 "$tmp/kernel.elf"
	K="$tmp/kernel.elf" vmjson "$tmp/us" ',"user":"nobody"'
	"$C" control "$tmp/us/worker.sock" '{"id":1,"cmd":"status"}' >"$tmp/ctl" &
	cpid=$!
	VIRIDIAN_VMWP_TEST_WAIT=2,1 VIRIDIAN_VMWP_TEST_SECCOMP=serve "$V" vmwp --vm-dir "$tmp/us" \
		</dev/null 2>"$tmp/log" &
	wpid=$!
	for _ in $(seq 1000); do grep -q '"id":1' "$tmp/ctl" 2>/dev/null && break; sleep 0.02; done
	uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$wpid/status" 2>/dev/null)
	"$C" control "$tmp/us/worker.sock" >/dev/null &
	wait $wpid
	rc=$?
	wait
	want=$(id -u nobody)
	if [ $rc = 0 ] && [ "$uids" = "$want $want $want $want" ]; then
		ok "user in vm.json: the sandboxed worker runs as that user"
	else
		notok "user in vm.json: the sandboxed worker runs as that user"
		echo "# rc=$rc uids='$uids' want $want"
		show "$tmp/log"
	fi
fi

# With KVM: the test guest through the worker; output on console.sock, events, exit 0.
reason=$(guest_skip_reason "$G")
if [ -n "$reason" ]; then
	skip "test guest boots in the worker, TAP on console.sock, Off event, exit 0" "$reason"
	skip "two console clients both see the output" "$reason"
else
	vmjson "$tmp/kvm" ',"cmdline":"tests=boot"'
	"$C" control "$tmp/kvm/worker.sock" >"$tmp/ctl" &
	"$C" console "$tmp/kvm/console.sock" "$tmp/con1" &
	"$C" console "$tmp/kvm/console.sock" "$tmp/con2" &
	VIRIDIAN_VMWP_TEST_WAIT=1,0 timeout 300 "$V" vmwp --vm-dir "$tmp/kvm" </dev/null 2>"$tmp/log" &
	wpid=$!
	wait $wpid
	wrc=$?
	wait
	if [ $wrc = 0 ] && grep -q '^ok ' "$tmp/con1" && ! grep -q '^not ok' "$tmp/con1" &&
		grep -q '"state":"Running"' "$tmp/ctl" && grep -q '"state":"Off"' "$tmp/ctl"; then
		ok "test guest boots in the worker, TAP on console.sock, Off event, exit 0"
	else
		notok "test guest boots in the worker, TAP on console.sock, Off event, exit 0"
		echo "# rc=$wrc"
		show "$tmp/log" "$tmp/ctl" "$tmp/con1"
	fi
	check "two console clients both see the output" cmp -s "$tmp/con1" "$tmp/con2"
fi
exit $fail
