"""Tests of the PEP 517 hook runner, with fake backends in temporary trees.

Run: python3 -m unittest discover -s shim -t shim
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdist_box_hooks.py")


class HookRunnerTest(unittest.TestCase):
    def run_runner(
        self, backend_src, phase, backend="fake_backend", backend_path=None, module_dir=None, extra=None
    ):
        tmp = tempfile.mkdtemp(prefix="hooks-test-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        src = os.path.join(tmp, "src")
        out = os.path.join(tmp, "out")
        control = os.path.join(tmp, "control")
        for d in (src, out, control):
            os.makedirs(d)
        mod_dir = os.path.join(src, module_dir) if module_dir else os.path.join(tmp, "site")
        os.makedirs(mod_dir, exist_ok=True)
        if backend_src is not None:
            with open(os.path.join(mod_dir, backend.split(":")[0] + ".py"), "w") as f:
                f.write(textwrap.dedent(backend_src))
        spec = {
            "protocol": 1,
            "source_dir": src,
            "backend": backend,
            "backend_path": [os.path.join(src, p) for p in (backend_path or [])],
            "phase": phase,
            "config_settings": {},
            "wheel_directory": out,
            "metadata_directory": os.path.join(control, "metadata"),
            "prepare_metadata": True,
        }
        spec.update(extra or {})
        with open(os.path.join(control, "input.json"), "w") as f:
            json.dump(spec, f)
        env = dict(os.environ)
        env["PYTHONPATH"] = mod_dir if not module_dir else ""
        proc = subprocess.run([sys.executable, RUNNER, control], env=env, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(control, "result.json")) as f:
            return json.load(f), proc

    def test_build_wheel_after_prepare_metadata_gets_the_dist_info_dir(self):
        result, _ = self.run_runner(
            """
            import os
            def prepare_metadata_for_build_wheel(d, config_settings=None):
                os.makedirs(os.path.join(d, 'x-1.dist-info'))
                return 'x-1.dist-info'
            def build_wheel(w, config_settings=None, metadata_directory=None):
                assert metadata_directory.endswith('/x-1.dist-info'), metadata_directory
                open(os.path.join(w, 'x-1-py3-none-any.whl'), 'w').close()
                return 'x-1-py3-none-any.whl'
            """,
            "wheel",
        )
        self.assertEqual(result["outcome"], "ok", result)
        self.assertEqual([h["name"] for h in result["hooks"]],
                         ["prepare_metadata_for_build_wheel", "build_wheel"])
        self.assertEqual(result["hooks"][1]["return"], "x-1-py3-none-any.whl")

    def test_metadata_phase_alone_and_wheel_given_its_path(self):
        backend = """
            import os
            def prepare_metadata_for_build_wheel(d, config_settings=None):
                os.makedirs(os.path.join(d, 'x-1.dist-info'))
                return 'x-1.dist-info'
            def build_wheel(w, config_settings=None, metadata_directory=None):
                assert metadata_directory == '/given/x-1.dist-info', metadata_directory
                open(os.path.join(w, 'x-1-py3-none-any.whl'), 'w').close()
                return 'x-1-py3-none-any.whl'
            """
        result, _ = self.run_runner(backend, "metadata")
        self.assertEqual(result["outcome"], "ok", result)
        self.assertEqual([h["name"] for h in result["hooks"]], ["prepare_metadata_for_build_wheel"])
        self.assertEqual(result["hooks"][0]["return"], "x-1.dist-info")
        result, _ = self.run_runner(
            backend, "wheel", extra={"prepare_metadata": False, "metadata_path": "/given/x-1.dist-info"}
        )
        self.assertEqual(result["outcome"], "ok", result)
        self.assertEqual([h["name"] for h in result["hooks"]], ["build_wheel"])

    def test_metadata_phase_without_the_hook_is_not_an_error(self):
        result, _ = self.run_runner("def build_wheel(w, c=None, m=None): pass\n", "metadata")
        self.assertEqual(result["outcome"], "ok", result)
        self.assertEqual(result["hooks"][0]["status"], "missing")

    def test_requires_missing_hook_defaults_to_empty(self):
        result, _ = self.run_runner("def build_wheel(w, c=None, m=None): return 'x'\n", "requires")
        self.assertEqual(result["outcome"], "ok")
        self.assertEqual(result["hooks"][0]["status"], "missing")
        self.assertEqual(result["hooks"][0]["return"], [])

    def test_missing_backend(self):
        result, proc = self.run_runner(None, "requires", backend="no_such_backend_xyz")
        self.assertEqual(result["outcome"], "backend-unavailable")
        self.assertIn("no_such_backend_xyz", result["error"]["message"])
        self.assertIn("backend-unavailable", proc.stderr)

    def test_missing_build_wheel(self):
        result, _ = self.run_runner("x = 1\n", "wheel")
        self.assertEqual(result["outcome"], "hook-missing")

    def test_backend_exception_and_memory_error(self):
        result, proc = self.run_runner("def build_wheel(w, c=None, m=None):\n    raise ValueError('boom-77')\n", "wheel")
        self.assertEqual(result["outcome"], "backend-error")
        self.assertEqual(result["error"]["type"], "ValueError")
        self.assertIn("boom-77", result["error"]["traceback"])
        self.assertIn("boom-77", proc.stderr)
        result, _ = self.run_runner("def build_wheel(w, c=None, m=None):\n    raise MemoryError()\n", "wheel")
        self.assertEqual(result["outcome"], "memory-limit")

    def test_wrong_return_types_are_backend_errors(self):
        result, _ = self.run_runner("def get_requires_for_build_wheel(c=None):\n    return 'setuptools'\n", "requires")
        self.assertEqual(result["outcome"], "backend-error")
        result, _ = self.run_runner("def build_wheel(w, c=None, m=None):\n    return 3\n", "wheel")
        self.assertEqual(result["outcome"], "backend-error")

    def test_in_tree_backend_and_the_backend_path_check(self):
        result, _ = self.run_runner(
            "def get_requires_for_build_wheel(c=None):\n    return ['cython']\n",
            "requires", backend="intree", backend_path=["_build"], module_dir="_build",
        )
        self.assertEqual(result["outcome"], "ok", result)
        self.assertEqual(result["hooks"][0]["return"], ["cython"])
        # A backend found outside its backend-path (here: the stdlib's json)
        # is refused.
        result, _ = self.run_runner(None, "requires", backend="json", backend_path=["_build"], module_dir="_build")
        self.assertEqual(result["outcome"], "backend-invalid", result)


if __name__ == "__main__":
    unittest.main()
