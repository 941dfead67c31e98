"""bench/numpy_dropin.py's epoch profile measures the lecture code it claims to: its timing proxy
for the module bound to ``np`` changes no result, sees every np.* call the epoch makes, and its
line tracer attributes time to the lecture's own lines (the mask store among them)."""
import numpy as np
import pytest


@pytest.fixture
def dropin(bench_on_path):
    import numpy_dropin
    return numpy_dropin


@pytest.mark.parametrize("module", ["numpy", "pynn"])
def test_profile_proxy_and_line_tracer_leave_the_epoch_unchanged(dropin, module):
    pytest.importorskip("sklearn")
    ex = dropin.load_example()
    X, _, y, _ = ex.load("float32")
    X, y = X[:300], y[:300]
    mod = ex.use(module)

    def epoch(bind):
        params = ex.init_mlp(X.shape[1], 32, 10, "float32")
        ex.np = bind
        try:
            loss = ex.mlp_epoch(params, X, y, 64, 0.05, np.random.default_rng(0))
        finally:
            ex.np = mod
        return loss, params

    ref_loss, ref_params = epoch(mod)
    acc = {}
    loss, params = epoch(dropin._TimedModule(mod, acc))
    assert loss == ref_loss
    for p, q in zip(params, ref_params):
        np.testing.assert_array_equal(p, q)
    calls = acc.pop(None)
    assert {"dot", "maximum", "sum", "max", "mean", "exp", "log"} <= set(acc)
    assert calls == 5 * 15 + 1  # 5 batches of 15 np.* calls each (5 dot, 2 arange, 3 sum ...), the final mean
    assert all(t >= 0 for t in acc.values())

    params = ex.init_mlp(X.shape[1], 32, 10, "float32")
    total, lines = dropin._line_times(ex, (params, X, y, 64, 0.05, np.random.default_rng(0)))
    src = open(ex.__file__).read().splitlines()
    mask_line = next(i + 1 for i, line in enumerate(src) if "dh[z1 <= 0] = 0" in line)
    assert mask_line in lines and 0 < sum(lines.values()) <= total * 1.01


@pytest.mark.parametrize("module", ["numpy", "pynn"])
def test_per_statement_copy_of_the_epoch_computes_what_the_lecture_epoch_computes(dropin, module):
    """--only lines times a copy of mlp_epoch split into statements: it must be the same computation
    (same parameters after an epoch, bit for bit, and the same loss), and every statement is timed."""
    pytest.importorskip("sklearn")
    ex = dropin.load_example()
    X, _, y, _ = ex.load("float32")
    X, y = X[:300], y[:300]
    mod = ex.use(module)
    ref = ex.init_mlp(X.shape[1], 32, 10, "float32")
    ref_loss = ex.mlp_epoch(ref, X, y, 64, 0.05, np.random.default_rng(0))
    params = ex.init_mlp(X.shape[1], 32, 10, "float32")
    acc = [0.0] * len(dropin.LINE_STEPS)
    loss = dropin.mlp_epoch_by_step(mod, params, X, y, 64, 0.05, np.random.default_rng(0), acc, dropin.CLOCK)
    assert loss == ref_loss
    for p, q in zip(params, ref):
        np.testing.assert_array_equal(p, q)
    assert all(t > 0 for t in acc)
    assert {k for _, k in dropin.LINE_STEPS} == {"np", "op"}
