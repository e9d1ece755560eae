#!/usr/bin/env bash
# Demo: boot the freestanding test guest (tests=boot,smp, 2 vCPUs) under `viridian run`.
# `make demo` builds first. Without /dev/kvm Viridian cannot run a VM, so the demo says so and
# shows the same guest under QEMU's TCG emulator instead, labelled as QEMU.
# Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
viridian="$build/viridian"
guest="$build/guest/tguest.elf"
cmdline="tests=boot,smp"
for f in "$viridian" "$guest"; do
	[ -e "$f" ] || { echo "demo: $f is missing; run 'make demo' (or 'make') first" >&2; exit 1; }
done
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	echo "== Viridian: viridian run --kernel $guest --cmdline '$cmdline' --cpus 2"
	exec "$viridian" run --kernel "$guest" --cmdline "$cmdline" --cpus 2 --memory 128M \
		--serial stdio --no-reboot --name demo
fi
echo "demo: no usable /dev/kvm on this host, so Viridian cannot run the VM here."
echo "demo: showing what runs without KVM: the test guest booted by Viridian's loader, e820 and"
echo "demo: ACPI tables, with QEMU's TCG emulator standing in for the CPU; then a VHDX made by"
echo "demo: 'viridian vhd' and checked by qemu-img."
qemu=$(command -v qemu-system-x86_64 || true)
loadcheck="$build/tests/integration/boot/boot_loadcheck"
[ -n "$qemu" ] || { echo "demo: qemu-system-x86_64 is not installed (scripts/deps.sh demo)" >&2; exit 1; }
[ -x "$loadcheck" ] || { echo "demo: $loadcheck is missing; run 'make' first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LOADCHECK_CMDLINE="$cmdline" LOADCHECK_CPUS=2 "$loadcheck" vmlinux "$guest" "$tmp" >/dev/null
echo "== guest memory and ACPI tables built by Viridian (src/boot), CPU emulated by QEMU TCG, 2 vCPUs"
# QEMU's PIIX4 PM is told that SLP_TYP 5 (our \_S5) ends the VM, so the guest's ACPI power-off works.
# shellcheck disable=SC2046
timeout 120 "$qemu" -M pc -accel tcg -m 256M -smp 2 -nodefaults -no-user-config -display none \
	-no-reboot -global PIIX4_PM.s4_val=5 $(cat "$tmp/qemu.args") -serial stdio </dev/null |
	tr -d '\r'
echo "== viridian vhd"
"$viridian" vhd create -f vhdx "$tmp/demo.vhdx" 1G
"$viridian" vhd info "$tmp/demo.vhdx"
if command -v qemu-img >/dev/null; then
	echo "== qemu-img check of the same file"
	qemu-img check -f vhdx "$tmp/demo.vhdx"
fi
