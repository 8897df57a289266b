"""Tests of the audit hook: events, origins, sanitizing, and who escapes it.

Run: python3 -m unittest discover -s shim -t shim
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

SHIM = os.path.dirname(os.path.abspath(__file__))


class AuditHookTest(unittest.TestCase):
    def run_script(self, script, extra_args=()):
        tmp = tempfile.mkdtemp(prefix="hook-test-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        path = os.path.join(src, "setup.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(script))
        read_fd, write_fd = os.pipe()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "PYTHONPATH": SHIM,
            "SDIST_BOX_EVENTS_FD": str(write_fd),
            "SDIST_BOX_EVENTS_FILE": os.path.join(tmp, "fallback.jsonl"),
            "SDIST_BOX_SOURCE_DIR": src,
        }
        proc = subprocess.Popen([sys.executable, *extra_args, path], env=env, cwd=src,
                                pass_fds=(write_fd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as r:
            stream = r.read()
        out, err = proc.communicate()
        self.assertEqual(proc.returncode, 0, err.decode())
        lines = stream.decode().splitlines()
        fallback = os.path.join(tmp, "fallback.jsonl")
        if os.path.exists(fallback):
            with open(fallback) as f:
                lines += f.read().splitlines()
        for line in lines:
            self.assertLess(len(line), 4000)
        return [json.loads(line) for line in lines], tmp, src

    def test_events_carry_the_origin_line(self):
        events, tmp, src = self.run_script(
            """\
            import os, socket, subprocess, sys, ctypes, base64
            open('/tmp/../tmp/zz-hook-test-write', 'w').close()
            try:
                open(os.path.expanduser('~/.ssh/id_rsa'))
            except OSError:
                pass
            s = socket.socket()
            s.settimeout(1)
            s.connect_ex(('127.0.0.1', 9))
            subprocess.Popen([sys.executable, '-c', 'import os; os.getpid()'], close_fds=True).wait()
            os.system('true')
            ctypes.CDLL(None).getpid
            exec(base64.b64decode(b'eCA9IDE='))
            """
        )
        by = {}
        for e in events:
            by.setdefault(e["ev"], []).append(e)
        self.assertIn("hook.start", by)
        connect = by["socket.connect"][0]
        self.assertEqual(connect["origin"], os.path.join(src, "setup.py") + ":9")
        self.assertEqual(connect["args"][1], ["127.0.0.1", 9])
        self.assertTrue(any(e["args"][0].endswith(".ssh/id_rsa") and e["origin"].endswith(":4") for e in by["open"]))
        self.assertTrue(by["subprocess.Popen"][0]["origin"].endswith(":10"))
        self.assertTrue(by["os.system"][0]["origin"].endswith(":11"))
        self.assertIn("ctypes.dlsym", by)
        self.assertTrue(any(e["args"][0].startswith("sha256:") for e in by.get("exec", []) + by.get("compile", [])))
        # The child (close_fds) lost the descriptor: its start went to the fallback file.
        starts = by["hook.start"]
        self.assertGreaterEqual(len(starts), 2, starts)
        self.assertEqual(len({e["pid"] for e in starts}), len(starts))
        for e in events:
            self.assertEqual(sorted(e), ["args", "ev", "origin", "pid", "ppid", "seq", "stack", "t", "v"])
        os.unlink("/tmp/zz-hook-test-write")

    def test_dotdot_does_not_hide_a_write_outside_the_tree(self):
        events, tmp, src = self.run_script(
            """\
            import os
            here = os.path.dirname(os.path.abspath(__file__))
            # The event comes before the open; the directory does not exist.
            for p in [here + '/../../../zz-no-such-dir/escaped-write', here + '/inside-write']:
                try:
                    open(p, 'w').close()
                except FileNotFoundError:
                    pass
            """
        )
        written = [e["args"][0] for e in events if e["ev"] == "open"]
        self.assertIn(os.path.join(src, "../../../zz-no-such-dir/escaped-write"), written)
        self.assertNotIn(os.path.join(src, "inside-write"), written)

    def test_package_objects_are_never_repr_d(self):
        events, tmp, src = self.run_script(
            """\
            import os
            class Evil(os.PathLike):
                def __fspath__(self):
                    return '/tmp/evil-target'
                def __repr__(self):
                    open(os.path.join(os.environ['HOME'], 'repr-called'), 'w').close()
                    return 'x'
                __str__ = __repr__
            import subprocess, sys
            # The audit event carries the raw argv list, Evil included.
            subprocess.run([sys.executable, '-c', 'pass', Evil()])
            """
        )
        self.assertFalse(os.path.exists(os.path.join(tmp, "repr-called")))
        popen = [e for e in events if e["ev"] == "subprocess.Popen"]
        self.assertEqual(popen[0]["args"][1][3], "<Evil>")

    def test_isolated_children_run_without_the_hook(self):
        for flags in (["-I"], ["-S"], ["-E"]):
            events, _, _ = self.run_script("x = 1\n", extra_args=flags)
            self.assertFalse([e for e in events if e["ev"] == "hook.start"], flags)


if __name__ == "__main__":
    unittest.main()


class CtypesPolicyTest(unittest.TestCase):
    """`[python] ctypes = "system"`: the one thing the hook refuses."""

    def run_probe(self, with_stream):
        tmp = tempfile.mkdtemp(prefix="ctypes-test-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        libz = sorted(
            p
            for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
            for p in [os.path.join(d, "libz.so.1")]
            if os.path.exists(p)
        )
        if not libz:
            self.skipTest("no libz.so.1 to copy")
        own = os.path.join(tmp, "own.so")
        subprocess.run(["cp", libz[0], own], check=True)
        script = textwrap.dedent(
            """\
            import ctypes, sys
            ctypes.CDLL("libc.so.6")                     # a bare name: the loader's search
            ctypes.CDLL(%r)                               # a system library by path
            try:
                ctypes.CDLL(%r)
                print("loaded")
            except PermissionError as e:
                print("refused", e)
            """
            % (libz[0], own)
        )
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": SHIM,
            "SDIST_BOX_CTYPES": "system",
            "SDIST_BOX_CTYPES_ALLOW": "/usr/lib:/lib:/usr/lib64:/lib64:" + sys.base_prefix,
        }
        events = os.path.join(tmp, "events.jsonl")
        if with_stream:
            env["SDIST_BOX_EVENTS_FILE"] = events
            env["SDIST_BOX_SOURCE_DIR"] = tmp
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = open(events).read().splitlines() if os.path.exists(events) else []
        return out.stdout, [json.loads(l) for l in lines], own

    def test_library_outside_allowed_dirs_is_refused_and_recorded(self):
        stdout, events, own = self.run_probe(with_stream=True)
        self.assertIn("refused sdist-box: this profile refuses loading %s" % own, stdout)
        loads = [e for e in events if e["ev"] == "ctypes.dlopen"]
        self.assertIn(own, [e["args"][0] for e in loads])

    def test_refused_without_a_stream_too(self):
        stdout, events, _ = self.run_probe(with_stream=False)
        self.assertTrue(stdout.startswith("refused"), stdout)
        self.assertEqual(events, [])
