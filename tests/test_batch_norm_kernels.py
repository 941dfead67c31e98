"""The native batch norm's one-pass statistics (per-block mean and M2 merged in double, Chan
et al.) and fused backward reduction, against the float64 numpy reference: row counts that are
not multiples of the 32-row block, a large mean next to a small spread (where a one-pass
Σx² − (Σx)²/n would cancel), and 1, 2, 3 and 7 threads."""
import numpy as np
import pytest

import pynn
from pynn import backend, layers
from pynn.autograd import Tensor

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

from pynn import _C  # noqa: E402  (after the skip guard: the module exists only when built)


def _ref():
    from pynn.backend import numpy as Ref
    return Ref


@pytest.mark.parametrize("rows,c,offset,spread", [(1, 5, 0.0, 1.0), (33, 7, 0.0, 1.0), (1000, 64, 0.0, 2.0),
                                                  (4099, 24, 1e4, 0.5), (777, 3, -300.0, 1e-2)])
@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_batch_norm_forward_and_backward_match_float64_reference(rows, c, offset, spread, threads):
    r = np.random.default_rng(rows + c)
    x = (offset + spread * r.standard_normal((rows, c))).astype(np.float32)
    gamma, beta = r.standard_normal(c).astype(np.float32), r.standard_normal(c).astype(np.float32)
    dy = r.standard_normal((rows, c)).astype(np.float32)
    Ref = _ref()
    x64 = x.astype(np.float64)
    y_r, mean_r, inv_r = Ref.batch_norm(x64, gamma.astype(np.float64), beta.astype(np.float64), 1e-3)
    before = pynn.get_num_threads()
    pynn.set_num_threads(threads)
    try:
        with pynn.use_backend("native"):
            nb = backend.current()
            y, mean, inv = nb.batch_norm(x, gamma, beta, 1e-3)
            dx, dg, db = nb.batch_norm_grad(x, dy, mean, inv, gamma)
    finally:
        pynn.set_num_threads(before)
    np.testing.assert_allclose(mean, mean_r, rtol=1e-6, atol=1e-6 * spread)
    np.testing.assert_allclose(inv, inv_r, rtol=1e-4)
    # y = x·scale + shift in float32: next to a large mean, x itself carries |offset|·2^-24 of
    # rounding, which the normalisation scales by |gamma|·inv_std (the statistics above are exact).
    quant = 4 * np.finfo(np.float32).eps * abs(offset) * np.abs(gamma * inv_r).max()
    np.testing.assert_allclose(y, y_r, rtol=1e-4, atol=1e-4 * np.abs(y_r).max() + quant)
    # The backward against the reference given the same (float32) statistics it was handed.
    dx_r, dg_r, db_r = Ref.batch_norm_grad(x64, dy.astype(np.float64), mean.astype(np.float64),
                                           inv.astype(np.float64), gamma.astype(np.float64))
    np.testing.assert_allclose(db, db_r, rtol=1e-4, atol=1e-5 * np.sqrt(rows))
    np.testing.assert_allclose(dg, dg_r, rtol=1e-4, atol=1e-4 * np.sqrt(rows))
    np.testing.assert_allclose(dx, dx_r, rtol=1e-3, atol=1e-4 * np.abs(dx_r).max() + quant * np.abs(dy).max())


# ---------------------------------------------------------------- thread counts (issue #17)
# The statistics (forward) and Σdy, Σdy·x̂ (backward) run on fixed row blocks chosen from the
# shape (common/block_sums.h), so every output is the same bits at any thread count.
THREADS = (1, 2, 3, 4, 7, 8)
# Rows: one, below one 32-row block, not a multiple of the block, past the 2^20-float partials
# limit (1000003 rows x 3C: longer blocks); C: 1, 7 (below and off the SIMD width), 64.
RAGGED = [(1, 1), (1, 64), (7, 7), (7, 64), (1000, 1), (1000, 7), (4099, 64), (32768 + 5, 64), (100003, 7),
          (1000003, 1)]


def _inputs(rows, c, offset=0.5, spread=2.0, seed=None):
    r = np.random.default_rng(rows * 7 + c if seed is None else seed)
    x = (offset + spread * r.standard_normal((rows, c))).astype(np.float32)
    dy = r.standard_normal((rows, c)).astype(np.float32)
    gamma, beta = r.standard_normal(c).astype(np.float32), r.standard_normal(c).astype(np.float32)
    return x, dy, gamma, beta


def _native_fwd_bwd(x, dy, gamma, beta, threads):
    pynn.set_num_threads(threads)
    y, mean, inv = _C.batch_norm_forward(x, gamma, beta, 1e-3)
    dx, dg, db = _C.batch_norm_backward(x, dy, mean, inv, gamma)
    return y, mean, inv, dx, dg, db


def _check_against_float64(x, dy, gamma, beta, outs):
    """Each sum within 1e-5 of the sum of its |terms| of the float64 value (float32 partials of
    32 terms folded in double stay far inside that), the elementwise outputs within float32
    rounding of the float64 formula given the same statistics."""
    y, mean, inv, dx, dg, db = (np.asarray(o, np.float64) for o in outs)
    x64, dy64, g64, b64 = (a.astype(np.float64) for a in (x, dy, gamma, beta))
    rows = x.shape[0]
    mean64 = x64.mean(0)
    assert np.all(np.abs(mean - mean64) <= 1e-5 * np.abs(x64).mean(0) + 1e-30)
    # var: its terms (x - mean)^2 are all >= 0, so the bound is 1e-5 of var itself; inv_std =
    # 1/sqrt(var + eps) moves by half var's relative error, plus its own float32 rounding.
    var64 = ((x64 - mean64) ** 2).mean(0)
    inv64 = 1.0 / np.sqrt(var64 + 1e-3)
    assert np.all(np.abs(inv - inv64) <= (0.5e-5 * var64 / (var64 + 1e-3) + 2 ** -23) * inv64)
    xh = (x64 - mean) * inv                       # the backward is handed the float32 statistics
    assert np.all(np.abs(db - dy64.sum(0)) <= 1e-5 * np.abs(dy64).sum(0) + 1e-30)
    assert np.all(np.abs(dg - (dy64 * xh).sum(0)) <= 1e-5 * np.abs(dy64 * xh).sum(0) + 1e-30)
    y64 = xh * g64 + b64
    np.testing.assert_allclose(y, y64, rtol=1e-4, atol=1e-5 * np.abs(y64).max())
    dgs, dbs = (dy64 * xh).sum(0), dy64.sum(0)
    dx64 = g64 * inv / rows * (rows * dy64 - dbs - xh * dgs)
    np.testing.assert_allclose(dx, dx64, rtol=1e-4, atol=1e-5 * np.abs(dx64).max())


@pytest.mark.parametrize("rows,c", RAGGED)
def test_batch_norm_is_bitwise_at_any_thread_count_and_matches_float64(rows, c, restore_threads):
    x, dy, gamma, beta = _inputs(rows, c)
    ref = _native_fwd_bwd(x, dy, gamma, beta, 1)
    _check_against_float64(x, dy, gamma, beta, ref)
    for threads in THREADS[1:]:
        outs = _native_fwd_bwd(x, dy, gamma, beta, threads)
        for name, a, b in zip(("y", "mean", "inv_std", "dx", "dgamma", "dbeta"), outs, ref):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} at {threads} threads, shape {(rows, c)}")


@pytest.mark.parametrize("offset,spread", [(1e4, 0.5), (-300.0, 1e-2), (1e3, 1e-3)])
def test_batch_norm_statistics_next_to_a_large_mean_match_float64(offset, spread, restore_threads):
    # The block means are rounded in float (32 values near 1e4 sum to ~3e5, off by ~0.03): the
    # per-block Σ(x − m) correction keeps var within 1e-5 of its float64 value, where a merge of
    # rounded block means alone is off by ~1e-4.
    x, dy, gamma, beta = _inputs(50000 + 17, 24, offset, spread, seed=5)
    ref = _native_fwd_bwd(x, dy, gamma, beta, 1)
    x64 = x.astype(np.float64)
    var64 = x64.var(0)
    var = 1.0 / np.asarray(ref[2], np.float64) ** 2 - 1e-3
    # float32 inv_std (2^-24 relative) carries 2^-23 of var + eps into var.
    assert np.all(np.abs(var - var64) <= 1e-5 * var64 + 2 ** -22 * (var64 + 1e-3)), np.max(np.abs(var / var64 - 1))
    assert np.all(np.abs(ref[1] - x64.mean(0)) <= 1e-5 * np.abs(x64).mean(0))
    for threads in (2, 3, 7):
        for a, b in zip(_native_fwd_bwd(x, dy, gamma, beta, threads), ref):
            np.testing.assert_array_equal(a, b)


def test_batch_norm_nan_and_inf_reach_only_their_own_channel(restore_threads):
    x, dy, gamma, beta = _inputs(5000, 37, seed=11)
    x[4321, 3] = np.nan
    x[17, 11] = np.inf
    dy[2999, 20] = np.nan
    dy[10, 30] = -np.inf
    ref = None
    for threads in THREADS:
        y, mean, inv, dx, dg, db = outs = _native_fwd_bwd(x, dy, gamma, beta, threads)
        bad_x = [3, 11]
        # inf − inf in the deviations: the inf column's statistics are NaN (numpy: mean inf, var NaN).
        assert np.isnan(mean[3]) and not np.isfinite(mean[11]) and np.isnan(inv[11])
        assert np.all(np.isnan(y[:, bad_x])) and np.all(np.isnan(dx[:, bad_x]))
        assert np.isnan(dg[20]) and np.isnan(db[20]) and db[30] == -np.inf
        ok = np.setdiff1d(np.arange(37), bad_x)
        assert np.all(np.isfinite(mean[ok])) and np.all(np.isfinite(inv[ok])) and np.all(np.isfinite(y[:, ok]))
        ok_grad = np.setdiff1d(np.arange(37), bad_x + [20, 30])
        assert np.all(np.isfinite(dg[ok_grad])) and np.all(np.isfinite(db[ok_grad]))
        if ref is None:
            ref = outs
        for a, b in zip(outs, ref):
            np.testing.assert_array_equal(a, b)


def test_batch_norm_with_no_rows_is_an_error_and_its_backward_sums_nothing():
    x = np.zeros((0, 5), np.float32)
    with pytest.raises(ValueError, match="no samples"):
        _C.batch_norm_forward(x, None, None, 1e-3)
    with pynn.use_backend("native"), pytest.raises(ValueError, match="no samples"):
        backend.current().batch_norm(np.zeros((0, 4, 4, 5), np.float32))
    dx, dg, db = _C.batch_norm_backward(x, x, np.zeros(5, np.float32), np.ones(5, np.float32), None)
    assert dx.shape == (0, 5) and not np.any(dg) and not np.any(db)


def _torch_bn_pair(torch, shape, momentum=0.9, seed=0):
    """A pynn BatchNormalization (channels_last) and a torch BatchNorm1d/2d (channels first)
    with the same gamma, beta and moving statistics."""
    r = np.random.default_rng(seed)
    c = shape[-1]
    bn = layers.BatchNormalization(momentum=momentum, epsilon=1e-3)
    bn.build((None,) + shape[1:])
    bn.gamma.data[...] = r.standard_normal(c).astype(np.float32)
    bn.beta.data[...] = r.standard_normal(c).astype(np.float32)
    bn.moving_mean.data[...] = r.standard_normal(c).astype(np.float32)
    bn.moving_variance.data[...] = (0.5 + r.random(c)).astype(np.float32)
    tb = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(c, eps=1e-3, momentum=1 - momentum)
    with torch.no_grad():
        tb.weight.copy_(torch.from_numpy(bn.gamma.data))
        tb.bias.copy_(torch.from_numpy(bn.beta.data))
        tb.running_mean.copy_(torch.from_numpy(bn.moving_mean.data))
        tb.running_var.copy_(torch.from_numpy(bn.moving_variance.data))
    return bn, tb


@pytest.mark.parametrize("shape", [(1000, 7), (16, 9, 11, 64), (3, 5, 5, 1)])
@pytest.mark.parametrize("threads", [1, 3])
def test_batch_norm_layer_matches_torch_forward_backward_and_running_stats(shape, threads, native_backend,
                                                                          restore_threads):
    torch = pytest.importorskip("torch")
    pynn.set_num_threads(threads)
    bn, tb = _torch_bn_pair(torch, shape)
    var_before = bn.moving_variance.data.astype(np.float64)
    r = np.random.default_rng(1)
    x = (1.5 + 3 * r.standard_normal(shape)).astype(np.float32)
    g = r.standard_normal(shape).astype(np.float32)
    to_torch = (lambda a: a.permute(0, 3, 1, 2)) if len(shape) == 4 else (lambda a: a)
    xt = to_torch(torch.from_numpy(x.copy())).requires_grad_(True)
    yt = tb.train()(xt)
    yt.backward(to_torch(torch.from_numpy(g)))
    xp = Tensor(x.copy(), requires_grad=True)
    y = bn(xp, training=True)
    y.backward(g)
    back = (lambda t: t.permute(0, 2, 3, 1)) if len(shape) == 4 else (lambda t: t)
    np.testing.assert_allclose(y.data, back(yt).detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(xp.grad, back(xt.grad).numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(bn.gamma.grad, tb.weight.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(bn.beta.grad, tb.bias.grad.numpy(), rtol=1e-4, atol=1e-3)
    # Running statistics: torch's running_var takes the unbiased batch variance, Keras's (and
    # pynn's) moving_variance the biased one; compare after undoing that factor.
    n, m = x.size // shape[-1], 0.9
    np.testing.assert_allclose(bn.moving_mean.data, tb.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    batch_var_unbiased = (tb.running_var.numpy().astype(np.float64) - m * var_before) / (1 - m)
    np.testing.assert_allclose(bn.moving_variance.data, m * var_before + (1 - m) * batch_var_unbiased * (n - 1) / n,
                               rtol=1e-5)
    # Inference on the same moving statistics as torch's eval mode.
    with torch.no_grad():
        tb.running_var.copy_(torch.from_numpy(bn.moving_variance.data))
        yti = back(tb.eval()(to_torch(torch.from_numpy(x.copy())))).numpy()
    np.testing.assert_allclose(bn(x, training=False).data, yti, rtol=1e-4, atol=1e-4)


def test_batch_norm_layer_training_step_is_bitwise_at_any_thread_count(native_backend, restore_threads):
    # The layer as a model runs it (NHWC 4-D input, moving statistics updated in place, then
    # inference): every output and gradient the same bits at 1..8 threads.
    # (16, 16, 16, 64): enough rows for 8 threads; the per-thread merge this replaces changed
    # 3 to 5 of these 8 arrays at 2..8 threads.
    x = np.random.default_rng(3).standard_normal((16, 16, 16, 64)).astype(np.float32) * 2 + 1
    g = np.random.default_rng(4).standard_normal(x.shape).astype(np.float32)
    ref = None
    for threads in THREADS:
        pynn.set_num_threads(threads)
        bn = layers.BatchNormalization(momentum=0.9)
        bn.build((None, 16, 16, 64))
        bn.gamma.data[...] = np.linspace(0.5, 2, 64, dtype=np.float32)
        xp = Tensor(x.copy(), requires_grad=True)
        y = bn(xp, training=True)
        y.backward(g)
        outs = (y.data, xp.grad, bn.gamma.grad, bn.beta.grad, bn.moving_mean.data.copy(),
                bn.moving_variance.data.copy(), bn(x, training=False).data)
        if ref is None:
            ref = outs
        for a, b in zip(outs, ref):
            np.testing.assert_array_equal(a, b, err_msg=f"at {threads} threads")
