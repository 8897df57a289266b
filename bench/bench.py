#!/usr/bin/env python3
"""sdist-box benchmarks: every figure is a ratio measured in this one run.

  1. sandbox set-up: `sdist-box run -- PY -c pass` vs `PY -c pass` bare
  2. a warm-cache build of a pure-Python sdist with `sdist-box build` vs
     `PY -m build --wheel --no-isolation` of the same sdist, unsandboxed,
     in a venv holding the same build requirements

Usage: bench/bench.py [--runs N] [--sdist PATH] [--binary PATH]
Needs the test set-up (scripts/setup-tests) for the wheelhouse and sdists.
Prints a table; exits 0. Targets (issue 2): set-up < 10 ms, ratio < 1.2.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def real_python():
    out = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def timed(cmd, runs, env=None, cwd=None, before=None):
    times = []
    for _ in range(runs):
        if before:
            before()
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"benchmark command failed ({r.returncode}): {' '.join(cmd)}\n"
                     f"{r.stderr.decode(errors='replace')[-2000:]}")
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="runs per measurement (builds: runs/5)")
    ap.add_argument("--sdist", help="pure-Python sdist (default: examples/hello_box-0.1.0.tar.gz)")
    ap.add_argument("--binary", default=os.path.join(REPO, "target/release/sdist-box"))
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `cargo build --release` first")
    py = real_python()
    wheelhouse = os.path.join(REPO, "tests/.cache/wheelhouse")
    sdist = args.sdist or os.path.join(REPO, "examples/hello_box-0.1.0.tar.gz")
    work = tempfile.mkdtemp(prefix="sdist-box-bench-")
    try:
        rows = []
        # 1. set-up cost
        bare, _ = timed([py, "-c", "pass"], args.runs)
        prefix = subprocess.run([py, "-c", "import sys; print(sys.base_prefix)"],
                                capture_output=True, text=True, check=True).stdout.strip()
        boxed, _ = timed([args.binary, "run", "--read", prefix, "--", py, "-c", "pass"], args.runs)
        rows.append(("python -c pass, bare", bare, 1.0))
        rows.append(("python -c pass, in the sandbox", boxed, boxed / bare))
        setup_ms = (boxed - bare) * 1e3
        # sdist-box's own measure: from clone to the command's start.
        internal = []
        for _ in range(args.runs):
            r = subprocess.run([args.binary, "-v", "run", "--", "/bin/true"],
                               capture_output=True, text=True)
            for line in r.stderr.splitlines():
                if "set-up" in line:
                    internal.append(float(line.split("set-up")[1].split("ms")[0]))
        internal_ms = statistics.median(internal) if internal else float("nan")

        # 2. warm-cache build vs python -m build --no-isolation
        cache = os.path.join(work, "cache")
        out = os.path.join(work, "out")
        index = ["--find-links", wheelhouse, "--no-index"] if os.path.isdir(wheelhouse) else []
        box_cmd = [args.binary, "build", sdist, "-o", out, "--cache-dir", cache, "--python", py] + index
        subprocess.run(box_cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm
        venv = os.path.join(work, "venv")
        subprocess.run([py, "-m", "venv", venv], check=True)
        vpy = os.path.join(venv, "bin", "python")
        reqs = ["build", "flit_core>=3.4"]
        subprocess.run([vpy, "-m", "pip", "install", "-q"] + index + reqs, check=True)
        base_out = os.path.join(work, "base-out")
        base_cmd = [vpy, "-m", "build", "--wheel", "--no-isolation", "--outdir", base_out, sdist]
        clean = lambda: [shutil.rmtree(d, ignore_errors=True) for d in (out, base_out)]
        n = max(3, args.runs // 5)
        base, _ = timed(base_cmd, n, before=clean)
        box, _ = timed(box_cmd, n, before=clean)
        rows.append(("build, python -m build --no-isolation (unsandboxed)", base, 1.0))
        rows.append(("build, sdist-box build (warm cache, sandboxed)", box, box / base))

        print(f"sdist-box benchmark — {os.uname().release}, {os.cpu_count()} cores, python {py}")
        print(f"{'measurement':58} {'median':>10} {'ratio':>7}")
        for name, secs, ratio in rows:
            print(f"{name:58} {secs*1e3:8.1f} ms {ratio:7.2f}")
        print()
        print(f"sandbox set-up cost: {setup_ms:.1f} ms end to end for python -c pass (target < 10 ms)")
        print(f"                     {internal_ms:.1f} ms from clone to the command's start (sdist-box's own clock)")
        print(f"warm build ratio:    {box/base:.2f} (target < 1.2)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
