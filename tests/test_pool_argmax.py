"""Max pooling with the argmax kept from the forward (max_pool2d_argmax /
max_pool2d_backward_argmax, both backends): the same y as max_pool2d, the same dx as the
recomparing max_pool2d_backward (first maximum in window order, first NaN, a window of
-inf to its first real cell), the same uint8 token in both backends, at every thread
count; F.max_pool2d's gradient (which now uses it) against finite differences in float64."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn import backend
from pynn.autograd import Tensor

NATIVE = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")
BACKENDS = ["numpy", pytest.param("native", marks=NATIVE)]

# (x shape, pool, strides, padding)
CASES = [
    ((2, 8, 8, 19), (2, 2), None, "valid"),      # windows tile the input (dx assigned, not accumulated)
    ((2, 9, 7, 5), (3, 3), (2, 2), "same"),      # overlapping windows, padding on every side
    ((1, 7, 9, 3), (3, 2), (1, 1), "valid"),     # stride 1: every cell in several windows
    ((2, 5, 5, 8), (2, 2), None, "same"),        # odd size: last window half padding
    ((1, 4, 6, 2), (5, 5), (1, 2), "same"),      # window larger than the input (trimmed in numpy)
    ((3, 6, 6, 33), (2, 3), (2, 3), "valid"),    # 33 channels: a vector tail
]


def _data(shape, kind, seed=0):
    r = np.random.default_rng(seed)
    if kind == "ties":  # small integers: many equal maxima per window
        return r.integers(-2, 3, shape).astype(np.float32)
    x = r.standard_normal(shape).astype(np.float32)
    if kind == "special":
        flat = x.reshape(-1)
        flat[r.choice(flat.size, max(1, flat.size // 20), replace=False)] = np.nan
        x[:, :2, :2, :1] = -np.inf  # windows whose every real cell is -inf
    return x


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("shape,pool,strides,padding", CASES)
@pytest.mark.parametrize("kind", ["normal", "ties", "special"])
def test_argmax_pooling_matches_the_recomparing_kernels(backend_name, shape, pool, strides, padding, kind):
    x = _data(shape, kind)
    with pynn.use_backend(backend_name):
        B = backend.current()
        y_ref = B.max_pool2d(x, pool, strides, padding)
        y, idx = B.max_pool2d_argmax(x, pool, strides, padding)
        assert idx.dtype == np.uint8 and idx.shape == y.shape
        np.testing.assert_array_equal(y, y_ref)
        dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
        dx_ref = B.max_pool2d_backward(x, y_ref, dy, pool, strides, padding)
        dx = B.max_pool2d_backward_argmax(idx, dy, x.shape, pool, strides, padding)
    np.testing.assert_array_equal(dx, dx_ref)


@NATIVE
@pytest.mark.parametrize("shape,pool,strides,padding", CASES)
def test_native_and_numpy_argmax_tokens_agree(shape, pool, strides, padding):
    x = _data(shape, "special", seed=3)
    with pynn.use_backend("numpy"):
        _, idx_np = backend.current().max_pool2d_argmax(x, pool, strides, padding)
    with pynn.use_backend("native"):
        _, idx_nat = backend.current().max_pool2d_argmax(x, pool, strides, padding)
    np.testing.assert_array_equal(idx_nat, idx_np)


@NATIVE
@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
def test_argmax_pooling_is_bit_identical_at_every_thread_count(threads):
    x = _data((9, 30, 30, 24), "ties", seed=4)
    dy = np.random.default_rng(5).standard_normal((9, 15, 15, 24)).astype(np.float32)

    def run():
        with pynn.use_backend("native"):
            B = backend.current()
            y, idx = B.max_pool2d_argmax(x, (3, 3), (2, 2), "same")
            return y, idx, B.max_pool2d_backward_argmax(idx, dy, x.shape, (3, 3), (2, 2), "same")

    before = pynn.get_num_threads()
    pynn.set_num_threads(1)
    try:
        ref = run()
        pynn.set_num_threads(threads)
        got = run()
    finally:
        pynn.set_num_threads(before)
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g, r)


def test_max_pool_gradient_matches_finite_differences_in_float64():
    r = np.random.default_rng(6)
    x0 = r.standard_normal((2, 5, 6, 3))  # distinct values: the max is locally smooth
    with pynn.use_backend("numpy"):
        x = Tensor(x0, requires_grad=True)
        w = r.standard_normal((2, 3, 3, 3))
        (F.max_pool2d(x, pool_size=(3, 2), strides=(2, 2), padding="same") * Tensor(w)).sum().backward()
        num = np.zeros_like(x0)
        eps = 1e-6
        for i in np.ndindex(x0.shape):
            d = np.zeros_like(x0)
            d[i] = eps
            f = [(F.max_pool2d(Tensor(x0 + s * d), pool_size=(3, 2), strides=(2, 2), padding="same").data * w).sum()
                 for s in (1, -1)]
            num[i] = (f[0] - f[1]) / (2 * eps)
    np.testing.assert_allclose(x.grad, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_functional_max_pool_gradient_equals_recomparing_backward(backend_name):
    x0 = _data((2, 9, 9, 6), "ties", seed=7)
    with pynn.use_backend(backend_name):
        B = backend.current()
        for pool, strides, padding in [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"), ((17, 17), (1, 1), "same")]:
            x = Tensor(x0, requires_grad=True)
            y = F.max_pool2d(x, pool_size=pool, strides=strides, padding=padding)  # 17x17 > 256 cells: no argmax
            g = np.random.default_rng(8).standard_normal(y.shape).astype(np.float32)
            y.backward(g)
            np.testing.assert_array_equal(x.grad, B.max_pool2d_backward(x0, y.data, g, pool, strides, padding))


@NATIVE
def test_argmax_backward_rejects_a_float_index():
    from pynn import _C
    dy = np.zeros((1, 2, 2, 1), np.float32)
    with pytest.raises(TypeError, match="max_pool2d_backward_argmax: idx must be uint8"):
        _C.max_pool2d_backward_argmax(dy, dy, (1, 4, 4, 1), (2, 2), (2, 2))
    with pytest.raises(ValueError, match="max_pool2d_argmax: a window of at most 256 cells"):
        _C.max_pool2d_argmax(np.zeros((1, 20, 20, 1), np.float32), (17, 17), (1, 1), "same")
