#!/usr/bin/env python3
"""What the `resources` layer adds to sandbox set-up.

`sdist-box run -- /bin/true`, interleaved round by round, with the
sandbox's cgroup (made, joined, watched, read and removed) and without one
(`SDIST_BOX_CGROUP` naming a directory that is not a cgroup, under a
profile that lets the fallback do). Medians of the run's own `setup_ms`
(until the command starts: includes making and joining the cgroup) and
`total_ms` (includes reading it and removing it).

Usage: bench/cgroup_cost.py [--rounds N] [--binary PATH]
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile

PROFILE = """version = 1
description = "bench: default's layers, resources not required"
allow-degraded = true
require = ["namespaces", "mounts", "uid", "capabilities", "landlock-fs", "rlimits", "seccomp-deny", "network", "environment", "resources"]
"""


def once(binary, profile, env):
    out = subprocess.run(
        [binary, "run", "--profile", profile, "--format", "json", "--", "/bin/true"],
        env=env, capture_output=True, check=True,
    ).stdout
    r = json.loads(out)
    layer = next(l for l in r["sandbox"]["enforcement"]["layers"] if l["layer"] == "resources")
    return r["hooks"][0]["setup_ms"], r["hooks"][0]["total_ms"], layer["state"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--binary", default="target/release/sdist-box")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        profile = os.path.join(d, "bench.toml")
        open(profile, "w").write(PROFILE)
        with_cg = dict(os.environ)
        with_cg.pop("SDIST_BOX_CGROUP", None)
        without = dict(os.environ, SDIST_BOX_CGROUP=d)
        res = {"cgroup": [], "none": []}
        for _ in range(a.rounds):
            for name, env in (("cgroup", with_cg), ("none", without)):
                s, t, state = once(a.binary, profile, env)
                assert state == ("enforced" if name == "cgroup" else "partial"), (name, state)
                res[name].append((s, t))
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in res.items()}
        print(f"load average {os.getloadavg()[0]:.2f}, {a.rounds} rounds, {a.binary}")
        for k, (s, t) in med.items():
            print(f"  {k:<7} set-up {s:6.2f} ms   total {t:6.2f} ms")
        ds = med["cgroup"][0] - med["none"][0]
        dt = med["cgroup"][1] - med["none"][1]
        print(f"  added by the cgroup: set-up {ds:+.2f} ms, total {dt:+.2f} ms (target: under 1 ms)")


if __name__ == "__main__":
    main()
