"""The native layer norm row kernels (generic and AVX2 builds of csrc/norm/normalization_impl.h,
chosen at run time) against the float64 numpy reference: widths that are not multiples of the
8-lane vector, null gamma/beta, a large mean next to a small spread; the two ISA builds against
each other; and 1, 2, 3, 4, 7, 8 threads (rows are independent, so y, mean, inv_std and dx are
bit-for-bit the same at every thread count; dgamma/dbeta and Σdx sum fixed row blocks, so they are
too); the fused residual forward (add_layer_norm_forward) and the backward with Σdx."""
import numpy as np
import pytest

import pynn
from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

from pynn import _C  # noqa: E402  (after the skip guard: the module exists only when built)

ISAS = ["generic"] + (["avx2"] if _C.cpu_has_avx2_fma() else [])


def _data(rows, c, offset, spread, seed=0):
    r = np.random.default_rng(seed + rows * 31 + c)
    x = (offset + spread * r.standard_normal((rows, c))).astype(np.float32)
    gamma, beta = r.standard_normal(c).astype(np.float32), r.standard_normal(c).astype(np.float32)
    dy = r.standard_normal((rows, c)).astype(np.float32)
    return x, gamma, beta, dy


def _run(isa, threads, x, gamma, beta, dy):
    old_isa, old_threads = _C.isa(), pynn.get_num_threads()
    _C.set_isa(isa)
    pynn.set_num_threads(threads)
    try:
        y, mean, inv = _C.layer_norm_forward(x, gamma, beta, 1e-3)
        dx, dg, db = _C.layer_norm_backward(x, dy, mean, inv, gamma)
    finally:
        _C.set_isa(old_isa)
        pynn.set_num_threads(old_threads)
    return y, mean, inv, dx, dg, db


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("rows,c,offset,spread", [(1, 1, 0.0, 1.0), (5, 7, 0.0, 1.0), (33, 8, 0.0, 2.0),
                                                  (257, 256, 0.0, 1.0), (64, 1003, 300.0, 0.5),
                                                  (19, 17, -50.0, 1e-2), (40, 256, 1e4, 1.0), (9, 40, -3e3, 0.05)])
def test_layer_norm_native_matches_float64_reference(isa, affine, rows, c, offset, spread):
    from pynn.backend import numpy as Ref
    x, gamma, beta, dy = _data(rows, c, offset, spread)
    if not affine:
        gamma = beta = None
    y, mean, inv, dx, dg, db = _run(isa, 1, x, gamma, beta, dy)
    g64 = None if gamma is None else gamma.astype(np.float64)
    b64 = None if beta is None else beta.astype(np.float64)
    y_r, mean_r, inv_r = Ref.layer_norm(x.astype(np.float64), g64, b64, 1e-3)
    np.testing.assert_allclose(mean, mean_r, rtol=1e-6, atol=1e-6 * spread)
    np.testing.assert_allclose(inv, inv_r, rtol=1e-4)
    # Near a large mean x itself carries |offset|·2^-24 of rounding, scaled by |gamma|·inv_std.
    gmax = 1.0 if gamma is None else np.abs(gamma).max()
    quant = 4 * np.finfo(np.float32).eps * abs(offset) * gmax * inv_r.max()
    np.testing.assert_allclose(y, y_r, rtol=1e-4, atol=1e-4 * max(np.abs(y_r).max(), 1.0) + quant)
    dx_r, dg_r, db_r = Ref.layer_norm_grad(x.astype(np.float64), dy.astype(np.float64), mean.astype(np.float64),
                                           inv.astype(np.float64), g64)
    np.testing.assert_allclose(db, db_r, rtol=1e-4, atol=1e-5 * np.sqrt(rows))
    np.testing.assert_allclose(dg, dg_r, rtol=1e-4, atol=1e-4 * np.sqrt(rows))
    # dx = inv·(g − mean(g) − x̂·mean(g·x̂)) cancels: its rounding error scales with the terms
    # before the cancellation, inv·|g| (with FMA, g − mean(g) uses the unrounded product dy·γ),
    # not with |dx| (which is exactly 0 for C = 1).
    g_abs = np.abs(dy * (1.0 if gamma is None else gamma)).max()
    np.testing.assert_allclose(dx, dx_r, rtol=1e-3,
                               atol=1e-5 * g_abs * inv_r.max() + 1e-4 * np.abs(dx_r).max()
                               + quant * np.abs(dy).max() * inv_r.max())


@pytest.mark.skipif(len(ISAS) < 2, reason="CPU has no AVX2+FMA: only the generic build runs")
@pytest.mark.parametrize("c", [3, 8, 64, 100, 256])
def test_layer_norm_avx2_build_agrees_with_generic_build(c):
    x, gamma, beta, dy = _data(129, c, 1.0, 3.0, seed=5)
    out_g = _run("generic", 1, x, gamma, beta, dy)
    out_a = _run("avx2", 1, x, gamma, beta, dy)
    for name, a, g in zip(["y", "mean", "inv_std", "dx", "dgamma", "dbeta"], out_a, out_g):
        # Only the summation order (8 lanes vs 4) and FMA contraction differ.
        np.testing.assert_allclose(a, g, rtol=1e-5, atol=1e-5 * max(np.abs(g).max(), 1.0), err_msg=name)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
def test_layer_norm_is_bitwise_identical_across_thread_counts(isa, threads):
    # 4096 × 96 floats: well past the per-thread grain, so every thread count really splits.
    x, gamma, beta, dy = _data(4096, 96, 0.5, 2.0, seed=9)
    ref = _run(isa, 1, x, gamma, beta, dy)
    got = _run(isa, threads, x, gamma, beta, dy)
    # dgamma/dbeta: float partials over row blocks fixed by the shape, added in block order.
    for name, a, b in zip(["y", "mean", "inv_std", "dx", "dgamma", "dbeta"], got, ref):
        np.testing.assert_array_equal(a, b, err_msg=name)


def _run_fused(isa, threads, x, res, gamma, beta, dy):
    old_isa, old_threads = _C.isa(), pynn.get_num_threads()
    _C.set_isa(isa)
    pynn.set_num_threads(threads)
    try:
        y, s, mean, inv = _C.add_layer_norm_forward(x, res, gamma, beta, 1e-3)
        return (y, s, mean, inv) + tuple(_C.layer_norm_backward_with_sum(s, dy, mean, inv, gamma))
    finally:
        _C.set_isa(old_isa)
        pynn.set_num_threads(old_threads)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,c", [(1, 1), (7, 13), (300, 128), (2048, 96)])
def test_add_layer_norm_is_bitwise_an_add_then_layer_norm(isa, rows, c):
    x, gamma, beta, dy = _data(rows, c, 0.3, 1.5, seed=3)
    res = np.random.default_rng(rows).standard_normal((rows, c)).astype(np.float32)
    y, s, mean, inv, dx, dg, db, dsum = _run_fused(isa, pynn.get_num_threads(), x, res, gamma, beta, dy)
    np.testing.assert_array_equal(s, x + res)
    y2, mean2, inv2, dx2, dg2, db2 = _run(isa, pynn.get_num_threads(), x + res, gamma, beta, dy)
    for name, a, b in zip(["y", "mean", "inv_std"], (y, mean, inv), (y2, mean2, inv2)):
        np.testing.assert_array_equal(a, b, err_msg=name)
    # The backward with the column sums is the plain backward plus Σdx (float64 reference).
    for name, a, b in zip(["dx", "dgamma", "dbeta"], (dx, dg, db), (dx2, dg2, db2)):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_allclose(dsum, dx.astype(np.float64).sum(0), rtol=1e-5, atol=1e-5 * np.sqrt(rows))


@pytest.mark.parametrize("isa", ISAS)
def test_add_layer_norm_and_column_sums_are_bitwise_identical_across_thread_counts(isa):
    x, gamma, beta, dy = _data(4096, 96, 0.5, 2.0, seed=11)
    res = np.random.default_rng(5).standard_normal(x.shape).astype(np.float32)
    ref = _run_fused(isa, 1, x, res, gamma, beta, dy)
    for threads in (2, 3, 4, 7, 8):
        got = _run_fused(isa, threads, x, res, gamma, beta, dy)
        for name, a, b in zip(["y", "s", "mean", "inv_std", "dx", "dgamma", "dbeta", "dx_sum"], got, ref):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} at {threads} threads")


def test_backend_add_layer_norm_native_matches_the_numpy_reference():
    from pynn.backend.native import norm as nat
    from pynn.backend.numpy import norm as npref
    x, gamma, beta, dy = _data(50, 24, 0.0, 1.0, seed=4)
    res = np.random.default_rng(9).standard_normal((2, 25, 24)).astype(np.float32)
    x = x.reshape(2, 25, 24)
    got, want = nat.add_layer_norm(x, res, gamma, beta, 1e-5), npref.add_layer_norm(x, res, gamma, beta, 1e-5)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    args = (got[1], dy.reshape(x.shape), got[2], got[3], gamma)
    for a, b in zip(nat.layer_norm_grad_with_sum(*args), npref.layer_norm_grad_with_sum(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_add_layer_norm_rejects_mismatched_shapes():
    x = np.zeros((4, 8), np.float32)
    with pytest.raises(ValueError, match="add_layer_norm"):
        _C.add_layer_norm_forward(x, np.zeros((4, 7), np.float32), None, None, 1e-5)
    from pynn.backend.numpy import norm as npref
    with pytest.raises(ValueError, match="add_layer_norm"):
        npref.add_layer_norm(x, np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="layer_norm_grad"):
        _C.layer_norm_backward_with_sum(x, x, np.zeros(3, np.float32), np.ones(4, np.float32), None)
