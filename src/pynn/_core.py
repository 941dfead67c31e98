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

A stale extension, older than its ``.py`` (an editable install whose source was
edited after the last ``pip install -e .``), would silently run the old code:
then the ``.py`` is imported, with a warning saying to rebuild.
"""
from __future__ import annotations

import importlib.machinery
import os
import sys
import warnings

# Must list every module CMakeLists.txt's PYNN_CYTHON_MODULES compiles (tests/test_core_modes.py checks).
COMPILED_MODULES = ("pynn.autograd.engine", "pynn.functional.elementwise", "pynn.functional.registry",
                    "pynn.functional.nn", "pynn.functional.reduce", "pynn.backend.native.core",
                    "pynn.backend.native.nn", "pynn.backend.native.optim", "pynn.models.fit_loop",
                    "pynn.losses", "pynn.metrics")

PURE_REQUESTED = os.environ.get("PYNN_PURE_PYTHON", "").strip() not in ("", "0")


# Modules whose compiled build was older than their .py and so were imported from source.
STALE = set()

# Seconds by which a .py must be newer than its extension to count as edited since the
# build (installers may give both files their unpacking time, a few ms apart).
_STALE_SLACK = 2.0


def _find(fullname, path, loader, suffixes):
    for entry in path:
        spec = importlib.machinery.FileFinder(entry, (loader, suffixes)).find_spec(fullname)
        if spec is not None:
            return spec
    return None


class _CoreFinder:
    """Resolves the compiled modules' names: to their ``.py`` when PYNN_PURE_PYTHON
    is set or the extension is stale, else leaves them to the normal import."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname not in COMPILED_MODULES or path is None:
            return None
        source = _find(fullname, path, importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
        if PURE_REQUESTED:
            if source is None:
                raise ImportError(f"PYNN_PURE_PYTHON=1: no .py source for {fullname} in {list(path)}")
            return source
        ext = _find(fullname, path, importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
        if source is None or ext is None:
            return None
        try:
            stale = os.path.getmtime(source.origin) > os.path.getmtime(ext.origin) + _STALE_SLACK
        except OSError:
            return None
        if not stale:
            return None
        STALE.add(fullname)
        warnings.warn(f"pynn: {source.origin} is newer than its compiled module {ext.origin}; importing the "
                      f".py (re-run `pip install -e . --no-build-isolation` to rebuild the Cython core)",
                      RuntimeWarning, stacklevel=2)
        return source

    @staticmethod
    def invalidate_caches():
        pass


def install() -> None:
    """Put the core finder first on sys.meta_path (idempotent)."""
    if not any(f is _CoreFinder for f in sys.meta_path):
        if PURE_REQUESTED and any(name in sys.modules for name in COMPILED_MODULES):
            raise ImportError("PYNN_PURE_PYTHON=1 must be set before pynn is first imported")
        sys.meta_path.insert(0, _CoreFinder)


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
