"""Tests of bench/corpus.py's wheel comparison and failure explanation.

Run: python3 -m unittest discover -s bench -t bench
"""

import shutil
import subprocess
import tempfile
import unittest
import zipfile
from pathlib import Path

import corpus

RECORD = "demo-1.0.dist-info/RECORD"


def make_wheel(path: Path, members: dict, record_lines: list, when=(2020, 1, 1, 0, 0, 0)):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, when), data)
        z.writestr(zipfile.ZipInfo(RECORD, when), "\n".join(record_lines) + "\n")


class CompareWheels(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="test-corpus-"))
        (self.tmp / "a").mkdir()
        (self.tmp / "b").mkdir()
        self.work = self.tmp / "work"
        self.work.mkdir()
        self.name = "demo-1.0-py3-none-any.whl"

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def pair(self, a_members, b_members, a_record=("x",), b_record=("x",), b_when=None):
        a = self.tmp / "a" / self.name
        b = self.tmp / "b" / self.name
        make_wheel(a, a_members, list(a_record))
        make_wheel(b, b_members, list(b_record), b_when or (2024, 6, 1, 12, 0, 0))
        return corpus.compare_wheels(a, b, self.work)

    def test_timestamps_order_and_record_order_are_ignored(self):
        c = self.pair({"demo/a.py": b"A", "demo/b.py": b"B"},
                      {"demo/b.py": b"B", "demo/a.py": b"A"},
                      a_record=("demo/a.py,sha256=1,1", "demo/b.py,sha256=2,1"),
                      b_record=("demo/b.py,sha256=2,1", "demo/a.py,sha256=1,1"))
        self.assertTrue(c.identical, c.details)
        self.assertEqual(c.summary, "yes")

    def test_content_difference_is_named(self):
        c = self.pair({"demo/a.py": b"A"}, {"demo/a.py": b"A2"})
        self.assertFalse(c.identical)
        self.assertTrue(any("demo/a.py" in d for d in c.details), c.details)

    def test_missing_and_extra_members_are_named(self):
        c = self.pair({"demo/a.py": b"A", "demo/old.py": b""},
                      {"demo/a.py": b"A", "demo/new.py": b""})
        self.assertFalse(c.identical)
        self.assertIn("only unsandboxed: demo/old.py", c.details)
        self.assertIn("only sandboxed: demo/new.py", c.details)

    def test_record_with_other_lines_differs(self):
        c = self.pair({"demo/a.py": b"A"}, {"demo/a.py": b"A"},
                      a_record=("demo/a.py,sha256=1,1",), b_record=("demo/a.py,sha256=9,1",))
        self.assertFalse(c.identical)

    @unittest.skipUnless(shutil.which("gcc") and shutil.which("objcopy"), "needs gcc and objcopy")
    def test_native_library_differing_only_in_debug_info_and_build_id(self):
        libs = []
        for d in ("one", "other-directory"):
            src = self.tmp / d
            src.mkdir()
            (src / "m.c").write_text("int f(int x) { return x + 1; }\n")
            subprocess.run(["gcc", "-g", "-O2", "-shared", "-fPIC", "-Wl,--build-id",
                            "-o", "m.so", "m.c"], cwd=src, check=True)
            libs.append((src / "m.so").read_bytes())
        self.assertNotEqual(libs[0], libs[1], "the build directory should be in the DWARF")
        c = self.pair({"demo/m.so": libs[0]}, {"demo/m.so": libs[1]})
        self.assertTrue(c.identical, c.details)
        self.assertIn("strip-debug", c.summary)


class Explain(unittest.TestCase):
    def test_blocked_network_finding_names_target_and_origin(self):
        res = corpus.Result(False, report={"findings": [{
            "severity": "blocked", "kind": "net-connect", "target": "10.0.0.5:443",
            "verdict": "blocked", "decided_by": "network namespace",
            "origin": {"file": "setup.py", "line": 31}}]})
        cause, fix = corpus.explain(res)
        self.assertIn("10.0.0.5:443", cause)
        self.assertIn("setup.py:31", cause)
        self.assertIn("network", fix)

    def test_missing_rust_toolchain(self):
        res = corpus.Result(False, error="ERROR: No matching distribution found for puccinialin")
        cause, fix = corpus.explain(res)
        self.assertIn("cargo", cause)
        self.assertIn("Rust toolchain", fix)
        res = corpus.Result(False, error="x\nerror: can't find Rust compiler\ny")
        self.assertIn("Rust compiler", corpus.explain(res)[0])


if __name__ == "__main__":
    unittest.main()
