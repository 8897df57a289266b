#!/usr/bin/env python3
"""sdist-box build-all throughput: --jobs 1 vs --jobs N on the same set, in one run.

The set is every pinned fixture sdist (tests/fixtures/sdists.toml, fetched by
scripts/setup-tests). One warm-up run fills the build-environment cache, so
both measured runs build with the same warm cache and only the parallelism
differs; each measured run writes into a fresh output directory (--rebuild is
not needed: nothing is there to skip). Runs alternate (1, N, 1, N, ...) so a
change in the machine's load hits both alike; the median of each is reported.

Usage: bench/batch.py [--rounds R] [--jobs N] [--binary PATH]
Prints sdists/min for each and the ratio; exits non-zero if a build failed.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="measured runs per --jobs value")
    ap.add_argument("--jobs", type=int, default=2, help="the parallel --jobs compared with 1")
    ap.add_argument("--binary", help="default: target/release/sdist-box, else target/debug/sdist-box")
    args = ap.parse_args()
    binary = args.binary
    if binary is None:
        for kind in ("release", "debug"):
            candidate = os.path.join(REPO, "target", kind, "sdist-box")
            if os.path.exists(candidate):
                binary = candidate
                break
    if not binary or not os.path.exists(binary):
        sys.exit("no sdist-box binary: run `cargo build --release` first")
    sdists = os.path.join(REPO, "tests/.cache/sdists")
    wheelhouse = os.path.join(REPO, "tests/.cache/wheelhouse")
    if not os.path.isdir(sdists) or not os.listdir(sdists):
        sys.exit("no fixture sdists: run scripts/setup-tests first")
    count = len([f for f in os.listdir(sdists) if f.endswith((".tar.gz", ".zip"))])
    py = real_python()
    work = tempfile.mkdtemp(prefix="sdist-box-bench-batch-")
    try:
        cache = os.path.join(work, "cache")

        def run(jobs, out):
            cmd = [binary, "build-all", sdists, "-o", out, "--jobs", str(jobs),
                   "--python", py, "--cache-dir", cache, "--find-links", wheelhouse,
                   "--no-index", "--env", "CIBUILDWHEEL=1"]
            t = time.perf_counter()
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            secs = time.perf_counter() - t
            if r.returncode != 0:
                sys.exit(f"build-all --jobs {jobs} failed ({r.returncode}):\n{r.stderr[-3000:]}")
            return secs

        run(args.jobs, os.path.join(work, "warm-up"))
        times = {1: [], args.jobs: []}
        for i in range(args.rounds):
            for jobs in (1, args.jobs):
                times[jobs].append(run(jobs, os.path.join(work, f"out-{jobs}-{i}")))
        one = statistics.median(times[1])
        many = statistics.median(times[args.jobs])
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"sdist-box build-all throughput — {os.uname().release}, {os.cpu_count()} cores "
              f"(load average {load} at the end), {count} sdists, warm cache, "
              f"{os.path.relpath(binary, REPO)}")
        print(f"{'--jobs':>6} {'median wall':>12} {'sdists/min':>11}   runs (s)")
        for jobs, secs in ((1, one), (args.jobs, many)):
            runs = ", ".join(f"{t:.1f}" for t in times[jobs])
            print(f"{jobs:>6} {secs:10.1f} s {count / secs * 60:11.1f}   {runs}")
        print(f"speed-up --jobs {args.jobs} over --jobs 1: {one / many:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
