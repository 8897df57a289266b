#!/usr/bin/env python3
"""Cost of sdist-box's two event streams on a real C-extension build.

Builds markupsafe (setuptools, C extension compiled with gcc) with
`sdist-box build --streams none|kernel|python|all` and `all --trace-files`,
interleaved round by round, and prints each median as a ratio to `none`
(the same sandbox, every layer in force, nothing explained). Measured in
one run; needs `cargo build --release` and `scripts/setup-tests`.

Usage: bench/streams.py [--rounds N]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(REPO, "target/release/sdist-box"))
    args = ap.parse_args()
    with open(os.path.join(REPO, "tests/fixtures/sdists.toml"), "rb") as f:
        pin = next(p for p in tomllib.load(f)["sdist"] if p["name"] == "markupsafe")
    sdist = os.path.join(REPO, "tests/.cache/sdists", pin["filename"])
    wheelhouse = os.path.join(REPO, "tests/.cache/wheelhouse")
    py = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"],
                        capture_output=True, text=True, check=True).stdout.strip()
    configs = {
        "none": ["--streams", "none"],
        "kernel": ["--streams", "kernel"],
        "python": ["--streams", "python"],
        "all": ["--streams", "all"],
        "all + --trace-files": ["--streams", "all", "--trace-files"],
    }
    times = {name: [] for name in configs}
    cpu = {name: [] for name in configs}
    events = {}
    with tempfile.TemporaryDirectory(prefix="sdist-box-streams-") as work:
        base = [args.binary, "build", sdist, "--python", py, "--find-links", wheelhouse,
                "--no-index", "--cache-dir", os.path.join(work, "cache"), "--fail-on", "never",
                "--env", "CIBUILDWHEEL=1"]
        subprocess.run(base + ["-o", os.path.join(work, "warm")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(args.rounds):
            for name, extra in configs.items():
                out = os.path.join(work, "out-" + name.replace(" ", ""))
                t = time.perf_counter()
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                r = subprocess.run(base + ["-o", out, "--format", "json"] + extra,
                                   capture_output=True, text=True)
                times[name].append(time.perf_counter() - t)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                # CPU time of the whole process tree (every sandboxed
                # process is a waited-for descendant): steadier than wall
                # time on a busy 2-core machine.
                cpu[name].append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
                if r.returncode != 0:
                    sys.exit(f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}")
                import json
                rep = json.loads(r.stdout)
                events[name] = rep["streams"]
    none = statistics.median(times["none"])
    none_cpu = statistics.median(cpu["none"])
    print(f"stream overhead on a C-extension build (markupsafe {pin['version']}, "
          f"{args.rounds} rounds, medians)")
    print(f"{'streams':22} {'wall':>8} {'ratio':>6} {'cpu':>8} {'ratio':>6}  kernel events  audit events")
    for name in configs:
        m = statistics.median(times[name])
        c = statistics.median(cpu[name])
        s = events[name]
        print(f"{name:22} {m:7.2f}s {m / none:6.3f} {c:7.2f}s {c / none_cpu:6.3f}  "
              f"{s['kernel_notifications']:13}  {s['audit_events']:12}")
    print()
    for label, name in (("audit-hook", "python"), ("notification", "kernel"), ("both", "all")):
        w = statistics.median(times[name]) / none
        c = statistics.median(cpu[name]) / none_cpu
        print(f"{label + ' overhead:':24} wall {100 * (w - 1):+.1f}%, cpu {100 * (c - 1):+.1f}%")


if __name__ == "__main__":
    main()
