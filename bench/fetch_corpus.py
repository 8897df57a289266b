#!/usr/bin/env python3
"""Fetch the compatibility corpus: the sdists pinned in bench/corpus.toml.

Downloads every pinned sdist that is missing from bench/.cache/sdists
(git-ignored), checks its sha256 against the pin, and renames it into place
atomically; a cached file with the wrong hash is fetched again. Runs no
package code: it fetches bytes from the package index's simple API and
never unpacks, builds or imports what it fetched (unlike `pip download`,
which prepares an sdist's metadata and so runs its build backend).

This is tests/setup/fetch_sdists.py with the corpus's pins and cache
directory; every option of that script works here too, e.g.

    bench/fetch_corpus.py              # download what is missing
    bench/fetch_corpus.py --check      # offline: is the cache complete and intact?
    bench/fetch_corpus.py --only attrs # one project

The index is the one pip is configured to use; none is named here.
"""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests" / "setup"))

import fetch_sdists  # noqa: E402

PINS = BENCH / "corpus.toml"
DEST = BENCH / ".cache" / "sdists"


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
    defaults = []
    if not any(a == "--pins" or a.startswith("--pins=") for a in argv):
        defaults += ["--pins", str(PINS)]
    if not any(a == "--dest" or a.startswith("--dest=") for a in argv):
        defaults += ["--dest", str(DEST)]
    return fetch_sdists.main(defaults + argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
