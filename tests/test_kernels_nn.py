"""Kernels of pynn.backend.{numpy,native}.nn: native against the numpy reference
on awkward shapes and views, each gradient against finite differences, hand
values, stability at +-1000, and the error contract of the bindings."""
import math

import numpy as np
import pytest

from pynn.backend import numpy as npb

try:
    from pynn.backend import native as nb
    from pynn import _C
except ImportError:  # extension not built: only the reference tests run
    nb = None
    _C = None

needs_native = pytest.mark.skipif(nb is None, reason="pynn._C not built")

# name -> (forward kwargs). Forward f(x, **kw), grad f_grad(x, y, dy, **kw).
ACTS = {
    "relu": {}, "leaky_relu": {"alpha": 0.2}, "sigmoid": {}, "tanh": {},
    "gelu": {}, "elu": {"alpha": 1.0},
}
ACT_CASES = list(ACTS.items()) + [("leaky_relu", {"alpha": 0.05}), ("elu", {"alpha": 1.7})]
SHAPES = [(0,), (1,), (7,), (33,), (129,), (1026,), (23, 1026)]
# float32 elementwise: a few ulp; atol covers results that pass through 0.
RTOL, ATOL = 2e-5, 1e-6


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(shape, seed=0, scale=3.0):
    return (_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _views(shape):
    """(label, array) pairs: contiguous, transposed and strided views of that shape."""
    base = _x(shape)
    out = [("contig", base)]
    if len(shape) == 2:
        out.append(("transposed", np.ascontiguousarray(base.T).T))
        big = _x((shape[0], 2 * shape[1]), seed=5)
        out.append(("sliced", big[:, ::2]))
    else:
        big = _x((2 * shape[0],), seed=5)
        out.append(("sliced", big[::2]))
    return out


def _id(v):
    return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)


# ---------------------------------------------------------------- native == numpy
@needs_native
@pytest.mark.parametrize("name,kw", ACT_CASES, ids=lambda v: v if isinstance(v, str) else str(v))
@pytest.mark.parametrize("shape", SHAPES, ids=_id)
def test_activation_forward_and_grad_native_match_numpy(name, kw, shape):
    for label, x in _views(shape):
        y_ref = getattr(npb, name)(x, **kw)
        y = getattr(nb, name)(x, **kw)
        assert y.shape == x.shape and y.dtype == np.float32, label
        np.testing.assert_allclose(y, y_ref, rtol=RTOL, atol=ATOL, err_msg=f"{name} {label}")
        dy = _x(shape, seed=3, scale=1.0)
        if dy.ndim == 2:
            dy = dy.T.copy().T  # a non-contiguous upstream gradient too
        g_ref = getattr(npb, name + "_grad")(x, y_ref, dy, **kw)
        g = getattr(nb, name + "_grad")(x, y_ref, dy, **kw)
        assert g.shape == x.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, g_ref, rtol=RTOL, atol=ATOL, err_msg=f"{name}_grad {label}")


@needs_native
@pytest.mark.parametrize("name", list(ACTS))
def test_activation_native_accurate_over_wide_range(name):
    # Every region of the polynomial exp/tanh: tiny, around the branch points,
    # saturation, and the overflow/underflow edges.
    x = np.concatenate([np.linspace(-120, 120, 20001), np.linspace(-1, 1, 20001),
                        [-1e-30, 1e-30, 0.0, -0.0, 88.7, -88.7, 1e4, -1e4]]).astype(np.float32)
    with np.errstate(under="ignore"):
        ref = getattr(npb, name)(x.astype(np.float64)).astype(np.float32)
    # GELU's left tail x*erfc(-x/sqrt2) has condition number ~x^2 in its
    # argument: the float32 rounding of x/sqrt2 alone costs ~1e-5 at x = -11.
    rtol = 3e-5 if name == "gelu" else 2e-6
    np.testing.assert_allclose(nb.__dict__[name](x), ref, rtol=rtol, atol=1e-37)


@needs_native
def test_exp_based_kernels_reach_denormals_and_zero():
    x = np.array([[0.0, -90.0, -103.0, -110.0, -1000.0]], np.float32)
    ref = np.exp(x.astype(np.float64) - 0.0)
    y = nb.softmax(x)
    np.testing.assert_allclose(y, (ref / ref.sum()).astype(np.float32), rtol=1e-5, atol=2e-45)
    assert y[0, -1] == 0.0


@needs_native
@pytest.mark.parametrize("shape", [(0, 5), (1, 1), (7, 1), (5, 7), (33, 129), (23, 1026), (2, 3, 10)], ids=_id)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_native_match_numpy(op, shape):
    x = _x(shape, seed=1)
    views = [("contig", x)]
    if len(shape) == 2:
        views.append(("transposed", np.ascontiguousarray(x.T).T))
        views.append(("sliced", _x((shape[0], 2 * shape[1]), seed=2)[:, ::2]))
    for label, v in views:
        y_ref = getattr(npb, op)(v)
        y = getattr(nb, op)(v)
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6, err_msg=f"{op} {label}")
        dy = _x(shape, seed=4, scale=1.0)
        g_ref = getattr(npb, op + "_grad")(y_ref, dy)
        g = getattr(nb, op + "_grad")(y_ref, dy)
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5, err_msg=f"{op}_grad {label}")


@needs_native
@pytest.mark.parametrize("axis", [0, 1, -2])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_other_axes_match_numpy(op, axis):
    x = _x((6, 9, 4), seed=7)
    y_ref = getattr(npb, op)(x, axis=axis)
    y = getattr(nb, op)(x, axis=axis)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    dy = _x((6, 9, 4), seed=8)
    np.testing.assert_allclose(getattr(nb, op + "_grad")(y_ref, dy, axis=axis),
                               getattr(npb, op + "_grad")(y_ref, dy, axis=axis), rtol=1e-4, atol=1e-5)


@needs_native
@pytest.mark.parametrize("shape", [(1,), (7,), (5, 1026), (3, 4, 33), (0, 6), (1000, 40)], ids=_id)
def test_bias_add_and_grad_native_match_numpy(shape):
    x = _x(shape)
    b = _x(shape[-1:], seed=2)
    np.testing.assert_allclose(nb.bias_add(x, b), npb.bias_add(x, b), rtol=1e-6, atol=0)
    if x.ndim == 2:
        xt = np.ascontiguousarray(x.T).T
        np.testing.assert_allclose(nb.bias_add(xt, b), npb.bias_add(xt, b), rtol=1e-6)
    ref = x.astype(np.float64).reshape(-1, shape[-1]).sum(axis=0)
    g = nb.bias_grad(x)
    assert g.shape == shape[-1:] and g.dtype == np.float32
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(npb.bias_grad(x), ref, rtol=1e-4, atol=1e-3)


@needs_native
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape", [(1,), (7, 3), (5, 1026), (64, 26, 26, 32), (3000, 5), (0, 6)], ids=_id)
def test_fused_activation_and_bias_grad_match_the_two_separate_steps(activation, shape):
    # act_bias_grad(y, dy) == (act'(y)·dy, Σ over all but the last axis of it), y = act(z)
    z, dy = _x(shape), _x(shape, seed=3)
    y = z if activation == "linear" else getattr(npb, activation)(z)
    dz_ref = dy.astype(np.float64) if activation == "linear" else \
        getattr(npb, activation + "_grad")(z.astype(np.float64), y.astype(np.float64), dy.astype(np.float64))
    db_ref = dz_ref.reshape(-1, shape[-1]).sum(axis=0)
    for B in (nb, npb):
        dz, db = B.act_bias_grad(y, dy, activation)
        assert dz.shape == shape and db.shape == shape[-1:] and dz.dtype == db.dtype == np.float32
        np.testing.assert_allclose(dz, dz_ref, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(db, db_ref, rtol=1e-4, atol=1e-3)


@needs_native
def test_fused_activation_and_bias_grad_rejects_activations_not_readable_from_the_output():
    y = _x((4, 3))
    for B in (nb, npb):
        with pytest.raises(ValueError, match="act_bias_grad: activation 'gelu' cannot be differentiated"):
            B.act_bias_grad(y, y, "gelu")
    with pytest.raises(ValueError, match="dy must have shape|shape"):
        _C.act_bias_backward(y, _x((4, 2)), "relu")


@needs_native
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (33, 10), (128, 1000), (4, 5, 6), (0, 4)], ids=_id)
@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_softmax_cross_entropy_native_match_numpy(shape, kind):
    logits = _x(shape, seed=3)
    rng = _rng(4)
    if kind == "sparse":
        labels = rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)
    else:
        labels = rng.random(shape).astype(np.float32)
        labels /= labels.sum(axis=-1, keepdims=True)
    loss_ref, d_ref = npb.softmax_cross_entropy(logits, labels)
    loss, d = nb.softmax_cross_entropy(logits, labels)
    assert loss.shape == shape[:-1] and d.shape == shape
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d, d_ref, rtol=1e-5, atol=1e-6)
    if len(shape) == 2:  # and through a transposed view of the logits
        lt = np.ascontiguousarray(logits.T).T
        loss2, d2 = nb.softmax_cross_entropy(lt, labels)
        np.testing.assert_allclose(loss2, loss_ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(d2, d_ref, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- finite differences (float64, numpy)
def _fd(f, x, eps=1e-6):
    """Central differences of scalar f at every element of x (float64)."""
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f(x)
        flat[i] = old - eps
        fm = f(x)
        flat[i] = old
        gf[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("name,kw", ACT_CASES, ids=lambda v: v if isinstance(v, str) else str(v))
def test_activation_grad_matches_finite_differences(name, kw):
    # Elementwise: one perturbation of all elements at once gives every f'(x_i).
    x = _rng(1).standard_normal(200) * 3
    x = x[np.abs(x) > 1e-3]  # keep away from the kinks of relu/leaky_relu/elu
    dy = _rng(2).standard_normal(x.shape)
    f = getattr(npb, name)
    eps = 1e-6
    fd = (f(x + eps, **kw) - f(x - eps, **kw)) / (2 * eps) * dy
    g = getattr(npb, name + "_grad")(x, f(x, **kw), dy, **kw)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_grad_matches_finite_differences(op, axis):
    x = _rng(3).standard_normal((4, 5))
    w = _rng(4).standard_normal((4, 5))
    f = getattr(npb, op)
    g = getattr(npb, op + "_grad")(f(x, axis=axis), w, axis=axis)
    np.testing.assert_allclose(g, _fd(lambda z: np.sum(f(z, axis=axis) * w), x.copy()), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_softmax_cross_entropy_grad_matches_finite_differences(kind):
    x = _rng(5).standard_normal((3, 6)) * 2
    labels = np.array([0, 5, 2]) if kind == "sparse" else _rng(6).dirichlet(np.ones(6), size=3)
    _, d = npb.softmax_cross_entropy(x, labels)
    fd = _fd(lambda z: npb.softmax_cross_entropy(z, labels)[0].sum(), x.copy())
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-8)


def test_bias_grad_is_the_gradient_of_bias_add():
    x = _rng(7).standard_normal((3, 2, 4))
    b = _rng(8).standard_normal(4)
    w = _rng(9).standard_normal((3, 2, 4))
    fd = _fd(lambda bb: np.sum(npb.bias_add(x, bb) * w), b.copy())
    np.testing.assert_allclose(npb.bias_grad(w), fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- hand-checked values
BACKENDS = [pytest.param(npb, id="numpy"), pytest.param(nb, id="native", marks=needs_native)]


@pytest.mark.parametrize("B", BACKENDS)
def test_hand_checked_values(B):
    f = lambda a: np.array(a, np.float32)  # noqa: E731
    assert B.relu(f([-1.0]))[0] == 0.0 and B.relu(f([2.5]))[0] == 2.5
    assert B.leaky_relu(f([-1.0]), alpha=0.2)[0] == pytest.approx(-0.2)
    assert B.sigmoid(f([0.0]))[0] == 0.5
    assert B.tanh(f([0.5]))[0] == pytest.approx(math.tanh(0.5), rel=1e-6)
    assert B.gelu(f([1.0]))[0] == pytest.approx(0.8413447, rel=1e-6)
    assert B.gelu(f([-1.0]))[0] == pytest.approx(-0.1586553, rel=1e-5)
    assert B.elu(f([-1.0]))[0] == pytest.approx(math.exp(-1) - 1, rel=1e-6)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(B.softmax(f([[1, 2, 3]]))[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(B.log_softmax(f([[1, 2, 3]]))[0], np.log(e / e.sum()), rtol=1e-6)
    row = f([[2.0, -1.0, 0.5, 3.0]])
    loss, d = B.softmax_cross_entropy(row, np.array([2]))
    p = np.exp(row[0].astype(np.float64)) / np.exp(row[0].astype(np.float64)).sum()
    assert loss[0] == pytest.approx(-math.log(p[2]), rel=1e-6)
    np.testing.assert_allclose(d[0], p - np.eye(4)[2], rtol=1e-5, atol=1e-7)
    assert B.softmax(f([[5.0]]))[0, 0] == 1.0 and B.log_softmax(f([[5.0]]))[0, 0] == 0.0
    np.testing.assert_array_equal(B.bias_add(f([[1, 2], [3, 4]]), f([10, 20])), [[11, 22], [13, 24]])
    np.testing.assert_array_equal(B.bias_grad(f([[1, 2], [3, 4]])), [4, 6])


@pytest.mark.parametrize("B", BACKENDS)
def test_nan_propagates(B):
    x = np.array([np.nan, 1.0, -1.0], np.float32)
    for name in ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "elu"]:
        assert np.isnan(getattr(B, name)(x)[0]), name  # relu(NaN) is NaN on both backends
        assert not np.isnan(getattr(B, name)(x)[1:]).any(), name
    with np.errstate(invalid="ignore"):
        assert np.isnan(B.softmax(x[None])).all()
        assert np.isnan(B.log_softmax(x[None])).all()


# ---------------------------------------------------------------- stability
# Underflow to 0 (exp(-2000)) is the right answer, so only overflow, invalid
# and divide raise.
_RAISE = dict(all="raise", under="ignore")


@pytest.mark.parametrize("B", BACKENDS)
def test_stable_for_logits_of_1000(B):
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]], np.float32)
    with np.errstate(**_RAISE):
        s = B.sigmoid(x)
        np.testing.assert_array_equal(s[0], [1.0, 0.0, 0.5])
        assert np.isfinite(B.tanh(x)).all() and np.isfinite(B.gelu(x)).all() and np.isfinite(B.elu(x)).all()
        assert np.isfinite(B.gelu_grad(x, B.gelu(x), np.ones_like(x))).all()
        y = B.softmax(x)
        np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6, atol=0)
        ly = B.log_softmax(x)
        np.testing.assert_allclose(ly[0], [0, -2000, -1000], rtol=1e-6)
        loss, d = B.softmax_cross_entropy(x, np.array([1, 2]))
        np.testing.assert_allclose(loss, [2000, math.log(3)], rtol=1e-6)
        np.testing.assert_allclose(d, [[1, -1, 0], [1 / 3, 1 / 3, -2 / 3]], rtol=1e-6, atol=1e-7)
        loss, _ = B.softmax_cross_entropy(x, np.array([[0, 0.5, 0.5], [1, 0, 0]], np.float32))
        np.testing.assert_allclose(loss, [1500, math.log(3)], rtol=1e-6)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("B", BACKENDS)
@pytest.mark.parametrize("bad", [-1, 10, 99])
def test_label_out_of_range_raises_naming_label(B, bad):
    logits = np.zeros((4, 10), np.float32)
    labels = np.array([1, 2, bad, 3], np.int16)
    with pytest.raises(ValueError, match=rf"softmax_cross_entropy.*label {bad}\b.*10"):
        B.softmax_cross_entropy(logits, labels)


@pytest.mark.parametrize("B", BACKENDS)
def test_labels_of_any_integer_dtype(B):
    logits = _x((5, 4))
    ref, _ = npb.softmax_cross_entropy(logits, np.array([0, 1, 2, 3, 0]))
    for dt in [np.int8, np.uint8, np.int32, np.uint64, np.int64]:
        loss, _ = B.softmax_cross_entropy(logits, np.array([0, 1, 2, 3, 0], dt))
        np.testing.assert_allclose(loss, ref, rtol=1e-6)


@needs_native
def test_C_rejects_float64_and_noncontiguous():
    x64 = np.zeros((3, 4))
    x = np.zeros((3, 4), np.float32)
    xt = np.zeros((4, 3), np.float32).T
    calls = [
        lambda a: _C.act_forward(a, "relu", 0.0),
        lambda a: _C.act_backward(a, x, x, "sigmoid", 0.0),
        lambda a: _C.bias_add(a, np.zeros(4, np.float32)),
        lambda a: _C.bias_grad(a),
        lambda a: _C.softmax(a, False),
        lambda a: _C.softmax_backward(a, x, True),
        lambda a: _C.softmax_xent_sparse(a, np.zeros(3, np.int64)),
        lambda a: _C.softmax_xent_dense(a, x),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=r"float32.*\(3, 4\)"):
            call(x64)
        with pytest.raises(ValueError, match="contiguous"):
            call(xt)


@needs_native
def test_C_rejects_bad_shapes_and_names():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"act_backward.*\(3, 4\).*\(4, 3\)"):
        _C.act_backward(x, x, np.zeros((4, 3), np.float32), "relu", 0.0)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        _C.act_forward(x, "swish", 0.0)
    with pytest.raises(ValueError, match=r"bias_add.*\(4,\).*\(3,\)"):
        _C.bias_add(x, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        _C.softmax_xent_sparse(x, np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="int64"):
        _C.softmax_xent_sparse(x, np.zeros(3, np.int32))


@needs_native
def test_float64_routes_to_reference():
    x = _rng(0).standard_normal((3, 5))
    for name in ["relu", "sigmoid", "gelu", "softmax", "log_softmax"]:
        y = getattr(nb, name)(x)
        assert y.dtype == np.float64
        np.testing.assert_array_equal(y, getattr(npb, name)(x))


@needs_native
@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_both_isa_builds_match_numpy(isa):
    if isa == "avx2" and not _C.cpu_has_avx2_fma():
        pytest.skip("no AVX2+FMA on this CPU")
    previous = _C.isa()
    _C.set_isa(isa)
    try:
        x = _x((23, 1026), seed=11)
        dy = _x((23, 1026), seed=12, scale=1.0)
        for name, kw in ACT_CASES:
            y_ref = getattr(npb, name)(x, **kw)
            np.testing.assert_allclose(getattr(nb, name)(x, **kw), y_ref, rtol=RTOL, atol=ATOL, err_msg=name)
            np.testing.assert_allclose(getattr(nb, name + "_grad")(x, y_ref, dy, **kw),
                                       getattr(npb, name + "_grad")(x, y_ref, dy, **kw),
                                       rtol=RTOL, atol=ATOL, err_msg=name)
        for op in ["softmax", "log_softmax"]:
            y_ref = getattr(npb, op)(x)
            np.testing.assert_allclose(getattr(nb, op)(x), y_ref, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(getattr(nb, op + "_grad")(y_ref, dy),
                                       getattr(npb, op + "_grad")(y_ref, dy), rtol=1e-4, atol=1e-5)
        labels = _rng(13).integers(0, 1026, size=23)
        for lab in [labels, npb.softmax(dy)]:
            loss_ref, d_ref = npb.softmax_cross_entropy(x, lab)
            loss, d = nb.softmax_cross_entropy(x, lab)
            np.testing.assert_allclose(loss, loss_ref, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(d, d_ref, rtol=1e-5, atol=1e-6)
    finally:
        _C.set_isa(previous)


@needs_native
def test_threaded_sizes_match_numpy():
    # Above the 32k-element grain the kernels split over an OpenMP team.
    previous = _C.num_threads()
    _C.set_num_threads(2)
    try:
        x = _x((300, 1001), seed=14)  # odd sizes: uneven blocks per thread
        for name in ["relu", "sigmoid", "elu"]:
            np.testing.assert_allclose(getattr(nb, name)(x), getattr(npb, name)(x), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(nb.softmax(x), npb.softmax(x), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(nb.bias_grad(x), x.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-4)
        labels = _rng(15).integers(0, 1001, size=300)
        np.testing.assert_allclose(nb.softmax_cross_entropy(x, labels)[0],
                                   npb.softmax_cross_entropy(x, labels)[0], rtol=1e-5, atol=1e-5)
    finally:
        _C.set_num_threads(previous)
