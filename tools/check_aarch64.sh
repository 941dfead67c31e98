#!/usr/bin/env bash
# Cross-compile and link pynn._C for aarch64 with Debian's cross g++ (apt-get install
# g++-aarch64-linux-gnu): proves the portable build compiles off x86 (the *_avx2.cpp files are
# left out, as CMakeLists.txt does there) without an aarch64 machine or container. It does not
# run the result; cibuildwheel's aarch64 wheels (pyproject.toml) run the smoke tests on one.
#
#   bash tools/check_aarch64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${CXX_AARCH64:-aarch64-linux-gnu-g++}
command -v "$cxx" >/dev/null || { echo "check_aarch64: $cxx not found (apt-get install g++-aarch64-linux-gnu)" >&2; exit 2; }
# pybind11's headers (a build dependency: build isolation keeps it out of a test venv)
python -c "import pybind11" 2>/dev/null || python -m pip install -q "pybind11>=2.12"
py_inc=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
pb_inc=$(python -c 'import pybind11; print(pybind11.get_include())')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mapfile -t sources < <(find csrc -name '*.cpp' ! -name '*_avx2.cpp' | sort)
objs=()
for src in "${sources[@]}"; do
  obj="$out/$(echo "$src" | tr / _).o"
  "$cxx" -std=c++17 -O2 -fPIC -fopenmp -Wall -Wno-unused-parameter -Icsrc -I"$py_inc" -I"$pb_inc" -c "$src" -o "$obj" &
  objs+=("$obj")
  # two compilers at a time on a 2-core machine
  if (( ${#objs[@]} % 2 == 0 )); then wait; fi
done
wait
# Python extension modules do not link libpython: unresolved Py* symbols are resolved at import.
"$cxx" -shared -fopenmp -o "$out/_C.so" "${objs[@]}"
# -shared leaves undefined symbols for import time; any of pynn's own (namespace pynn) would be a
# portable source calling an x86-only kernel, i.e. a build that loads nowhere.
nm_=${cxx%g++}nm
if "$nm_" -u --demangle "$out/_C.so" | grep -E ' pynn::' ; then
  echo "check_aarch64: the aarch64 module references pynn symbols that no portable source defines" >&2
  exit 1
fi
file "$out/_C.so" | sed "s|$out/||"
echo "check_aarch64: ${#sources[@]} portable sources compiled and linked for aarch64"
