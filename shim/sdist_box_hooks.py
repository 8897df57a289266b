"""sdist-box's PEP 517 hook runner. Runs inside the sandbox; stdlib only.

Protocol
--------
Usage: ``python sdist_box_hooks.py CONTROL_DIR``

sdist-box writes ``CONTROL_DIR/input.json``::

    {"protocol": 1,
     "source_dir": "/build/src",
     "backend": "setuptools.build_meta:__legacy__",
     "backend_path": ["/build/src/_custom"],      # in-tree backends
     "phase": "requires" | "metadata" | "wheel",
     "config_settings": {},
     "wheel_directory": "/build/out",
     "metadata_directory": "/build/out/.sdist-box-metadata",
     "metadata_path": "/build/out/.sdist-box-metadata/pkg-1.0.dist-info",
     "prepare_metadata": false}

Phase ``requires`` calls ``get_requires_for_build_wheel``; phase
``metadata`` calls ``prepare_metadata_for_build_wheel`` into
``metadata_directory`` (absent from the backend: status ``missing``, not an
error); phase ``wheel`` calls ``build_wheel``, passing ``metadata_path``
(the ``.dist-info`` an earlier ``metadata`` run made) when given, or first
calls ``prepare_metadata_for_build_wheel`` itself when ``prepare_metadata``
is true. sdist-box runs each hook call in a sandbox of its own, like
pyproject-hooks runs each in a fresh process. The runner always answers in
``CONTROL_DIR/result.json`` (written to a temporary name, then renamed)::

    {"protocol": 1, "phase": "...",
     "outcome": "ok" | "backend-unavailable" | "backend-invalid" |
                "hook-missing" | "backend-error" | "memory-limit" |
                "process-limit" | "file-size-limit",
     "hooks": [{"name": "...", "status": "ok" | "missing" | "error",
                "seconds": 0.12, "return": ...}],
     "error": {"type": "...", "message": "...", "traceback": "..."} | null}

and exits 0; 2 means it could not even read its input. The backend's own
output goes to this process's stdout and stderr, which sdist-box captures.

Everything here runs next to the package's code, in the same process, so
nothing in the result is trusted by sdist-box: it is an explanation, checked
against what sdist-box sees for itself (the wheel file, the kernel).
"""

import errno
import json
import os
import sys
import time
import traceback

PROTOCOL = 1
MAX_TEXT = 16 * 1024


class BackendUnavailable(Exception):
    """The backend could not be imported."""


class BackendInvalid(Exception):
    """An in-tree backend was found outside its backend-path."""


def _bounded(text):
    text = str(text)
    if len(text) > MAX_TEXT:
        return text[: MAX_TEXT // 2] + "\n[… truncated …]\n" + text[-MAX_TEXT // 2 :]
    return text


def _classify(exc):
    """The outcome for an exception raised by a hook."""
    if isinstance(exc, MemoryError):
        return "memory-limit"
    if isinstance(exc, OSError):
        if exc.errno == errno.EAGAIN and isinstance(exc, BlockingIOError):
            return "process-limit"
        if exc.errno == errno.EFBIG:
            return "file-size-limit"
    # A limit hit deep inside a backend often comes back wrapped.
    seen = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, MemoryError):
            return "memory-limit"
        if isinstance(cause, BlockingIOError) and cause.errno == errno.EAGAIN:
            return "process-limit"
        cause = cause.__cause__ or cause.__context__
    return "backend-error"


def _error(exc):
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # a hostile exception can break formatting
        tb = "(traceback unavailable)"
    try:
        message = str(exc)
    except Exception:
        message = "(message unavailable)"
    return {
        "type": type(exc).__name__,
        "message": _bounded(message),
        "traceback": _bounded(tb),
    }


def _load_backend(spec, backend_path, source_dir):
    module_name, _, attr = spec.partition(":")
    module_name = module_name.strip()
    if backend_path:
        for entry in reversed(backend_path):
            sys.path.insert(0, entry)
    try:
        import importlib

        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(
            "cannot import the build backend %r: %s" % (spec, exc)
        ) from exc
    if backend_path:
        location = os.path.realpath(getattr(module, "__file__", "") or "")
        roots = [os.path.realpath(p) for p in backend_path]
        if not any(
            location == r or location.startswith(r.rstrip(os.sep) + os.sep)
            for r in roots
        ):
            raise BackendInvalid(
                "the backend %r was loaded from %r, not from its backend-path %r"
                % (spec, location, backend_path)
            )
    obj = module
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _call(hooks, backend, name, required, *args):
    """Call one hook, recording it; returns (present, value)."""
    hook = getattr(backend, name, None)
    if hook is None:
        hooks.append({"name": name, "status": "missing", "seconds": 0.0, "return": None})
        if required:
            raise LookupError("the build backend has no %s hook" % name)
        return False, None
    started = time.monotonic()
    entry = {"name": name, "status": "error", "seconds": 0.0, "return": None}
    hooks.append(entry)
    try:
        value = hook(*args)
    finally:
        entry["seconds"] = round(time.monotonic() - started, 6)
    entry["status"] = "ok"
    entry["return"] = value
    return True, value


def _write_result(control_dir, result):
    path = os.path.join(control_dir, "result.json")
    tmp = path + ".tmp"
    try:
        text = json.dumps(result)
    except (TypeError, ValueError):
        # A backend returned something JSON cannot hold.
        for hook in result.get("hooks", []):
            hook["return"] = repr(type(hook.get("return")).__name__)
        result["outcome"] = "backend-error"
        result["error"] = {
            "type": "TypeError",
            "message": "a hook returned a value that is not JSON",
            "traceback": "",
        }
        text = json.dumps(result)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def run(control_dir):
    control_dir = os.path.abspath(control_dir)
    with open(os.path.join(control_dir, "input.json"), encoding="utf-8") as f:
        spec = json.load(f)
    phase = spec.get("phase")
    result = {"protocol": PROTOCOL, "phase": phase, "outcome": "ok", "hooks": [], "error": None}
    config = spec.get("config_settings") or {}
    try:
        os.chdir(spec["source_dir"])
        backend = _load_backend(spec["backend"], spec.get("backend_path") or [], spec["source_dir"])
        if phase == "requires":
            present, value = _call(result["hooks"], backend, "get_requires_for_build_wheel", False, config)
            if not present:
                result["hooks"][-1]["return"] = []
            elif not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise TypeError("get_requires_for_build_wheel must return a list of strings")
            else:
                result["hooks"][-1]["return"] = list(value)
        elif phase == "metadata":
            meta_dir = spec["metadata_directory"]
            os.makedirs(meta_dir, exist_ok=True)
            present, value = _call(
                result["hooks"], backend, "prepare_metadata_for_build_wheel", False, meta_dir, config
            )
            if present and (not isinstance(value, str) or "/" in value or value in ("", ".", "..")):
                raise TypeError("prepare_metadata_for_build_wheel must return the .dist-info directory's name")
        elif phase == "wheel":
            metadata = spec.get("metadata_path") or None
            if spec.get("prepare_metadata"):
                meta_dir = spec["metadata_directory"]
                os.makedirs(meta_dir, exist_ok=True)
                present, value = _call(
                    result["hooks"], backend, "prepare_metadata_for_build_wheel", False, meta_dir, config
                )
                if present:
                    if not isinstance(value, str) or "/" in value or value in ("", ".", ".."):
                        raise TypeError(
                            "prepare_metadata_for_build_wheel must return the .dist-info directory's name"
                        )
                    # PEP 517: build_wheel gets the .dist-info directory itself.
                    metadata = os.path.join(meta_dir, value)
            _, value = _call(
                result["hooks"], backend, "build_wheel", True, spec["wheel_directory"], config, metadata
            )
            if not isinstance(value, str):
                raise TypeError("build_wheel must return the wheel's file name as a str")
        else:
            raise ValueError("unknown phase %r" % (phase,))
    except BackendUnavailable as exc:
        result["outcome"] = "backend-unavailable"
        result["error"] = _error(exc)
    except BackendInvalid as exc:
        result["outcome"] = "backend-invalid"
        result["error"] = _error(exc)
    except LookupError as exc:
        if str(exc).startswith("the build backend has no"):
            result["outcome"] = "hook-missing"
        else:
            result["outcome"] = _classify(exc)
        result["error"] = _error(exc)
    except BaseException as exc:  # SystemExit from setup.py too
        result["outcome"] = _classify(exc)
        result["error"] = _error(exc)
    if result["outcome"] != "ok":
        sys.stderr.write(
            "sdist-box hook runner: %s: %s\n"
            % (result["outcome"], (result["error"] or {}).get("message", ""))
        )
        if result["error"] and result["error"].get("traceback"):
            sys.stderr.write(result["error"]["traceback"])
        sys.stderr.flush()
    _write_result(control_dir, result)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: sdist_box_hooks.py CONTROL_DIR\n")
        return 2
    try:
        run(argv[1])
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write("sdist-box hook runner: cannot run: %s\n" % (exc,))
        return 2
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
