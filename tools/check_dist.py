"""Check what tools/build_wheels.sh wrote: the sdist holds every tracked file a build or a user
needs (everything git tracks except CI scripts), and the wheel holds every module of the package,
its compiled extension, the Cython-compiled core modules and a vendored OpenMP runtime, but no
sources a wheel should not ship (C/C++, .pyx/.pxd).

    python tools/check_dist.py dist/
"""
import ast
import fnmatch
import pathlib
import subprocess
import sys
import tarfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SDIST_EXCLUDED = [".ci/*"]           # mirrors [tool.scikit-build] sdist.exclude (tracked files only)
WHEEL_FORBIDDEN = ["*.c", "*.cpp", "*.h", "*.pyx", "*.pxd"]


def tracked_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def check_sdist(path):
    with tarfile.open(path) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = [f for f in tracked_files() if not any(fnmatch.fnmatch(f, p) for p in SDIST_EXCLUDED)]
    missing = sorted(set(wanted) - names)
    leaked = sorted(n for n in names if n.startswith((".ci/", "build/", ".ci-venv/")))
    return [f"sdist lacks {m}" for m in missing] + [f"sdist ships {n}" for n in leaked]


def compiled_core_modules():
    """pynn._core.COMPILED_MODULES, read from the source (this script does not import pynn)."""
    tree = ast.parse((ROOT / "src/pynn/_core.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMPILED_MODULES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("src/pynn/_core.py has no COMPILED_MODULES")


def check_wheel(path):
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
    package = [f.removeprefix("src/") for f in tracked_files()
               if f.startswith("src/pynn/") and f.endswith((".py", ".pyi"))]
    problems = [f"wheel lacks {m}" for m in sorted(set(package) - names)]
    if not any(n.startswith("pynn/_C.") and n.endswith(".so") for n in names):
        problems.append("wheel has no compiled pynn/_C extension")
    for mod in compiled_core_modules():   # the Cython-compiled core: each .py has its extension beside it
        stem = mod.replace(".", "/")
        if not any(n.startswith(stem + ".") and n.endswith((".so", ".pyd")) for n in names):
            problems.append(f"wheel lacks the compiled core module {mod} ({stem}.*.so)")
    if not any(n.startswith("pynn_cpu.libs/libgomp") for n in names):
        problems.append("wheel does not vendor libgomp (was it repaired by auditwheel?)")
    problems += [f"wheel ships source {n}" for n in sorted(names)
                 if any(fnmatch.fnmatch(n, p) for p in WHEEL_FORBIDDEN)]
    return problems


def main(dist):
    dist = pathlib.Path(dist)
    sdists = sorted(dist.glob("*.tar.gz"))
    wheels = sorted(dist.glob("*manylinux*.whl"))
    if not sdists or not wheels:
        print(f"check_dist: expected an sdist and a manylinux wheel in {dist}", file=sys.stderr)
        return 1
    problems = check_sdist(sdists[-1]) + check_wheel(wheels[-1])
    for p in problems:
        print("check_dist:", p, file=sys.stderr)
    if not problems:
        print(f"check_dist: {sdists[-1].name} and {wheels[-1].name} are complete")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist"))
