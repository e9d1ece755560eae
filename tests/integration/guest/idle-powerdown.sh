#!/usr/bin/env bash
# TAP: the test guest's `idle` scenario (the management tests' guest) under QEMU/TCG: it
# prints "ready", sleeps in HLT, and on the ACPI power button (QEMU's system_powerdown)
# reports ok and powers off.
# Usage: idle-powerdown.sh TGUEST_ELF MACHINE
set -u
elf=${1:?tguest.elf}
machine=${2:?machine}
qemu=$(command -v qemu-system-x86_64) || {
	echo "1..0 # SKIP no qemu-system-x86_64 (Debian package qemu-system-x86)"
	exit 0
}
tmp=$(mktemp -d)
trap 'kill "$qpid" 2>/dev/null; rm -rf "$tmp"' EXIT
echo "1..3"
"$qemu" -M "$machine" -accel tcg -m 64M -smp 1 -display none -no-reboot \
	-serial "file:$tmp/com1" -monitor "unix:$tmp/mon,server,nowait" \
	-kernel "$elf" -append "tests=idle" </dev/null >"$tmp/out" 2>&1 &
qpid=$!
for _ in $(seq 300); do
	grep -q "idle: ready" "$tmp/com1" 2>/dev/null && break
	sleep 0.1
done
if grep -q "idle: ready" "$tmp/com1" 2>/dev/null; then
	echo "ok 1 - $machine: guest prints ready"
else
	echo "not ok 1 - $machine: guest prints ready"
	sed 's/^/#   /' "$tmp/com1" "$tmp/out" 2>/dev/null | tail -10
fi
python3 - "$tmp/mon" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.2)
s.sendall(b"system_powerdown\n")
time.sleep(0.2)
PYEOF
for _ in $(seq 300); do
	kill -0 "$qpid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$qpid" 2>/dev/null; then
	echo "not ok 2 - $machine: power button ends the guest"
	sed 's/^/#   /' "$tmp/com1" | tail -10
else
	echo "ok 2 - $machine: power button ends the guest"
fi
if grep -q "^ok 1 - idle: ready, power button pressed" "$tmp/com1" &&
	grep -q "^# power off" "$tmp/com1"; then
	echo "ok 3 - $machine: guest reports the press and powers off through ACPI"
else
	echo "not ok 3 - $machine: guest reports the press and powers off through ACPI"
	sed 's/^/#   /' "$tmp/com1" | tail -10
fi
