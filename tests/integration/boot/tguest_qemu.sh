#!/usr/bin/env bash
# The project's test guest booted by OUR loader and ACPI tables on QEMU TCG (no
# KVM needed): loadcheck writes the loaded memory image, our ACPI tables in the
# BIOS window and a reset stub entering struct boot_cpu_state; QEMU runs it.
# The guest parses our e820 (PVH memmap), RSDP/XSDT/FADT/MADT/DSDT, starts the
# APs from our MADT and powers off through our FADT PM1a_CNT + \_S5 (QEMU's
# PIIX4 is told SLP_TYP 5 is its "S4" so the write ends the VM).
# Usage: tguest_qemu.sh LOADCHECK TGUEST_ELF SMP
set -u
loadcheck=$1 elf=$2 smp=$3
qemu=$(command -v qemu-system-x86_64) || {
	echo "1..0 # SKIP no qemu-system-x86_64 (Debian package qemu-system-x86)"
	exit 0
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..4"
if ! LOADCHECK_CMDLINE="tests=boot,smp" LOADCHECK_CPUS=$smp "$loadcheck" vmlinux "$elf" "$tmp" \
	>"$tmp/load.log" 2>&1; then
	sed 's/^#* */# /' "$tmp/load.log"
	echo "not ok 1 - boot loader accepts the test guest"
	for i in 2 3 4; do echo "not ok $i - skipped: loader failed"; done
	exit 0
fi
echo "ok 1 - boot loader accepts the test guest (PVH)"
# shellcheck disable=SC2046
timeout -k 5 60 "$qemu" -M pc -accel tcg -m 256M -smp "$smp" -nodefaults -no-user-config \
	-display none -no-reboot -global PIIX4_PM.s4_val=5 $(cat "$tmp/qemu.args") \
	-serial "file:$tmp/serial.log" </dev/null >"$tmp/qemu.log" 2>&1
rc=$?
# The guest ends lines with CR LF.
sed -i 's/\r//g' "$tmp/serial.log"
sed 's/^/# /' "$tmp/serial.log"
plan=$(grep -m1 -oE '^1\.\.[0-9]+$' "$tmp/serial.log" | cut -c4-)
results=$(grep -cE '^(not )?ok [0-9]+ - ' "$tmp/serial.log")
notok=$(grep -cE '^not ok [0-9]+ - ' "$tmp/serial.log")
if [ -n "$plan" ] && [ "$plan" -gt 0 ] && [ "$results" -eq "$plan" ] && [ "$notok" -eq 0 ]; then
	echo "ok 2 - guest passed $results/$plan on our e820 and ACPI tables"
else
	echo "not ok 2 - guest passed on our e820 and ACPI tables # plan '${plan:-}', $results results, $notok not ok"
fi
cpus=$(grep -cE '^ok [0-9]+ - smp: cpu [0-9]+ apic id' "$tmp/serial.log")
if [ "$cpus" -eq "$smp" ]; then
	echo "ok 3 - all $smp vCPUs from our MADT ran"
else
	echo "not ok 3 - all $smp vCPUs from our MADT ran # $cpus did"
fi
if [ $rc -eq 0 ] && grep -q '^# power off: PM1a control 0x604, SLP_TYP 5' "$tmp/serial.log"; then
	echo "ok 4 - guest powered off through our FADT PM1a_CNT and \\_S5"
else
	echo "not ok 4 - guest powered off through our FADT PM1a_CNT and \\_S5 # qemu exit $rc"
fi
