#!/usr/bin/env bash
# TAP: `viridian vhd` exit codes (0 ok, 1 bad/corrupt image, 2 usage), one-line
# errors, --help per subcommand, and basic create/info/convert/resize/compact.
# Usage: cli.sh PATH_TO_VIRIDIAN
set -u
V=${1:?path to viridian}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
	n=$((n + 1)); fail=1; echo "not ok $n - $1"
	[ -f "$T/err" ] && sed 's/^/# stderr: /' "$T/err" | head -5
	[ -f "$T/out" ] && sed 's/^/# stdout: /' "$T/out" | head -5
}

# expect NAME RC CMD...: exit code RC; on failure exactly one stderr line
# starting with "viridian vhd: ".
expect() {
	local name=$1 rc=$2 got lines
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	lines=$(wc -l <"$T/err")
	if [ "$got" -ne "$rc" ]; then
		nok "$name (exit $got, expected $rc)"
	elif [ "$rc" -ne 0 ] && { [ "$lines" -ne 1 ] || ! grep -q '^viridian vhd: ' "$T/err"; }; then
		nok "$name (error is not one 'viridian vhd:' line)"
	else
		ok "$name"
	fi
}

# --- usage errors: exit 2
expect "no subcommand" 2 "$V" vhd
expect "unknown subcommand" 2 "$V" vhd frobnicate
expect "create without -f" 2 "$V" vhd create "$T/a.vhdx" 1G
expect "create unknown format" 2 "$V" vhd create -f qcow9 "$T/a.img" 1G
expect "create bad size" 2 "$V" vhd create -f vhdx "$T/a.vhdx" 12Q
expect "create missing size" 2 "$V" vhd create -f vhdx "$T/a.vhdx"
expect "create missing file" 2 "$V" vhd create -f vhdx
expect "create differencing without parent" 2 "$V" vhd create -f vhdx --type differencing "$T/a.vhdx" 1G
expect "create bad logical sector" 2 "$V" vhd create -f vhdx --logical-sector 1024 "$T/a.vhdx" 1G
expect "create unknown option" 2 "$V" vhd create --frob -f vhdx "$T/a.vhdx" 1G
expect "info without file" 2 "$V" vhd info
expect "info two files" 2 "$V" vhd info a b
expect "check without file" 2 "$V" vhd check
expect "convert without -O" 2 "$V" vhd convert "$T/x" "$T/y"
expect "convert one argument" 2 "$V" vhd convert -O raw "$T/x"
expect "convert bad type" 2 "$V" vhd convert -O vhdx --type differencing "$T/x" "$T/y"
expect "merge without child" 2 "$V" vhd merge
expect "compact without file" 2 "$V" vhd compact
expect "resize bad size" 2 "$V" vhd resize "$T/x" abc
for s in create info check convert merge compact resize; do
	expect "$s --help" 0 "$V" vhd "$s" --help
	grep -q '^usage: viridian vhd '"$s" "$T/out" || nok "$s --help prints usage"
done
expect "vhd --help" 0 "$V" vhd --help

# --- missing files: exit 1
expect "info missing file" 1 "$V" vhd info "$T/missing.vhdx"
expect "check missing file" 1 "$V" vhd check "$T/missing.vhd"
expect "convert missing source" 1 "$V" vhd convert -O raw "$T/missing.vhd" "$T/out.raw"
expect "compact missing file" 1 "$V" vhd compact "$T/missing.vhdx"
expect "merge missing file" 1 "$V" vhd merge "$T/missing.vhdx"
expect "resize missing file" 1 "$V" vhd resize "$T/missing.vhdx" 2G
expect "create parent missing" 1 "$V" vhd create -f vhdx --parent "$T/missing.vhdx" "$T/c.vhdx"

# --- raw round trip, info --json
expect "create raw" 0 "$V" vhd create -f raw "$T/r.raw" 8M
head -c 1048576 /dev/urandom >"$T/rand"
dd if="$T/rand" of="$T/r.raw" bs=1M seek=3 conv=notrunc status=none
expect "info --json raw" 0 "$V" vhd info --json "$T/r.raw"
if /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["virtual-size"]==8388608 and d["format"]=="raw", d' "$T/out" 2>"$T/err"; then
	ok "info --json is JSON with virtual-size"
else
	nok "info --json is JSON with virtual-size"
fi
expect "info human raw" 0 "$V" vhd info "$T/r.raw"
grep -q '^virtual size: *8 MiB (8388608 bytes)' "$T/out" && ok "info human virtual size" || nok "info human virtual size"
expect "convert raw -> raw" 0 "$V" vhd convert -O raw "$T/r.raw" "$T/r2.raw"
cmp -s "$T/r.raw" "$T/r2.raw" && ok "raw copy identical" || nok "raw copy identical"
alloc=$(stat -c %b "$T/r2.raw")
[ "$alloc" -le 4096 ] && ok "raw copy is sparse ($alloc blocks)" || nok "raw copy is sparse ($alloc blocks)"
expect "resize shrink refused" 1 "$V" vhd resize "$T/r.raw" 4M
expect "resize raw grow" 0 "$V" vhd resize "$T/r.raw" +8M
[ "$(stat -c %s "$T/r.raw")" -eq 16777216 ] && ok "raw grown to 16M" || nok "raw grown to 16M"
expect "merge of a non-differencing image" 1 "$V" vhd merge --keep "$T/r.raw"
expect "check raw" 0 "$V" vhd check "$T/r.raw"

# --- per format: create, convert in and out, corrupt images
for f in vhd vhdx; do
	expect "create $f dynamic" 0 "$V" vhd create -f $f "$T/d.$f" 64M
	expect "check fresh $f" 0 "$V" vhd check "$T/d.$f"
	dd if=/dev/zero of="$T/src.raw" bs=1M count=0 seek=64 status=none
	dd if="$T/rand" of="$T/src.raw" bs=1M seek=5 conv=notrunc status=none
	dd if="$T/rand" of="$T/src.raw" bs=64K count=1 seek=1023 conv=notrunc status=none
	expect "convert raw -> $f" 0 "$V" vhd convert -O $f "$T/src.raw" "$T/c.$f"
	expect "convert $f -> raw" 0 "$V" vhd convert -O raw "$T/c.$f" "$T/back.raw"
	cmp -s "$T/src.raw" "$T/back.raw" && ok "$f round trip identical" || nok "$f round trip identical"
	expect "create $f child" 0 "$V" vhd create -f $f --parent "$T/c.$f" "$T/child.$f"
	expect "info --json $f child" 0 "$V" vhd info --json "$T/child.$f"
	if /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["type"]=="differencing" and len(d["parent-chain"])==1, d' "$T/out" 2>"$T/err"; then
		ok "$f child shows its parent chain"
	else
		nok "$f child shows its parent chain"
	fi
	expect "compact $f" 0 "$V" vhd compact "$T/c.$f"
	expect "convert compacted $f -> raw" 0 "$V" vhd convert -O raw "$T/c.$f" "$T/back2.raw"
	cmp -s "$T/src.raw" "$T/back2.raw" && ok "$f compact keeps data" || nok "$f compact keeps data"
	expect "resize $f grow" 0 "$V" vhd resize "$T/d.$f" 128M
	expect "info after resize $f" 0 "$V" vhd info --json "$T/d.$f"
	grep -q '"virtual-size": 134217728' "$T/out" && ok "$f resized to 128M" || nok "$f resized to 128M"
	# corrupt: garbage file named like the format
	head -c 2M /dev/urandom >"$T/junk.$f"
	expect "info garbage as $f" 1 "$V" vhd info -f $f "$T/junk.$f"
	expect "check garbage as $f" 1 "$V" vhd check -f $f "$T/junk.$f"
	expect "convert garbage as $f" 1 "$V" vhd convert -f $f -O raw "$T/junk.$f" "$T/j.raw"
	rm -f "$T"/*.$f "$T/back.raw" "$T/back2.raw" "$T/src.raw"
done
# VHD with a damaged footer checksum, VHDX with both headers destroyed
"$V" vhd create -f vhd "$T/bad.vhd" 16M >/dev/null 2>&1
sz=$(stat -c %s "$T/bad.vhd")
printf '\xff\xff\xff\xff' | dd of="$T/bad.vhd" bs=1 seek=$((sz - 512 + 64)) conv=notrunc status=none
printf '\xff\xff\xff\xff' | dd of="$T/bad.vhd" bs=1 seek=64 conv=notrunc status=none
expect "info vhd with bad footer checksum" 1 "$V" vhd info "$T/bad.vhd"
expect "check vhd with bad footer checksum" 1 "$V" vhd check -f vhd "$T/bad.vhd"
"$V" vhd create -f vhdx "$T/bad.vhdx" 16M >/dev/null 2>&1
dd if=/dev/urandom of="$T/bad.vhdx" bs=64K seek=1 count=2 conv=notrunc status=none
expect "info vhdx with both headers damaged" 1 "$V" vhd info "$T/bad.vhdx"
expect "check vhdx with both headers damaged" 1 "$V" vhd check -f vhdx "$T/bad.vhdx"

echo "1..$n"
exit $fail
