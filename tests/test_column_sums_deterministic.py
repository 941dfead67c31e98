"""Issue #17: the column sums behind the bias / norm-parameter gradients give the same bits at any
thread count. Every user of common/block_sums.h (fixed row blocks chosen from the shape, float
partials folded in block order in double) is checked here: bitwise at 1, 2, 3, 4, 7 and 8 threads,
within float32 summation error of a float64 reference, at rows = 0, 1, not a multiple of the
block, C not a multiple of 8, and with NaN / inf propagating to their own column only."""
import numpy as np
import pytest

import pynn
from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

from pynn import _C  # noqa: E402  (after the skip guard: the module exists only when built)
from pynn.backend.numpy import norm as npnorm  # noqa: E402

THREADS = (1, 2, 3, 4, 7, 8)
# rows: empty, one row, below one block, not a multiple of 64 or 256 (several blocks, enough
# elements for several threads); C: 1, 7, 13 and 40 are not multiples of 8 (the SIMD width).
SHAPES = [(0, 5), (1, 7), (63, 13), (300, 40), (5000, 37), (9001, 13), (2048 + 37, 64)]


def _relu_pair(rng, rows, c):
    z = rng.standard_normal((rows, c)).astype(np.float32)
    return np.maximum(z, 0.0).astype(np.float32), rng.standard_normal((rows, c)).astype(np.float32)


def _ln_inputs(rng, rows, c):
    x = (rng.standard_normal((rows, c)) * 2 + 0.5).astype(np.float32)
    dy = rng.standard_normal((rows, c)).astype(np.float32)
    mean = x.mean(1, dtype=np.float64).astype(np.float32)
    inv_std = (1.0 / np.sqrt(x.astype(np.float64).var(1) + 1e-3)).astype(np.float32)
    gamma = rng.standard_normal(c).astype(np.float32)
    return x, dy, mean, inv_std, gamma


# Each user: (make inputs from rng, rows, C) -> args; run(args) -> tuple of float32 outputs whose
# last entries are the column sums; reference(args) -> the float64 column sums and the float64
# sums of |terms| (the scale of float32 summation error).
def _bias_grad_case(rng, rows, c):
    dy = rng.standard_normal((rows, c)).astype(np.float32)
    run = lambda: (_C.bias_grad(dy),)  # noqa: E731
    d = dy.astype(np.float64)
    return run, [(d.sum(0), np.abs(d).sum(0))]


def _bias_grad_4d_case(rng, rows, c):
    # The conv layers' call: NHWC dy, summed over N, H, W.
    dy = rng.standard_normal((rows, 1, 1, c)).astype(np.float32)
    run = lambda: (_C.bias_grad(dy),)  # noqa: E731
    d = dy.astype(np.float64).reshape(rows, c)
    return run, [(d.sum(0), np.abs(d).sum(0))]


def _act_bias_case(rng, rows, c):
    y, dy = _relu_pair(rng, rows, c)
    run = lambda: _C.act_bias_backward(y, dy, "relu")  # noqa: E731
    dz = np.where(y > 0, dy, 0).astype(np.float64)
    return run, [(dz, None), (dz.sum(0), np.abs(dz).sum(0))]


def _pool_case(rng, rows, c):
    y, dy = _relu_pair(rng, rows, c)
    y, dy = y.reshape(rows, 1, 1, c), dy.reshape(rows, 1, 1, c)
    run = lambda: (_C.max_pool2d_relu_bias_grad(dy, y),)  # noqa: E731
    dz = np.where(y > 0, dy, 0).astype(np.float64).reshape(rows, c)
    return run, [(dz.sum(0), np.abs(dz).sum(0))]


def _row_block_case(rng, rows, c):
    x = rng.standard_normal((rows, c)).astype(np.float32)
    run = lambda: (_C.row_block_sums(x),)  # noqa: E731
    d = x.astype(np.float64)
    return run, [(d.sum(0), np.abs(d).sum(0))]


def _matmul_act_case(rng, rows, c):
    n = 24
    g = rng.standard_normal((rows, n)).astype(np.float32)
    w = (rng.standard_normal((c, n)) / np.sqrt(n)).astype(np.float32)
    y = np.maximum(rng.standard_normal((rows, c)), 0).astype(np.float32)
    run = lambda: _C.matmul_act_backward(g, w, y, "relu")  # noqa: E731
    dz = np.where(y > 0, g.astype(np.float64) @ w.astype(np.float64).T, 0)
    # dz itself comes from a float32 GEMM: compared with the GEMM's error, not bitwise to float64.
    return run, [(dz, None), (dz.sum(0), np.abs(dz).sum(0) + 1e-3 * np.abs(g).sum() / max(c, 1))]


def _layer_norm_case(rng, rows, c, with_sum=False):
    args = _ln_inputs(rng, rows, c)
    fn = _C.layer_norm_backward_with_sum if with_sum else _C.layer_norm_backward
    run = lambda: fn(*args)  # noqa: E731
    x64 = [a.astype(np.float64) for a in args]
    outs = npnorm.layer_norm_grad_with_sum(*x64) if with_sum else npnorm.layer_norm_grad(*x64)
    dx, dgamma, dbeta = outs[:3]
    xh = (x64[0] - x64[2][:, None]) * x64[3][:, None]
    checks = [(dx, None), (dgamma, np.abs(x64[1] * xh).sum(0)), (dbeta, np.abs(x64[1]).sum(0))]
    if with_sum:
        checks.append((outs[3], np.abs(dx).sum(0)))
    return run, checks


CASES = {
    "bias_grad": _bias_grad_case,
    "bias_grad_nhwc": _bias_grad_4d_case,
    "act_bias_backward": _act_bias_case,
    "max_pool2d_relu_bias_grad": _pool_case,
    "row_block_sums": _row_block_case,
    "matmul_act_backward": _matmul_act_case,
    "layer_norm_backward": _layer_norm_case,
    "layer_norm_backward_with_sum": lambda rng, r, c: _layer_norm_case(rng, r, c, with_sum=True),
}


def _run_at(threads, run):
    pynn.set_num_threads(threads)
    return run()


@pytest.mark.parametrize("rows,c", SHAPES)
@pytest.mark.parametrize("user", sorted(CASES))
def test_column_sums_are_bitwise_at_any_thread_count_and_match_float64(user, rows, c, restore_threads):
    run, checks = CASES[user](np.random.default_rng(rows * 131 + c), rows, c)
    ref = _run_at(1, run)
    assert len(ref) == len(checks)
    for got, (want, scale) in zip(ref, checks):
        assert got.dtype == np.float32
        got = np.asarray(got, np.float64).reshape(want.shape)
        if scale is None:   # elementwise outputs (dz, dx): float32 rounding of each element
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        else:               # a sum: within float32 summation error of its terms
            assert np.all(np.abs(got - want) <= 1e-5 * scale + 1e-6), (user, np.max(np.abs(got - want) - 1e-5 * scale))
    if rows == 0:
        for got in ref[-1:]:
            assert not np.any(got)
    for threads in THREADS[1:]:
        outs = _run_at(threads, run)
        for a, b in zip(outs, ref):
            np.testing.assert_array_equal(a, b, err_msg=f"{user} at {threads} threads")


@pytest.mark.parametrize("user", ["bias_grad", "act_bias_backward", "max_pool2d_relu_bias_grad", "row_block_sums"])
def test_nan_and_inf_reach_only_their_own_column(user, restore_threads):
    rows, c = 5000, 37
    rng = np.random.default_rng(7)
    y = (np.abs(rng.standard_normal((rows, c))) + 0.1).astype(np.float32)   # all active under relu
    dy = rng.standard_normal((rows, c)).astype(np.float32)
    dy[4321, 3] = np.nan
    dy[17, 11] = np.inf
    dy[2999, 20] = -np.inf
    calls = {
        "bias_grad": lambda: _C.bias_grad(dy),
        "act_bias_backward": lambda: _C.act_bias_backward(y, dy, "relu")[1],
        "max_pool2d_relu_bias_grad": lambda: _C.max_pool2d_relu_bias_grad(dy.reshape(rows, 1, 1, c),
                                                                           y.reshape(rows, 1, 1, c)),
        "row_block_sums": lambda: _C.row_block_sums(dy),
    }
    for threads in THREADS:
        db = _run_at(threads, calls[user])
        assert np.isnan(db[3]) and db[11] == np.inf and db[20] == -np.inf, (threads, db[[3, 11, 20]])
        others = np.delete(db, [3, 11, 20])
        assert np.all(np.isfinite(others))


def test_layer_norm_nan_reaches_its_parameter_gradients(restore_threads):
    x, dy, mean, inv_std, gamma = _ln_inputs(np.random.default_rng(3), 3000, 21)
    dy[1234, 5] = np.nan
    for threads in THREADS:
        _, dgamma, dbeta = _run_at(threads, lambda: _C.layer_norm_backward(x, dy, mean, inv_std, gamma))
        assert np.isnan(dbeta[5]) and np.isnan(dgamma[5])
        assert np.all(np.isfinite(np.delete(dbeta, 5))) and np.all(np.isfinite(np.delete(dgamma, 5)))


@pytest.mark.parametrize("make", [
    lambda: pynn.layers.LayerNormalization(),                # fused kernel: fixed-block dgamma/dbeta
    lambda: pynn.layers.LayerNormalization(axis=(1, 2, 3)),  # composed from ops (numpy reductions)
    lambda: pynn.layers.GroupNormalization(groups=8),        # composed
    lambda: pynn.layers.BatchNormalization(axis=1),          # composed (not the channels-last kernel)
], ids=["layer_norm", "layer_norm_axes", "group_norm", "batch_norm_axis1"])
def test_normalization_layers_are_bitwise_at_any_thread_count(make, restore_threads):
    # Every other normalisation path a model can take: output, input gradient and parameter
    # gradients the same bits at 1..8 threads (the channels-last batch norm is pinned in
    # tests/test_batch_norm_kernels.py).
    from pynn.autograd import Tensor
    x = np.random.default_rng(3).standard_normal((16, 16, 16, 64)).astype(np.float32) * 2 + 1
    g = np.random.default_rng(4).standard_normal(x.shape).astype(np.float32)
    ref = None
    with pynn.use_backend("native"):
        for threads in THREADS:
            pynn.set_num_threads(threads)
            layer = make()
            xp = Tensor(x.copy(), requires_grad=True)
            y = layer(xp, training=True) if isinstance(layer, pynn.layers.BatchNormalization) else layer(xp)
            y.backward(g)
            outs = [y.data, xp.grad] + [w.grad for w in layer.trainable_weights] + [w.data for w in layer.weights]
            if ref is None:
                ref = outs
            for a, b in zip(outs, ref):
                np.testing.assert_array_equal(a, b, err_msg=f"at {threads} threads")
