"""Which Python-side core runs: the Cython-compiled modules or their pure-Python source.

The hot Python modules (``COMPILED_MODULES``) are compiled by Cython from their
own ``.py`` source (pure-Python mode, a ``.pxd`` beside each adds the C types;
see CMakeLists.txt). An installed package holds both the extension module and
the ``.py``; Python's import system prefers the extension. With
``PYNN_PURE_PYTHON=1`` in the environment (read once, when pynn is first
imported) a finder placed first on ``sys.meta_path`` loads the ``.py`` instead,
under the same module name, so pickles and ``isinstance`` checks are the same in
both modes. A missing extension (a build without Cython) falls back to the
``.py`` by itself.
"""
from __future__ import annotations

import importlib.machinery
import os
import sys

# Must list every module CMakeLists.txt's PYNN_CYTHON_MODULES compiles (tests/test_core_modes.py checks).
COMPILED_MODULES = ("pynn.autograd.engine", "pynn.functional.elementwise", "pynn.functional.registry",
                    "pynn.functional.nn", "pynn.functional.reduce", "pynn.backend.native.core",
                    "pynn.backend.native.nn", "pynn.backend.native.optim")

PURE_REQUESTED = os.environ.get("PYNN_PURE_PYTHON", "").strip() not in ("", "0")


class _PureSourceFinder:
    """Resolves the compiled modules' names to their ``.py`` files only."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname not in COMPILED_MODULES or path is None:
            return None
        stem = fullname.rpartition(".")[2]
        for entry in path:
            finder = importlib.machinery.FileFinder(
                entry, (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES))
            spec = finder.find_spec(fullname)
            if spec is not None:
                return spec
        raise ImportError(f"PYNN_PURE_PYTHON=1: no {stem}.py source for {fullname} in {list(path)}")

    @staticmethod
    def invalidate_caches():
        pass


def install() -> None:
    """Put the pure-source finder first when PYNN_PURE_PYTHON asks for it (idempotent)."""
    if PURE_REQUESTED and not any(f is _PureSourceFinder for f in sys.meta_path):
        if any(name in sys.modules for name in COMPILED_MODULES):
            raise ImportError("PYNN_PURE_PYTHON=1 must be set before pynn is first imported")
        sys.meta_path.insert(0, _PureSourceFinder)


def status() -> dict:
    """{module name: (core, file)} for each compiled-or-pure module, core being
    "compiled" or "pure"."""
    out = {}
    for name in COMPILED_MODULES:
        mod = sys.modules.get(name) or __import__(name, fromlist=["_"])
        f = mod.__file__
        out[name] = ("pure" if f.endswith((".py", ".pyc")) else "compiled", f)
    return out


def name() -> str:
    """"compiled" when every hot module is the Cython build, "pure" when none is, else "mixed"."""
    kinds = {core for core, _ in status().values()}
    return kinds.pop() if len(kinds) == 1 else "mixed"
