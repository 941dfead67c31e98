"""Property-based fuzzing of every native kernel against the numpy reference (issue #20).

Hypothesis draws shapes (0 and 1 included), memory layouts (contiguous, transposed,
strided and reversed views), NaN/Inf at random places and kernel options; the native and
the numpy kernel must then agree: same values (NaN where NaN, float32 tolerance), or the
same exception type. Example counts are bounded (settings below) so the whole file runs in
well under a minute; FUZZ_EXAMPLES=N scales every count for a longer local run. The
ASan/UBSan stage of CI runs this file too (.ci/sanitize).
"""
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import pynn  # noqa: E402

if not pynn.backend.NATIVE_AVAILABLE:
    pytest.skip("native extension not built", allow_module_level=True)

from pynn.backend import native as NAT, numpy as REF  # noqa: E402

_SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))


def fuzz(n):
    return settings(max_examples=max(1, int(n * _SCALE)), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


SPECIALS = [None, None, None, np.nan, np.inf, -np.inf]
LAYOUTS = ["c", "c", "f", "strided", "reversed"]


def make(data, shape, special=True, scale=1.0, lo=None, hi=None, layout=True):
    """A float32 array of ``shape`` with optional NaN/Inf and a random memory layout."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.uniform(lo, hi, shape) if lo is not None else rng.standard_normal(shape) * scale,
                   dtype=np.float32)
    if special and a.size:
        value = data.draw(st.sampled_from(SPECIALS), label="special")
        if value is not None:
            idx = tuple(rng.integers(0, d) for d in a.shape)
            a[idx] = value
    return relayout(a, data.draw(st.sampled_from(LAYOUTS), label="layout") if layout else "c")


def relayout(a, kind):
    """Same values, different strides: the kernels must accept any layout."""
    if a.ndim == 0 or kind == "c":
        return a
    if kind == "f":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.zeros((a.shape[0] * 2,) + a.shape[1:], a.dtype)
        big[::2] = a
        return big[::2]
    big = np.ascontiguousarray(a[::-1])  # reversed: negative stride on axis 0
    return big[::-1]


def run(be, name, args, kwargs):
    args = [a.copy() if isinstance(a, np.ndarray) else ([x.copy() for x in a] if isinstance(a, list) else a)
            for a in args]
    try:
        return getattr(be, name)(*args, **kwargs), args
    except (ValueError, TypeError) as e:
        return type(e), args


def close(got, want, rtol, atol, what):
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), what
        for i, (g, w) in enumerate(zip(got, want)):
            close(g, w, rtol, atol, f"{what}[{i}]")
        return
    if want is None:
        assert got is None, what
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if got.dtype.kind == "f" and want.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN positions differ")
        np.testing.assert_allclose(got, want.astype(got.dtype), rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def agree(name, *args, rtol=2e-4, atol=2e-5, inplace=(), **kwargs):
    """native and numpy ``name`` on the same inputs: same result, or the same exception type.
    ``inplace``: indices of arguments the kernel updates (optimizer steps), compared too."""
    got, got_args = run(NAT, name, args, kwargs)
    want, want_args = run(REF, name, args, kwargs)
    if isinstance(want, type) or isinstance(got, type):
        assert isinstance(got, type) and got is want, (
            f"{name}: native gave {got if isinstance(got, type) else 'a result'}, "
            f"numpy gave {want if isinstance(want, type) else 'a result'}")
        return None
    close(got, want, rtol, atol, name)
    for i in inplace:
        close(got_args[i], want_args[i], rtol, atol, f"{name} argument {i}")
    return got


dims = st.integers(0, 9)
small = st.integers(1, 6)
ACTS = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "elu"]


# ---------------------------------------------------------------- elementwise
@fuzz(60)
@given(data=st.data(), act=st.sampled_from(ACTS), shape=st.lists(dims, min_size=0, max_size=3))
def test_activation_forward_and_grad(data, act, shape):
    x = make(data, tuple(shape), scale=4.0)
    kw = {"alpha": data.draw(st.floats(0.0, 2.0))} if act in ("leaky_relu", "elu") else {}
    y = agree(act, x, **kw)
    if y is not None:
        dy = make(data, tuple(shape))
        agree(act + "_grad", x, REF.__dict__[act](x, **kw), dy, **kw)


@fuzz(25)
@given(data=st.data(), shape=st.lists(dims, min_size=1, max_size=3))
def test_integer_input_to_activation(data, shape):
    x = np.random.default_rng(data.draw(st.integers(0, 99))).integers(-5, 5, shape).astype(
        data.draw(st.sampled_from([np.int32, np.int64, np.uint8, np.bool_])))
    for act in ACTS:
        agree(act, x)


@fuzz(40)
@given(data=st.data(), rows=st.lists(dims, min_size=0, max_size=2), c=dims,
       act=st.sampled_from(["linear", "relu", "sigmoid", "tanh"]))
def test_bias_add_bias_grad_act_bias_grad(data, rows, c, act):
    shape = tuple(rows) + (c,)
    x, b = make(data, shape), make(data, (c,))
    agree("bias_add", x, b)
    agree("bias_grad", make(data, shape))
    y = REF.__dict__[act](x) if act != "linear" else x
    agree("act_bias_grad", y, make(data, shape), act, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- matmul
@fuzz(60)
@given(data=st.data(), m=st.integers(0, 40), k=st.integers(0, 40), n=st.integers(0, 40),
       batch=st.sampled_from([(), (1,), (3,), (2, 2)]), vec=st.sampled_from([None, "a", "b"]),
       bias=st.booleans(), act=st.sampled_from([None, "relu", "sigmoid", "tanh", "gelu"]))
def test_matmul(data, m, k, n, batch, vec, bias, act):
    a = make(data, (k,) if vec == "a" else batch + (m, k))
    b = make(data, (k,) if vec == "b" else (k, n) if data.draw(st.booleans()) else batch + (k, n))
    bb = make(data, (n,)) if bias and vec != "b" else None
    agree("matmul", a, b, bb, act, rtol=1e-4, atol=1e-4 * max(1, k) ** 0.5)


@fuzz(30)
@given(data=st.data(), m=st.integers(0, 30), k=st.integers(0, 30), n=st.integers(0, 30))
def test_weight_grad(data, m, k, n):
    agree("weight_grad", make(data, (m, k)), make(data, (m, n)), rtol=1e-4, atol=1e-4 * max(1, m) ** 0.5)


# ---------------------------------------------------------------- softmax family
@fuzz(50)
@given(data=st.data(), shape=st.lists(dims, min_size=1, max_size=3), log=st.booleans())
def test_softmax_and_grad(data, shape, log):
    x = make(data, tuple(shape), scale=5.0)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    name = "log_softmax" if log else "softmax"
    y = agree(name, x, axis=axis, rtol=1e-4, atol=1e-5)
    if y is not None:
        agree(name + "_grad", y, make(data, tuple(shape)), axis=axis, rtol=1e-4, atol=1e-4)


@fuzz(40)
@given(data=st.data(), n=dims, c=st.integers(1, 9), dense=st.booleans())
def test_softmax_cross_entropy(data, n, c, dense):
    logits = make(data, (n, c), scale=3.0)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    if dense:
        labels = rng.dirichlet(np.ones(c), n).astype(np.float32).reshape(n, c)
    else:
        labels = rng.integers(0, c, n).astype(data.draw(st.sampled_from([np.int64, np.int32])))
    agree("softmax_cross_entropy", logits, labels, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- convolution
@fuzz(50)
@given(data=st.data(), n=st.integers(0, 2), h=small, w=small, c=st.integers(0, 4), oc=st.integers(0, 4),
       kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       dil=st.sampled_from([(1, 1), (1, 2), (2, 1)]), padding=st.sampled_from(["valid", "same"]),
       bias=st.booleans(), act=st.sampled_from([None, "relu", "sigmoid"]))
def test_conv2d_forward_and_backward(data, n, h, w, c, oc, kh, kw, sh, sw, dil, padding, bias, act):
    x = make(data, (n, h, w, c), special=False)
    k = make(data, (kh, kw, c, oc), special=False)
    b = make(data, (oc,), special=False) if bias else None
    geo = dict(strides=(sh, sw), padding=padding, dilation=dil)
    tol = dict(rtol=1e-4, atol=1e-4 * max(1, kh * kw * c) ** 0.5)
    y = agree("conv2d", x, k, b, activation=act, **geo, **tol)
    if y is None:
        return
    dy = make(data, y.shape, special=False)
    agree("conv2d_backward_input", dy, k, x.shape, **geo, **tol)
    agree("conv2d_backward_kernel", x, dy, k.shape, rtol=1e-4, atol=1e-4 * max(1, y.size) ** 0.5, **geo)
    agree("conv2d_backward_bias", dy, rtol=1e-4, atol=1e-4 * max(1, y.size) ** 0.5)


@fuzz(30)
@given(data=st.data(), n=st.integers(0, 2), h=small, w=small, c=st.integers(0, 5))
def test_conv2d_with_nan_and_inf(data, n, h, w, c):
    x = make(data, (n, h, w, c))
    k = make(data, (3, 3, c, 2))
    agree("conv2d", x, k, None, padding="same", atol=1e-4)


# ---------------------------------------------------------------- pooling
@fuzz(60)
@given(data=st.data(), n=st.integers(0, 2), h=st.integers(0, 7), w=st.integers(0, 7), c=st.integers(0, 10),
       kh=st.integers(1, 3), kw=st.integers(1, 3), stride=st.sampled_from([None, (1, 1), (2, 1), (3, 2)]),
       padding=st.sampled_from(["valid", "same"]), kind=st.sampled_from(["max", "avg"]))
def test_pool2d_forward_and_backward(data, n, h, w, c, kh, kw, stride, padding, kind):
    x = make(data, (n, h, w, c))
    geo = dict(pool_size=(kh, kw), strides=stride, padding=padding)
    y = agree(f"{kind}_pool2d", x, **geo)
    if y is None:
        return
    dy = make(data, y.shape, special=False)
    if kind == "max":
        agree("max_pool2d_backward", x, y, dy, **geo)
    else:
        agree("avg_pool2d_backward", dy, x.shape, **geo)


@fuzz(40)
@given(data=st.data(), n=st.integers(0, 3), h=st.integers(0, 6), w=st.integers(0, 6), c=st.integers(0, 10))
def test_global_pools(data, n, h, w, c):
    x = make(data, (n, h, w, c))
    for kind in ("max", "avg"):
        y = agree(f"global_{kind}_pool2d", x)
        if y is None:
            continue
        dy = make(data, y.shape, special=False)
        if kind == "max":
            agree("global_max_pool2d_backward", x, y, dy)
        else:
            agree("global_avg_pool2d_backward", dy, x.shape)


# ---------------------------------------------------------------- normalisation
@fuzz(40)
@given(data=st.data(), rows=st.lists(st.integers(0, 6), min_size=1, max_size=3), c=st.integers(0, 9),
       kind=st.sampled_from(["batch_norm", "layer_norm"]), affine=st.booleans())
def test_normalization_forward_and_grad(data, rows, c, kind, affine):
    shape = tuple(rows) + (c,)
    x = make(data, shape, special=False, scale=3.0)
    g, b = (make(data, (c,), special=False), make(data, (c,), special=False)) if affine else (None, None)
    out = agree(kind, x, g, b, 1e-3, rtol=1e-4, atol=1e-4)
    if out is None:
        return
    _, mean, inv_std = out
    agree(kind + "_grad", x, make(data, shape, special=False), mean, inv_std, g, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------- gather
@fuzz(30)
@given(data=st.data(), v=st.integers(1, 9), d=st.integers(0, 6), ids_shape=st.lists(st.integers(0, 5), max_size=2))
def test_embedding_and_grad(data, v, d, ids_shape):
    table = make(data, (v, d))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    ids = rng.integers(0, v, ids_shape).astype(data.draw(st.sampled_from([np.int64, np.int32])))
    if ids.size and data.draw(st.booleans()):
        ids.flat[0] = data.draw(st.sampled_from([-1, v, v + 100]))  # out of range: both must refuse
    agree("embedding", table, ids)
    agree("embedding_grad", ids, make(data, tuple(ids_shape) + (d,)), v, atol=1e-5)


# ---------------------------------------------------------------- recurrent
@fuzz(25)
@given(data=st.data(), n=st.integers(0, 3), t=st.integers(1, 4), u=st.integers(0, 5),
       cell=st.sampled_from(["simple_rnn", "lstm", "gru"]), masked=st.booleans())
def test_recurrent_forward_and_grad(data, n, t, u, cell, masked):
    g = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]
    xw = make(data, (n, t, g * u), special=False)
    h0 = make(data, (n, u), special=False)
    rk = make(data, (u, g * u), special=False, scale=0.5)
    mask = np.random.default_rng(t).random((n, t)) > 0.3 if masked else None
    tol = dict(rtol=1e-4, atol=1e-4)
    if cell == "simple_rnn":
        hs = agree("simple_rnn", xw, h0, rk, mask, **tol)
        if hs is not None:
            agree("simple_rnn_grad", make(data, (n, t, u), special=False), xw, h0, hs, rk, mask, **tol)
    elif cell == "lstm":
        c0 = make(data, (n, u), special=False)
        out = agree("lstm", xw, h0, c0, rk, mask, **tol)
        if out is not None:
            hs, cs, gates = out
            agree("lstm_grad", make(data, (n, t, u), special=False), make(data, (n, u), special=False),
                  h0, c0, hs, cs, gates, rk, mask, rtol=1e-3, atol=1e-3)
    else:
        rb = make(data, (3 * u,), special=False)
        out = agree("gru", xw, h0, rk, rb, mask, **tol)
        if out is not None:
            hs, saved = out
            agree("gru_grad", make(data, (n, t, u), special=False), h0, hs, saved, rk, mask, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------- optimizers (in place)
def _params(data, count):
    shapes = [tuple(data.draw(st.lists(st.integers(0, 6), max_size=2))) for _ in range(count)]
    return shapes, [make(data, s, layout=False) for s in shapes], [make(data, s, special=False, layout=False)
                                                                  for s in shapes]


@fuzz(40)
@given(data=st.data(), count=st.integers(1, 3),
       opt=st.sampled_from(["sgd", "adam", "rmsprop", "adagrad", "adadelta"]))
def test_optimizer_steps(data, count, opt):
    shapes, grads, params = _params(data, count)
    zeros = [np.zeros(s, np.float32) for s in shapes]
    pos = [np.asarray(np.abs(make(data, s, special=False, layout=False))) for s in shapes]
    lr = data.draw(st.sampled_from([0.0, 1e-3, 0.1]))
    if opt == "sgd":
        mom = data.draw(st.sampled_from([0.0, 0.9]))
        agree("sgd_step", params, grads, [z.copy() for z in zeros] if mom else [], lr, mom,
              data.draw(st.booleans()) and mom > 0, data.draw(st.sampled_from([0.0, 0.01])), inplace=(0, 2))
    elif opt == "adam":
        ams = data.draw(st.booleans())
        agree("adam_step", params, grads, [m.copy() for m in params], pos, [p.copy() for p in pos] if ams else [],
              lr, 0.9, 0.999, 1e-7, data.draw(st.integers(1, 5)), data.draw(st.sampled_from([0.0, 0.01])),
              data.draw(st.booleans()), ams, inplace=(0, 2, 3, 4), atol=1e-5)
    elif opt == "rmsprop":
        mom, centered = data.draw(st.sampled_from([0.0, 0.9])), data.draw(st.booleans())
        agree("rmsprop_step", params, grads, pos, [z.copy() for z in zeros] if mom else [],
              [z.copy() for z in zeros] if centered else [], lr, 0.9, mom, 1e-7, centered,
              inplace=(0, 2, 3, 4), atol=1e-5)
    elif opt == "adagrad":
        agree("adagrad_step", params, grads, pos, lr, 1e-7, inplace=(0, 2), atol=1e-5)
    else:
        agree("adadelta_step", params, grads, pos, [p.copy() for p in pos], lr, 0.95, 1e-7,
              inplace=(0, 2, 3), atol=1e-5)


# ---------------------------------------------------------------- CTC
@fuzz(20)
@given(data=st.data(), n=st.integers(1, 3), t=st.integers(1, 6), c=st.integers(2, 5), s=st.integers(0, 3))
def test_ctc_loss(data, n, t, c, s):
    x = make(data, (n, t, c), special=False)
    log_probs = (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(np.float32)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    labels = rng.integers(1, c, (n, s)).astype(np.int64)
    il = rng.integers(1, t + 1, n).astype(np.int64)
    ll = rng.integers(0, s + 1, n).astype(np.int64)
    agree("ctc_loss", log_probs, labels, il, ll, 0, rtol=1e-4, atol=1e-4)
