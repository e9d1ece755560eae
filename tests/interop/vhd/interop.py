#!/usr/bin/python3
"""TAP: interop of `viridian vhd` with qemu-img/qemu-io 7.2 and libvhdi.

Usage: interop.py VIRIDIAN CRASH_WRITER

1. us -> qemu: every format x type x block size (1/2/32 MiB) x logical sector
   (512/4096, VHDX) made by `viridian vhd convert` from a patterned raw file:
   `qemu-img info` exact virtual size, `qemu-img check` (VHDX), `qemu-img
   compare` with the raw data, and libvhdi (vhdiinfo + pyvhdi) reads.
2. qemu -> us: vpc and vhdx images, fixed and dynamic, made and written by
   qemu-img/qemu-io: our info, our convert to raw == qemu's, our check; then we
   write into them (crash_writer, deterministic) and qemu must read the same.
3. differencing chains of depth 3 (VHD, VHDX) read through libvhdi equal a raw
   model, our convert flattens them equally, and merge keeps the data.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

V, W = sys.argv[1], sys.argv[2]
MiB = 1 << 20
SIZE = 72 * MiB  # not a CHS size and not a multiple of 32 MiB
n = 0
failed = 0
qemu_img = shutil.which("qemu-img")
qemu_io = shutil.which("qemu-io")
vhdiinfo = shutil.which("vhdiinfo")
try:
    import pyvhdi  # noqa: E402
except ImportError:
    pyvhdi = None


def tap(ok, name, diag=""):
    global n, failed
    n += 1
    if ok is None:
        print(f"ok {n} - {name} # SKIP {diag}")
        return
    if not ok:
        failed += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {name}")
    if not ok:
        for line in diag.strip().splitlines()[:8]:
            print(f"# {line}")
    sys.stdout.flush()


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def run_ok(name, *args):
    r = run(*args)
    tap(r.returncode == 0, name, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    return r.returncode == 0


def qfmt(fmt):
    return "vpc" if fmt == "vhd" else fmt


def files_equal(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(MiB), fb.read(MiB)
            if x != y:
                return False
            if not x:
                return True


def pyvhdi_read(chain):
    """chain: [top, parent, ..., base]; returns the top's full content."""
    files = []
    for p in chain:
        f = pyvhdi.file()
        f.open(p)
        files.append(f)
    for i in range(len(files) - 1, 0, -1):
        files[i - 1].set_parent(files[i])
    top = files[0]
    size = top.get_media_size()
    data = bytearray()
    off = 0
    while off < size:
        chunk = top.read_buffer_at_offset(min(4 * MiB, size - off), off)
        data += chunk
        off += len(chunk)
    for f in files:
        f.close()
    return bytes(data)


def make_ref(path, size):
    """Patterned 3 MiB runs every 10 MiB, small writes across block edges, last sector."""
    spots = [(o, 3 * MiB) for o in range(0, size, 10 * MiB)]
    spots += [(MiB - 4096, 8192), (2 * MiB - 512, 512), (32 * MiB - 512, 1024), (size - 4096, 4096)]
    with open(path, "wb") as f:
        f.truncate(size)
        for k, (off, ln) in enumerate(spots):
            f.seek(off)
            f.write(random.Random(k).randbytes(min(ln, size - off)))


tmp = tempfile.mkdtemp(prefix="vhdinterop.")
try:
    ref = os.path.join(tmp, "ref.raw")
    make_ref(ref, SIZE)

    # ---- 1. us -> qemu
    combos = [("vhd", "fixed", 0, 512)]
    combos += [("vhd", "dynamic", bs, 512) for bs in (1, 2, 32)]
    combos += [("vhdx", t, bs, ls) for t in ("fixed", "dynamic") for bs in (1, 2, 32)
               for ls in (512, 4096)]
    for fmt, typ, bs, ls in combos:
        img = os.path.join(tmp, f"us-{typ}-{bs}-{ls}.{fmt}")
        tag = f"ours {fmt} {typ} block {bs}M sector {ls}"
        args = [V, "vhd", "convert", "-O", fmt, "--type", typ]
        if bs:
            args += ["--block-size", f"{bs}M"]
        if fmt == "vhdx":
            args += ["--logical-sector", str(ls)]
        if not run_ok(f"{tag}: convert from raw", *args, ref, img):
            continue
        qnosup = False
        if qemu_img and ls == 4096:
            # qemu 7.2 refuses VHDX with 4 KiB logical sectors (-ENOTSUP); libvhdi below
            # is the oracle for those. Anything else qemu says is a real failure.
            r = run(qemu_img, "info", "-f", "vhdx", img)
            qnosup = r.returncode != 0 and "Operation not supported" in r.stderr
        if not qemu_img:
            tap(None, f"{tag}: qemu-img", "qemu-img not installed")
        elif qnosup:
            tap(None, f"{tag}: qemu-img info/check/compare",
                "qemu-img 7.2 vhdx supports only 512-byte logical sectors")
        else:
            r = run(qemu_img, "info", "-f", qfmt(fmt), "--output=json", img)
            try:
                vs = json.loads(r.stdout)["virtual-size"]
            except (ValueError, KeyError):
                vs = None
            tap(vs == SIZE, f"{tag}: qemu-img info virtual-size {vs} == {SIZE}", r.stderr)
            if fmt == "vhdx":
                run_ok(f"{tag}: qemu-img check", qemu_img, "check", "-f", "vhdx", img)
            run_ok(f"{tag}: qemu-img compare with the raw data", qemu_img, "compare", "-f",
                   "raw", "-F", qfmt(fmt), ref, img)
        if not vhdiinfo or not pyvhdi:
            tap(None, f"{tag}: libvhdi", "libvhdi-utils/python3-libvhdi not installed")
        else:
            run_ok(f"{tag}: vhdiinfo", vhdiinfo, img)
            try:
                data = pyvhdi_read([img])
                with open(ref, "rb") as f:
                    want = f.read()
                tap(data[:SIZE] == want, f"{tag}: pyvhdi reads the raw data")
            except Exception as e:  # libvhdi errors are exceptions
                tap(False, f"{tag}: pyvhdi reads the raw data", repr(e))
        os.unlink(img)

    # ---- 2. qemu -> us
    if not qemu_img or not qemu_io:
        tap(None, "qemu-made images", "qemu-utils not installed")
    else:
        qcases = [("vhd", "subformat=dynamic"), ("vhd", "subformat=fixed"),
                  ("vhd", "subformat=dynamic,force_size=on"),
                  ("vhdx", "subformat=dynamic,block_size=1M"),
                  ("vhdx", "subformat=dynamic"),
                  ("vhdx", "subformat=fixed,block_state_zero=off"),
                  ("vhdx", "subformat=dynamic,block_size=2M,log_size=4M")]
        for i, (fmt, o) in enumerate(qcases):
            img = os.path.join(tmp, f"q{i}.{fmt}")
            tag = f"qemu {qfmt(fmt)} {o}"
            r = run(qemu_img, "create", "-f", qfmt(fmt), "-o", o, img, str(SIZE))
            if r.returncode:
                tap(False, f"{tag}: qemu-img create", r.stderr)
                continue
            cmds = ["write -P 0x11 0 64k", "write -P 0x22 1020k 8k", "write -P 0x33 2047k 2k",
                    "write -P 0x44 40M 3M", f"write -P 0x55 {SIZE - 4096} 4k"]
            r = run(qemu_io, "-f", qfmt(fmt), *sum((["-c", c] for c in cmds), []), img)
            if r.returncode:
                tap(False, f"{tag}: qemu-io writes", r.stdout + r.stderr)
                continue
            qi = json.loads(run(qemu_img, "info", "-f", qfmt(fmt), "--output=json",
                                img).stdout)
            ri = run(V, "vhd", "info", "--json", img)
            try:
                ours = json.loads(ri.stdout)["virtual-size"]
            except (ValueError, KeyError):
                ours = None
            tap(ours == qi["virtual-size"],
                f"{tag}: our virtual-size {ours} == qemu's {qi['virtual-size']}", ri.stderr)
            qraw, oraw = img + ".q.raw", img + ".o.raw"
            run(qemu_img, "convert", "-f", qfmt(fmt), "-O", "raw", img, qraw)
            if run_ok(f"{tag}: our convert to raw", V, "vhd", "convert", "-O", "raw", img,
                      oraw):
                tap(files_equal(qraw, oraw), f"{tag}: our raw == qemu-img's raw")
            run_ok(f"{tag}: our check", V, "vhd", "check", img)
            # We write into qemu's image; qemu must read what we wrote.
            log = img + ".log"
            shutil.copyfile(oraw, oraw + ".model")
            if run_ok(f"{tag}: our writes", W, "write", img, log, str(100 + i), "300"):
                run(W, "write", oraw + ".model", log + ".m", str(100 + i), "300")
                run_ok(f"{tag}: qemu-img compare after our writes", qemu_img, "compare",
                       "-f", "raw", "-F", qfmt(fmt), oraw + ".model", img)
                if fmt == "vhdx":
                    run_ok(f"{tag}: qemu-img check after our writes", qemu_img, "check",
                           "-f", "vhdx", img)
            for p in (img, qraw, oraw, oraw + ".model", log, log + ".m"):
                if os.path.exists(p):
                    os.unlink(p)

    # ---- 3. differencing chains (depth 3) vs a raw model, read by libvhdi
    for fmt in ("vhd", "vhdx"):
        base = os.path.join(tmp, f"base.{fmt}")
        model = os.path.join(tmp, f"model-{fmt}.raw")
        tag = f"{fmt} chain"
        if not run_ok(f"{tag}: create base", V, "vhd", "create", "-f", fmt, base, "40M"):
            continue
        run_ok(f"{tag}: fill base", W, "fill", base, model, "3")
        chain = [base]
        good = True
        for depth in (1, 2, 3):
            child = os.path.join(tmp, f"c{depth}.{fmt}")
            good = run_ok(f"{tag}: create child {depth}", V, "vhd", "create", "-f", fmt,
                          "--parent", chain[0], child) and good
            good = run_ok(f"{tag}: write child {depth}", W, "write", child,
                          child + ".log", str(depth * 11), "120") and good
            run(W, "write", model, child + ".mlog", str(depth * 11), "120")
            chain.insert(0, child)
        if not good:
            continue
        flat = os.path.join(tmp, f"flat-{fmt}.raw")
        if run_ok(f"{tag}: our convert of the depth-3 chain", V, "vhd", "convert", "-O", "raw",
                  chain[0], flat):
            tap(files_equal(flat, model), f"{tag}: our flattened chain == raw model")
        if not pyvhdi:
            tap(None, f"{tag}: pyvhdi", "python3-libvhdi not installed")
        else:
            try:
                data = pyvhdi_read(chain)
                with open(model, "rb") as f:
                    tap(data == f.read(), f"{tag}: pyvhdi reads the depth-3 chain == raw model")
            except Exception as e:
                tap(False, f"{tag}: pyvhdi reads the depth-3 chain == raw model", repr(e))
        if run_ok(f"{tag}: merge top child into its parent", V, "vhd", "merge", chain[0]):
            flat2 = flat + ".2"
            if run_ok(f"{tag}: convert after merge", V, "vhd", "convert", "-O", "raw",
                      chain[1], flat2):
                tap(files_equal(flat2, model), f"{tag}: merged chain == raw model")
            run_ok(f"{tag}: check parent after merge", V, "vhd", "check", chain[1])
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(f"1..{n}")
sys.exit(1 if failed else 0)
