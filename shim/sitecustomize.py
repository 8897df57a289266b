"""sdist-box's audit hook (PEP 578): the Python stream.

Loaded by every Python process of the build through PYTHONPATH, before any
package code runs. It *explains* what the build does -- one JSON line per
security-relevant event, with the line of the package's source it came
from -- and enforces nothing but one profile setting: the kernel does that,
and sdist-box treats every line here as attacker-writable. The exception is
`[python] ctypes = "system"` (SDIST_BOX_CTYPES=system): a `ctypes.dlopen` of
a library by path outside SDIST_BOX_CTYPES_ALLOW raises PermissionError in
the package's code (an explainer that also refuses; ctypes loading has no
kernel wall short of refusing mmap).

Line format (one write per line, each under 4000 bytes so pipe writes stay
atomic):

    {"v":1,"pid":12,"ppid":1,"t":<monotonic ns>,"seq":0,"ev":"socket.connect",
     "args":[...],"origin":"/build/src/setup.py:12","stack":[...]}

Destination: the inherited descriptor SDIST_BOX_EVENTS_FD; when a child
lost it (close_fds), the file SDIST_BOX_EVENTS_FILE, opened O_APPEND.

Rules this file lives by: import nothing heavy (no json: _json's encoder
only); never call repr()/str() on objects the package controls; guard
against re-entry (our own calls raise audit events too); never raise,
except for the ctypes refusal above.
"""

import os
import sys

try:
    from _json import encode_basestring_ascii as _enc
except ImportError:  # pragma: no cover - CPython always has _json
    _enc = None

_FD_ENV = "SDIST_BOX_EVENTS_FD"
_FILE_ENV = "SDIST_BOX_EVENTS_FILE"
_SRC_ENV = "SDIST_BOX_SOURCE_DIR"
_QUIET_ENV = "SDIST_BOX_QUIET_PREFIXES"
_MAX_LINE = 3900
_MAX_STR = 400
_MAX_ITEMS = 12

_str = str
_bytes = bytes
_int = int
_float = float
_bool = bool
_tuple = tuple
_list = list
_type = type
_none = type(None)
_getframe = sys._getframe
_write = os.write
_getpid = os.getpid
_getppid = os.getppid
_mono = __import__("time").monotonic_ns
_normpath = os.path.normpath

_state = {"busy": False, "pid": 0, "seq": 0, "fd": None, "file_fd": None}


def _setup():
    if _enc is None:
        return None
    fd_text = os.environ.get(_FD_ENV)
    file_path = os.environ.get(_FILE_ENV)
    if not fd_text and not file_path:
        return None
    src = os.environ.get(_SRC_ENV, "/build/src").rstrip("/") + "/"
    quiet = [p.rstrip("/") + "/" for p in os.environ.get(_QUIET_ENV, "").split(":") if p]
    for p in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.abspath(__file__))):
        if p:
            quiet.append(p.rstrip("/") + "/")
    try:
        fd = _int(fd_text) if fd_text else None
    except ValueError:
        fd = None
    return src, _tuple(quiet), fd, file_path


_config = _setup()


def _ctypes_setup():
    # The profile's `[python] ctypes = "system"`: libraries named by path
    # must lie beneath one of these directories (build env, interpreter,
    # system library dirs). A bare name (`libc.so.6`) is the loader's own
    # search of the system directories and is left alone.
    if os.environ.get("SDIST_BOX_CTYPES") != "system":
        return None
    allow = os.environ.get("SDIST_BOX_CTYPES_ALLOW", "")
    return _tuple(p.rstrip("/") + "/" for p in allow.split(":") if p.startswith("/"))


_ctypes_allow = _ctypes_setup()


def _ctypes_refused(args):
    """The library a `ctypes.dlopen` may not load, or None."""
    name = args[0] if args else None
    if _type(name) is _bytes:
        name = name.decode("latin-1")
    if _type(name) is not _str or "/" not in name:
        return None
    real = os.path.realpath(name)
    for prefix in _ctypes_allow:
        if (real + "/").startswith(prefix):
            return None
    return real


def _ctypes_hook(event, args):
    # Installed alone when there is no event stream but the profile
    # restricts ctypes; the refusal is the same as in _hook.
    if event == "ctypes.dlopen" and _ctypes_allow is not None:
        refused = _ctypes_refused(args)
        if refused is not None:
            raise PermissionError("sdist-box: this profile refuses loading %s through ctypes" % refused)


def _s(value):
    """A bounded, JSON-escaped string for an exact builtin str/bytes."""
    t = _type(value)
    if t is _str:
        text = value
    elif t is _bytes:
        text = value[:_MAX_STR].decode("latin-1")
    else:
        return None
    if len(text) > _MAX_STR:
        text = text[:_MAX_STR] + "..."
    return _enc(text)


def _v(value, depth=0):
    """JSON for exact builtin values only; anything else by type name."""
    t = _type(value)
    if t is _str or t is _bytes:
        return _s(value)
    if t is _bool:
        return "true" if value else "false"
    if t is _int:
        return _str(value) if -(1 << 62) < value < (1 << 62) else '"<big int>"'
    if t is _float:
        return _enc(_float.__repr__(value))
    if value is None:
        return "null"
    if (t is _tuple or t is _list) and depth < 2:
        return "[" + ",".join(_v(x, depth + 1) for x in value[:_MAX_ITEMS]) + "]"
    try:
        name = _type.__dict__["__name__"].__get__(t)
    except Exception:
        name = "object"
    return _enc("<" + (name if _type(name) is _str else "object") + ">")


def _origin(frame, src, quiet):
    """The first frame inside the source tree (else outside quiet paths)."""
    first_other = None
    stack = []
    depth = 0
    while frame is not None and depth < 60:
        depth += 1
        code = frame.f_code
        filename = code.co_filename
        if _type(filename) is _str and filename.startswith("<") and not filename.startswith("<frozen"):
            # Code exec'd from a string. setuptools runs setup.py that way:
            # name it by its module's __file__ when that is a plain str. A
            # string exec'd *by the package's own code* (a payload) is not
            # setup.py's text: skip it, so its caller's line is the origin.
            g = frame.f_globals
            f = dict.get(g, "__file__") if _type(g) is dict else None
            back = frame.f_back
            caller_in_src = False
            if back is not None:
                bf = back.f_code.co_filename
                if _type(bf) is _str and bf.startswith("<"):
                    bg = back.f_globals
                    bf = dict.get(bg, "__file__") if _type(bg) is dict else None
                caller_in_src = _type(bf) is _str and bf.startswith(src)
            if caller_in_src:
                frame = back
                continue
            if _type(f) is _str:
                filename = f
        if _type(filename) is _str:
            if filename.startswith(src):
                loc = filename + ":" + _str(frame.f_lineno)
                stack.append(loc)
                if len(stack) >= 4:
                    break
            elif first_other is None and not filename.startswith(quiet) and not filename.startswith("<frozen"):
                first_other = filename + ":" + _str(frame.f_lineno)
        frame = frame.f_back
    if stack:
        return stack[0], stack
    return first_other, ([first_other] if first_other else [])


def _emit(event, args_json):
    src, quiet, fd, file_path = _config
    pid = _getpid()
    st = _state
    if st["pid"] != pid:  # a fork: new process, new counter
        st["pid"] = pid
        st["seq"] = 0
        st["file_fd"] = None
    try:
        frame = _getframe(2)
    except Exception:
        frame = None
    origin, stack = _origin(frame, src, quiet)
    line = (
        '{"v":1,"pid":%d,"ppid":%d,"t":%d,"seq":%d,"ev":%s,"args":%s,"origin":%s,"stack":[%s]}\n'
        % (
            pid,
            _getppid(),
            _mono(),
            st["seq"],
            _enc(event),
            args_json,
            _enc(origin) if origin else "null",
            ",".join(_enc(s) for s in stack),
        )
    )
    st["seq"] += 1
    data = line.encode("ascii", "replace")
    if len(data) > _MAX_LINE:
        data = (
            '{"v":1,"pid":%d,"ppid":%d,"t":%d,"seq":%d,"ev":%s,"args":["<too long>"],"origin":%s,"stack":[]}\n'
            % (pid, _getppid(), _mono(), st["seq"] - 1, _enc(event), _enc(origin) if origin else "null")
        ).encode("ascii", "replace")
    if fd is not None:
        try:
            _write(fd, data)
            return
        except OSError:
            pass
    if file_path:
        if st["file_fd"] is None:
            st["file_fd"] = os.open(file_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        _write(st["file_fd"], data)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

_ALWAYS = frozenset(
    (
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "shutil.rmtree",
        "shutil.move",
        "os.remove",
        "os.rename",
        "os.chmod",
        "os.chown",
        "os.symlink",
        "os.link",
        "os.truncate",
        "os.putenv",
        "os.unsetenv",
        "sys.addaudithook",
        "urllib.Request",
        "http.client.connect",
        "ftplib.connect",
        "smtplib.connect",
        "pty.spawn",
    )
)


def _hook(event, args):
    st = _state
    if st["busy"]:
        return
    st["busy"] = True
    refused = None
    try:
        if event == "ctypes.dlopen" and _ctypes_allow is not None:
            refused = _ctypes_refused(args)
        if event == "open":
            path = args[0]
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 else 0
            tm = _type(mode)
            write = (tm is _str and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)) or (
                _type(flags) is _int and flags & _WRITE_FLAGS
            )
            if _type(path) is _str or _type(path) is _bytes:
                p = path if _type(path) is _str else path.decode("latin-1")
                # Prefixes are judged on the normalized path: `..` must not
                # carry `/build/src/../../etc/x` past them unreported.
                n = _normpath(p) if p.startswith("/") else p
                if not write:
                    # Reads of the interpreter, the build env and the build
                    # tree are the build's own business.
                    if n.startswith(_config[1]) or n.startswith(_config[0]) or not n.startswith("/"):
                        return
                    if n.startswith("/usr/") or n.startswith("/etc/ld.so") or n.startswith("/proc/self/"):
                        return
                elif n.startswith(_config[0]) or n.startswith("/tmp/"):
                    # Writes in the build tree and /tmp are what builds do.
                    if not (p.endswith(".pth") or "sitecustomize" in p):
                        return
                _emit(event, "[%s,%s,%s]" % (_s(p), _v(mode), _v(flags)))
            return
        if event == "exec" or event == "compile":
            code = args[0]
            t = _type(code)
            if t is _str or t is _bytes:
                # Code given as text: recorded only when the package's own
                # code asked for it (the stdlib does this all the time), as a
                # digest, never the text (it may be a payload, or a secret).
                try:
                    caller = _getframe(1)
                    cf = caller.f_code.co_filename
                    if _type(cf) is _str and cf.startswith("<"):
                        g = caller.f_globals
                        f = dict.get(g, "__file__") if _type(g) is dict else None
                        cf = f if _type(f) is _str else cf
                except Exception:
                    cf = ""
                if not (_type(cf) is _str and cf.startswith(_config[0])):
                    return
                if event == "compile" and len(args) > 1:
                    name = args[1]
                    if _type(name) is _str and (name.endswith(".py") or name.startswith("<frozen")):
                        return
                data = code if t is _bytes else code.encode("utf-8", "replace")
                import hashlib

                digest = hashlib.sha256(data).hexdigest()[:16]
                _emit(event, "[%s,%d]" % (_enc("sha256:" + digest), len(data)))
            return
        if event == "ctypes.call_function":
            return
        if event in _ALWAYS:
            if event == "os.putenv" or event == "os.unsetenv":
                key = args[0] if args else None
                k = key if _type(key) is _str else (key.decode("latin-1") if _type(key) is _bytes else "")
                if not (k.startswith("SDIST_BOX_") or k.startswith("PYTHON") or k == "LD_PRELOAD"):
                    return
            _emit(event, _v(_tuple(args) if _type(args) is _tuple else ()))
    except Exception:
        pass
    finally:
        st["busy"] = False
    if refused is not None:
        # The one place the hook raises: the profile refuses this library
        # (the event above is the report's record of it).
        raise PermissionError("sdist-box: this profile refuses loading %s through ctypes" % refused)


def _start():
    try:
        flags = sys.flags
        _emit(
            "hook.start",
            "[%s,%s,%s,%s]"
            % (
                _v(sys.executable),
                _v(_list(sys.orig_argv) if hasattr(sys, "orig_argv") else _list(sys.argv)),
                _v([flags.isolated, flags.no_site, flags.ignore_environment]),
                _v(_getppid()),
            ),
        )
    except Exception:
        pass


if _config is not None:
    _start()
    sys.addaudithook(_hook)
elif _ctypes_allow is not None:
    sys.addaudithook(_ctypes_hook)
