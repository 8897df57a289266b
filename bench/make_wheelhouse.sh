#!/usr/bin/env bash
# The wheelhouse for the compatibility corpus and the benchmarks: every
# build requirement of every sdist in bench/corpus.toml (static, and what
# backends ask for at run time through get_requires_for_build_wheel), plus
# `build` and `uv` for the baselines, as wheels only, into
# bench/.cache/wheelhouse (or $1).
#
# bench/wheelhouse.txt is a closed list of exact pins, fetched one at a time
# with --no-deps: the list holds two versions of some projects (flit-core 3
# and 4, setuptools-scm 7 and 10) because different sdists bound them
# differently, and one `pip download -r` cannot hold both. Wheels only
# (--only-binary :all:): no package code runs. Re-running skips what is there.
#
# The index is whatever pip is configured to use; this script names none.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/.cache/wheelhouse}"
python="${PYTHON:-python3}"
mkdir -p "$dest"

# Pins not already in the wheelhouse (pip would skip them, but starting pip
# once per wheel costs ~1 s each).
missing=()
while read -r line; do
  line="${line%%#*}"
  line="${line//[[:space:]]/}"
  [ -z "$line" ] && continue
  name="${line%%==*}"
  version="${line#*==}"
  stem="$(echo "$name" | tr 'A-Z.-' 'a-z__')-$version-"
  if ! ls "$dest" | tr 'A-Z' 'a-z' | grep -qF -- "$stem"; then
    missing+=("$line")
  fi
done < "$here/wheelhouse.txt"

for req in "${missing[@]}"; do
  "$python" -m pip download --no-deps --only-binary :all: \
      --disable-pip-version-check -q -d "$dest" "$req"
done
echo "wheelhouse ready: $dest ($(find "$dest" -maxdepth 1 -name '*.whl' | wc -l) wheels, ${#missing[@]} fetched now)"
