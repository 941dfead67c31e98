"""The native batch norm's one-pass statistics (per-block mean and M2 merged in double, Chan
et al.) and fused backward reduction, against the float64 numpy reference: row counts that are
not multiples of the 32-row block, a large mean next to a small spread (where a one-pass
Σx² − (Σx)²/n would cancel), and 1, 2, 3 and 7 threads."""
import numpy as np
import pytest

import pynn
from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")


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
