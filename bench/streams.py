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
                r = subprocess.run(base + ["-o", out, "--format", "json"] + extra,
                                   capture_output=True, text=True)
                times[name].append(time.perf_counter() - t)
                if r.returncode != 0:
                    sys.exit(f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}")
                import json
                rep = json.loads(r.stdout)
                events[name] = rep["streams"]
    none = statistics.median(times["none"])
    print(f"stream overhead on a C-extension build (markupsafe {pin['version']}, "
          f"{args.rounds} rounds, medians)")
    print(f"{'streams':22} {'median':>9} {'ratio':>7}  kernel events  audit events")
    for name in configs:
        m = statistics.median(times[name])
        s = events[name]
        print(f"{name:22} {m:8.2f}s {m / none:7.3f}  {s['kernel_notifications']:13}  {s['audit_events']:12}")
    print()
    py_ratio = statistics.median(times["python"]) / none
    k_ratio = statistics.median(times["kernel"]) / none
    print(f"audit-hook overhead:   {100 * (py_ratio - 1):+.1f}% (target < 2%)")
    print(f"notification overhead: {100 * (k_ratio - 1):+.1f}%")


if __name__ == "__main__":
    main()
