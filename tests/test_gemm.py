"""SGEMM (csrc/gemm) and the matmul kernels of both backends.

The native GEMM is compared with a float64 NumPy product. The tolerance is
relative to the size of a length-k dot product, sqrt(k) * max|a| * max|b|
(plus |beta| * max|c|), so the check still catches any wrong index or lost
epilogue.
"""
import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from pynn.backend.numpy import core as ref_core  # noqa: E402
from pynn.backend.numpy import activations as ref_activations  # noqa: E402
from pynn.backend.numpy._erf import erf  # noqa: E402

_C = pytest.importorskip("pynn._C")
from pynn.backend.native import core as nat_core  # noqa: E402

RTOL = 1e-4
ISAS = ["generic", "avx2"] if _C.cpu_has_avx2_fma() else ["generic"]
ACTS = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "elu"]


@pytest.fixture(autouse=True)
def restore_runtime():
    isa, threads = _C.isa(), _C.num_threads()
    yield
    _C.set_isa(isa)
    _C.set_num_threads(threads)


def tolerance(a, b, k, beta=0.0, c=None):
    scale = math.sqrt(max(k, 1)) * (np.abs(a).max(initial=0) * np.abs(b).max(initial=0))
    if c is not None and beta:
        scale += abs(beta) * np.nanmax(np.abs(c), initial=0)
    return RTOL * max(scale, 1.0)


def layout(rng, rows, cols, transposed, step, flip):
    """A float32 (rows, cols) array in an awkward layout: transposed storage,
    every `step`-th element of a bigger array, optionally reversed rows."""
    shape = (cols * step, rows) if transposed else (rows, cols * step)
    base = rng.standard_normal(shape).astype(np.float32)
    x = base.T if transposed else base
    x = x[:, ::step]
    if flip:
        x = x[::-1]
    assert x.shape == (rows, cols)
    return x


def assert_close(got, want, tol):
    assert got.shape == want.shape
    err = np.max(np.abs(got.astype(np.float64) - want), initial=0)
    assert err <= tol, f"max error {err:.3g} > tolerance {tol:.3g}"


dims = st.integers(0, 300)


@settings(max_examples=60, deadline=None)
@given(m=dims, n=dims, k=dims, ta=st.booleans(), tb=st.booleans(), step=st.sampled_from([1, 2]),
       flip=st.booleans(), alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, -0.75]),
       isa=st.sampled_from(ISAS), threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**31 - 1))
def test_gemm_matches_float64_reference(m, n, k, ta, tb, step, flip, alpha, beta, isa, threads, seed):
    _C.set_isa(isa)
    _C.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    a = layout(rng, m, k, ta, step, flip)
    b = layout(rng, k, n, tb, 1, not flip)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = c0.copy()
    out = _C.gemm(a, b, c, alpha=alpha, beta=beta)
    assert out is c or np.shares_memory(out, c)
    want = alpha * (a.astype(np.float64) @ b.astype(np.float64)) + beta * c0.astype(np.float64)
    assert_close(c, want, tolerance(a, b, k, beta, c0))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 17, 3), (6, 16, 256), (13, 33, 257), (150, 40, 520),
                                   (300, 7, 5), (5, 300, 600), (289, 291, 300), (500, 40, 300), (1000, 17, 530)])
def test_gemm_strided_c_output(isa, threads, shape):
    """C may be transposed (Fortran order) or a strided slice of a bigger array."""
    _C.set_isa(isa)
    _C.set_num_threads(threads)
    m, n, k = shape
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    want = a.astype(np.float64) @ b
    cf = np.full((m, n), np.nan, np.float32, order="F")
    _C.gemm(a, b, cf)
    assert_close(cf, want, tolerance(a, b, k))
    big = np.full((2 * m, 3 * n), 7.0, np.float32)
    view = big[::-2, ::3]
    _C.gemm(a, b, view, beta=0.0)
    assert_close(view, want, tolerance(a, b, k))
    untouched = big.copy()
    untouched[::-2, ::3] = 7.0
    assert np.all(untouched == 7.0), "gemm wrote outside the strided view of C"


@pytest.mark.parametrize("isa", ISAS)
def test_gemm_1x1x1_is_exact(isa):
    _C.set_isa(isa)
    a = np.array([[3.0]], np.float32)
    b = np.array([[-2.0]], np.float32)
    c = np.array([[10.0]], np.float32)
    np.testing.assert_array_equal(_C.gemm(a, b), [[-6.0]])
    np.testing.assert_array_equal(_C.gemm(a, b, c, alpha=0.5, beta=2.0), [[17.0]])


@pytest.mark.parametrize("isa", ISAS)
def test_gemm_k0_gives_beta_c_plus_bias(isa):
    _C.set_isa(isa)
    a = np.empty((4, 0), np.float32)
    b = np.empty((0, 5), np.float32)
    c = np.arange(20, dtype=np.float32).reshape(4, 5)
    bias = np.arange(5, dtype=np.float32)
    out = _C.gemm(a, b, c.copy(), beta=0.5, bias=bias, activation="relu")
    np.testing.assert_array_equal(out, np.maximum(0.5 * c + bias, 0))
    np.testing.assert_array_equal(_C.gemm(a, b), np.zeros((4, 5), np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", [(5, 7, 3), (64, 64, 300), (100, 33, 600)])
def test_gemm_beta0_ignores_nan_in_c(isa, shape):
    _C.set_isa(isa)
    m, n, k = shape
    rng = np.random.default_rng(2)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, np.float32)
    _C.gemm(a, b, c, beta=0.0)
    assert np.isfinite(c).all()
    assert_close(c, a.astype(np.float64) @ b, tolerance(a, b, k))


@pytest.mark.parametrize("isa", ISAS)
def test_gemm_nan_in_a_propagates_to_its_row_only(isa):
    _C.set_isa(isa)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 300)).astype(np.float32)
    b = rng.standard_normal((300, 19)).astype(np.float32)
    a[7, 290] = np.nan
    c = _C.gemm(a, b)
    assert np.isnan(c[7]).all()
    assert np.isfinite(np.delete(c, 7, axis=0)).all()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("shape", [(3, 5, 7), (12, 32, 64), (7, 48, 20), (50, 37, 300), (200, 130, 64), (450, 21, 300)])
def test_gemm_fused_epilogue_matches_separate_numpy_ops(isa, threads, activation, shape):
    _C.set_isa(isa)
    _C.set_num_threads(threads)
    m, n, k = shape
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((m, k)) / np.sqrt(k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    got = _C.gemm(a, b, c0.copy(), alpha=1.5, beta=0.5, bias=bias, activation=activation, act_alpha=0.2)
    z = 1.5 * (a.astype(np.float64) @ b) + 0.5 * c0 + bias
    want = ref_activations.apply(z, activation, 0.2)
    assert_close(got, want, tolerance(a, b, k, 0.5, c0))


@pytest.mark.parametrize("activation", ACTS)
def test_gemm_epilogue_isas_agree(activation):
    """Generic and AVX2 kernels compute the same function (to rounding)."""
    if len(ISAS) < 2:
        pytest.skip("no AVX2 on this CPU")
    rng = np.random.default_rng(5)
    a = rng.standard_normal((77, 300)).astype(np.float32)
    b = rng.standard_normal((300, 45)).astype(np.float32)
    bias = rng.standard_normal(45).astype(np.float32)
    outs = []
    for isa in ISAS:
        _C.set_isa(isa)
        outs.append(_C.gemm(a, b, bias=bias, activation=activation, act_alpha=0.1))
    assert_close(outs[0], outs[1].astype(np.float64), tolerance(a, b, 300))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shapes", [
    ((6, 5, 7), (6, 7, 3)),          # plain batch
    ((1, 5, 7), (6, 7, 3)),          # a broadcast over the batch
    ((6, 5, 7), (1, 7, 3)),          # b broadcast over the batch
    ((64, 3, 4), (64, 4, 2)),        # many tiny matrices: threads over the batch
    ((2, 130, 300), (2, 300, 70)),   # few big ones: threads inside each GEMM
    ((3, 0, 4), (3, 4, 2)), ((3, 4, 0), (3, 0, 2)), ((0, 2, 2), (0, 2, 2)),
])
def test_bmm_matches_reference_with_broadcast(threads, shapes):
    _C.set_num_threads(threads)
    rng = np.random.default_rng(6)
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    bias = rng.standard_normal(shapes[1][2]).astype(np.float32)
    got = _C.bmm(a, b, bias=bias, activation="tanh")
    want = np.tanh(a.astype(np.float64) @ b + bias)
    assert got.flags.c_contiguous
    assert_close(got, want, tolerance(a, b, shapes[0][2]))


def test_bmm_batch_stride_zero_and_strided_views():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((9, 4)).astype(np.float32)
    b = np.broadcast_to(w.T, (5, 4, 9))                   # batch stride 0, transposed
    big = rng.standard_normal((10, 3, 8)).astype(np.float32)
    a = big[::2, :, ::-2]                                   # (5, 3, 4), strided and reversed
    got = _C.bmm(a, b)
    assert_close(got, a.astype(np.float64) @ b, tolerance(a, b, 4))


ND_SHAPES = [
    ((7,), (7,)), ((7,), (7, 3)), ((4, 7), (7,)), ((4, 7), (7, 3)), ((5, 4, 7), (7, 3)),
    ((5, 4, 7), (5, 7, 3)), ((4, 7), (2, 7, 3)), ((2, 1, 4, 7), (3, 7, 5)), ((7,), (2, 3, 7, 4)),
    ((2, 3, 4, 7), (7,)), ((3, 4, 5, 6), (1, 4, 6, 2)), ((0, 4, 7), (7, 3)), ((33, 17, 300), (300, 20)),
]


@pytest.mark.parametrize("sa,sb", ND_SHAPES)
@pytest.mark.parametrize("bias", [False, True])
def test_native_matmul_matches_numpy_backend(sa, sb, bias):
    rng = np.random.default_rng(8)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    n = sb[-1] if len(sb) > 1 else 1
    bv = rng.standard_normal(n).astype(np.float32) if bias else None
    got = nat_core.matmul(a, b, bias=bv, activation="relu")
    want = ref_core.matmul(a.astype(np.float64), b.astype(np.float64),
                           None if bv is None else bv.astype(np.float64), "relu")
    assert got.dtype == np.float32
    assert_close(got, want, tolerance(a, b, sa[-1]))


def test_native_matmul_takes_views_and_routes_float64_to_reference():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((10, 6)).astype(np.float32)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    got = nat_core.matmul(x[::2], w.T, activation="leaky_relu", alpha=0.3)
    want = ref_core.matmul(x[::2].astype(np.float64), w.T.astype(np.float64), None, "leaky_relu", 0.3)
    assert_close(got, want, tolerance(x, w, 6))
    x64 = x.astype(np.float64)
    out64 = nat_core.matmul(x64, w.T.astype(np.float64), activation="gelu")
    assert out64.dtype == np.float64
    np.testing.assert_allclose(out64, ref_core.matmul(x64, w.T.astype(np.float64), None, "gelu"), rtol=1e-15)


def test_gemm_rejects_bad_input():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="float32"):
        _C.gemm(a.astype(np.float64), np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\).*4 and 5 differ"):
        _C.gemm(a, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        _C.gemm(np.ones(4, np.float32), np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="c must have shape"):
        _C.gemm(a, np.ones((4, 2), np.float32), np.ones((3, 3), np.float32))
    ro = np.ones((3, 2), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _C.gemm(a, np.ones((4, 2), np.float32), ro)
    with pytest.raises(ValueError, match="bias"):
        _C.gemm(a, np.ones((4, 2), np.float32), bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="activation"):
        _C.gemm(a, np.ones((4, 2), np.float32), activation="swish")
    buf = np.zeros(64, np.uint8)
    odd = np.ndarray((3, 4), np.float32, buffer=buf, offset=0, strides=(18, 2))
    with pytest.raises(ValueError, match="multiple"):
        _C.gemm(odd, np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(3, 4, 5\).*batch"):
        _C.bmm(np.ones((2, 3, 4), np.float32), np.ones((3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="inner dimensions"):
        _C.bmm(np.ones((2, 3, 4), np.float32), np.ones((2, 5, 5), np.float32))


@pytest.mark.parametrize("matmul", [ref_core.matmul, nat_core.matmul], ids=["numpy", "native"])
def test_matmul_shape_errors_name_both_shapes(matmul):
    with pytest.raises(ValueError, match=r"matmul: a has shape \(3, 4\) but b has shape \(5, 2\)"):
        matmul(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match=r"batch dimensions"):
        matmul(np.ones((2, 3, 4), np.float32), np.ones((3, 4, 2), np.float32))
    with pytest.raises(ValueError, match="activation"):
        matmul(np.ones((3, 4), np.float32), np.ones((4, 2), np.float32), activation="swish")


def test_numpy_erf_is_double_precision():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, -0.0, 2.999999, 3.0, 3.000001, 30.0, -np.inf, np.inf]])
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), want, rtol=1e-14, atol=1e-16)
    assert np.isnan(erf(np.array([np.nan]))).all()
    assert erf(np.ones(3, np.float32)).dtype == np.float32


# Shapes for the unpacked-A path (AVX2, row-major A read in place): every m % 6
# edge (the last rows go through a zero-padded copy), k % 4 remainders, one and
# several KC blocks, n % 16 edges, and the 2-thread splits by column panels
# (small m) and by rows (m / 2 >= 192; m = 1601 deals 3 row blocks to 2
# threads). The transposed view takes the packed-A path through the same splits.
UA_SHAPES = [(61, 67, 45), (62, 130, 33), (63, 257, 17), (64, 784, 128), (65, 1500, 20),
             (6, 700, 300), (11, 2001, 64), (400, 300, 50), (389, 129, 161), (130, 5, 600),
             (1601, 70, 40)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", UA_SHAPES)
@pytest.mark.parametrize("view", ["contiguous", "row_slice", "flipped", "transposed"])
def test_gemm_unpacked_a_shapes_and_views(isa, threads, shape, view):
    _C.set_isa(isa)
    _C.set_num_threads(threads)
    m, k, n = shape
    rng = np.random.default_rng(m * 7 + k)
    if view == "contiguous":
        a = rng.standard_normal((m, k)).astype(np.float32)
    elif view == "row_slice":  # unit column stride, row stride k + 5
        a = rng.standard_normal((m + 1, k + 5)).astype(np.float32)[1:, 3:3 + k]
    elif view == "flipped":  # negative row stride
        a = rng.standard_normal((m, k)).astype(np.float32)[::-1]
    else:  # unit row stride: A is packed
        a = rng.standard_normal((k, m)).astype(np.float32).T
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = c0.copy()
    _C.gemm(a, b, c, alpha=-0.5, beta=0.75, bias=bias, activation="relu")
    want = np.maximum(-0.5 * (a.astype(np.float64) @ b) + 0.75 * c0 + bias, 0)
    assert_close(c, want, tolerance(a, b, k, 0.75, c0))
    assert_close(_C.gemm(a, b), a.astype(np.float64) @ b, tolerance(a, b, k))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("row", [0, 59, 61, 62])
def test_gemm_unpacked_a_nan_propagates_to_its_row_only(isa, threads, row):
    # m = 63: rows 60..62 are the partial edge panel, 0..59 are read in place.
    _C.set_isa(isa)
    _C.set_num_threads(threads)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((63, 900)).astype(np.float32)
    b = rng.standard_normal((900, 70)).astype(np.float32)
    a[row, 899] = np.nan
    c = _C.gemm(a, b)
    assert np.isnan(c[row]).all()
    assert np.isfinite(np.delete(c, row, axis=0)).all()
