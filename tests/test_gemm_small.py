"""The small-product path of the native SGEMM (csrc/gemm/small_avx2.cpp: m*n*k <= 64^3, and skinny
products at any size), and _C.mm, the plain product with the least per-call work.

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


# Skinny products take the unpacked path at any size (csrc/gemm/config.h kSkinny*), split
# into row or column blocks across threads: a narrow C (n <= 16, k <= 512), a short A (m <= 32,
# n <= 512) and a narrow C with A = X^T (n <= 32). Edge counts around each bound, and the
# blocks' seams at several thread counts.
SKINNY = [(2048, 256, 10, False), (512, 256, 10, True), (2048, 512, 32, True), (4096, 512, 16, False),
          (10, 784, 256, False), (32, 1024, 256, False), (33, 300, 500, False), (31, 1024, 512, True),
          (1000, 512, 17, False), (999, 513, 16, True), (1, 1024, 512, False), (3001, 7, 1, False)]


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("m,k,n,trans_a", SKINNY)
def test_skinny_products_match_float64(m, k, n, trans_a, threads, rng):
    _C.set_num_threads(threads)
    a = _f32(rng, k, m).T if trans_a else _f32(rng, m, k)
    b, bias, c0 = _f32(rng, k, n), _f32(rng, n), _f32(rng, m, n)
    _check(a, b, _C.gemm(a, b))
    _check(a, b, _C.gemm(a, b, bias=bias, activation="relu"), bias=bias, act="relu")
    _check(a, b, _C.gemm(a, b, c0.copy(), alpha=0.5, beta=-1.5), alpha=0.5, beta=-1.5, c0=c0)
    _check(a, b[:, ::-1], _C.gemm(a, b[:, ::-1]))                        # strided B
    _check(a, np.asfortranarray(b), _C.gemm(a, np.asfortranarray(b)))   # transposed B


# _C.mm: the plain product with the least per-call work (numpy.dot's place in pynn.ops).
@pytest.mark.parametrize("shape", [(32, 64, 128), (32, 10, 128), (1, 1, 1), (7, 300, 3), (300, 200, 100)])
def test_mm_equals_gemm_bit_for_bit_on_views_and_out(shape, rng):
    m, k, n = shape
    a, b = _f32(rng, m, k), _f32(rng, k, n)
    for x, y in ((a, b), (a, np.asfortranarray(b)), (np.asfortranarray(a), b[:, ::-1]), (a[::-1], b)):
        want = _C.gemm(x, y)
        np.testing.assert_array_equal(_C.mm(x, y), want)
        out = np.full((m, n), np.nan, np.float32)
        assert _C.mm(x, y, out) is out
        np.testing.assert_array_equal(out, want)
        out_t = np.full((n, m), np.nan, np.float32).T                  # a transposed out
        _C.mm(x, y, out_t)
        np.testing.assert_array_equal(out_t, want)
    _check(a, b, _C.mm(a, b))


def test_mm_falls_back_to_gemm_checks_for_bad_input(rng):
    a, b = _f32(rng, 4, 3), _f32(rng, 3, 5)
    with pytest.raises(ValueError, match="inner dimensions 3 and 4 differ"):
        _C.mm(a, a)
    with pytest.raises(TypeError, match="float32"):
        _C.mm(a.astype(np.float64), b)
    with pytest.raises(ValueError, match="2-D"):
        _C.mm(a[0], b)
    with pytest.raises(ValueError, match="c must have shape"):
        _C.mm(a, b, np.empty((5, 4), np.float32))
    ro = np.empty((4, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _C.mm(a, b, ro)
    with pytest.raises(TypeError):
        _C.mm([[1.0]], b)
    big_endian = a.astype(">f4")   # float32 in the other byte order: gemm's check decides
    with pytest.raises(TypeError, match="float32"):
        _C.mm(big_endian, b)


def test_mm_empty_and_k0_products():
    np.testing.assert_array_equal(_C.mm(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32)),
                                  np.zeros((3, 4), np.float32))
    assert _C.mm(np.ones((0, 3), np.float32), np.ones((3, 4), np.float32)).shape == (0, 4)
    out = np.full((2, 5), np.nan, np.float32)
    _C.mm(np.ones((2, 0), np.float32), np.ones((0, 5), np.float32), out)
    np.testing.assert_array_equal(out, np.zeros((2, 5), np.float32))
