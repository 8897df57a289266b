#!/usr/bin/env bash
# Download the pinned build-requirement wheels (tests/setup/wheelhouse.txt)
# into tests/.cache/wheelhouse (or $1), as wheels only: nothing is built and
# no package code runs. Safe to re-run: pip skips files already in the dir.
#
# The index is whatever pip is configured to use (PIP_INDEX_URL, pip.conf,
# or pip's default); this script names none.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dest="${1:-$repo/tests/.cache/wheelhouse}"
python="${PYTHON:-python3}"

mkdir -p "$dest"
"$python" -m pip download \
    --only-binary :all: \
    --disable-pip-version-check \
    -d "$dest" \
    -r "$here/wheelhouse.txt"

echo "wheelhouse ready: $dest ($(find "$dest" -maxdepth 1 -name '*.whl' | wc -l) wheels)"
