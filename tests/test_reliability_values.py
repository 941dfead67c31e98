"""No silent wrong values (issue #20, findings 7-9, 11-13, 16-22): each bad input is a clear
error, and NaN, integer, 0-d and empty inputs give the same answer on both backends."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pynn
from pynn import layers

BACKENDS = ["numpy"] + (["native"] if pynn.backend.NATIVE_AVAILABLE else [])


@pytest.fixture(params=BACKENDS)
def backend(request):
    with pynn.use_backend(request.param):
        yield request.param


def _isas():
    if not pynn.backend.NATIVE_AVAILABLE:
        return ["none"]
    return ["generic"] + (["avx2"] if pynn._C.cpu_has_avx2_fma() else [])


@pytest.fixture(params=_isas())
def isa(request):
    if request.param == "none":
        yield None
        return
    before = pynn._C.isa()
    pynn._C.set_isa(request.param)
    yield request.param
    pynn._C.set_isa(before)


# ---------------------------------------------------------------- 7: batch_size
def _compiled():
    m = pynn.Sequential([layers.Input((3,)), layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    return m


@pytest.mark.parametrize("bs", [0, -1, 2.5, True])
@pytest.mark.parametrize("method", ["evaluate", "predict", "fit"])
def test_batch_size_not_positive_integer_is_valueerror(method, bs):
    m = _compiled()
    x, y = np.ones((5, 3), np.float32), np.ones((5, 2), np.float32)
    call = {"evaluate": lambda: m.evaluate(x, y, batch_size=bs),
            "predict": lambda: m.predict(x, batch_size=bs),
            "fit": lambda: m.fit(x, y, batch_size=bs, verbose=0)}[method]
    with pytest.raises(ValueError, match=f"{method}: batch_size must be a positive integer"):
        call()


def test_batch_size_none_means_32():
    m = _compiled()
    x = np.ones((40, 3), np.float32)
    assert m.predict(x, batch_size=None).shape == (40, 2)


# ---------------------------------------------------------------- 8: NaN through max pooling
@pytest.mark.parametrize("pool", [(2, 2), (3, 3), (3, 2)])
@pytest.mark.parametrize("channels", [1, 8, 11])
def test_max_pool_nan_at_every_window_position_propagates(backend, isa, pool, channels):
    kh, kw = pool
    base = np.random.default_rng(1).standard_normal((1, kh, kw, channels)).astype(np.float32)
    for i in range(kh):
        for j in range(kw):
            x = base.copy()
            x[0, i, j, 0] = np.nan
            y = pynn.ops.max_pool2d(x, pool)
            assert y.shape == (1, 1, 1, channels)
            assert np.isnan(y[0, 0, 0, 0]), (i, j)
            np.testing.assert_array_equal(y[0, 0, 0, 1:], base[0, :, :, 1:].max(axis=(0, 1)))


def test_max_pool_nan_with_padding_and_strides(backend, isa):
    x = np.random.default_rng(2).standard_normal((2, 7, 6, 9)).astype(np.float32)
    x[0, 3, 2, 4] = np.nan
    x[1, 6, 5, 8] = np.nan
    for kwargs in [dict(pool_size=3, strides=2, padding="same"), dict(pool_size=2, strides=1),
                   dict(pool_size=(2, 3), strides=(2, 1), padding="same")]:
        y = pynn.ops.max_pool2d(x, **kwargs)
        with pynn.use_backend("numpy"):
            ref = pynn.ops.max_pool2d(x, **kwargs)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        np.testing.assert_array_equal(np.nan_to_num(y), np.nan_to_num(ref))
        assert np.isnan(y).any()


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (5, 5)])
def test_global_max_pool_nan_at_every_position_propagates(backend, isa, hw):
    h, w = hw
    base = np.random.default_rng(3).standard_normal((2, h, w, 10)).astype(np.float32)
    for i in range(h):
        for j in range(w):
            x = base.copy()
            x[1, i, j, 9] = np.nan
            y = pynn.backend.current().global_max_pool2d(x)
            assert np.isnan(y[1, 9]) and not np.isnan(y[0]).any() and not np.isnan(y[1, :9]).any()


def test_maxpooling2d_layer_propagates_nan(backend):
    x = np.zeros((1, 4, 4, 3), np.float32)
    x[0, 1, 1, 2] = np.nan
    y = layers.MaxPooling2D(2)(x).data
    assert np.isnan(y[0, 0, 0, 2]) and np.isnan(y).sum() == 1


# ---------------------------------------------------------------- 9: integer input to float activations
@pytest.mark.parametrize("op", ["sigmoid", "tanh", "gelu", "elu", "leaky_relu", "softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_float_activation_of_integer_input_is_float32(backend, op, dtype):
    # the backend kernels (pynn.ops.tanh is NumPy's own ufunc for arrays, with NumPy's promotion)
    xi = np.array([[-3, -1, 0, 1, 2]]).astype(dtype)
    y = getattr(pynn.backend.current(), op)(xi)
    assert y.dtype == np.float32
    ref = getattr(pynn.backend.numpy, op)(xi.astype(np.float32))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_relu_of_integer_input_keeps_integers(backend):
    y = pynn.backend.current().relu(np.array([-2, 3], np.int64))
    assert y.dtype == np.int64 and y.tolist() == [0, 3]


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh", "gelu", "softmax"])
def test_complex_input_to_activation_is_typeerror(backend, op):
    with pytest.raises(TypeError, match=f"{op}: .*complex"):
        getattr(pynn.backend.current(), op)(np.ones(3, np.complex64))


def test_complex_input_to_layer_and_model_is_typeerror(backend):
    m = pynn.Sequential([layers.Input((3,)), layers.Dense(2)])
    with pytest.raises(TypeError, match="complex"):
        m.predict(np.ones((2, 3), np.complex64))
    with pytest.raises(TypeError, match="dense.*complex"):
        layers.Dense(2)(np.ones((2, 3), np.complex64))


def test_complex_weights_are_typeerror_not_truncated():
    d = layers.Dense(2)
    d.build((None, 3))
    before = [w.copy() for w in d.get_weights()]
    with pytest.raises(TypeError, match="must be a real array"):
        d.set_weights([np.ones((3, 2), np.complex64) * 1j, np.zeros(2, np.float32)])
    for a, b in zip(before, d.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- 13: 0-d shapes
@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh", "gelu", "elu", "leaky_relu"])
def test_zero_d_input_keeps_its_shape(backend, op):
    x = np.array(0.5, np.float32)
    y = getattr(pynn.backend.current(), op)(x)
    assert y.shape == () and y.dtype == np.float32
    grad = getattr(pynn.backend.current(), op + "_grad")(x, y, np.array(1.0, np.float32))
    assert grad.shape == ()


# ---------------------------------------------------------------- 17, 18, 21: empty, strides, raw kernels
@pytest.mark.parametrize("shape", [(3, 0), (0, 3), (0,), (2, 0, 4)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_empty_softmax_agrees_on_both_backends(backend, op, shape):
    y = getattr(pynn.backend.current(), op)(np.zeros(shape, np.float32))
    assert y.shape == shape and y.dtype == np.float32


def test_empty_softmax_still_checks_axis(backend):
    with pytest.raises((ValueError, IndexError)):
        pynn.backend.current().softmax(np.zeros((3, 0), np.float32), axis=5)


@pytest.mark.parametrize("op", ["global_avg_pool2d", "global_max_pool2d"])
def test_empty_window_global_pool_is_valueerror_on_both_backends(backend, op):
    with pytest.raises(ValueError, match=f"{op}: empty spatial extent"):
        getattr(pynn.backend.current(), op)(np.zeros((2, 0, 3, 4), np.float32))


def test_matmul_of_view_with_odd_byte_stride_matches_reference(backend):
    buf = np.random.default_rng(4).standard_normal(400).astype(np.float32).view(np.uint8)
    a = np.ndarray((4, 5), np.float32, buffer=buf, offset=2, strides=(110, 22))
    b = np.random.default_rng(5).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(pynn.ops.matmul(a, b), np.ascontiguousarray(a) @ b, rtol=1e-5, atol=1e-5)


def test_embedding_with_float_ids_is_typeerror(backend):
    with pytest.raises(TypeError, match="embedding: ids must be an integer array"):
        pynn.ops.embedding(np.ones((4, 3), np.float32), np.array([0.0, 1.7]))


# ---------------------------------------------------------------- 11, 22: geometry
@pytest.mark.parametrize("kwargs", [dict(dilation_rate=2**62), dict(dilation_rate=2**62, padding="same"),
                                    dict(strides=2**63 - 1, padding="same")])
def test_conv_geometry_near_int64_limit_is_valueerror_or_exact(backend, kwargs):
    x, w = np.ones((1, 5, 5, 1), np.float32), np.ones((2, 2, 1, 1), np.float32)
    try:
        y = pynn.ops.conv2d(x, w, **kwargs)
    except (ValueError, OverflowError) as e:
        assert "conv2d" in str(e) or isinstance(e, OverflowError)
        return
    # an answer must be the exact one: with 'same' padding and a huge dilation only the centre tap hits
    assert y.shape[1:3] == ((5, 5) if kwargs.get("strides", 1) == 1 else (1, 1))


def test_native_pool_with_huge_stride_has_the_exact_shape(backend):
    y = pynn.ops.max_pool2d(np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1), 2, strides=2**62)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 4


def test_avg_pool_with_huge_same_window_is_exact_and_does_not_hang():
    code = """
import numpy as np, pynn
x = np.random.default_rng(0).standard_normal((2, 5, 7, 3)).astype(np.float32)
with pynn.use_backend("numpy"):
    y = pynn.ops.avg_pool2d(x, (10**8, 3), strides=(1, 1), padding="same")
    g = pynn.ops.avg_pool2d_backward(np.ones_like(y), x.shape, (10**8, 3), (1, 1), "same")
    m = pynn.ops.max_pool2d(x, (10**8, 3), strides=(1, 1), padding="same")
col = np.stack([np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)), constant_values=np.nan)[:, :, j:j + 7] for j in range(3)])
np.testing.assert_allclose(y, np.broadcast_to(np.nanmean(col, axis=(0, 2), keepdims=True)[0], y.shape), rtol=1e-5)
np.testing.assert_allclose(m, np.broadcast_to(np.nanmax(col, axis=(0, 2), keepdims=True)[0], m.shape))
assert g.shape == x.shape
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


# ---------------------------------------------------------------- 12: 64-bit element counts
def test_input_whose_element_count_overflows_is_valueerror():
    with pytest.raises(ValueError, match="more than a 64-bit size"):
        pynn.Input((2**32, 2**32))


def test_flatten_of_overflowing_shape_is_valueerror():
    with pytest.raises(ValueError, match="more than a 64-bit size"):
        layers.Flatten().compute_output_shape((None, 2**32, 2**32))


@pytest.mark.parametrize("shape", [(-1, 3), (2.5,), (True, 2)])
def test_input_with_bad_dimension_is_valueerror(shape):
    with pytest.raises(ValueError, match="Input: every dimension"):
        pynn.Input(shape)


# ---------------------------------------------------------------- 19: Dense(True)
@pytest.mark.parametrize("units", [True, False, 0, -3, 2.0, "4"])
def test_dense_units_must_be_a_positive_integer(units):
    with pytest.raises(ValueError, match="Dense: units must be a positive integer"):
        layers.Dense(units)


def test_dense_units_numpy_integer_accepted():
    assert layers.Dense(np.int64(3)).units == 3


# ---------------------------------------------------------------- 5: layer dtype
@pytest.mark.parametrize("dtype", ["int8", "bool", "object", "complex64"])
def test_layer_with_non_float_dtype_is_valueerror(dtype):
    with pytest.raises(ValueError, match=r"Dense: dtype must be one of \['float32', 'float64'\]"):
        layers.Dense(2, dtype=dtype)


# ---------------------------------------------------------------- 16: environment variables
def _import_with(env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("PYNN_")}
    e.update(env)
    return subprocess.run([sys.executable, "-W", "always", "-c",
                           "import pynn; print(pynn.get_num_threads(), pynn._C.isa())"],
                          capture_output=True, text=True, timeout=120, env=e)


@pytest.mark.skipif(not pynn.backend.NATIVE_AVAILABLE, reason="native extension needed")
@pytest.mark.parametrize("value", ["abc", "-2", "0", "1.5"])
def test_invalid_pynn_num_threads_warns_naming_variable(value):
    r = _import_with({"PYNN_NUM_THREADS": value})
    assert r.returncode == 0, r.stderr
    assert f"PYNN_NUM_THREADS={value!r} is not a positive integer" in r.stderr


@pytest.mark.skipif(not pynn.backend.NATIVE_AVAILABLE, reason="native extension needed")
def test_valid_pynn_num_threads_is_silent_and_used():
    r = _import_with({"PYNN_NUM_THREADS": "3"})
    assert r.returncode == 0 and "PYNN_" not in r.stderr and r.stdout.split()[0] == "3"


@pytest.mark.skipif(not pynn.backend.NATIVE_AVAILABLE, reason="native extension needed")
def test_invalid_pynn_isa_warns_and_upper_case_is_honoured():
    r = _import_with({"PYNN_ISA": "avx512"})
    assert "PYNN_ISA='avx512' is not one of 'generic', 'avx2', 'auto'" in r.stderr
    r = _import_with({"PYNN_ISA": "GENERIC"})
    assert r.returncode == 0 and r.stdout.split()[1] == "generic" and "PYNN_ISA" not in r.stderr


def test_invalid_pynn_backend_raises_naming_variable():
    r = subprocess.run([sys.executable, "-c", "import pynn"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYNN_BACKEND="fast"))
    assert r.returncode != 0 and "PYNN_BACKEND must be 'numpy' or 'native', got 'fast'" in r.stderr


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_non_positive_integers(n):
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive integer"):
        pynn.set_num_threads(n)


def test_max_pool_gradient_of_nan_window_goes_to_its_first_nan(backend, isa):
    for pool, x_hw in [((2, 2), (2, 2)), ((3, 3), (3, 3))]:
        kh, kw = pool
        for i in range(kh):
            for j in range(kw):
                x = np.arange(kh * kw * 8, dtype=np.float32).reshape(1, kh, kw, 8)
                x[0, i, j, 3] = np.nan
                x[0, kh - 1, kw - 1, 3] = np.nan  # a second NaN later in the window: not routed to
                y = pynn.ops.max_pool2d(x, pool)
                dx = pynn.ops.max_pool2d_backward(x, y, np.ones_like(y), pool)
                assert dx[0, :, :, 3].sum() == 1 and dx[0, i, j, 3] == 1, (pool, i, j)
                g = pynn.backend.current().global_max_pool2d_backward(x, pynn.backend.current().global_max_pool2d(x),
                                                                      np.ones((1, 8), np.float32))
                assert g[0, :, :, 3].sum() == 1 and g[0, i, j, 3] == 1, (pool, i, j)


@pytest.mark.parametrize("name, args", [
    ("batch_norm", (np.float32(1.0),)),
    ("layer_norm_grad", (np.ones((2, 3), np.float32), np.ones((2, 3), np.float32), np.float32(0), np.float32(1))),
    ("global_max_pool2d_backward", (np.ones((1, 2, 2, 3), np.float32), np.ones(3, np.float32), np.ones(3, np.float32))),
    ("simple_rnn_grad", (np.ones((2, 3, 4), np.float32), np.ones((2, 3, 4), np.float32), np.ones((2, 4), np.float32),
                         np.ones((2, 2, 4), np.float32), np.ones((4, 4), np.float32))),
    ("bias_grad", (np.float32(1.0),)),
])
def test_raw_kernel_with_mismatched_inputs_is_valueerror_naming_it(backend, name, args):
    with pytest.raises((ValueError, TypeError), match=name):
        getattr(pynn.ops, name)(*[np.asarray(a) for a in args])
