#!/usr/bin/env bash
# TAP: issue 6's storage scenario in the test guest under `viridian run --cpus 4` with a
# dynamic VHDX, a differencing VHD over a VHD parent and a read-only raw disk on synthetic
# SCSI; afterwards every image holds exactly what the guest wrote (qemu-img compare for the
# VHDX; the differencing VHD read back through `viridian vhd convert`; the raw disk untouched).
# Skipped without a usable /dev/kvm.
# Usage: storage_guest.sh VIRIDIAN TGUEST_ELF EXPECT_TOOL
set -u
. "$(dirname "$0")/../guest_lib.sh"
V=${1:?viridian binary}
G=${2:-}
E=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names=("storage scenario: exit 0" "storage scenario: guest TAP all ok"
	"dynamic VHDX equals the expected image (qemu-img compare)"
	"differencing VHD equals the expected image, parent untouched"
	"read-only raw disk untouched")
echo "1..${#names[@]}"
reason=$(guest_skip_reason "$G")
[ -z "$reason" ] && [ ! -x "$E" ] && reason="test_harness_storage not built"
if [ -n "$reason" ]; then
	for i in "${!names[@]}"; do echo "ok $((i + 1)) - ${names[$i]} # SKIP $reason"; done
	exit 0
fi
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }
check() { if [ "$1" = 0 ]; then ok "${names[$n]}"; else notok "${names[$n]}"; shift; "$@"; fi; }
show() { sed 's/^/#   /' "$1" | tail -25; }

cd "$tmp" || exit 1
"$V" vhd create -f vhdx --block-size 2M d0.vhdx 16M >/dev/null &&
	"$V" vhd create -f vhd p1.vhd 16M >/dev/null &&
	"$V" vhd create -f vhd --parent p1.vhd d1.vhd >/dev/null &&
	"$V" vhd create -f raw --type fixed d2.img 8M >/dev/null || exit 1
"$V" vhd convert -O raw p1.vhd p1-before.raw >/dev/null
cp d2.img d2-before.img
timeout -s INT 400 "$V" run --kernel "$G" --memory 128M --serial stdio --no-reboot --cpus 4 \
	--disk d0.vhdx --disk d1.vhd --disk d2.img,ro,format=raw \
	--cmdline "tests=storage storage.mib0=16 storage.mib1=16 storage.mib2=8" \
	</dev/null >out 2>err
rc=$?
check $([ $rc = 0 ] && echo 0 || echo 1) show err
tap_all_ok out
check $? show out
"$E" --expect 0 4 16 e0.raw && qemu-img compare -q -f raw -F vhdx e0.raw d0.vhdx
check $? echo "# d0.vhdx differs"
"$E" --expect 1 4 16 e1.raw && "$V" vhd convert -O raw d1.vhd d1.raw >/dev/null &&
	cmp -s e1.raw d1.raw && "$V" vhd convert -O raw p1.vhd p1-after.raw >/dev/null &&
	cmp -s p1-before.raw p1-after.raw
check $? echo "# d1.vhd or its parent differs"
cmp -s d2-before.img d2.img
check $? echo "# d2.img was written"
exit $fail
