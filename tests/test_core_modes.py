"""The Cython-compiled Python core and its pure-Python source (issue #16).

The compiled modules are built from the same ``.py`` files (pure-Python mode +
``.pxd``); ``PYNN_PURE_PYTHON=1`` imports the ``.py`` instead. These tests run
both modes in subprocesses (the choice is made once, at import) and check they
compute the same numbers, and that a built package uses the compiled core by
default.
"""
import glob
import json
import os
import pickle
import subprocess
import sys
import textwrap
import copy

import numpy as np
import pytest

import pynn
from pynn import _core


def _run(code, pure):
    env = dict(os.environ)
    env.pop("PYNN_PURE_PYTHON", None)
    if pure:
        env["PYNN_PURE_PYTHON"] = "1"
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_STATUS = """
    import json, pynn
    from pynn import _core
    print(json.dumps({"name": _core.name(), "status": _core.status(), "requested": _core.PURE_REQUESTED}))
"""


def _built_extensions():
    """Compiled core modules present in the installed package (next to pynn/_C)."""
    found = []
    for name in _core.COMPILED_MODULES:
        parts = name.split(".")[1:]
        for root in pynn.__path__:
            if glob.glob(os.path.join(root, *parts[:-1], parts[-1] + ".*.so")) + \
                    glob.glob(os.path.join(root, *parts[:-1], parts[-1] + ".*.pyd")):
                found.append(name)
                break
    return found


def test_pure_python_env_imports_every_core_module_from_its_py_source():
    got = _run(_STATUS, pure=True)
    assert got["requested"] is True
    assert got["name"] == "pure"
    for name, (core, path) in got["status"].items():
        assert core == "pure" and path.endswith(".py"), (name, path)
    assert set(got["status"]) == set(_core.COMPILED_MODULES)


def test_compiled_core_is_the_default_when_built():
    built = _built_extensions()
    if not built:
        pytest.skip("the package was built without the Cython core (no compiled modules installed)")
    got = _run(_STATUS, pure=False)
    assert got["requested"] is False
    # Every module that has an extension beside it is imported compiled, not from its .py.
    for name in built:
        core, path = got["status"][name]
        assert core == "compiled" and not path.endswith(".py"), (name, path)
    assert set(built) == set(_core.COMPILED_MODULES), "a module in COMPILED_MODULES was not built"


def test_compiled_modules_list_matches_the_cmake_list():
    cmake = os.path.join(os.path.dirname(__file__), "..", "CMakeLists.txt")
    if not os.path.exists(cmake):
        pytest.skip("no CMakeLists.txt beside the tests (installed tests)")
    text = open(cmake).read()
    start = text.index("set(PYNN_CYTHON_MODULES") + len("set(PYNN_CYTHON_MODULES")
    mods = text[start:text.index(")", start)].split()
    assert sorted("pynn." + m.replace("/", ".") for m in mods) == sorted(_core.COMPILED_MODULES)


def test_info_names_the_core_and_its_files():
    env = dict(os.environ, PYNN_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-m", "pynn", "info"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "python core: pure" in out.stdout
    assert "engine.py" in out.stdout


# The same computation in both modes: autograd (gradients of a small graph with
# broadcasting, reuse of a node, reductions), a few fit() epochs, predictions
# after save/load, and a deepcopy/pickle of a model.
_WORKLOAD = """
    import json, copy, pickle, os, tempfile
    import numpy as np
    import pynn
    from pynn import layers

    out = {}
    r = np.random.default_rng(0)
    a = pynn.Tensor(r.standard_normal((4, 3)), requires_grad=True, dtype=np.float64)
    b = pynn.Tensor(r.standard_normal(3), requires_grad=True, dtype=np.float64)
    h = (a * b + a).tanh()
    loss = ((h * h - b) / 2.0).sum() + (-h).exp().mean() + (a - 1.0).abs().max()
    loss.backward()
    out["autograd"] = [float(loss.data), a.grad.tolist(), b.grad.tolist()]
    ga, gb = pynn.autograd.grad((a * a * b).sum(), [a, b])
    out["grad_fn"] = [ga.tolist(), gb.tolist()]

    pynn.set_seed(0)
    x = r.standard_normal((96, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    m = pynn.Sequential([layers.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(2)])
    m.compile(optimizer=pynn.optimizers.Adam(1e-2),
              loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    hist = m.fit(x, y, batch_size=16, epochs=3, verbose=0)
    out["history"] = {k: [float(v) for v in vs] for k, vs in hist.history.items()}
    out["pred"] = m.predict(x[:5]).tolist()
    path = os.path.join(tempfile.mkdtemp(), "m.pynn")
    m.save(path)
    out["loaded_pred"] = pynn.load_model(path).predict(x[:5]).tolist()
    c = copy.deepcopy(m)
    out["deepcopy_pred"] = c.predict(x[:5]).tolist()
    w = m.trainable_weights[0]
    w2 = pickle.loads(pickle.dumps(w))
    out["pickled_weight"] = [type(w2).__name__, w2.name == w.name, bool(w2.trainable), bool(w2.requires_grad),
                             bool(np.array_equal(w2.data, w.data))]
    out["core"] = pynn.autograd.engine.CORE
    print(json.dumps(out))
"""


def test_pure_and_default_core_compute_identical_results():
    pure = _run(_WORKLOAD, pure=True)
    default = _run(_WORKLOAD, pure=False)
    assert pure.pop("core") == "pure"
    default_core = default.pop("core")
    assert default_core in ("pure", "compiled")
    if not _built_extensions():
        assert default_core == "pure"
    # Same operations on the same data in the same order: identical numbers.
    assert pure == default
    assert pure["pred"] == pure["loaded_pred"] == pure["deepcopy_pred"]
    assert pure["pickled_weight"] == ["Variable", True, True, True, True]


def test_variable_deepcopy_keeps_subclass_slots_and_fields():
    from pynn.layers.base import Variable
    v = Variable(np.arange(3, dtype=np.float32), name="w", trainable=False, regularizer="r")
    v.grad = np.ones(3, np.float32)
    for c in (copy.deepcopy(v), pickle.loads(pickle.dumps(v))):
        assert type(c) is Variable
        assert c.name == "w" and c.trainable is False and c.regularizer == "r" and c.constraint is None
        assert c.requires_grad is False
        np.testing.assert_array_equal(c.data, v.data)
        np.testing.assert_array_equal(c.grad, v.grad)
        assert c.data is not v.data


def test_tensor_subclass_with_a_dict_pickles_its_attributes():
    class Tagged(pynn.Tensor):
        pass
    t = Tagged(np.ones(2, np.float32), requires_grad=True)
    t.tag = "x"
    c = copy.deepcopy(t)
    assert type(c) is Tagged and c.tag == "x" and c.requires_grad is True


def test_tensor_fields_start_empty_and_accept_assignment():
    t = pynn.Tensor([1.0, 2.0])
    assert t.data.dtype == np.float32 and t.grad is None and t.requires_grad is False
    assert t._ctx is None and t.name is None and t._keras_logits is None and t._keras_mask is None
    out = t + 1.0
    assert type(out) is pynn.Tensor and out.name is None and out._keras_mask is None
    t.requires_grad = 1   # compiled: a C int (reads back True); pure: the 1 itself; both truthy
    assert t.requires_grad == 1
    (t * t).sum().backward()
    np.testing.assert_allclose(t.grad, [2.0, 4.0])


def test_a_compiled_module_older_than_its_source_is_bypassed_with_a_warning(tmp_path, monkeypatch):
    # An editable install whose .py was edited after the build must not run the old compiled code.
    name = _core.COMPILED_MODULES[-1]
    stem = name.rpartition(".")[2]
    import importlib.machinery
    src = tmp_path / f"{stem}.py"
    ext = tmp_path / f"{stem}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    src.write_text("X = 1\n")
    ext.write_bytes(b"")
    monkeypatch.setattr(_core, "PURE_REQUESTED", False)
    monkeypatch.setattr(_core, "STALE", set())
    os.utime(ext, (1_000_000, 1_000_000))
    os.utime(src, (1_000_100, 1_000_100))
    with pytest.warns(RuntimeWarning, match="newer than its compiled module"):
        spec = _core._CoreFinder.find_spec(name, [str(tmp_path)])
    assert spec is not None and spec.origin == str(src) and name in _core.STALE
    # Built after the last edit: left to the normal import (which picks the extension).
    os.utime(ext, (1_000_200, 1_000_200))
    assert _core._CoreFinder.find_spec(name, [str(tmp_path)]) is None
    # PYNN_PURE_PYTHON=1: always the source; names outside the compiled list are never touched.
    monkeypatch.setattr(_core, "PURE_REQUESTED", True)
    assert _core._CoreFinder.find_spec(name, [str(tmp_path)]).origin == str(src)
    assert _core._CoreFinder.find_spec("pynn.callbacks", [str(tmp_path)]) is None


def test_no_grad_and_enable_grad_nest_decorate_recurse_and_restore_after_errors():
    import threading
    from pynn import enable_grad, is_grad_enabled, no_grad
    w = pynn.Tensor(np.ones(2, np.float32), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled() and (w * 2).requires_grad is False
        with enable_grad():
            assert (w * 2).requires_grad is True
        assert not is_grad_enabled()
    assert is_grad_enabled()

    @no_grad()
    def depth(n):
        assert not is_grad_enabled()
        inner = depth(n - 1) if n else 0
        assert not is_grad_enabled()   # the inner call's exit must not turn grad back on
        return inner + 1
    assert depth(3) == 4 and is_grad_enabled()

    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("x")
    assert is_grad_enabled()

    seen = []
    with no_grad():   # grad mode is per thread: a new thread starts enabled
        t = threading.Thread(target=lambda: seen.append(is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]
