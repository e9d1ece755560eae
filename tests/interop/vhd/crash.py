#!/usr/bin/python3
"""TAP: crash consistency of VHD/VHDX writes under SIGKILL.

Usage: crash.py VIRIDIAN CRASH_WRITER
Env: VHD_CRASH_TRIALS (total trials, default 240, split over 4 configurations).

Each trial creates a fresh small image (dynamic, or differencing over a
patterned parent), starts crash_writer (random writes, a flush now and then,
intent log on the side), kills it with SIGKILL after a random delay, then:
  * when the VHDX log is dirty, a copy is repaired with `qemu-img check -r all`;
  * crash_writer verify reopens the image (our replay) and checks that every
    write acknowledged before the last completed flush reads back;
  * `viridian vhd check` must pass;
  * the qemu-repaired copy must compare equal to our replayed image.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

V, W = sys.argv[1], sys.argv[2]
TRIALS = int(os.environ.get("VHD_CRASH_TRIALS", "240"))
SIZE = "32M"
CONFIGS = [("vhd", "dynamic"), ("vhd", "differencing"), ("vhdx", "dynamic"),
           ("vhdx", "differencing")]
qemu = shutil.which("qemu-img")
n = 0
failed = 0
dirty_seen = 0
qemu_replays = 0


def tap(ok, name, diag=""):
    global n, failed
    n += 1
    if not ok:
        failed += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {name}")
    for line in diag.strip().splitlines()[:8]:
        print(f"# {line}")
    sys.stdout.flush()


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


def create(fmt, path, parent=None):
    args = [V, "vhd", "create", "-f", fmt]
    if fmt == "vhdx":
        args += ["--block-size", "1M"]
    if parent:
        args += ["--parent", parent, path]
    else:
        args += [path, SIZE]
    return run(*args)


rng = random.Random(int(os.environ.get("VHD_CRASH_SEED", str(int(time.time())))))
print(f"# trials={TRIALS} seed base={rng.random()}")
tmp = tempfile.mkdtemp(prefix="vhdcrash.")
try:
    per = max(1, TRIALS // len(CONFIGS))
    for fmt, typ in CONFIGS:
        d = os.path.join(tmp, f"{fmt}-{typ}")
        os.mkdir(d)
        base_raw = None
        parent = None
        if typ == "differencing":
            parent = os.path.join(d, f"parent.{fmt}")
            base_raw = os.path.join(d, "parent.raw")
            r = create(fmt, parent)
            r2 = run(W, "fill", parent, base_raw, "7") if r.returncode == 0 else r
            if r.returncode or r2.returncode:
                for i in range(per):
                    tap(False, f"{fmt} {typ} trial {i}: parent setup", r.stderr + r2.stderr)
                continue
        for i in range(per):
            img = os.path.join(d, f"t.{fmt}")
            log = os.path.join(d, "t.log")
            for p in (img, log, img + ".q", img + ".r"):
                if os.path.exists(p):
                    os.unlink(p)
            seed = rng.randrange(1, 1 << 48)
            name = f"{fmt} {typ} trial {i} seed {seed}"
            r = create(fmt, img, parent)
            if r.returncode:
                tap(False, name + ": create", r.stderr)
                continue
            w = subprocess.Popen([W, "write", img, log, str(seed)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            ready = w.stdout.readline()
            if ready.strip() == "ready":
                time.sleep(rng.uniform(0.0, 0.08))
            try:
                w.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, werr = w.communicate()
            if w.returncode != -signal.SIGKILL:
                tap(False, name + f": writer exited {w.returncode} before the kill", werr)
                continue
            diag = ""
            qcopy = None
            if fmt == "vhdx":
                ri = run(V, "vhd", "info", "--json", img)
                try:
                    state = json.loads(ri.stdout).get("log-state", "")
                except ValueError:
                    state = "unreadable: " + ri.stderr
                if state == "dirty":
                    dirty_seen += 1
                    # `check --repair` must replay to the same image as a plain reopen.
                    rcopy = img + ".r"
                    shutil.copyfile(img, rcopy)
                    rr = run(V, "vhd", "check", "--repair", rcopy)
                    if rr.returncode:
                        diag += f"our check --repair exit {rr.returncode}: {rr.stdout}{rr.stderr}\n"
                    if qemu and typ == "dynamic":
                        qcopy = img + ".q"
                        shutil.copyfile(img, qcopy)
                        rq = run(qemu, "check", "-r", "all", "-f", "vhdx", qcopy)
                        if rq.returncode not in (0,):
                            diag += f"qemu-img check -r all exit {rq.returncode}: {rq.stdout}{rq.stderr}\n"
            args = [W, "verify", img, log, str(seed)] + ([base_raw] if base_raw else [])
            rv = run(*args)
            ok = rv.returncode == 0
            if not ok:
                diag += "verify: " + rv.stderr
            rc = run(V, "vhd", "check", img)
            if rc.returncode:
                ok = False
                diag += "check: " + rc.stdout + rc.stderr
            if os.path.exists(img + ".r"):
                rv2 = run(W, "verify", img + ".r", log, str(seed), *([base_raw] if base_raw else []))
                if rv2.returncode:
                    ok = False
                    diag += "verify after check --repair: " + rv2.stderr
            if os.path.exists(img + ".r") and qemu and typ == "dynamic":
                rcmp = run(qemu, "compare", "-f", "vhdx", "-F", "vhdx", img, img + ".r")
                if rcmp.returncode:
                    ok = False
                    diag += "check --repair differs from replay on open: " + rcmp.stdout + rcmp.stderr
            if qcopy:
                rcmp = run(qemu, "compare", "-f", "vhdx", "-F", "vhdx", img, qcopy)
                qemu_replays += 1
                if rcmp.returncode:
                    ok = False
                    diag += "qemu replay differs from ours: " + rcmp.stdout + rcmp.stderr
            tap(ok and not diag, name + f" ({rv.stdout.strip()})", diag)
    # The log-replay interop needs at least one dirty log; say so plainly.
    if qemu:
        tap(dirty_seen == 0 or qemu_replays > 0,
            f"vhdx dirty logs seen after kill: {dirty_seen}, replayed by qemu-img and "
            f"compared: {qemu_replays}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(f"1..{n}")
sys.exit(1 if failed else 0)
