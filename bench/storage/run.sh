#!/usr/bin/env bash
# bench/storage: storvsp behind the real VMBus channel server and rings, driven by the
# in-process guest harness (no KVM: our path, not this host's emulation), next to plain
# io_uring on the same file in the same run (bench_storage.c says what each side does).
# 4 KiB random read/write at queue depth 1 and 32, 1 MiB sequential read/write at depth 4,
# on a raw file and a fully allocated dynamic VHDX (256 MiB each, through the page cache).
# Medians of RUNS (default 5), ours and peer interleaved. Also printed: guest->host signals
# and host->guest interrupts per 1000 I/Os (goal at depth 32: <= 50).
# Usage: bench/storage/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
B=$build/bench/storage/bench_storage
V=$build/viridian
RUNS=${RUNS:-5}
[ -x "$B" ] && [ -x "$V" ] || { echo "bench storage: build $build first (bench_storage, viridian)" >&2; exit 1; }
W=$(mktemp -d "$build/bench-storage.XXXXXX")
trap 'rm -rf "$W"' EXIT

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

echo "# preparing 256 MiB raw (random) and the same as a dynamic VHDX (all blocks allocated)"
head -c 256M /dev/urandom >"$W/d.raw"
"$V" vhd convert -q -O vhdx "$W/d.raw" "$W/d.vhdx"

# name image mode bs depth count unit(iops|MB/s) goal
one() {
	local name=$1 img=$2 mode=$3 bs=$4 depth=$5 count=$6 unit=$7 goal=$8
	local o=() p=() g=() h=() i out peer_img=$img key=iops
	[ "$unit" = MB/s ] && key=mbps
	# the peer's writes must not land in the VHDX metadata ours reads next
	if [[ $mode == *write* && $img == *.vhdx ]]; then
		cp "$img" "$W/peer.vhdx"
		peer_img=$W/peer.vhdx
	fi
	for i in $(seq "$RUNS"); do
		out=$("$B" "$img" ours "$mode" "$bs" "$depth" "$count" "$i")
		o+=("$(field "$key" "$out")")
		g+=("$(field g2h "$out")")
		h+=("$(field h2g "$out")")
		out=$("$B" "$peer_img" peer "$mode" "$bs" "$depth" "$count" "$i")
		p+=("$(field "$key" "$out")")
	done
	local mo mp
	mo=$(median "${o[@]}")
	mp=$(median "${p[@]}")
	echo "# $name ours: ${o[*]} / io_uring: ${p[*]} / signals g2h $(median "${g[@]}") h2g $(median "${h[@]}") per 1000 I/Os"
	echo "bench: $name ratio=$(ratio "$mo" "$mp") goal>=$goal ours=${mo}${unit} peer=${mp}${unit} (plain io_uring, same file)"
	if [ "$depth" = 32 ]; then
		local mg
		mg=$(median "${g[@]}")
		echo "bench: ${name}-signals ratio=$(ratio "$mg" 50) goal<=1 ours=${mg}/1000io peer=50/1000io (goal)"
	fi
}

# The VMBus round trip alone (TEST UNIT READY, no data, depth 1): the floor under the QD1 rows.
nop=()
for i in $(seq "$RUNS"); do
	nop+=("$(field iops "$("$B" "$W/d.raw" ours nop 4096 1 20000 "$i")")")
done
echo "# storage-nop-qd1 (transport only, TEST UNIT READY): $(median "${nop[@]}") iops (runs: ${nop[*]})"

for fmt in raw vhdx; do
	img=$W/d.$fmt
	goal=0.9 # issue 6 states it for raw; VHDX is held to the same line
	one storage-$fmt-4k-randread-qd1 "$img" randread 4096 1 20000 iops $goal
	one storage-$fmt-4k-randread-qd32 "$img" randread 4096 32 100000 iops $goal
	one storage-$fmt-4k-randwrite-qd1 "$img" randwrite 4096 1 20000 iops $goal
	one storage-$fmt-4k-randwrite-qd32 "$img" randwrite 4096 32 100000 iops $goal
	one storage-$fmt-1m-seqread "$img" seqread 1048576 4 1000 MB/s $goal
	one storage-$fmt-1m-seqwrite "$img" seqwrite 1048576 4 1000 MB/s $goal
done
