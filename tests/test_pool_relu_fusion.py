"""Max pooling's backward with the preceding ReLU's backward fused in
(max_pool2d_backward_argmax(..., relu_y=y), both backends), its wiring in
F.max_pool2d / F.conv2d (conv2d + relu -> max_pool2d: the conv skips its own relu'
only when it receives the pooling's very array), and the pooling kernels' one
backward driver: AVX2 equal to the generic loops bit for bit, and every thread count
equal to one thread bit for bit, on the CNN shapes (2x2 tiles, odd sizes whose last
row/column no window covers)."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
import pynn.functional.conv as fconv
from pynn import backend
from pynn.autograd import Tensor

NATIVE = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")
BACKENDS = ["numpy", pytest.param("native", marks=NATIVE)]

# (x shape, pool, strides, padding): tiles, odd sizes (uncovered last row/col), padded
# last window, overlapping windows, a channel tail.
CASES = [
    ((2, 8, 8, 16), (2, 2), None, "valid"),
    ((2, 11, 11, 8), (2, 2), None, "valid"),
    ((2, 7, 9, 5), (2, 2), (2, 2), "same"),
    ((1, 9, 10, 3), (3, 3), (3, 3), "same"),
    ((2, 9, 7, 12), (3, 3), (2, 2), "same"),
    ((1, 6, 6, 33), (2, 2), (1, 1), "valid"),
]


def _relu_out(shape, seed=0, ties=False):
    """A ReLU's output: a third of the cells 0 (whole windows of zeros included), NaN-free."""
    r = np.random.default_rng(seed)
    x = r.integers(-2, 3, shape).astype(np.float32) if ties else r.standard_normal(shape).astype(np.float32)
    x[:, :2, :2, :] = -1.0   # windows whose maximum is 0 after the relu
    return np.maximum(x, 0)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("shape,pool,strides,padding", CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_fused_relu_mask_equals_relu_backward_after_the_pooling_backward(backend_name, shape, pool, strides, padding,
                                                                         ties):
    x = _relu_out(shape, seed=1, ties=ties)
    with pynn.use_backend(backend_name):
        B = backend.current()
        y, idx = B.max_pool2d_argmax(x, pool, strides, padding)
        dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
        unfused = B.relu_grad(x, x, B.max_pool2d_backward_argmax(idx, dy, x.shape, pool, strides, padding))
        fused = B.max_pool2d_backward_argmax(idx, dy, x.shape, pool, strides, padding, relu_y=y)
    np.testing.assert_array_equal(fused, unfused)
    assert (fused[x == 0] == 0).all()


@NATIVE
def test_fused_relu_mask_native_equals_numpy_and_rejects_a_wrong_shape():
    x = _relu_out((3, 10, 10, 24), seed=3)
    dy = np.random.default_rng(4).standard_normal((3, 5, 5, 24)).astype(np.float32)
    out = {}
    for name in ("numpy", "native"):
        with pynn.use_backend(name):
            B = backend.current()
            y, idx = B.max_pool2d_argmax(x, (2, 2))
            out[name] = B.max_pool2d_backward_argmax(idx, dy, x.shape, (2, 2), relu_y=y)
    np.testing.assert_array_equal(out["native"], out["numpy"])
    from pynn import _C
    with pytest.raises(ValueError, match="max_pool2d_backward_argmax: relu_y"):
        _C.max_pool2d_backward_argmax(idx, dy, x.shape, (2, 2), (2, 2), "valid", dy[:, :4])


def _cnn_grads(backend_name, fused, extra_consumer=False, dtype=np.float32):
    """d loss / d (x, w, b) of max_pool(relu(conv(x, w) + b)) * v, summed. fused=False spells
    the relu as its own op (the pooling's producer is then not a relu conv: no fusion)."""
    r = np.random.default_rng(5)
    x0 = r.standard_normal((4, 12, 12, 3)).astype(dtype)
    w0 = (r.standard_normal((3, 3, 3, 8)) * 0.4).astype(dtype)
    b0 = (r.standard_normal(8) * 0.1).astype(dtype)
    with pynn.use_backend(backend_name):
        x, w, b = (Tensor(a, requires_grad=True) for a in (x0, w0, b0))
        h = F.conv2d(x, w, b, activation="relu") if fused else F.relu(F.conv2d(x, w, b))
        p = F.max_pool2d(h, pool_size=(2, 2))
        v = Tensor(r.standard_normal(p.shape).astype(dtype))
        loss = (p * v).sum()
        if extra_consumer:   # h has a second consumer: the conv must see the sum and mask all of it
            loss = loss + (h * Tensor(r.standard_normal(h.shape).astype(dtype))).sum()
        loss.backward()
        return x.grad, w.grad, b.grad


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("extra_consumer", [False, True])
def test_conv_relu_maxpool_gradients_equal_the_unfused_path(backend_name, extra_consumer):
    gx, gw, gb = _cnn_grads(backend_name, True, extra_consumer)
    rx, rw, rb = _cnn_grads(backend_name, False, extra_consumer)
    # dz is bitwise the unfused relu'(y)·g, so dx and dw are too; db sums the same dz
    # with another kernel (conv2d_backward_bias): equal up to summation order.
    np.testing.assert_array_equal(gx, rx)
    np.testing.assert_array_equal(gw, rw)
    np.testing.assert_allclose(gb, rb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_conv_relu_maxpool_backward_skips_the_convs_relu_pass_only_when_fused(backend_name, monkeypatch):
    seen = []
    real = fconv.fused_backward

    def spy(activation, y, g, need_bias):
        seen.append(activation)
        return real(activation, y, g, need_bias)

    monkeypatch.setattr(fconv, "fused_backward", spy)
    _cnn_grads(backend_name, True)
    assert "relu" not in seen          # the pooling applied relu'
    _cnn_grads(backend_name, True, extra_consumer=True)
    assert "relu" in seen              # two consumers: the conv masks the summed gradient itself


def test_fused_conv_relu_maxpool_gradient_matches_finite_differences_in_float64():
    r = np.random.default_rng(7)
    x0 = r.standard_normal((2, 6, 6, 2))
    w0 = r.standard_normal((3, 3, 2, 3)) * 0.5
    v = r.standard_normal((2, 2, 2, 3))

    def loss(w_arr, grad=False):
        w = Tensor(w_arr, requires_grad=grad)
        out = (F.max_pool2d(F.conv2d(Tensor(x0), w, activation="relu"), pool_size=(2, 2)) * Tensor(v)).sum()
        if grad:
            out.backward()
            return w.grad
        return float(out.data)

    with pynn.use_backend("numpy"):
        g = loss(w0, grad=True)
        num = np.zeros_like(w0)
        eps = 1e-6
        for i in np.ndindex(w0.shape):
            d = np.zeros_like(w0)
            d[i] = eps
            num[i] = (loss(w0 + d) - loss(w0 - d)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- the conv's bias gradient from the pooling
@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("shape,pool,strides,padding", CASES)
def test_relu_bias_grad_is_the_channel_sum_of_the_fused_backward(backend_name, shape, pool, strides, padding):
    # Each window's masked dy lands in one cell (overlapping windows may share one), so the
    # channel sums of dx are the masked sums of dy, over 1/(kh·kw) the cells.
    x = _relu_out(shape, seed=3)
    with pynn.use_backend(backend_name):
        B = backend.current()
        y, idx = B.max_pool2d_argmax(x, pool, strides, padding)
        dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
        db = B.max_pool2d_relu_bias_grad(dy, y)
        dx = B.max_pool2d_backward_argmax(idx, dy, x.shape, pool, strides, padding, relu_y=y)
    assert db.dtype == np.float32 and db.shape == (shape[-1],)
    np.testing.assert_allclose(db, dx.astype(np.float64).sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    # A NaN maximum passes nothing (as the fused backward), a NaN gradient where relu_y > 0 propagates.
    y2, dy2 = y.copy(), dy.copy()
    y2.flat[0], dy2.flat[1] = np.nan, np.nan
    with pynn.use_backend(backend_name):
        db2 = backend.current().max_pool2d_relu_bias_grad(dy2, y2)
    assert np.isnan(db2[1 % shape[-1]]) == (y2.flat[1] > 0)
    if shape[-1] > 1:   # channel 0 lost exactly the NaN maximum's term
        np.testing.assert_allclose(db2[0], db[0] - (dy.flat[0] if y.flat[0] > 0 else 0), rtol=1e-5, atol=1e-5)
    if shape[-1] > 2:
        np.testing.assert_allclose(db2[2:], db[2:], rtol=1e-6, atol=1e-6)


@NATIVE
def test_relu_bias_grad_native_equals_numpy_routes_float64_and_rejects_bad_shapes():
    from pynn import _C
    from pynn.backend import native as N, numpy as Ref
    r = np.random.default_rng(8)
    y = np.maximum(r.standard_normal((64, 13, 13, 32)), 0).astype(np.float32)   # the CNN's first pooling
    dy = r.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(N.max_pool2d_relu_bias_grad(dy, y),
                               Ref.max_pool2d_relu_bias_grad(dy.astype(np.float64), y.astype(np.float64)),
                               rtol=1e-5, atol=1e-4)
    got = N.max_pool2d_relu_bias_grad(dy.astype(np.float64), y.astype(np.float64))   # the reference, in float64
    assert got.dtype == np.float64
    with pytest.raises(ValueError, match="max_pool2d_relu_bias_grad: relu_y"):
        _C.max_pool2d_relu_bias_grad(dy, y[:, :4])
    with pytest.raises(ValueError, match="max_pool2d_relu_bias_grad: dy"):
        _C.max_pool2d_relu_bias_grad(dy[0], y[0])
    with pytest.raises(ValueError, match="max_pool2d_relu_bias_grad"):
        Ref.max_pool2d_relu_bias_grad(dy, y[:, :4])


@NATIVE
@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
def test_relu_bias_grad_is_bit_identical_at_every_thread_count(threads):
    # 256-row blocks summed in float, the blocks in order in double: fixed by the shape.
    from pynn import _C
    r = np.random.default_rng(12)
    y = np.maximum(r.standard_normal((16, 61, 64, 33)), 0).astype(np.float32)   # 2M floats: several threads
    dy = r.standard_normal(y.shape).astype(np.float32)
    before = pynn.get_num_threads()
    try:
        pynn.set_num_threads(1)
        one = _C.max_pool2d_relu_bias_grad(dy, y)
        pynn.set_num_threads(threads)
        many = _C.max_pool2d_relu_bias_grad(dy, y)
    finally:
        pynn.set_num_threads(before)
    np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_fused_conv_relu_maxpool_takes_the_bias_gradient_from_the_pooling_only_when_fused(backend_name, monkeypatch):
    calls = []
    mod = backend._BACKENDS[backend_name]
    real = mod.max_pool2d_relu_bias_grad

    def spy(dy, y):
        calls.append(dy.shape)
        return real(dy, y)

    monkeypatch.setattr(mod, "max_pool2d_relu_bias_grad", spy)
    _cnn_grads(backend_name, True)
    assert calls == [(4, 5, 5, 8)]          # the pooled gradient, not the conv-sized one
    calls.clear()
    _cnn_grads(backend_name, True, extra_consumer=True)
    _cnn_grads(backend_name, False)
    assert calls == []                     # a second consumer, or relu as its own op: db from dz


def test_fused_conv_relu_maxpool_bias_gradient_matches_finite_differences_in_float64():
    r = np.random.default_rng(17)
    x0 = r.standard_normal((2, 7, 7, 2))
    w0 = r.standard_normal((3, 3, 2, 4)) * 0.5
    b0 = r.standard_normal(4) * 0.3
    v = r.standard_normal((2, 2, 2, 4))

    def loss(b_arr, grad=False):
        b = Tensor(b_arr, requires_grad=grad)
        out = (F.max_pool2d(F.conv2d(Tensor(x0), Tensor(w0), b, activation="relu"), pool_size=(2, 2)) * Tensor(v)).sum()
        if grad:
            out.backward()
            return b.grad
        return float(out.data)

    with pynn.use_backend("numpy"):
        g = loss(b0, grad=True)
        num = np.array([(loss(b0 + e) - loss(b0 - e)) / 2e-6 for e in np.eye(4) * 1e-6])
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- one driver, every ISA and thread count
def _all_pool_outputs(x, pool, strides, padding):
    B = backend.current()
    y, idx = B.max_pool2d_argmax(x, pool, strides, padding)
    dy = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
    return [y, idx, B.max_pool2d(x, pool, strides, padding),
            B.max_pool2d_backward_argmax(idx, dy, x.shape, pool, strides, padding),
            B.max_pool2d_backward_argmax(idx, dy, x.shape, pool, strides, padding, relu_y=y),
            B.max_pool2d_backward(x, y, dy, pool, strides, padding),
            B.avg_pool2d(x, pool, strides, padding),
            B.avg_pool2d_backward(dy, x.shape, pool, strides, padding)]


SHAPES = [((64, 26, 26, 32), (2, 2), None, "valid"),   # the CNN step's pools
          ((64, 11, 11, 64), (2, 2), None, "valid"),
          ((9, 15, 13, 20), (3, 3), (2, 2), "same")]


@NATIVE
@pytest.mark.parametrize("shape,pool,strides,padding", SHAPES)
def test_pool_avx2_equals_generic_bit_for_bit(shape, pool, strides, padding):
    from pynn import _C
    if not _C.cpu_has_avx2_fma():
        pytest.skip("no AVX2+FMA on this CPU")
    x = _relu_out(shape, seed=10, ties=True)
    old = _C.isa()
    with pynn.use_backend("native"):
        try:
            _C.set_isa("generic")
            ref = _all_pool_outputs(x, pool, strides, padding)
            _C.set_isa("avx2")
            got = _all_pool_outputs(x, pool, strides, padding)
        finally:
            _C.set_isa(old)
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g, r)


@NATIVE
@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
def test_pool_kernels_are_bit_identical_at_every_thread_count(threads):
    before = pynn.get_num_threads()
    with pynn.use_backend("native"):
        try:
            pynn.set_num_threads(1)
            ref = [_all_pool_outputs(_relu_out(s, seed=11, ties=True), *a) for s, *a in SHAPES]
            pynn.set_num_threads(threads)
            got = [_all_pool_outputs(_relu_out(s, seed=11, ties=True), *a) for s, *a in SHAPES]
        finally:
            pynn.set_num_threads(before)
    for rs, gs in zip(ref, got):
        for r, g in zip(rs, gs):
            np.testing.assert_array_equal(g, r)


@NATIVE
@pytest.mark.parametrize("shape,pool,strides,padding", SHAPES)
def test_pool_kernels_on_the_cnn_shapes_match_the_numpy_reference(shape, pool, strides, padding):
    x = _relu_out(shape, seed=12, ties=True)
    with pynn.use_backend("numpy"):
        ref = _all_pool_outputs(x, pool, strides, padding)
    with pynn.use_backend("native"):
        got = _all_pool_outputs(x, pool, strides, padding)
    overlapping = (strides or pool)[0] < pool[0]
    for i, (r, g) in enumerate(zip(ref, got)):
        # Averages, and gradients that several windows add into one cell: the same terms,
        # numpy adds them in another order.
        if i in (6, 7) or (overlapping and i in (3, 4, 5)):
            np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("shape,pool,strides", [((1, 0, 5, 3), (2, 2), None), ((2, 3, 0, 2), (3, 1), (3, 1)),
                                                ((1, 0, 0, 4), (2, 1), (2, 1))])
def test_side_by_side_windows_on_an_empty_input_give_empty_gradients(backend_name, shape, pool, strides):
    # Windows side by side let the backward skip zeroing dx except where no window reaches;
    # an empty input with "same" padding has a padding larger than the input itself.
    x = np.zeros(shape, np.float32)
    with pynn.use_backend(backend_name):
        B = backend.current()
        y, idx = B.max_pool2d_argmax(x, pool, strides, "same")
        dy = np.ones(y.shape, np.float32)
        for dx in (B.max_pool2d_backward_argmax(idx, dy, shape, pool, strides, "same", relu_y=y),
                   B.max_pool2d_backward(x, y, dy, pool, strides, "same"),
                   B.avg_pool2d_backward(dy, shape, pool, strides, "same")):
            assert dx.shape == shape
