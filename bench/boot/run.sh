#!/usr/bin/env bash
# Boot benchmark: exec -> guest power-off wall time and peak RSS of `viridian run` versus
# `qemu-system-x86_64 -enable-kvm -M microvm`, both booting build/guest/tguest.elf with
# tests=boot. Five runs each, interleaved; medians; `bench:` lines (ARCHITECTURE.md).
# Needs /dev/kvm: without it, one line saying so and exit 0.
# Usage: bench/boot/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
viridian="$build/viridian"
guest="$build/guest/tguest.elf"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "bench: boot cannot run here: no usable /dev/kvm (both Viridian and the QEMU/KVM peer need it)"
	exit 0
fi
for f in "$viridian" "$guest"; do
	[ -e "$f" ] || { echo "bench: boot: $f missing; run make first" >&2; exit 1; }
done
qemu=$(command -v qemu-system-x86_64) || { echo "bench: boot: qemu-system-x86_64 missing" >&2; exit 1; }
RUNS=${RUNS:-5} python3 - "$viridian" "$qemu" "$guest" <<'PY'
import os, statistics, subprocess, sys, time

viridian, qemu, guest = sys.argv[1:4]
runs = int(os.environ["RUNS"])
cmdline = "tests=boot"
cmds = {
    "ours": [viridian, "run", "--kernel", guest, "--cmdline", cmdline, "--memory", "128M",
             "--cpus", "1", "--serial", "stdio", "--no-reboot", "--log-level", "warn"],
    "peer": [qemu, "-enable-kvm", "-M", "microvm", "-m", "128M", "-smp", "1", "-kernel", guest,
             "-append", cmdline, "-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot"],
}

# Peak RSS through /usr/bin/time: a child forked from this Python process would carry
# Python's own RSS into its high-water mark across exec.
gnu_time = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
rss_file = f"/tmp/bench-boot-rss.{os.getpid()}"

def one(argv):
    full = [gnu_time, "-f", "%M", "-o", rss_file] + argv if gnu_time else argv
    t0 = time.monotonic()
    p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0 or b"not ok" in out or b"ok 1 " not in out:
        sys.exit(f"bench: boot: {argv[0]} failed (exit {rc}); output: {out[-300:]!r}")
    kib = ru.ru_maxrss
    if gnu_time:
        with open(rss_file) as f:
            kib = int(f.read().split()[-1])
        os.unlink(rss_file)
    return wall * 1000.0, kib / 1024.0  # ms, MiB

res = {"ours": [], "peer": []}
for i in range(runs):
    for who in ("ours", "peer"):  # interleaved so drift hits both
        res[who].append(one(cmds[who]))
med = {w: (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r))
       for w, r in res.items()}
for w, r in res.items():
    print(f"# {w}: " + ", ".join(f"{t:.0f}ms/{m:.1f}MiB" for t, m in r))
o, p = med["ours"], med["peer"]
print(f"bench: boot-time ratio={o[0] / p[0]:.2f} goal<=1.0 ours={o[0]:.0f}ms peer={p[0]:.0f}ms (qemu-microvm-kvm)")
print(f"bench: boot-rss ratio={o[1] / p[1]:.2f} goal<=0.5 ours={o[1]:.1f}MiB peer={p[1]:.1f}MiB (qemu-microvm-kvm)")
PY
