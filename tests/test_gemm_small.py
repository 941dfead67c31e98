"""The small-product path of the native SGEMM (csrc/gemm/small_avx2.cpp: m*n*k <= 64^3).

It cuts the rows into tiles of exactly 1-6 rows (every remainder of m mod 6, and the
4 + 4 / 4 + 3 / 4 + 5 splits of the last 7-9 rows), runs right edges of <= 8 columns
8 wide, packs a strided or transposed B, and computes C^T = B^T A^T when that tiles
better (no bias). Each of those branches is pinned here against a float64 product:
the lecture-MLP shapes of issue #19 and their backprop transposes, every row count
1..14, edges, strided/negative/transposed views of A, B and C, alpha/beta, bias and a
fused activation.
"""
import math

import numpy as np
import pytest

_C = pytest.importorskip("pynn._C")

ISAS = ["generic", "avx2"] if _C.cpu_has_avx2_fma() else ["generic"]


@pytest.fixture(autouse=True)
def restore_runtime():
    isa, threads = _C.isa(), _C.num_threads()
    yield
    _C.set_isa(isa)
    _C.set_num_threads(threads)


def _check(a, b, got, alpha=1.0, beta=0.0, c0=None, bias=None, act=None):
    want = alpha * (a.astype(np.float64) @ b.astype(np.float64))
    if beta:
        want += beta * c0.astype(np.float64)
    if bias is not None:
        want += bias
    if act == "relu":
        want = np.maximum(want, 0)
    k = a.shape[1]
    scale = math.sqrt(max(k, 1)) * np.abs(a).max(initial=0) * np.abs(b).max(initial=0) * abs(alpha)
    if beta:
        scale += abs(beta) * np.abs(c0).max(initial=0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(scale, 1.0))


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# (name, a, b) builders: the lecture MLP (hidden 64/128, batch 32, 10 classes) forward and backward.
LECTURE = {
    "x@W1 32x64x128": lambda r: (_f32(r, 32, 64), _f32(r, 64, 128)),
    "h@W2 32x128x10": lambda r: (_f32(r, 32, 128), _f32(r, 128, 10)),
    "x@W 32x64x64": lambda r: (_f32(r, 32, 64), _f32(r, 64, 64)),
    "dW1=x^T dh (64x32)@(32x128)": lambda r: (_f32(r, 32, 64).T, _f32(r, 32, 128)),
    "dW2=h^T dz (128x32)@(32x10)": lambda r: (_f32(r, 32, 128).T, _f32(r, 32, 10)),
    "dh=dz W2^T (32x10)@(10x128)": lambda r: (_f32(r, 32, 10), _f32(r, 128, 10).T),
    "dx=dh W1^T (32x128)@(128x64)": lambda r: (_f32(r, 32, 128), _f32(r, 64, 128).T),
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", sorted(LECTURE))
def test_lecture_mlp_shapes_and_backprop_transposes_match_float64(isa, threads, case, rng):
    _C.set_isa(isa)
    _C.set_num_threads(threads)
    a, b = LECTURE[case](rng)
    _check(a, b, _C.gemm(a, b))


@pytest.mark.parametrize("m", list(range(1, 15)) + [31, 32, 33, 64, 128])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 10, 16, 17, 40])
def test_every_row_remainder_and_column_edge(m, n, rng):
    k = 23
    a, b = _f32(rng, m, k), _f32(rng, k, n)
    _check(a, b, _C.gemm(a, b))


VIEWS = {
    "contiguous": lambda x: x,
    "transposed": lambda x: np.ascontiguousarray(x.T).T,
    "flipped": lambda x: x[::-1, ::-1],
    "strided": lambda x: np.repeat(np.repeat(x, 2, 0), 3, 1)[::2, ::3],
}


@pytest.mark.parametrize("va", sorted(VIEWS))
@pytest.mark.parametrize("vb", sorted(VIEWS))
@pytest.mark.parametrize("shape", [(32, 128, 10), (10, 32, 128), (13, 17, 9), (5, 64, 33), (64, 32, 64)])
def test_views_of_a_and_b(va, vb, shape, rng):
    m, k, n = shape
    a, b = VIEWS[va](_f32(rng, m, k)), VIEWS[vb](_f32(rng, k, n))
    _check(a, b, _C.gemm(a, b))


@pytest.mark.parametrize("c_view", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize("shape", [(32, 128, 10), (10, 128, 32), (7, 9, 20)])
@pytest.mark.parametrize("bias", [False, True])
def test_alpha_beta_bias_relu_and_c_views(c_view, shape, bias, rng):
    m, k, n = shape
    a, b = _f32(rng, m, k), _f32(rng, k, n)
    base = _f32(rng, 2 * m, 2 * n)
    c = {"contiguous": np.ascontiguousarray(base[:m, :n]),
         "transposed": np.asfortranarray(base[:m, :n]),
         "strided": base[::2, ::2]}[c_view]
    c0 = c.copy()
    bv = _f32(rng, n) if bias else None
    out = _C.gemm(a, b, c, alpha=0.5, beta=-1.5, bias=bv, activation="relu")
    assert out is c or np.shares_memory(out, c)
    _check(a, b, c, alpha=0.5, beta=-1.5, c0=c0, bias=bv, act="relu")


def test_small_path_agrees_with_generic_kernels(rng):
    if "avx2" not in ISAS:
        pytest.skip("no AVX2+FMA on this CPU")
    for m, k, n in [(32, 128, 10), (128, 32, 10), (10, 10, 128), (9, 50, 8)]:
        a, b = _f32(rng, m, k), _f32(rng, k, n)
        _C.set_isa("generic")
        ref = _C.gemm(a, b)
        _C.set_isa("avx2")
        np.testing.assert_allclose(_C.gemm(a, b), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
