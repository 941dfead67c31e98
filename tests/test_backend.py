"""Backend selection and coverage: a numpy fallback is never mistaken for native."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pynn
from pynn import backend

needs_native = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")


def test_numpy_and_native_backends_expose_identical_kernel_signatures():
    import inspect
    if not backend.NATIVE_AVAILABLE:
        pytest.skip("native extension not built")
    for name in backend.KERNELS:
        ref = inspect.signature(getattr(backend.numpy_backend, name))
        nat = inspect.signature(getattr(backend.native_backend, name))
        assert ref == nat, f"kernel {name}: numpy{ref} vs native{nat}"


@needs_native
def test_every_foundation_kernel_is_native():
    cov = pynn.coverage()
    assert set(cov) == set(backend.KERNELS)
    fallbacks = sorted(k for k, v in cov.items() if v != "native")
    assert not fallbacks, f"kernels falling back to numpy: {fallbacks}"


@needs_native
def test_native_is_the_default_backend():
    env = {k: v for k, v in os.environ.items() if k != "PYNN_BACKEND"}
    out = subprocess.run([sys.executable, "-c", "import pynn; print(pynn.backend.name())"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "native"


def test_pynn_backend_environment_variable_selects_the_backend():
    env = dict(os.environ, PYNN_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", "import pynn; print(pynn.backend.name())"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "numpy"
    env["PYNN_BACKEND"] = "fortran"
    bad = subprocess.run([sys.executable, "-c", "import pynn"], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "PYNN_BACKEND must be 'numpy' or 'native'" in bad.stderr


def test_use_backend_restores_the_previous_backend_even_on_error():
    before = backend.name()
    with pytest.raises(KeyError):
        with pynn.use_backend("numpy"):
            assert backend.name() == "numpy"
            raise KeyError("boom")
    assert backend.name() == before


def test_set_backend_rejects_unknown_names():
    with pytest.raises(ValueError, match="expected 'numpy' or 'native'"):
        pynn.set_backend("cuda")


@needs_native
def test_float64_runs_on_the_reference_kernels_not_a_silent_cast():
    a = np.random.default_rng(0).standard_normal((5, 4))
    with pynn.use_backend("native"):
        out = pynn.ops.matmul(a, a.T)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, a @ a.T, rtol=1e-12)


@needs_native
def test_native_kernels_reject_float64_and_noncontiguous_input_with_clear_errors():
    from pynn import _C
    x64 = np.ones((3, 4))
    with pytest.raises(TypeError, match="float32"):
        _C.gemm(x64, x64.T)
    nc = np.ones((4, 6), np.float32)[:, ::2]
    with pytest.raises(ValueError, match="contiguous"):
        _C.softmax(nc, False)


def test_public_api_tour_from_design():
    x = pynn.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    w = pynn.Tensor(np.full((3, 2), 0.5, np.float32), requires_grad=True)
    b = pynn.Tensor(np.array([-2.0, 1.0], np.float32))
    y = (x @ w + b).relu().sum()
    y.backward()
    assert isinstance(x.grad, np.ndarray) and x.grad.shape == (2, 3)
    np.testing.assert_allclose(x.grad, np.full((2, 3), 0.5))  # only the second unit is active
    assert x.data is x.numpy() and x.shape == (2, 3) and x.dtype == np.float32
    with pynn.no_grad():
        assert not (x * 2).requires_grad


def test_native_matmul_of_permuted_batch_views_matches_numpy_in_one_bmm(monkeypatch):
    # Attention multiplies (B, heads, T, d) views of (B, T, heads, d) arrays: their
    # batch dims have no single stride. The native matmul copies such an operand
    # once and makes one bmm call instead of one per leading index.
    from pynn import _C
    from pynn.backend.native import core as native_core
    r = np.random.default_rng(0)
    q = r.standard_normal((3, 7, 4, 5)).astype(np.float32).transpose(0, 2, 1, 3)   # (3, 4, 7, 5)
    k = r.standard_normal((3, 6, 4, 5)).astype(np.float32).transpose(0, 2, 3, 1)   # (3, 4, 5, 6)
    calls = []
    real_bmm = _C.bmm
    monkeypatch.setattr(native_core._C, "bmm", lambda *a, **kw: calls.append(1) or real_bmm(*a, **kw))
    got = native_core.matmul(q, k)
    np.testing.assert_allclose(got, q.astype(np.float64) @ k.astype(np.float64), rtol=1e-5, atol=1e-5)
    assert len(calls) == 1
    # a broadcast operand is not materialised, and still right
    w = r.standard_normal((4, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(native_core.matmul(q, w), q.astype(np.float64) @ w, rtol=1e-5, atol=1e-5)
