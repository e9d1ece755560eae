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
echo "demo: no usable /dev/kvm on this host, so Viridian cannot run the VM; showing the same guest under QEMU (TCG) instead"
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || { echo "demo: qemu-system-x86_64 is not installed either (scripts/deps.sh demo)" >&2; exit 1; }
echo "== QEMU, not Viridian: qemu-system-x86_64 -M microvm -accel tcg -smp 2 -kernel $guest -append '$cmdline'"
exec timeout 120 "$qemu" -M microvm -accel tcg -m 128M -smp 2 -kernel "$guest" \
	-append "$cmdline" -nographic -nodefaults -serial stdio -no-reboot
