"""The AVX2 GEMM reads a row-major B whose rows start on 64-byte boundaries in place
instead of packing it (csrc/gemm/gemm.cpp: b_in_place; Dense allocates its kernel so).
Same multiply-adds in the same order: the product must be bit for bit the packed one
(the same B at a 16-byte offset, which is packed), at every thread count, with edge
rows (m % 6), several KC blocks, bias and a fused activation; and Dense kernels must
come out of build() 64-byte aligned."""
import numpy as np
import pytest

import pynn
from pynn import layers

_C = pytest.importorskip("pynn._C")
pytestmark = pytest.mark.skipif(not _C.cpu_has_avx2_fma(), reason="the in-place B path is AVX2-only")

THREADS = [1, 2, 3, 4, 7, 8]


@pytest.fixture(autouse=True)
def restore_runtime():
    isa, threads = _C.isa(), _C.num_threads()
    _C.set_isa("avx2")
    yield
    _C.set_isa(isa)
    _C.set_num_threads(threads)


def _at_offset(values, offset_bytes):
    """A C-contiguous copy of ``values`` starting ``offset_bytes`` past a 64-byte boundary."""
    buf = np.empty(values.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data % 64) + offset_bytes
    out = buf[start:start + values.nbytes].view(np.float32).reshape(values.shape)
    out[...] = values
    assert out.ctypes.data % 64 == offset_bytes
    return out


# (m, k, n), all big enough for the packed frame (not the small/skinny path): the MLP's
# layers, edge rows (m % 6 != 0), k in several KC blocks (784 x 256: 3, 900 x 320: 4),
# one panel (n = 16) to twenty.
SHAPES = [(128, 784, 256), (128, 256, 128), (70, 700, 16), (100, 1500, 48), (64, 784, 128), (45, 900, 320)]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("act", ["linear", "relu"])
def test_aligned_row_major_b_gives_the_packed_product_bit_for_bit(m, k, n, act):
    rng = np.random.default_rng(m * 7 + k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    aligned, shifted = _at_offset(b, 0), _at_offset(b, 16)
    ref = a.astype(np.float64) @ b.astype(np.float64) + bias
    if act == "relu":
        ref = np.maximum(ref, 0.0)
    _C.set_num_threads(1)
    packed = _C.gemm(a, shifted, bias=bias, activation=act)
    np.testing.assert_allclose(packed, ref, rtol=1e-4, atol=1e-4 * np.sqrt(k) * np.abs(ref).max())
    for t in THREADS:
        _C.set_num_threads(t)
        np.testing.assert_array_equal(_C.gemm(a, aligned, bias=bias, activation=act), packed)
        np.testing.assert_array_equal(_C.gemm(a, shifted, bias=bias, activation=act), packed)


def test_aligned_b_with_beta_accumulates_like_the_packed_path():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((50, 300)).astype(np.float32)
    b = rng.standard_normal((300, 64)).astype(np.float32)
    c0 = rng.standard_normal((50, 64)).astype(np.float32)
    out = {}
    for off in (0, 16):
        c = c0.copy()
        _C.gemm(a, _at_offset(b, off), c=c, alpha=0.5, beta=2.0)
        out[off] = c
    np.testing.assert_array_equal(out[0], out[16])
    np.testing.assert_allclose(out[0], 0.5 * (a.astype(np.float64) @ b) + 2.0 * c0, rtol=1e-4, atol=1e-3)


def test_dense_kernels_are_cache_line_aligned_and_stay_so_through_training():
    pynn.set_seed(0)
    model = pynn.Sequential([layers.Input((20,)), layers.Dense(48, activation="relu"), layers.Dense(5)])
    model.compile(pynn.optimizers.Adam(1e-2), pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).standard_normal((32, 20)).astype(np.float32)
    y = np.arange(32) % 5
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.set_weights(model.get_weights())
    for layer in model.layers:
        assert layer.kernel.data.ctypes.data % 64 == 0
        assert layer.kernel.data.flags.c_contiguous and layer.kernel.data.dtype == np.float32
