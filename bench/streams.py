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


COUNT = r"""
import collections, sys
seen = collections.Counter()
sys.addaudithook(lambda event, args: seen.update((event,)))
import setuptools.build_meta as backend
backend.prepare_metadata_for_build_wheel(sys.argv[1])
backend.build_wheel(sys.argv[1])
print(sum(seen.values()))
"""


def count_audit_events(sdist, env_path):
    """Audit events raised by one run of markupsafe's backend hooks."""
    import tarfile
    with tempfile.TemporaryDirectory(prefix="sdist-box-count-") as tmp:
        with tarfile.open(sdist) as t:
            t.extractall(tmp, filter="data")
        src = os.path.join(tmp, os.listdir(tmp)[0])
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        r = subprocess.run([os.path.join(env_path, "bin/python"), "-c", COUNT, out], cwd=src,
                           env={"PATH": "/usr/bin:/bin", "CIBUILDWHEEL": "1"},
                           capture_output=True, text=True, check=True)
        return int(r.stdout.strip().splitlines()[-1])


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
    work_cache = os.path.join(REPO, "tests/.cache/bench-streams")
    with tempfile.TemporaryDirectory(prefix="sdist-box-streams-") as work:
        base = [args.binary, "build", sdist, "--python", py, "--find-links", wheelhouse,
                "--no-index", "--cache-dir", work_cache, "--fail-on", "never",
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
                rep_env = rep["build_env"]["path"]
        # How many audit events this build raises: its backend run once more,
        # outside the sandbox, in the same build environment, under a
        # counting hook.
        total_events = count_audit_events(sdist, rep_env)
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
    # The hook's cost per audit event, measured directly (wall-clock noise
    # on a short build is larger than the effect): a filtered-out event and
    # a recorded one, against the same loop with no hook.
    bench = (
        "import sys, time\n"
        "N = 200000\n"
        "t = time.perf_counter()\n"
        "for _ in range(N): sys.audit('import', 'json', None, [], [], [])\n"
        "a = time.perf_counter() - t\n"
        "t = time.perf_counter()\n"
        "for _ in range(N // 10): sys.audit('os.system', b'true')\n"
        "b = time.perf_counter() - t\n"
        "print(a / N * 1e9, b / (N // 10) * 1e9)\n"
    )
    def per_event(env):
        out = subprocess.run([py, "-c", bench], env=env, capture_output=True, text=True, check=True)
        return [float(x) for x in out.stdout.split()]
    with open(os.devnull, "wb") as sink:
        plain = per_event({"PATH": "/usr/bin:/bin"})
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.path.join(REPO, "shim"),
               "SDIST_BOX_EVENTS_FILE": os.devnull, "SDIST_BOX_SOURCE_DIR": "/build/src"}
        hooked = per_event(env)
    skip_ns = hooked[0] - plain[0]
    emit_ns = hooked[1] - plain[1]
    print(f"audit hook per event: {skip_ns:.0f} ns when filtered out, {emit_ns:.0f} ns when recorded")
    # Plus the hook's start-up in every hooked Python process, against the
    # compiled shim in the cache (as builds use it).
    shim = next(os.path.join(work_cache, "shim", d) for d in os.listdir(os.path.join(work_cache, "shim")))
    def startup(env, n=20):
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            subprocess.run([py, "-c", "pass"], env=env, check=True)
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)
    start_plain = startup({"PATH": "/usr/bin:/bin"})
    start_hooked = startup({"PATH": "/usr/bin:/bin", "PYTHONPATH": shim,
                            "SDIST_BOX_EVENTS_FILE": os.devnull, "SDIST_BOX_SOURCE_DIR": "/build/src"})
    start_s = start_hooked - start_plain
    processes = events["all"]["hooked_processes"]
    print(f"hook start-up per Python process: {start_s * 1e3:+.2f} ms, medians of 20 "
          f"({processes} hooked processes in this build)")
    start_s = max(0.0, start_s)
    est = (total_events * skip_ns + events["all"]["audit_events"] * emit_ns) / 1e9 + processes * start_s
    print(f"estimated hook cost for this build ({total_events} audit events): {est * 1e3:.1f} ms = "
          f"{100 * est / statistics.median(times['none']):.2f}% of it")
    for label, name in (("audit-hook", "python"), ("notification", "kernel"), ("both", "all")):
        w = statistics.median(times[name]) / none
        c = statistics.median(cpu[name]) / none_cpu
        print(f"{label + ' overhead:':24} wall {100 * (w - 1):+.1f}%, cpu {100 * (c - 1):+.1f}%")


if __name__ == "__main__":
    main()
