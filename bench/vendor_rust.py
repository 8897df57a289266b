#!/usr/bin/env python3
"""Vendor the cargo crates of the corpus's Rust sdists, outside the sandbox.

A Rust-based sdist (maturin, setuptools-rust) ships its Cargo.lock but not the
crates; cargo downloads them at build time, and the sandbox has no network.
This is the step that makes such a build work offline, in or out of the
sandbox, and it is the general recipe for any Rust-based sdist:

  1. unpack the pinned, hash-verified sdist (tar with the `data` filter:
     no links out of the tree, no devices, no absolute paths);
  2. `cargo vendor --locked` each Cargo.lock it contains into `vendor/` at the
     top of the tree. cargo only downloads and checksums crates (against
     Cargo.lock): no build script and no package code runs;
  3. write `.cargo/config.toml` at the top of the tree: crates-io replaced by
     the vendored directory, and `net.offline = true`;
  4. pack the tree again as bench/.cache/vendored/<the same file name>.

bench/corpus.py builds the vendored file instead of the pinned one when it
exists (and says so in its table). Both builds still need cargo and rustc:
outside the sandbox they are on PATH; in the sandbox they must be readable
and on PATH too (see bench/README.md, "Rust").

Usage: bench/vendor_rust.py [--only NAME...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CORPUS = BENCH / "corpus.toml"
SDISTS = BENCH / ".cache" / "sdists"
VENDORED = BENCH / ".cache" / "vendored"

CONFIG = """\
# Written by sdist-box's bench/vendor_rust.py: build from vendor/, offline.
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"

[net]
offline = true
"""


def vendor(entry: dict) -> Path:
    sdist = SDISTS / entry["filename"]
    if not sdist.exists():
        raise SystemExit(f"{sdist} missing: run bench/fetch_corpus.py")
    with tempfile.TemporaryDirectory(prefix="sdist-box-vendor-") as tmp:
        tmp = Path(tmp)
        with tarfile.open(sdist) as t:
            t.extractall(tmp, filter="data")
        (top,) = [p for p in tmp.iterdir() if p.is_dir()]
        locks = sorted(p for p in top.rglob("Cargo.lock")
                       if "vendor" not in p.relative_to(top).parts)
        if not locks:
            raise SystemExit(f"{entry['filename']}: no Cargo.lock to vendor from")
        cmd = ["cargo", "vendor", "--locked", "--versioned-dirs"]
        manifests = [lock.parent / "Cargo.toml" for lock in locks]
        cmd += ["--manifest-path", str(manifests[0])]
        for m in manifests[1:]:
            cmd += ["--sync", str(m)]
        cmd.append(str(top / "vendor"))
        r = subprocess.run(cmd, cwd=top, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{entry['filename']}: cargo vendor failed:\n{r.stderr[-3000:]}")
        (top / ".cargo").mkdir(exist_ok=True)
        (top / ".cargo" / "config.toml").write_text(CONFIG)
        VENDORED.mkdir(parents=True, exist_ok=True)
        out = VENDORED / entry["filename"]
        fd, part = tempfile.mkstemp(dir=VENDORED, prefix=f".{entry['filename']}.")
        os.close(fd)
        with tarfile.open(part, "w:gz") as t:
            t.add(top, arcname=top.name)
        os.chmod(part, 0o644)
        os.replace(part, out)
        crates = sum(1 for _ in (top / "vendor").iterdir())
        print(f"ok    {entry['name']} {entry['version']}: {crates} crates vendored -> {out}")
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="NAME")
    args = ap.parse_args(argv)
    entries = [e for e in tomllib.loads(CORPUS.read_text())["sdist"] if e.get("rust")]
    if args.only:
        entries = [e for e in entries if e["name"] in args.only]
    for e in entries:
        vendor(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
