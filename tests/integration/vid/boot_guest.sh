#!/usr/bin/env bash
# TAP: boot the test guest under `viridian run` with 1 and 4 vCPUs (tests=boot,smp) and expect
# only ok lines on COM1 and exit 0 (ACPI power-off). Skipped without a usable /dev/kvm.
# Usage: boot_guest.sh VIRIDIAN TGUEST_ELF
set -u
. "$(dirname "$0")/../guest_lib.sh"
V=${1:?viridian binary}
G=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names=("cpus=1: exit 0 after guest power-off" "cpus=1: guest TAP all ok"
	"cpus=4: exit 0 after guest power-off" "cpus=4: guest TAP all ok"
	"--no-reboot with --serial file: exit 0, output in the file"
	"tests=fault (ud2): guest reports it (exit 0) or KVM cannot emulate it (exit 3, RIP + bytes 0f 0b)")
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


for cpus in 1 4; do
	timeout -s INT 400 "$V" run --kernel "$G" --cmdline "tests=boot,smp" --cpus "$cpus" \
		--memory 128M --serial stdio --no-reboot --name "it$cpus" \
		</dev/null >"$tmp/out$cpus" 2>"$tmp/err$cpus"
	rc=$?
	if [ $rc = 0 ]; then ok "${names[$n]}"; else
		notok "${names[$n]}"
		echo "# rc=$rc"
		sed 's/^/#   /' "$tmp/err$cpus" | tail -20
	fi
	if tap_all_ok "$tmp/out$cpus"; then ok "${names[$n]}"; else
		notok "${names[$n]}"
		sed 's/^/#   /' "$tmp/out$cpus" | tail -20
	fi
done
timeout -s INT 400 "$V" run --kernel "$G" --cmdline "tests=boot" --serial "file:$tmp/com1" \
	--no-reboot </dev/null >/dev/null 2>"$tmp/errf"
rc=$?
if [ $rc = 0 ] && tap_all_ok "$tmp/com1"; then ok "${names[$n]}"; else
	notok "${names[$n]}"
	echo "# rc=$rc"
fi
# On hosts whose KVM emulates CPL0 code (kvm_pvm) an exception inside the emulator is an
# internal error: Viridian must stop with exit 3 and name RIP and the instruction bytes.
timeout -s INT 400 "$V" run --kernel "$G" --cmdline "tests=fault" --serial "file:$tmp/com1f" \
	--no-reboot </dev/null >/dev/null 2>"$tmp/errfault"
rc=$?
if { [ $rc = 0 ] && grep -q '^not ok' "$tmp/com1f"; } ||
	{ [ $rc = 3 ] && grep -q 'RIP 0x' "$tmp/errfault" && grep -q '0f 0b' "$tmp/errfault"; }; then
	ok "${names[$n]}"
else
	notok "${names[$n]}"
	echo "# rc=$rc"
	sed 's/^/#   /' "$tmp/errfault" | tail -5
fi
exit $fail
