"""The native kernels give the same results at any thread count, not just the 2 of the machines
they were tuned on: each kernel family runs at 1, 2, 3, 4, 7 and 8 threads (odd counts and
oversubscription exercise the uneven splits) and is compared with its 1-thread result.

Bit-for-bit where the split cannot change the order of a reduction (every output element is
computed by one thread in a fixed order: elementwise, softmax, pooling, convolution forward and
input gradient, the recurrent time loops, optimizer steps, and GEMM, whose K blocking is chosen
once per product rather than per thread block -- it was per block until this test found up to
~4 ulp differences between thread counts). Within float32 tolerance elsewhere: where threads
reduce partial sums (bias/BatchNorm column sums, the conv weight gradient, the split-K weight
gradient).
"""
import numpy as np
import pytest

import pynn
from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

THREADS = [2, 3, 4, 7, 8]


@pytest.fixture
def nb():
    with pynn.use_backend("native"):
        yield backend.current()


def _at_threads(fn, n):
    before = pynn.get_num_threads()
    pynn.set_num_threads(n)
    try:
        out = fn()
    finally:
        pynn.set_num_threads(before)
    return out if isinstance(out, tuple) else (out,)


def _check(fn, exact, rtol=2e-5, atol=1e-6, scaled=False):
    ref = [np.array(a, copy=True) for a in _at_threads(fn, 1)]
    for n in THREADS:
        got = _at_threads(fn, n)
        for r, g in zip(ref, got):
            if exact:
                np.testing.assert_array_equal(g, r, err_msg=f"{n} threads differ from 1 thread")
            else:
                # scaled: the tolerance is relative to the output's largest magnitude (a dot
                # product's rounding error scales with it, not with the element itself)
                tol = atol * np.abs(r).max() if scaled else atol
                np.testing.assert_allclose(g, r, rtol=rtol, atol=tol, err_msg=f"{n} threads vs 1 thread")


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# Shapes for each split of csrc/gemm/gemm.cpp: row blocks of a wide B (520x300x400), column
# blocks of a short A (64x784x128), dynamic row chunks of a narrow B (2048x64x64), row panels
# when column panels deal badly (100x300x40: 3 column panels), a skinny edge (7x1000x33), the
# one-thread small path (32x64x128, the lecture MLP's layer), and edges of every tile and block
# (1, 17, 33, 1023 and a k that splits into several KC blocks).
GEMM_SHAPES = [(520, 300, 400), (64, 784, 128), (7, 1000, 33), (2048, 64, 64), (100, 300, 40), (32, 64, 128),
               (1, 1023, 517), (1023, 17, 33), (33, 1023, 17), (17, 1500, 300), (301, 600, 1023)]


@pytest.mark.parametrize("shape", GEMM_SHAPES)
def test_gemm_is_bit_identical_at_every_thread_count(nb, rng, shape):
    m, k, n = shape
    a, b, bias = _f32(rng, m, k), _f32(rng, k, n), _f32(rng, n)
    _check(lambda: nb.matmul(a, b, bias=bias, activation="relu"), exact=True)
    _check(lambda: nb.matmul(np.asfortranarray(a), b[:, ::-1]), exact=True)   # strided operands


@pytest.mark.parametrize("shape", GEMM_SHAPES)
def test_gemm_transposes_of_backprop_are_bit_identical_at_every_thread_count(rng, shape):
    from pynn import _C
    m, k, n = shape
    x, w, dy, w2 = _f32(rng, k, m), _f32(rng, n, k), _f32(rng, m, n), _f32(rng, k, n)
    c0 = _f32(rng, m, n)
    _check(lambda: _C.gemm(x.T, w.T), exact=True)                                 # dW = X^T dY form
    _check(lambda: _C.gemm(dy, w2.T), exact=True)                                 # dX = dY W^T form
    _check(lambda: _C.gemm(x.T, w.T, c0.copy(), alpha=0.5, beta=2.0), exact=True)   # accumulate into C
    _check(lambda: _C.gemm(x.T, w.T, np.zeros((n, m), np.float32).T), exact=True)   # transposed C


def test_elementwise_and_softmax_are_bit_identical_at_every_thread_count(nb, rng):
    x = _f32(rng, 1 << 20)
    y = nb.tanh(x)
    _check(lambda: (nb.sigmoid(x), nb.gelu(x), nb.tanh_grad(x, y, x)), exact=True)
    logits = _f32(rng, 4096, 100)
    _check(lambda: (nb.softmax(logits), nb.log_softmax(logits)), exact=True)


def test_conv_forward_and_input_gradient_are_bit_identical_at_every_thread_count(nb, rng):
    x, w, b = _f32(rng, 8, 20, 20, 16), _f32(rng, 3, 3, 16, 32), _f32(rng, 32)
    _check(lambda: nb.conv2d(x, w, b, (1, 1), "same", (1, 1), "relu"), exact=True)
    _check(lambda: nb.conv2d(x, w, b, (2, 2), "valid", (1, 1), None), exact=True)
    dy = _f32(rng, 8, 20, 20, 32)
    _check(lambda: nb.conv2d_backward_input(dy, w, x.shape, (1, 1), "same", (1, 1)), exact=True)


def test_conv_weight_gradient_agrees_at_every_thread_count(nb, rng):
    x, dy = _f32(rng, 8, 20, 20, 16), _f32(rng, 8, 20, 20, 32)
    _check(lambda: nb.conv2d_backward_kernel(x, dy, (3, 3, 16, 32), (1, 1), "same", (1, 1)), exact=False,
           rtol=1e-4, atol=1e-3)


def test_pooling_is_bit_identical_at_every_thread_count(nb, rng):
    x = _f32(rng, 16, 32, 32, 32)
    y = nb.max_pool2d(x, (2, 2))
    dy = _f32(rng, *y.shape)
    _check(lambda: (nb.max_pool2d(x, (2, 2)), nb.avg_pool2d(x, (3, 3), (2, 2), "same"),
                    nb.max_pool2d_backward(x, y, dy, (2, 2)), nb.global_max_pool2d(x)), exact=True)
    _check(lambda: nb.global_avg_pool2d(x), exact=False)


def test_column_reductions_agree_at_every_thread_count(nb, rng):
    x, dy = _f32(rng, 32768, 64), _f32(rng, 32768, 64)
    gamma, beta = _f32(rng, 64), _f32(rng, 64)
    _check(lambda: nb.bias_grad(dy), exact=False, rtol=1e-5, atol=1e-4)
    _check(lambda: nb.batch_norm(x, gamma, beta)[0], exact=False, rtol=1e-5, atol=1e-5)
    _check(lambda: nb.weight_grad(_f32(np.random.default_rng(0), 6400, 128), _f32(np.random.default_rng(1), 6400, 512)),
           exact=False, rtol=1e-4, atol=1e-3)


def test_recurrent_loops_are_bit_identical_at_every_thread_count(nb, rng):
    n, t, u = 32, 12, 160
    xw = _f32(rng, n, t, 4 * u)
    h0, c0, rk = _f32(rng, n, u), _f32(rng, n, u), _f32(rng, u, 4 * u) * 0.1
    _check(lambda: nb.lstm(xw, h0, c0, rk), exact=True)
    xg = _f32(rng, n, t, 3 * u)
    _check(lambda: nb.gru(xg, h0, _f32(np.random.default_rng(2), u, 3 * u) * 0.1, _f32(np.random.default_rng(3), 3 * u)),
           exact=True)


def test_optimizer_steps_are_bit_identical_at_every_thread_count(nb, rng):
    def adam():
        p, g = [_f32(np.random.default_rng(4), 1 << 19)], [_f32(np.random.default_rng(5), 1 << 19)]
        m, v, vmax = [np.zeros_like(p[0])], [np.zeros_like(p[0])], [np.zeros_like(p[0])]
        for step in (1, 2):
            nb.adam_step(p, g, m, v, vmax, 1e-3, 0.9, 0.999, 1e-7, step, 0.01, True, True)
        return p[0], m[0], v[0], vmax[0]
    _check(adam, exact=True)
