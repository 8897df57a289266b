#!/usr/bin/env python3
"""Build the compatibility corpus twice — unsandboxed and in sdist-box — and compare.

For every sdist pinned in bench/corpus.toml (fetched by bench/fetch_corpus.py,
build requirements in bench/.cache/wheelhouse from bench/make_wheelhouse.sh):

  unsandboxed  a fresh venv of the same interpreter holding `build` and the
               sdist's static build requirements, installed offline from the
               wheelhouse; the backend is asked for its run-time requirements
               (get_requires_for_build_wheel), those are installed too, then
               `pip wheel --no-deps --no-build-isolation --no-index SDIST`
               builds it. Only that last command is timed. pip, like
               sdist-box, calls prepare_metadata_for_build_wheel before
               build_wheel; `python -m build` does not, and for some backends
               that changes the wheel (pbr: mock's METADATA and pbr.json), so
               pip is the baseline that isolates the sandbox's effect.
  sandboxed    `sdist-box build` under the default profile, offline from the
               same wheelhouse (--find-links --no-index), one shared build-env
               cache. One untimed run warms the cache; the second is timed.

Both get the entry's `env`. Then the two wheels are compared (see
compare_wheels: file name, member names, the sha256 of every member's
content; RECORD as a set of lines; zip timestamps, member order and file modes
are not compared). A native library that differs is compared again with its
debug sections stripped (`objcopy --strip-debug`): the DWARF of a C build
records the build directory, which differs between the two builds
(/build/src in the sandbox, a temporary directory outside), and the GNU
build ID is a hash over all of it, so both are removed before comparing.

For a build that works unsandboxed but not in the sandbox, the table names
the finding from sdist-box's report (or the last error line of its build log
when the report has none) and the profile change that would make it build.

Prints a markdown table (and writes it with --markdown FILE). Exit status:
0 when every package that builds unsandboxed also builds sandboxed with
identical wheel contents, 1 otherwise, 2 on a usage error.

This runs the corpus's build code unsandboxed on this machine (that is the
baseline), in temporary directories, offline: run it on a machine you would
build these packages on anyway.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CORPUS = BENCH / "corpus.toml"
SDISTS = BENCH / ".cache" / "sdists"
WHEELHOUSE = BENCH / ".cache" / "wheelhouse"
VENDORED = BENCH / ".cache" / "vendored"


def real_python(py: str) -> str:
    out = subprocess.run([py, "-c", "import sys; print(sys.executable)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def tail(text: str, n: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


# --------------------------------------------------------------------------
# wheel comparison


def wheel_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}


def is_record(name: str) -> bool:
    return name.endswith(".dist-info/RECORD")


def strip_debug(data: bytes, work: Path) -> bytes | None:
    """An ELF file without its debug sections and its GNU build ID (a hash
    computed over the file, debug sections included), or None."""
    objcopy = shutil.which("objcopy")
    if not objcopy or not data.startswith(b"\x7fELF"):
        return None
    src = work / "elf.in"
    dst = work / "elf.out"
    src.write_bytes(data)
    r = subprocess.run([objcopy, "--strip-debug", "--remove-section=.note.gnu.build-id",
                        str(src), str(dst)], capture_output=True)
    return dst.read_bytes() if r.returncode == 0 else None


@dataclass
class Comparison:
    identical: bool
    summary: str
    details: list[str] = field(default_factory=list)


def compare_wheels(a: Path, b: Path, work: Path) -> Comparison:
    """Same file name, same member names, same sha256 of every member's bytes.

    RECORD is compared as a set of lines (its order is the backend's choice);
    zip timestamps, member order, compression and modes are not compared.
    A native library whose bytes differ counts as identical-after-strip when
    the two are equal once `objcopy --strip-debug` has removed the debug
    sections (which hold the build directory's path) and the GNU build ID
    (a hash over the whole file, debug sections included).
    """
    details = []
    if a.name != b.name:
        details.append(f"file name: {a.name} vs {b.name}")
    ma, mb = wheel_members(a), wheel_members(b)
    only_a = sorted(set(ma) - set(mb))
    only_b = sorted(set(mb) - set(ma))
    for n in only_a:
        details.append(f"only unsandboxed: {n}")
    for n in only_b:
        details.append(f"only sandboxed: {n}")
    stripped = []
    record_differs = False
    for n in sorted(set(ma) & set(mb)):
        if is_record(n):
            continue
        if ma[n] == mb[n]:
            continue
        sa, sb = strip_debug(ma[n], work), strip_debug(mb[n], work)
        if sa is not None and sa == sb:
            stripped.append(n)
            continue
        ha = hashlib.sha256(ma[n]).hexdigest()[:12]
        hb = hashlib.sha256(mb[n]).hexdigest()[:12]
        details.append(f"content: {n} ({ha} vs {hb})")
    for n in set(ma) & set(mb):
        if is_record(n):
            la = set(ma[n].decode("utf-8", "replace").splitlines())
            lb = set(mb[n].decode("utf-8", "replace").splitlines())
            if la != lb:
                record_differs = True
    if details:
        return Comparison(False, "differs", details)
    if stripped:
        return Comparison(True, f"yes (after strip-debug: {len(stripped)} .so)",
                          [f"debug info differs: {n}" for n in stripped])
    if record_differs:
        # Only possible if the RECORD's hashes name the same contents in a
        # different form; say so rather than hide it.
        return Comparison(False, "RECORD differs", ["RECORD lines differ"])
    return Comparison(True, "yes", [])


# --------------------------------------------------------------------------
# the two builds


@dataclass
class Result:
    ok: bool
    seconds: float | None = None
    wheel: Path | None = None
    error: str = ""
    report: dict | None = None


def extract(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist) as t:
        t.extractall(dest, filter="data")
    entries = [p for p in dest.iterdir() if p.is_dir()]
    if len(entries) != 1:
        raise RuntimeError(f"{sdist.name}: expected one top-level directory")
    return entries[0]


def static_requires(src: Path) -> list[str]:
    pp = src / "pyproject.toml"
    if not pp.exists():
        return ["setuptools>=40.8.0"]
    bs = tomllib.loads(pp.read_text()).get("build-system")
    if bs is None:
        return ["setuptools>=40.8.0"]
    return list(bs.get("requires", []))


GET_REQUIRES = """
import json, sys, build
b = build.ProjectBuilder(sys.argv[1])
print(json.dumps(sorted(b.get_requires_for_build("wheel"))))
"""


def unsandboxed(py: str, sdist: Path, env_extra: dict, work: Path) -> Result:
    src = extract(sdist, work / "src")
    venv = work / "venv"
    vpy = venv / "bin" / "python"
    env = dict(os.environ, **env_extra)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    env.pop("PIP_FIND_LINKS", None)
    pip = [str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check",
           "--no-index", "--find-links", str(WHEELHOUSE)]

    def run(cmd, what, timed=False):
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=work, capture_output=True,
                           text=True)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            raise BuildError(f"{what} failed ({r.returncode}):\n"
                             f"{tail(r.stdout + r.stderr)}")
        return r, dt

    try:
        run([py, "-m", "venv", str(venv)], "venv")
        # ensurepip of Python <= 3.11 puts an old setuptools in every venv;
        # sdist-box's build env holds only what the wheelhouse resolves to,
        # so the baseline must not build with that one.
        run([str(vpy), "-m", "pip", "uninstall", "-q", "-y", "setuptools"],
            "removing ensurepip's setuptools")
        run(pip + ["build"] + static_requires(src), "installing static requirements")
        r, _ = run([str(vpy), "-c", GET_REQUIRES, str(src)],
                   "get_requires_for_build_wheel")
        dynamic = json.loads(r.stdout.strip().splitlines()[-1])
        if dynamic:
            run(pip + dynamic, f"installing run-time requirements {dynamic}")
        out = work / "out"
        _, dt = run([str(vpy), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                     "--no-index", "--disable-pip-version-check", "-w", str(out),
                     str(sdist)], "pip wheel")
    except BuildError as e:
        return Result(False, error=str(e))
    wheels = list(out.glob("*.whl"))
    if len(wheels) != 1:
        return Result(False, dt, error=f"expected one wheel, found {wheels}")
    return Result(True, dt, wheels[0])


class BuildError(Exception):
    pass


def sandboxed(binary: str, py: str, sdist: Path, env_extra: dict, work: Path,
              cache: Path, warm: bool, profile: str) -> Result:
    out = work / "box-out"
    cmd = [binary, "build", str(sdist), "-o", str(out), "--python", py, "--profile", profile,
           "--find-links", str(WHEELHOUSE), "--no-index",
           "--cache-dir", str(cache), "--format", "json", "--fail-on", "never"]
    for k, v in env_extra.items():
        cmd += ["--env", f"{k}={v}"]
    runs = 2 if warm else 1
    for i in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t
    try:
        report = json.loads(r.stdout)
    except ValueError:
        return Result(False, dt, error=f"exit {r.returncode}, no JSON report:\n"
                      f"{tail(r.stderr)}")
    if r.returncode != 0 or report["outcome"]["status"] != "built":
        log = ""
        if report.get("log") and Path(report["log"]).exists():
            log = Path(report["log"]).read_text(errors="replace")
        return Result(False, dt, error=(report["outcome"].get("reason") or "")
                      + "\n" + tail(log, 40), report=report)
    return Result(True, dt, Path(report["wheel"]["path"]), report=report)


# --------------------------------------------------------------------------
# explaining a sandboxed failure


RUST_MISSING = re.compile(
    r"(?im)^.*(can't find Rust compiler|\b(cargo|rustc)\b.*(not found|No such file)).*$")
RUST_FIX = ("profile: profiles/rust-example.toml (the Rust toolchain executable at its own "
            "path and its bin/ on [environment] path); crates vendored first on the trusted side "
            "(--pre-build scripts/vendor-crates, or bench/vendor_rust.py)")

# The example profile's toolchain, as written in profiles/rust-example.toml.
RUST_EXAMPLE_TOOLCHAIN = "/root/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu"


def rust_profile(work: Path) -> str:
    """profiles/rust-example.toml with this host's toolchain (`rustc --print
    sysroot`), written into `work`; its path."""
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True,
                             text=True, check=True).stdout.strip()
    text = (REPO / "profiles/rust-example.toml").read_text()
    if RUST_EXAMPLE_TOOLCHAIN not in text:
        raise SystemExit("profiles/rust-example.toml no longer names "
                         f"{RUST_EXAMPLE_TOOLCHAIN}: update bench/corpus.py")
    p = work / "rust.toml"
    p.write_text(text.replace(RUST_EXAMPLE_TOOLCHAIN, sysroot))
    return str(p)


def explain(res: Result) -> tuple[str, str]:
    """(the finding or error that caused it, the profile change that fixes it)."""
    rep = res.report or {}
    blocked = [f for f in rep.get("findings", [])
               if f.get("verdict") == "blocked" or f.get("severity") == "evasion"]
    text = res.error
    if blocked:
        f = blocked[0]
        where = ""
        if f.get("origin"):
            where = f" at {f['origin']['file']}:{f['origin']['line']}"
        cause = f"{f['severity']} {f['kind']} {f['target']}{where} ({f.get('decided_by') or '?'})"
        kind = f["kind"]
        if kind in ("net-connect", "net-send", "dns", "net-bind"):
            fix = ("needs the network by design: fetch/vendor what it downloads "
                   "before the build; no profile opens the network")
        elif kind in ("fs-read", "fs-write"):
            fix = f"profile: make {f['target']} readable (a read path in the profile)"
        else:
            fix = "review the finding; no profile change proposed"
        return cause, fix
    if "puccinialin" in text:
        return ("maturin found no cargo on the sandbox's PATH and asked for puccinialin "
                "(a Rust toolchain downloader) as a build requirement", RUST_FIX)
    m = RUST_MISSING.search(text)
    if m:
        # The report's reason is one line with newlines escaped.
        return m.group(0).split("\\n")[0].strip()[:200], RUST_FIX
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.search(r"error|Error|denied|not found", ln)]
    return ((errs[-1] if errs else (lines[-1] if lines else "?"))[:200],
            "none known: see the report")


# --------------------------------------------------------------------------


def fmt_s(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f} s"


def md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def load_corpus(only: list[str] | None) -> list[dict]:
    entries = tomllib.loads(CORPUS.read_text())["sdist"]
    if only:
        want = {re.sub(r"[-_.]+", "-", n).lower() for n in only}
        entries = [e for e in entries if e["name"] in want]
        if not entries:
            sys.exit(f"none of {only} is in {CORPUS}")
    return entries


def sdist_for(e: dict) -> tuple[Path, str]:
    """The file to build: the pinned sdist, or for a Rust project the
    vendored copy bench/vendor_rust.py made of it (when it exists)."""
    if e.get("rust"):
        v = VENDORED / e["filename"]
        if v.exists():
            return v, "vendored"
    return SDISTS / e["filename"], ""


def sha256_of(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Set up first: bench/fetch_corpus.py && bench/make_wheelhouse.sh "
               "&& cargo build --release (and bench/vendor_rust.py for the Rust entries).")
    ap.add_argument("--binary", default=str(REPO / "target/release/sdist-box"),
                    help="sdist-box to run (default: %(default)s)")
    ap.add_argument("--python", default="python3",
                    help="interpreter for both builds (shims are resolved)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these projects")
    ap.add_argument("--profile", default="default",
                    help="sdist-box profile for the sandboxed builds (name or TOML file; "
                         "default: %(default)s)")
    ap.add_argument("--rust-profile", metavar="FILE",
                    help="profile for the Rust entries (default: profiles/rust-example.toml "
                         "with this host's toolchain; `same` uses --profile for them too)")
    ap.add_argument("--no-warm", action="store_true",
                    help="time the first sandboxed run (cold build-env cache) and skip the second")
    ap.add_argument("--markdown", type=Path, metavar="FILE",
                    help="also write the table to FILE (atomically)")
    ap.add_argument("--json", type=Path, metavar="FILE",
                    help="write every result (errors, differences) as JSON to FILE")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)

    if not os.path.exists(args.binary):
        print(f"{args.binary} not found: run `cargo build --release` or pass --binary",
              file=sys.stderr)
        return 2
    if not WHEELHOUSE.is_dir():
        print(f"{WHEELHOUSE} missing: run bench/make_wheelhouse.sh", file=sys.stderr)
        return 2
    py = real_python(args.python)
    entries = load_corpus(args.only)
    root = Path(tempfile.mkdtemp(prefix="sdist-box-corpus-"))
    cache = root / "cache"
    rows, records = [], []
    load_before = os.getloadavg()
    started = time.time()
    try:
        for e in entries:
            sdist, note = sdist_for(e)
            if not sdist.exists():
                print(f"{sdist} missing: run bench/fetch_corpus.py", file=sys.stderr)
                return 2
            if not note and sha256_of(sdist) != e["sha256"]:
                print(f"{sdist}: sha256 is not the pin in corpus.toml", file=sys.stderr)
                return 2
            work = root / e["name"]
            (work / "u").mkdir(parents=True)
            (work / "s").mkdir()
            (work / "cmp").mkdir()
            env = dict(e.get("env") or {})
            print(f"== {e['name']} {e['version']} ({e['category']})", file=sys.stderr, flush=True)
            u = unsandboxed(py, sdist, env, work / "u")
            profile = args.profile
            if e.get("rust") and args.rust_profile != "same":
                profile = args.rust_profile or rust_profile(work)
            s = sandboxed(args.binary, py, sdist, env, work / "s", cache, not args.no_warm,
                          profile)
            cmp = None
            if u.ok and s.ok:
                cmp = compare_wheels(u.wheel, s.wheel, work / "cmp")
            cause = fix = ""
            if u.ok and not s.ok:
                cause, fix = explain(s)
            same = "–" if cmp is None else cmp.summary
            ratio = (f"{s.seconds / u.seconds:.2f}"
                     if u.ok and s.ok and u.seconds else "–")
            name = f"{e['name']} ({e['category']}{', vendored' if note else ''})"
            rows.append([name, e["version"], e["backend"],
                         "yes" if u.ok else "**no**", "yes" if s.ok else "**no**",
                         fmt_s(u.seconds if u.ok else None),
                         fmt_s(s.seconds if s.ok else None), ratio, same,
                         f"{cause} → {fix}" if cause else ""])
            records.append({
                "name": e["name"], "version": e["version"], "category": e["category"],
                "sdist": str(sdist), "unsandboxed": {"ok": u.ok, "seconds": u.seconds,
                                                     "error": u.error},
                "sandboxed": {"ok": s.ok, "seconds": s.seconds, "error": s.error,
                              "findings": (s.report or {}).get("findings", [])},
                "identical": None if cmp is None else cmp.identical,
                "differences": [] if cmp is None else cmp.details,
                "cause": cause, "fix": fix,
            })
            status = rows[-1]
            print(f"   unsandboxed {status[3]} {status[5]}, sandboxed {status[4]} "
                  f"{status[6]}, identical: {same}", file=sys.stderr, flush=True)
            for d in ([] if cmp is None else cmp.details):
                print(f"   {d}", file=sys.stderr)
            if not u.ok:
                print(f"   unsandboxed: {tail(u.error, 5)}", file=sys.stderr)
            if not s.ok:
                print(f"   sandboxed: {tail(s.error, 8)}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"work directory kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)

    header = ["package", "version", "backend", "built unsandboxed", "built sandboxed",
              "time unsandboxed", "time sandboxed", "ratio", "wheel contents identical",
              "sandboxed failure: finding → fix"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(md_cell(str(c)) for c in r) + " |")
    both = [r for r in records if r["unsandboxed"]["ok"]]
    good = [r for r in both if r["sandboxed"]["ok"] and r["identical"]]
    ratios = [r["sandboxed"]["seconds"] / r["unsandboxed"]["seconds"]
              for r in both if r["sandboxed"]["ok"]]
    load_after = os.getloadavg()
    summary = (f"{len(entries)} sdists; {len(both)} built unsandboxed; "
               f"{sum(1 for r in both if r['sandboxed']['ok'])} of those built sandboxed; "
               f"{len(good)} with identical wheel contents. "
               + (f"Median time ratio sandboxed/unsandboxed {statistics.median(ratios):.2f}. "
                  if ratios else "")
               + f"Profile {args.profile}; Python {py}; load average {load_before[0]:.1f} at the start, "
               f"{load_after[0]:.1f} at the end; {time.time() - started:.0f} s in all.")
    table = "\n".join(lines) + "\n\n" + summary + "\n"
    print(table)
    if args.markdown:
        write_atomically(args.markdown, table)
    if args.json:
        write_atomically(args.json, json.dumps(records, indent=1) + "\n")
    return 0 if len(good) == len(both) else 1


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
