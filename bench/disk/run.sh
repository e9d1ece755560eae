#!/usr/bin/env bash
# bench/disk: viridian vhd convert and 4K random I/O next to qemu-img, same files,
# same run, interleaved, medians of RUNS (default 5).
#  * convert of a 1 GiB raw file (512 MiB random + 512 MiB zeros, written) to
#    dynamic VHD and VHDX and back to raw, durable on both sides: qemu-img with
#    -t writeback (it flushes at the end), ours flushes before exiting.
#  * 4K reads and writes at queue depth 1 and 32 on a fully allocated dynamic
#    VHDX, both through the page cache: bench_disk (random offsets,
#    blockdev_queue) next to `qemu-img bench -t writeback -i io_uring -S 1028K`
#    (qemu-img bench has no random mode; a 1 MiB + 4 KiB stride scatters its
#    requests over the image instead of running sequentially).
# Usage: bench/disk/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
V=$build/viridian
B=$build/bench/disk/bench_disk
RUNS=${RUNS:-5}
Q=$(command -v qemu-img || true)
[ -x "$V" ] && [ -x "$B" ] || { echo "bench disk: build $build first (viridian, bench_disk)" >&2; exit 1; }
[ -n "$Q" ] || { echo "bench disk: qemu-img not installed (scripts/deps.sh)" >&2; exit 1; }
W=$(mktemp -d "$build/bench-disk.XXXXXX")
trap 'rm -rf "$W"' EXIT

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# timed CMD... -> seconds on stdout
timed() {
	local t0 t1
	t0=$(now)
	"$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; return 1; }
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}

echo "# preparing 1 GiB source (512 MiB random + 512 MiB zeros)"
head -c 512M /dev/urandom >"$W/src.raw"
head -c 512M /dev/zero >>"$W/src.raw"
sync

# name ours-cmd peer-cmd [floor-cmd] (each a string; outputs are removed before every run).
# floor-cmd: the device's limit for the same durable writes, printed beside the ratio.
conv() {
	local name=$1 ours=$2 peer=$3 floor=${4:-} o=() p=() f=() i
	for i in $(seq "$RUNS"); do
		rm -f "$W"/o.* "$W"/q.* "$W"/f.*
		sync
		o+=("$(timed bash -c "$ours")")
		rm -f "$W"/o.* "$W"/q.*
		sync
		p+=("$(timed bash -c "$peer")")
		if [ -n "$floor" ]; then
			rm -f "$W"/q.*
			sync
			f+=("$(timed bash -c "$floor")")
		fi
	done
	local mo mp mf
	mo=$(median "${o[@]}")
	mp=$(median "${p[@]}")
	echo "# $name ours: ${o[*]} / qemu-img: ${p[*]}"
	if [ -n "$floor" ]; then
		mf=$(median "${f[@]}")
		echo "# $name floor (dd conv=fdatasync of the same data bytes): ${f[*]}; median ${mf}s: ours/floor=$(ratio "$mo" "$mf") qemu-img/floor=$(ratio "$mp" "$mf")"
	fi
	echo "bench: $name ratio=$(ratio "$mo" "$mp") goal<=0.8 ours=${mo}s peer=${mp}s (qemu-img convert -t writeback)"
}

conv disk-convert-raw-to-vhd \
	"'$V' vhd convert -q -O vhd '$W/src.raw' '$W/o.vhd'" \
	"'$Q' convert -t writeback -f raw -O vpc -o subformat=dynamic '$W/src.raw' '$W/q.vhd'"
conv disk-convert-raw-to-vhdx \
	"'$V' vhd convert -q -O vhdx --block-size 8M '$W/src.raw' '$W/o.vhdx'" \
	"'$Q' convert -t writeback -f raw -O vhdx -o subformat=dynamic,block_size=8M '$W/src.raw' '$W/q.vhdx'"
# Back to raw from the same VHD/VHDX files (made once, by qemu-img).
"$Q" convert -f raw -O vpc -o subformat=dynamic "$W/src.raw" "$W/in.vhd"
"$Q" convert -f raw -O vhdx -o subformat=dynamic,block_size=8M "$W/src.raw" "$W/in.vhdx"
conv disk-convert-vhd-to-raw \
	"'$V' vhd convert -q -O raw '$W/in.vhd' '$W/o.raw'" \
	"'$Q' convert -t writeback -f vpc -O raw '$W/in.vhd' '$W/q.raw'" \
	"dd if='$W/src.raw' of='$W/f.raw' bs=1M count=512 conv=fdatasync status=none"
conv disk-convert-vhdx-to-raw \
	"'$V' vhd convert -q -O raw '$W/in.vhdx' '$W/o.raw'" \
	"'$Q' convert -t writeback -f vhdx -O raw '$W/in.vhdx' '$W/q.raw'" \
	"dd if='$W/src.raw' of='$W/f.raw' bs=1M count=512 conv=fdatasync status=none"
rm -f "$W"/in.* "$W"/o.* "$W"/q.* "$W"/f.*

# 4K I/O on a fully allocated 1 GiB dynamic VHDX (made by us, all blocks written).
head -c 1G /dev/urandom >"$W/full.raw"
"$V" vhd convert -q -O vhdx --block-size 8M "$W/full.raw" "$W/io.vhdx"
rm -f "$W/full.raw"
aio=io_uring
"$Q" bench -f vhdx -t writeback -i io_uring -c 1 "$W/io.vhdx" >/dev/null 2>&1 || aio=threads
rw4k() {
	local name=$1 mode=$2 depth=$3 count=$4 o=() p=() i out secs wflag=()
	[ "$mode" = write ] && wflag=(-w)
	for i in $(seq "$RUNS"); do
		out=$("$B" "$W/io.vhdx" "$mode" "$depth" "$count" "$i")
		o+=("$(sed -n 's/.*iops=\([0-9]*\).*/\1/p' <<<"$out")")
		out=$("$Q" bench -f vhdx -t writeback -i "$aio" -d "$depth" -c "$count" -s 4k -S 1028k "${wflag[@]}" "$W/io.vhdx")
		secs=$(sed -n 's/.*completed in \([0-9.]*\) seconds.*/\1/p' <<<"$out")
		p+=("$(awk -v c="$count" -v s="$secs" 'BEGIN {printf "%.0f", c / s}')")
	done
	local mo mp
	mo=$(median "${o[@]}")
	mp=$(median "${p[@]}")
	echo "# $name ours: ${o[*]} / qemu-img bench: ${p[*]}"
	echo "bench: $name ratio=$(ratio "$mo" "$mp") goal>=1.5 ours=${mo}iops peer=${mp}iops (qemu-img bench -t writeback -i $aio -S 1028k)"
}
rw4k disk-4k-randread-qd1 read 1 20000
rw4k disk-4k-randread-qd32 read 32 100000
rw4k disk-4k-randwrite-qd1 write 1 20000
rw4k disk-4k-randwrite-qd32 write 32 100000
