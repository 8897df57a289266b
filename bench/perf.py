#!/usr/bin/env python3
"""sdist-box performance: every figure a ratio to a baseline measured in the same run.

  1. sandbox set-up: `sdist-box run -- PY -c pass` vs `PY -c pass` bare and
     vs `bwrap --unshare-all` (bubblewrap) running the same command.
     Target: sdist-box's added cost at or below bwrap's.
  2. end to end, warm cache, a pure-Python sdist (examples/hello_box, flit_core):
     `sdist-box build` vs `python -m build --wheel --no-isolation` unsandboxed
     (target <= 1.10x), vs `pip wheel --no-deps` with its default build
     isolation, and vs `uv build --wheel` (target: faster than both). All
     offline from bench/.cache/wheelhouse.
  3. a C-extension build (markupsafe, gcc) with both event streams on:
     `sdist-box build` vs `python -m build --wheel --no-isolation`
     unsandboxed. Target: overhead <= 3 %. Wall time and the CPU time of
     the whole process tree (steadier on a busy machine) are both given.
  4. supervisor memory under a flood of notified syscalls: an sdist whose
     in-tree backend makes N connect() calls (each one a seccomp
     notification the supervisor answers), N = 1 000 and 100 000; the peak
     RSS (VmHWM) of the sdist-box process, in which the supervisor is a
     thread, sampled from /proc every 10 ms, with both streams and with the
     kernel stream alone (the supervisor thread's own share); 300 000 too,
     to show where it levels off. Target: bounded. Also the time per
     notified syscall, against the same loop run bare.

Measurements are interleaved round by round (so load drift hits every
variant alike) and reported as medians; the load average is printed.
Needs: cargo build --release, bench/fetch_corpus.py, bench/make_wheelhouse.sh,
bubblewrap (apt-get install bubblewrap; bench/setup installs it).

Usage: bench/perf.py [--rounds N] [--only setup,e2e,cext,flood] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tomllib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WHEELHOUSE = BENCH / ".cache" / "wheelhouse"
SDISTS = BENCH / ".cache" / "sdists"
HELLO = REPO / "examples" / "hello_box-0.1.0.tar.gz"


def real_python(py: str) -> str:
    return subprocess.run([py, "-c", "import sys; print(sys.executable)"],
                          capture_output=True, text=True, check=True).stdout.strip()


class Timer:
    """Runs a command, records wall time and the CPU time of its process tree."""

    def __init__(self):
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def run(self, name, cmd, env=None, cwd=None, before=None, check_out=None):
        if before:
            before()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        dt = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            sys.exit(f"{name}: exit {r.returncode}: {' '.join(map(str, cmd))}\n"
                     f"{r.stderr.decode(errors='replace')[-3000:]}")
        if check_out:
            check_out()
        self.wall.setdefault(name, []).append(dt)
        self.cpu.setdefault(name, []).append(
            (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
        return r

    def med(self, name):
        return statistics.median(self.wall[name])

    def cpu_med(self, name):
        return statistics.median(self.cpu[name])


def must_have_wheel(d: Path):
    def check():
        if not list(d.glob("*.whl")):
            sys.exit(f"no wheel in {d}")
    return check


def clean(*dirs):
    def f():
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    return f


# --------------------------------------------------------------------------
# 1. set-up


def bench_setup(t: Timer, py: str, binary: str, rounds: int) -> list[tuple]:
    prefix = subprocess.run([py, "-c", "import sys; print(sys.base_prefix)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    bwrap = shutil.which("bwrap")
    if not bwrap:
        sys.exit("bwrap not found: apt-get install bubblewrap (or run bench/setup)")
    true = shutil.which("true")
    bw = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
          "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--"]
    box = [binary, "run", "--read", prefix, "--"]
    variants = {}
    for label, cmd in (("python", [py, "-c", "pass"]), ("true", [true])):
        variants[f"{label}/bare"] = cmd
        variants[f"{label}/bwrap"] = bw + cmd
        variants[f"{label}/sdist-box"] = box + cmd
    # Loading each program, without a sandbox: sdist-box is loaded twice per
    # sandbox (the command line, then again as the sandbox's pid 1).
    variants["load/bwrap"] = [bwrap, "--version"]
    variants["load/sdist-box"] = [binary, "--version"]
    for v in variants.values():  # warm the page cache
        t.run("warm", v)
    for _ in range(rounds):
        for name, cmd in variants.items():
            t.run("setup/" + name, cmd)
    rows = []
    for label, shown in (("python", "`python -c pass`"), ("true", "`/bin/true`")):
        bare = t.med(f"setup/{label}/bare")
        bwc = t.med(f"setup/{label}/bwrap")
        boxc = t.med(f"setup/{label}/sdist-box")
        added_bw, added_box = bwc - bare, boxc - bare
        vs = (f" = {added_box / added_bw:.2f}× bwrap's added cost" if added_bw > 0 else "")
        # (No CPU figures here: bwrap's sandboxed processes are reaped by
        # its own pid 1, so RUSAGE_CHILDREN never sees them.)
        rows += [
            (f"{shown}, bare", bare, 1.0, ""),
            (f"{shown} in `bwrap --unshare-all`", bwc, bwc / bare, f"{added_bw * 1e3:+.1f} ms"),
            (f"{shown} in `sdist-box run`", boxc, boxc / bare, f"{added_box * 1e3:+.1f} ms{vs}"),
        ]
    # sdist-box's own clock: clone → the command's start, and clone → the end.
    inner_setup, inner_total = [], []
    for _ in range(rounds):
        r = subprocess.run([binary, "-v", "run", "--", true], capture_output=True, text=True)
        m = re.search(r"set-up ([\d.]+) ms, total ([\d.]+) ms", r.stderr)
        if m:
            inner_setup.append(float(m.group(1)) / 1e3)
            inner_total.append(float(m.group(2)) / 1e3)
    if inner_setup:
        box_true = t.med("setup/true/sdist-box")
        su, to = statistics.median(inner_setup), statistics.median(inner_total)
        rows += [
            ("`sdist-box run -- /bin/true`, by its own clock: clone → command starts", su,
             su / box_true, "share of the whole run above"),
            ("`sdist-box run -- /bin/true`, by its own clock: clone → sandbox gone", to,
             to / box_true, "the rest is loading sdist-box and compiling the plan"),
        ]
    lb, ls = t.med("setup/load/bwrap"), t.med("setup/load/sdist-box")
    rows += [
        ("`bwrap --version` (loading the program, no sandbox)", lb, 1.0, ""),
        ("`sdist-box --version` (loading the program, no sandbox)", ls, ls / lb,
         f"{(ls - lb) * 1e3:+.1f} ms per load; a sandbox loads sdist-box twice"),
    ]
    return rows


# --------------------------------------------------------------------------
# 2. end to end, pure Python; 3. C extension


def make_venv(py: str, path: Path, reqs: list[str]) -> Path:
    subprocess.run([py, "-m", "venv", str(path)], check=True)
    vpy = path / "bin" / "python"
    subprocess.run([str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-index", "--find-links", str(WHEELHOUSE)] + reqs, check=True)
    return vpy


def box_build(binary, py, sdist, out, cache, extra=()):
    return [binary, "build", str(sdist), "-o", str(out), "--python", py,
            "--find-links", str(WHEELHOUSE), "--no-index", "--cache-dir", str(cache),
            "--fail-on", "never", *extra]


def bench_e2e(t: Timer, py: str, binary: str, rounds: int, work: Path) -> list[tuple]:
    vpy = make_venv(py, work / "venv-e2e", ["build", "flit_core>=3.4,<4", "uv"])
    uv = vpy.parent / "uv"
    cache = work / "cache"
    uv_cache = work / "uv-cache"
    outs = {k: work / f"out-{k}" for k in ("box", "build", "pip", "uv")}
    env = dict(os.environ)
    env.pop("PIP_FIND_LINKS", None)
    env["UV_CACHE_DIR"] = str(uv_cache)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_CONFIG"] = "1"
    variants = {
        "box": box_build(binary, py, HELLO, outs["box"], cache),
        "build": [str(vpy), "-m", "build", "--wheel", "--no-isolation",
                  "--outdir", str(outs["build"]), str(HELLO)],
        "pip": [str(vpy), "-m", "pip", "wheel", "--no-deps", "--no-index",
                "--find-links", str(WHEELHOUSE), "--disable-pip-version-check",
                "-w", str(outs["pip"]), str(HELLO)],
        "uv": [str(uv), "build", "--wheel", "--no-index", "--find-links", str(WHEELHOUSE),
               "--python", py, "--out-dir", str(outs["uv"]), str(HELLO)],
    }
    for name, cmd in variants.items():  # warm every cache
        t.run("warm", cmd, env=env, before=clean(outs[name]))
    for _ in range(rounds):
        for name, cmd in variants.items():
            t.run("e2e/" + name, cmd, env=env, before=clean(outs[name]),
                  check_out=must_have_wheel(outs[name]))
    base = t.med("e2e/build")
    box = t.med("e2e/box")
    uv_version = subprocess.run([str(uv), "--version"], capture_output=True,
                                text=True).stdout.strip()
    rows = [
        ("pure Python: `python -m build --wheel --no-isolation`, unsandboxed", base, 1.0, ""),
        ("pure Python: `pip wheel --no-deps` (build isolation on)", t.med("e2e/pip"),
         t.med("e2e/pip") / base, f"sdist-box is {t.med('e2e/pip') / box:.2f}× faster"),
        (f"pure Python: `uv build --wheel` ({uv_version})", t.med("e2e/uv"),
         t.med("e2e/uv") / base, f"sdist-box is {t.med('e2e/uv') / box:.2f}× faster"),
        ("pure Python: `sdist-box build`, warm cache, sandboxed, both streams", box,
         box / base, "target ≤ 1.10"),
    ]
    return rows


def bench_cext(t: Timer, py: str, binary: str, rounds: int, work: Path) -> list[tuple]:
    pin = next(e for e in tomllib.loads((BENCH / "corpus.toml").read_text())["sdist"]
               if e["name"] == "markupsafe")
    sdist = SDISTS / pin["filename"]
    vpy = make_venv(py, work / "venv-cext", ["build", "setuptools>=77"])
    cache = work / "cache"
    outs = {k: work / f"cext-{k}" for k in ("box", "build")}
    env = dict(os.environ, CIBUILDWHEEL="1")
    variants = {
        "build": [str(vpy), "-m", "build", "--wheel", "--no-isolation",
                  "--outdir", str(outs["build"]), str(sdist)],
        "box": box_build(binary, py, sdist, outs["box"], cache,
                         ["--env", "CIBUILDWHEEL=1", "--streams", "all"]),
    }
    for name, cmd in variants.items():
        t.run("warm", cmd, env=env, before=clean(outs[name]))
    for _ in range(rounds):
        for name, cmd in variants.items():
            t.run("cext/" + name, cmd, env=env, before=clean(outs[name]),
                  check_out=must_have_wheel(outs[name]))
    base, box = t.med("cext/build"), t.med("cext/box")
    cb, cx = t.cpu_med("cext/build"), t.cpu_med("cext/box")
    return [
        (f"C extension (markupsafe {pin['version']}): `python -m build --wheel --no-isolation`, unsandboxed",
         base, 1.0, f"CPU {cb:.2f} s"),
        ("C extension: `sdist-box build`, both streams on", box, box / base,
         f"CPU {cx:.2f} s = {cx / cb:.3f}×; target ≤ 1.03"),
    ]


# --------------------------------------------------------------------------
# 4. the flood

FLOOD_BACKEND = '''\
"""An in-tree PEP 517 backend that makes N connect() calls, then builds a wheel."""
import base64, hashlib, os, socket, zipfile

def _flood():
    n = int(os.environ.get("FLOOD_N", "0"))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    refused = 0
    for _ in range(n):
        try:
            s.connect(("127.0.0.1", 9))
        except OSError:
            refused += 1
    s.close()
    return refused

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _flood()
    name = "flood-0.1.0-py3-none-any.whl"
    files = {
        "flood/__init__.py": b"",
        "flood-0.1.0.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: flood\\nVersion: 0.1.0\\n",
        "flood-0.1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: flood\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append("flood-0.1.0.dist-info/RECORD,,")
        z.writestr("flood-0.1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
'''

FLOOD_BARE = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
import flood_backend
t = time.perf_counter()
flood_backend._flood()
print(time.perf_counter() - t)
"""


def make_flood_sdist(dest: Path) -> Path:
    files = {
        "PKG-INFO": "Metadata-Version: 2.1\nName: flood\nVersion: 0.1.0\n",
        "pyproject.toml": ('[build-system]\nrequires = []\n'
                           'build-backend = "flood_backend"\nbackend-path = ["."]\n'),
        "flood_backend.py": FLOOD_BACKEND,
    }
    path = dest / "flood-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"flood-0.1.0/{name}")
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return path


def peak_rss_kib(cmd, env=None) -> tuple[int, float, dict]:
    """Run cmd; sample VmHWM of that process every 10 ms; (peak KiB, seconds, report)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = [0]
    stop = threading.Event()

    def sample():
        path = f"/proc/{p.pid}/status"
        while not stop.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
            stop.wait(0.01)

    th = threading.Thread(target=sample)
    th.start()
    out, err = p.communicate()
    dt = time.perf_counter() - t
    stop.set()
    th.join()
    if p.returncode != 0:
        sys.exit(f"flood build: exit {p.returncode}\n{err.decode(errors='replace')[-3000:]}")
    return peak[0], dt, json.loads(out)


def bench_flood(py: str, binary: str, rounds: int, work: Path) -> list[tuple]:
    sdist = make_flood_sdist(work)
    cache = work / "cache"
    results = {}
    # Both streams (the default), and the kernel stream alone: the supervisor
    # thread's own share, without the audit hook's 100 000 lines.
    configs = (("all", 1_000), ("all", 100_000), ("all", 300_000),
               ("kernel", 1_000), ("kernel", 100_000), ("kernel", 300_000))
    for streams, n in configs:
        peaks, times = [], []
        for _ in range(max(1, rounds)):
            out = work / f"flood-{streams}-{n}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = box_build(binary, py, sdist, out, cache,
                            ["--env", f"FLOOD_N={n}", "--format", "json", "--streams", streams])
            kib, dt, rep = peak_rss_kib(cmd)
            if rep["streams"]["kernel_notifications"] < n:
                sys.exit(f"flood: {n} connect() calls but only "
                         f"{rep['streams']['kernel_notifications']} notifications")
            peaks.append(kib)
            times.append(dt)
        results[streams, n] = (statistics.median(peaks), statistics.median(times), rep["streams"])
    # The same loop, bare: the cost of a connect() that is not notified.
    src = work / "flood-src"
    src.mkdir(exist_ok=True)
    (src / "flood_backend.py").write_text(FLOOD_BACKEND)
    bare = statistics.median(
        float(subprocess.run([py, "-c", FLOOD_BARE, str(src)], capture_output=True, text=True,
                             check=True, env=dict(os.environ, FLOOD_N="100000")).stdout)
        for _ in range(3))
    rows = []
    for streams, label in (("all", "both streams"), ("kernel", "kernel stream only")):
        base_kib = results[streams, 1_000][0]
        for (st, n), (kib, secs, stats) in results.items():
            if st != streams:
                continue
            rows.append((
                f"flood, {label}: {n:_} notified connect() calls, sdist-box peak RSS"
                .replace("_", " "),
                kib / 1024, kib / base_kib,
                f"{stats['kernel_notifications']} notifications ({stats['kernel_dropped']} not "
                f"kept in detail), {stats['audit_events']} audit events "
                f"({stats['audit_dropped']} dropped); build {secs:.1f} s"))
        (_, t1, _), (_, t2, _) = results[streams, 1_000], results[streams, 100_000]
        per_call = (t2 - t1) / (100_000 - 1_000)
        rows.append((f"flood, {label}: time per notified connect()", per_call * 1e6,
                     per_call / (bare / 100_000),
                     f"vs {bare / 100_000 * 1e6:.2f} µs per connect() bare (the same loop, "
                     "unsandboxed)"))
    return rows


# --------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7,
                    help="rounds per build measurement (set-up: 5× as many)")
    ap.add_argument("--only", default="setup,e2e,cext,flood",
                    help="comma-separated subset of setup,e2e,cext,flood")
    ap.add_argument("--binary", default=str(REPO / "target/release/sdist-box"))
    ap.add_argument("--python", default="python3")
    ap.add_argument("--markdown", type=Path, metavar="FILE",
                    help="also write the table to FILE (atomically)")
    args = ap.parse_args(argv)
    if not os.path.exists(args.binary):
        print(f"{args.binary} not found: run `cargo build --release`", file=sys.stderr)
        return 2
    if not WHEELHOUSE.is_dir():
        print(f"{WHEELHOUSE} missing: run bench/make_wheelhouse.sh", file=sys.stderr)
        return 2
    py = real_python(args.python)
    parts = set(args.only.split(","))
    t = Timer()
    rows = []
    load0 = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="sdist-box-perf-"))
    try:
        if "setup" in parts:
            rows += [("setup", *r) for r in bench_setup(t, py, args.binary, args.rounds * 5)]
        if "e2e" in parts:
            rows += [("build", *r) for r in bench_e2e(t, py, args.binary, args.rounds, work)]
        if "cext" in parts:
            rows += [("build", *r) for r in bench_cext(t, py, args.binary, args.rounds, work)]
        if "flood" in parts:
            rows += [("flood", *r) for r in bench_flood(py, args.binary, max(1, args.rounds // 3), work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()
    lines = ["| measurement | median | ratio | note |", "|---|---|---|---|"]
    for kind, name, value, ratio, note in rows:
        if kind == "flood" and "RSS" in name:
            v = f"{value:.1f} MiB"
        elif kind == "flood":
            v = f"{value:.1f} µs"
        else:
            v = f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"
        lines.append(f"| {name} | {v} | {ratio:.3f} | {note} |")
    footer = (f"\n{os.uname().release}, {os.cpu_count()} cores, {py}; rounds: "
              f"{args.rounds} (set-up {args.rounds * 5}); load average "
              f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end.\n")
    text = "\n".join(lines) + "\n" + footer
    print(text)
    if args.markdown:
        fd, tmp = tempfile.mkstemp(dir=args.markdown.parent, prefix=f".{args.markdown.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
