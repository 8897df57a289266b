#!/usr/bin/env python3
"""Download the pinned real-package sdists used by sdist-box's tests.

Reads tests/fixtures/sdists.toml (or a .json file with the same shape:
{"sdist": [{name, version, filename, sha256, ...}, ...]}) and, for every
pinned file missing from the cache directory, asks the package index's
PEP 691 JSON simple API for the project page, finds the pinned filename,
downloads it, checks its sha256 against the PIN (the index's claim is only
cross-checked), and moves it into place atomically.

Never runs package code: it only fetches bytes over HTTP(S).

The index is the one pip is configured to use (``--index-url``, else
PIP_INDEX_URL, else ``pip config`` download/global index-url, else pip's
built-in default). No index address is written in this file.

Standard library only (Python >= 3.11 for tomllib; .json pins work on any
Python 3); pip is consulted, in a subprocess, just to learn its settings.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html.parser
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PINS = REPO / "tests" / "fixtures" / "sdists.toml"
DEFAULT_DEST = REPO / "tests" / ".cache" / "sdists"

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
USER_AGENT = "sdist-box-test-fixtures/1 (urllib)"
MAX_SDIST_BYTES = 64 * 1024 * 1024  # hard cap for any single download
CHUNK = 64 * 1024


class FetchError(Exception):
    """A failure for one package, with a message meant for a person."""


class Transient(FetchError):
    """A failure worth retrying (network hiccup, 5xx, 429, timeout)."""


# --------------------------------------------------------------------------
# pins


def load_pins(path: Path) -> list[dict]:
    raw = path.read_bytes()
    if path.suffix == ".json":
        data = json.loads(raw)
    else:
        import tomllib  # Python >= 3.11

        data = tomllib.loads(raw.decode("utf-8"))
    entries = data.get("sdist")
    if not isinstance(entries, list) or not entries:
        raise SystemExit(f"{path}: no [[sdist]] entries")
    seen = set()
    for i, e in enumerate(entries):
        where = f"{path}: entry {i} ({e.get('name', '?')})"
        for key in ("name", "version", "filename", "sha256"):
            if not isinstance(e.get(key), str) or not e[key]:
                raise SystemExit(f"{where}: missing or empty '{key}'")
        fn = e["filename"]
        if "/" in fn or "\\" in fn or fn in (".", "..") or fn.startswith("."):
            raise SystemExit(f"{where}: unsafe filename {fn!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", e["sha256"]):
            raise SystemExit(f"{where}: sha256 must be 64 lowercase hex digits")
        if fn in seen:
            raise SystemExit(f"{where}: duplicate filename {fn}")
        seen.add(fn)
    return entries


def normalize(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------
# pip's configuration


def pip_config(python: str) -> dict[str, str]:
    """pip's merged configuration as {'section.key': value}, env included."""
    try:
        out = subprocess.run(
            [python, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"),
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0:
        return {}
    conf = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        conf[key.strip()] = value
    return conf


def pip_setting(conf: dict[str, str], key: str) -> str | None:
    """Same precedence as pip: env var, then [download], then [global]."""
    env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
    if env:
        return env
    for section in (":env:", "download", "global"):
        value = conf.get(f"{section}.{key}")
        if value:
            return value
    return None


def pip_default_index(python: str) -> str:
    code = "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"
    try:
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SystemExit(f"cannot ask pip for its default index: {e}")
    url = out.stdout.strip()
    if out.returncode != 0 or not url:
        raise SystemExit(
            "cannot learn pip's default index; pass --index-url or set "
            "PIP_INDEX_URL\n" + out.stderr.strip()
        )
    return url


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + host))


# --------------------------------------------------------------------------
# HTTP


class Http:
    def __init__(self, cert: str | None, proxy: str | None, timeout: float,
                 retries: int):
        ctx = ssl.create_default_context(cafile=cert) if cert else \
            ssl.create_default_context()
        handlers: list = [urllib.request.HTTPSHandler(context=ctx)]
        if proxy:
            handlers.append(urllib.request.ProxyHandler(
                {"http": proxy, "https": proxy}))
        self.opener = urllib.request.build_opener(*handlers)
        self.timeout = timeout
        self.retries = retries

    @staticmethod
    def _split_auth(url: str) -> tuple[str, str | None]:
        parts = urllib.parse.urlsplit(url)
        if "@" not in parts.netloc:
            return url, None
        userinfo, host = parts.netloc.rsplit("@", 1)
        token = base64.b64encode(
            urllib.parse.unquote(userinfo).encode()).decode()
        return urllib.parse.urlunsplit(parts._replace(netloc=host)), \
            "Basic " + token

    def open(self, url: str, accept: str | None, auth: str | None):
        """One attempt. Returns the response; raises FetchError/Transient."""
        url, inline_auth = self._split_auth(url)
        req = urllib.request.Request(url)
        req.add_header("User-Agent", USER_AGENT)
        if accept:
            req.add_header("Accept", accept)
        if inline_auth or auth:
            req.add_header("Authorization", inline_auth or auth)
        try:
            return self.opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            msg = f"HTTP {e.code} {e.reason} for {redact(url)}"
            e.close()
            if e.code == 429 or 500 <= e.code < 600:
                raise Transient(msg) from None
            raise FetchError(msg) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError,
                OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise FetchError(
                    f"TLS verification failed for {redact(url)}: {reason}"
                ) from None
            raise Transient(f"{redact(url)}: {reason}") from None

    def retrying(self, what: str, fn):
        delay = 1.0
        for attempt in range(1, self.retries + 2):
            try:
                return fn()
            except Transient as e:
                if attempt > self.retries:
                    raise FetchError(
                        f"{what}: giving up after {attempt} attempts: {e}"
                    ) from None
                print(f"  {what}: {e}; retrying in {delay:.0f}s",
                      file=sys.stderr)
                time.sleep(delay)
                delay *= 2


# --------------------------------------------------------------------------
# simple API


class _LinkParser(html.parser.HTMLParser):
    """PEP 503 HTML fallback for indexes that do not speak PEP 691."""

    def __init__(self):
        super().__init__()
        self.files: list[dict] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._text = []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            href = self._href
            url, _, frag = href.partition("#")
            hashes = {}
            if "=" in frag:
                algo, _, digest = frag.partition("=")
                hashes[algo] = digest
            name = "".join(self._text).strip() or \
                urllib.parse.unquote(url.rsplit("/", 1)[-1])
            self.files.append({"filename": name, "url": url, "hashes": hashes})
            self._href = None


def project_files(http: Http, index: str, auth: str | None,
                  project: str) -> tuple[str, list]:
    page_url = index.rstrip("/") + "/" + normalize(project) + "/"

    def attempt():
        with http.open(page_url, ACCEPT, auth) as resp:
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
            body = resp.read(32 * 1024 * 1024)
            final = resp.geturl()
        return ctype, body, final

    ctype, body, final = http.retrying(f"{project}: index page", attempt)
    if ctype == "application/vnd.pypi.simple.v1+json":
        try:
            data = json.loads(body)
            files = data["files"]
        except (ValueError, KeyError, TypeError) as e:
            raise FetchError(
                f"{project}: malformed PEP 691 JSON from {redact(final)}: {e}"
            ) from None
        return final, files
    if ctype in ("text/html", "application/vnd.pypi.simple.v1+html"):
        parser = _LinkParser()
        parser.feed(body.decode("utf-8", "replace"))
        return final, parser.files
    raise FetchError(
        f"{project}: unexpected Content-Type {ctype!r} from {redact(final)}"
    )


# --------------------------------------------------------------------------
# files


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download(http: Http, url: str, auth: str | None, dest: Path, pin: dict):
    want = pin["sha256"]
    limit = min(int(pin.get("size") or MAX_SDIST_BYTES), MAX_SDIST_BYTES)

    def attempt():
        fd, tmp = tempfile.mkstemp(prefix=f".{pin['filename']}.",
                                   suffix=".part", dir=dest.parent)
        try:
            h = hashlib.sha256()
            n = 0
            with os.fdopen(fd, "wb") as out:
                with http.open(url, None, auth) as resp:
                    while True:
                        try:
                            chunk = resp.read(CHUNK)
                        except (OSError, ValueError) as e:
                            raise Transient(f"read failed: {e}") from None
                        if not chunk:
                            break
                        n += len(chunk)
                        if n > limit:
                            raise FetchError(
                                f"download larger than {limit} bytes; "
                                "refusing (pinned size exceeded)")
                        h.update(chunk)
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            got = h.hexdigest()
            if got != want:
                raise FetchError(
                    f"sha256 mismatch for {pin['filename']}: pinned {want}, "
                    f"downloaded {got} ({n} bytes) - file discarded")
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
            tmp = None
            return n
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass

    return http.retrying(f"{pin['name']}: download", attempt)


def fetch_one(pin: dict, dest_dir: Path, http: Http | None, index: str | None,
              auth: str | None, pages: dict) -> str:
    dest = dest_dir / pin["filename"]
    if dest.exists():
        got = sha256_of(dest)
        if got == pin["sha256"]:
            return "present"
        if http is None:
            raise FetchError(f"{dest} has sha256 {got}, pin says "
                             f"{pin['sha256']}")
        print(f"  {pin['filename']}: cached copy has wrong sha256 {got}; "
              "fetching again", file=sys.stderr)
    elif http is None:
        raise FetchError(f"{dest} is missing")

    key = normalize(pin["name"])
    if key not in pages:
        pages[key] = project_files(http, index, auth, pin["name"])
    page_url, files = pages[key]
    match = [f for f in files if f.get("filename") == pin["filename"]]
    if not match:
        raise FetchError(
            f"{pin['name']}: {pin['filename']} is not listed on "
            f"{redact(page_url)} ({len(files)} files listed)")
    entry = match[0]
    claimed = (entry.get("hashes") or {}).get("sha256")
    if claimed and claimed.lower() != pin["sha256"]:
        raise FetchError(
            f"{pin['filename']}: index says sha256 {claimed}, pin says "
            f"{pin['sha256']}; refusing")
    if entry.get("yanked"):
        print(f"  note: {pin['filename']} is yanked on the index "
              f"({entry['yanked']})", file=sys.stderr)
    url = urllib.parse.urljoin(page_url, entry["url"])
    # Credentials given in the index URL also go to files on the same host.
    if auth and urllib.parse.urlsplit(url).netloc != \
            urllib.parse.urlsplit(page_url).netloc:
        auth = None
    n = download(http, url, auth, dest, pin)
    return f"downloaded ({n} bytes)"


# --------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pins", type=Path, default=DEFAULT_PINS,
                    help="pin list (.toml or .json); default: %(default)s")
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                    help="cache directory; default: %(default)s")
    ap.add_argument("--index-url",
                    help="simple index to use (default: pip's configuration)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="fetch only these projects")
    ap.add_argument("--check", action="store_true",
                    help="no network: verify the cache only")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter whose pip configuration is used")
    ap.add_argument("--timeout", type=float, default=None,
                    help="socket timeout, seconds (default: pip's, else 60)")
    ap.add_argument("--retries", type=int, default=3,
                    help="retries per request on transient errors")
    args = ap.parse_args(argv)

    pins = load_pins(args.pins)
    if args.only:
        wanted = {normalize(n) for n in args.only}
        unknown = wanted - {normalize(p["name"]) for p in pins}
        if unknown:
            print(f"unknown project(s): {', '.join(sorted(unknown))}",
                  file=sys.stderr)
            return 2
        pins = [p for p in pins if normalize(p["name"]) in wanted]

    args.dest.mkdir(parents=True, exist_ok=True)

    http = index = auth = None
    if not args.check:
        conf = pip_config(args.python)
        index = args.index_url or pip_setting(conf, "index-url") or \
            pip_default_index(args.python)
        cert = pip_setting(conf, "cert")
        proxy = pip_setting(conf, "proxy")
        timeout = args.timeout or float(pip_setting(conf, "timeout") or 60)
        http = Http(cert, proxy, timeout, max(0, args.retries))
        print(f"index: {redact(index)}")
        index, auth = Http._split_auth(index)

    pages: dict = {}
    failures = []
    for pin in pins:
        label = f"{pin['name']} {pin['version']}"
        try:
            status = fetch_one(pin, args.dest, http, index, auth, pages)
            print(f"ok    {label:28} {pin['filename']}: {status}")
        except FetchError as e:
            failures.append((label, str(e)))
            print(f"FAIL  {label:28} {e}", file=sys.stderr)
        except ssl.SSLError as e:
            failures.append((label, f"TLS error: {e}"))
            print(f"FAIL  {label:28} TLS error: {e}", file=sys.stderr)

    if failures:
        print(f"\n{len(failures)} of {len(pins)} sdists failed:",
              file=sys.stderr)
        for label, msg in failures:
            print(f"  {label}: {msg}", file=sys.stderr)
        return 1
    print(f"{len(pins)} sdists ready in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
