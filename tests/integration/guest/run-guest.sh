#!/bin/bash
# Boots the test guest (build/guest/tguest.elf) under QEMU with TCG and checks the TAP it
# prints on COM1: plan present, results complete and as expected, one smp line per vCPU,
# and QEMU ending because the guest powered off through ACPI (not a timeout or a reset).
# Usage: run-guest.sh ELF MACHINE SMP TESTS [EXPECTED_NOT_OK | bail]
# ("bail": the guest must report an exception as "not ok" + "Bail out!" and still power off)
set -u
elf=$1 machine=$2 smp=$3 tests=$4 want_fail=${5:-0}
limit=${GUEST_TIMEOUT:-60}

qemu=$(command -v qemu-system-x86_64) || {
	echo "1..0 # SKIP no qemu-system-x86_64 (Debian package qemu-system-x86)"
	exit 0
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# QEMU traces the shutdown cause; 6 is guest-shutdown (an ACPI S5 request).
trace=()
if "$qemu" -trace help 2>/dev/null | grep -qx qemu_system_shutdown_request; then
	trace=(-trace qemu_system_shutdown_request -D "$tmp/trace")
fi
cmd=("$qemu" -M "$machine" -accel tcg -m 64M -smp "$smp" -nographic -no-reboot
	-kernel "$elf" -append "tests=$tests" "${trace[@]}")
t0=$(date +%s%N)
timeout -k 5 "$limit" "${cmd[@]}" </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
# Firmware (SeaBIOS) writes escape sequences and CRs to the same serial port.
sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$tmp/out" >"$tmp/log"

n=0
fails=0
check() { # check OK DESCRIPTION [REASON]
	n=$((n + 1))
	if [ "$1" = 1 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2 # ${3:-}"
		fails=$((fails + 1))
	fi
}

echo "1..4"
echo "# ${cmd[*]}"
plan=$(grep -m1 -oE '^1\.\.[0-9]+$' "$tmp/log" | cut -c4-)
check "$([ -n "$plan" ] && echo 1)" "$machine smp=$smp: guest printed a TAP plan" "no '1..N' line"
plan=${plan:-0}
results=$(grep -cE '^(not )?ok [0-9]+ - ' "$tmp/log")
notok=$(grep -cE '^not ok [0-9]+ - ' "$tmp/log")
if [ "$want_fail" = bail ]; then
	check "$(grep -qE '^not ok [0-9]+ - .* # exception #UD vector 6 .*rip 0x' "$tmp/log" &&
		grep -q '^Bail out! exception #UD' "$tmp/log" && echo 1)" \
		"guest reported the #UD as not ok with vector and rip, then Bail out!" "missing"
else
	check "$([ "$plan" -gt 0 ] && [ "$results" -eq "$plan" ] && [ "$notok" -eq "$want_fail" ] &&
		echo 1)" "guest reported $results of $plan results, $notok not ok (expected $want_fail)" \
		"incomplete or unexpected failures"
fi
if [[ ",$tests," == *,smp,* ]]; then
	smpok=$(grep -cE '^ok [0-9]+ - smp: cpu [0-9]+ apic id [0-9]+ ran task$' "$tmp/log")
	check "$([ "$smpok" -eq "$smp" ] && echo 1)" "smp ok lines: $smpok for $smp vCPUs" "mismatch"
else
	check 1 "smp ok lines # SKIP smp scenario not requested"
fi
off=0
why="qemu exit status $rc"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	why="timeout after ${limit}s"
elif [ "$rc" -eq 0 ] && ! grep -q '^# power-off failed' "$tmp/log"; then
	if [ ${#trace[@]} -eq 0 ]; then
		off=1
	elif grep -q 'qemu_system_shutdown_request reason=6' "$tmp/trace" 2>/dev/null; then
		off=1
	else
		why="qemu exited without a guest-shutdown request (reset or triple fault?)"
	fi
fi
check $off "guest powered off via ACPI, qemu exited after ${ms} ms" "$why"
echo "# guest serial output:"
sed 's/^/# /' "$tmp/log"
sed 's/^/# qemu stderr: /' "$tmp/err"
exit 0
