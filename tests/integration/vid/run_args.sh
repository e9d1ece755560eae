#!/usr/bin/env bash
# TAP: `viridian run` rejects bad input with one line on stderr and a documented exit code,
# checks arguments before touching /dev/kvm, and fails cleanly without KVM.
# Usage: run_args.sh VIRIDIAN [TGUEST_ELF]
set -u
V=${1:?viridian binary}
G=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
plan=23
echo "1..$plan"

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# expect NAME WANT_RC PATTERN -- ARGS...: exit code, exactly one stderr line, pattern in it.
expect() {
	local name=$1 want=$2 pat=$3
	shift 4
	"$V" run "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$? lines
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" = "$want" ] && [ "$lines" = 1 ] && grep -q -- "$pat" "$tmp/err"; then
		ok "$name"
	else
		notok "$name"
		echo "# rc=$rc (want $want), $lines stderr line(s):"
		sed 's/^/#   /' "$tmp/err"
	fi
}

printf 'not a kernel\n' >"$tmp/notkernel"
# A non-existent KVM device, so these also hold on hosts that have KVM.
export VIRIDIAN_KVM_DEVICE="$tmp/no-such-kvm"
K=${G:-$tmp/notkernel}

expect "no --kernel: usage error" 2 "--kernel PATH is required" --
expect "missing kernel file" 1 "No such file" -- --kernel "$tmp/nope"
expect "kernel is a directory" 1 "not a regular file" -- --kernel "$tmp"
expect "file that is not a kernel" 1 "not a Linux bzImage" -- --kernel "$tmp/notkernel"
expect "--memory larger than the host" 2 "more than this host" -- --kernel "$K" --memory 64T
expect "--memory junk" 2 "expected a size" -- --kernel "$K" --memory lots
expect "--memory too small" 2 "at least" -- --kernel "$K" --memory 1M
expect "--cpus 0" 2 "at least one vCPU" -- --kernel "$K" --cpus 0
expect "--cpus above the built-in limit" 2 "at most 1024" -- --kernel "$K" --cpus 1025
expect "--cpus not a number" 2 "expected a number" -- --kernel "$K" --cpus two
expect "--serial unknown kind" 2 "expected stdio, pty" -- --kernel "$K" --serial tcp:80
expect "--log-level unknown" 2 "expected error, warn" -- --kernel "$K" --log-level loud
expect "unknown option" 2 "unknown option" -- --kernel "$K" --frobnicate
: >"$tmp/disk.raw"
chmod 0444 "$tmp/disk.raw"
expect "--disk missing image" 1 "No such file" -- --kernel "$K" --disk "$tmp/none.vhdx"
expect "--disk unknown option" 2 "unknown option 'fast'" -- --kernel "$K" --disk "$tmp/disk.raw,fast"
expect "--disk given twice" 2 "given twice" -- --kernel "$K" --disk "$tmp/disk.raw,ro" \
	--disk "$tmp/disk.raw,ro,format=raw"
if [ "$(id -u)" = 0 ]; then
	skip "--disk read-only file without ,ro" "root can write any file"
else
	expect "--disk read-only file without ,ro" 1 "with ,ro" -- --kernel "$K" --disk "$tmp/disk.raw"
fi
expect "--disk more than 64" 2 "at most 64" -- --kernel "$K" \
	$(for i in $(seq 65); do printf -- '--disk %s,ro ' "$tmp/disk.raw"; done)
expect "--device unknown" 2 "only device is 'echo'" -- --kernel "$K" --device nic
# Arguments are checked before KVM is opened: a bad value wins over the missing device.
expect "bad --cpus reported before missing KVM" 2 "--cpus 0" -- --kernel "$K" --cpus 0
if [ -n "$G" ] && [ -f "$G" ]; then
	expect "missing /dev/kvm: one line, exit 1" 1 "KVM is not available" -- --kernel "$G" \
		--cmdline "tests=boot" --serial none
	expect "missing /dev/kvm names the device path" 1 "$tmp/no-such-kvm" -- --kernel "$G"
else
	skip "missing /dev/kvm: one line, exit 1" "test guest not built"
	skip "missing /dev/kvm names the device path" "test guest not built"
fi
"$V" run --help >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 0 ] && grep -q -- "--kernel PATH" "$tmp/out" && [ ! -s "$tmp/err" ]; then
	ok "--help prints usage and exits 0"
else
	notok "--help prints usage and exits 0"
fi
exit $fail
