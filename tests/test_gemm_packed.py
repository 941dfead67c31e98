"""Pre-packed GEMM operands (issue #17): ``_C.PackedMatrix`` / ``_C.gemm_packed``, the backends'
``pack_weight`` / ``packed_matmul``, the recurrent loops that pack W_hh once per sequence, and
Dense's cached packed kernel for inference (never stale after a weight change).

Checked against a float64 NumPy reference and the unpacked ``_C.gemm``; at 1, 2, 3, 4, 7 and 8
threads the packed product must be bit-identical to its 1-thread result (every element's sum runs
over k in an order that depends on k and A's layout only).
"""
import numpy as np
import pytest

import pynn
from pynn import backend, layers

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

THREADS = [1, 2, 3, 4, 7, 8]

if backend.NATIVE_AVAILABLE:
    from pynn import _C
    from pynn.backend.numpy import activations as act_table


def _f32(r, *shape):
    return r.standard_normal(shape).astype(np.float32)


def _ref(a, b, bias=None):
    out = a.astype(np.float64) @ b.astype(np.float64)
    return out if bias is None else out + bias.astype(np.float64)


def _close(got, a, b, ref):
    """float32 GEMM vs float64: the rounding error scales with sum_k |a_ik b_kj|."""
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + 1.0
    assert got.shape == ref.shape and got.dtype == np.float32
    err = np.abs(got - ref) / scale
    assert err.size == 0 or err.max() < 1e-5, f"max scaled error {err.max()}"


def _layouts_a(a):
    m, k = a.shape
    big = np.zeros((m, 2 * k + 1), np.float32)
    big[:, 1::2] = a
    yield "c", a
    yield "fortran", np.asfortranarray(a)              # transposed storage (rs = 1)
    yield "sliced", big[:, 1::2]                        # column stride 2
    yield "reversed", np.ascontiguousarray(a[::-1])[::-1]  # negative row stride


def _layouts_b(b):
    yield "c", b
    yield "fortran", np.asfortranarray(b)
    yield "reversed-cols", np.ascontiguousarray(b[:, ::-1])[:, ::-1]


# Edges: m, n, k not multiples of the 6 x 16 tile, m < 6 (the few-row kernels), k > 512
# (several KC blocks), n < 16, wide n (several column blocks), sizes that thread.
SHAPES = [(1, 1, 1), (1, 784, 256), (2, 33, 50), (3, 100, 40), (4, 1100, 70), (5, 17, 33), (6, 16, 16),
          (7, 1000, 33), (13, 600, 40), (64, 128, 512), (65, 257, 130), (200, 300, 70), (1, 3136, 128),
          (9, 40, 1500)]


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_packed_gemm_matches_float64_and_unpacked_gemm_for_every_layout(rng, m, k, n):
    a, b, bias = _f32(rng, m, k), _f32(rng, k, n), _f32(rng, n)
    for bn, bl in _layouts_b(b):
        p = _C.PackedMatrix(bl)
        assert p.shape == (k, n) and p.nbytes == ((n + 15) // 16) * 16 * k * 4
        for an, al in _layouts_a(a):
            for bb in (None, bias):
                got = _C.gemm_packed(al, p, bias=bb)
                _close(got, a, b, _ref(a, b, bb))
                unpacked = _C.gemm(al, bl, bias=bb)
                np.testing.assert_allclose(got, unpacked, rtol=1e-4, atol=1e-4 * np.sqrt(k),
                                           err_msg=f"a {an}, b {bn}")


@pytest.mark.parametrize("name", sorted(act_table.ACTIVATIONS) if backend.NATIVE_AVAILABLE else [])
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8, 20])
def test_every_activation_epilogue_matches_the_reference_table(rng, name, m):
    if name not in _C.activation_names():
        pytest.skip(f"{name} has no GEMM epilogue (applied after the product)")
    a, b, bias = _f32(rng, m, 70), _f32(rng, 70, 90) * 0.2, _f32(rng, 90)
    alpha = act_table.param_value(name)
    got = _C.gemm_packed(a, _C.PackedMatrix(b), bias=bias, activation=name, act_alpha=alpha or 0.0)
    want = act_table.apply(_ref(a, b, bias), name, alpha)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("m,k,n", [(0, 5, 7), (4, 0, 7), (4, 5, 0), (0, 0, 0), (3, 0, 20)])
def test_zero_sizes(rng, m, k, n):
    a, b, bias = _f32(rng, m, k), _f32(rng, k, n), _f32(rng, n)
    p = _C.PackedMatrix(b)
    assert p.shape == (k, n)
    got = _C.gemm_packed(a, p, bias=bias, activation="relu")
    assert got.shape == (m, n)
    np.testing.assert_array_equal(got, np.broadcast_to(np.maximum(bias, 0), (m, n)))   # k == 0: act(bias)


def test_alpha_beta_and_a_strided_output(rng):
    a, b, bias = _f32(rng, 37, 50), _f32(rng, 50, 45), _f32(rng, 45)
    p = _C.PackedMatrix(b)
    c0 = _f32(rng, 37, 45)
    out = c0.copy()
    res = _C.gemm_packed(a, p, bias=bias, alpha=0.5, beta=2.0, out=out)
    assert res is out or np.shares_memory(res, out)
    _close(out, a, b, 0.5 * _ref(a, b) + 2.0 * c0 + bias)
    outT = np.zeros((45, 37), np.float32).T          # unit row stride: the transposed-C path
    outT[...] = c0
    _C.gemm_packed(a, p, bias=bias, beta=1.0, out=outT, activation="tanh")
    np.testing.assert_allclose(outT, np.tanh(_ref(a, b, bias) + c0), rtol=1e-4, atol=1e-5)
    # a fresh output ignores beta (nothing to accumulate into), as _C.gemm does
    _close(_C.gemm_packed(a, p, beta=5.0), a, b, _ref(a, b))


def test_packed_matrix_is_a_snapshot_of_b(rng):
    a, b = _f32(rng, 3, 20), _f32(rng, 20, 30)
    p = _C.PackedMatrix(b)
    before = _C.gemm_packed(a, p)
    b[...] = 0.0   # later writes to the source are not seen: the caller packs again
    np.testing.assert_array_equal(_C.gemm_packed(a, p), before)
    assert np.abs(_C.gemm_packed(a, _C.PackedMatrix(b))).max() == 0.0


@pytest.mark.parametrize("m,k,n", [(1, 784, 256), (3, 2000, 300), (64, 784, 256), (300, 128, 512), (7, 1000, 100),
                                   (500, 64, 40)])
def test_packed_gemm_is_bit_identical_at_every_thread_count(rng, m, k, n):
    a, b, bias = _f32(rng, m, k), _f32(rng, k, n), _f32(rng, n)
    before = pynn.get_num_threads()
    try:
        outs = []
        for t in THREADS:
            pynn.set_num_threads(t)
            p = _C.PackedMatrix(b)   # packing itself is threaded too
            outs.append((_C.gemm_packed(a, p, bias=bias, activation="relu"),
                         _C.gemm_packed(np.asfortranarray(a), p)))
    finally:
        pynn.set_num_threads(before)
    for t, (x, y) in zip(THREADS, outs):
        np.testing.assert_array_equal(x, outs[0][0], err_msg=f"{t} threads")
        np.testing.assert_array_equal(y, outs[0][1], err_msg=f"{t} threads, transposed a")
    _close(outs[0][1], a, b, _ref(a, b))


def test_bad_input_is_a_clear_error_before_any_work(rng):
    b = _f32(rng, 8, 5)
    p = _C.PackedMatrix(b)
    with pytest.raises(TypeError, match="PackedMatrix"):
        _C.PackedMatrix(b.astype(np.float64))
    with pytest.raises(ValueError, match="PackedMatrix"):
        _C.PackedMatrix(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"gemm_packed: a has shape \(3, 7\).*inner dimensions 7 and 8"):
        _C.gemm_packed(_f32(rng, 3, 7), p)
    with pytest.raises(TypeError, match="gemm_packed"):
        _C.gemm_packed(np.zeros((3, 8)), p)
    with pytest.raises(ValueError, match="gemm_packed"):
        _C.gemm_packed(np.zeros(8, np.float32), p)
    with pytest.raises(ValueError, match=r"out must have shape \(3, 5\)"):
        _C.gemm_packed(_f32(rng, 3, 8), p, out=np.zeros((5, 3), np.float32))
    ro = np.zeros((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="gemm_packed"):
        _C.gemm_packed(_f32(rng, 3, 8), p, out=ro)
    buf = np.zeros((3, 13), np.float32)
    with pytest.raises(ValueError, match="share memory"):
        _C.gemm_packed(buf[:, :8], p, out=buf[:, 8:])
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        _C.gemm_packed(_f32(rng, 3, 8), p, bias=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="gemm_packed"):
        _C.gemm_packed(_f32(rng, 3, 8), p, activation="nope")
    with pytest.raises(TypeError):
        _C.gemm_packed(_f32(rng, 3, 8), b)   # an array is not a PackedMatrix


@pytest.mark.parametrize("be", ["numpy", "native"])
def test_backend_pack_weight_and_packed_matmul(rng, be):
    w, bias = _f32(rng, 24, 10), _f32(rng, 10)
    x = _f32(rng, 2, 3, 24)
    with pynn.use_backend(be):
        B = backend.current()
        p = B.pack_weight(w)
        got = B.packed_matmul(x, p, bias, "relu")
        assert got.shape == (2, 3, 10) and got.dtype == np.float32
        np.testing.assert_allclose(got, np.maximum(_ref(x.reshape(6, 24), w, bias), 0).reshape(2, 3, 10),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(B.packed_matmul(x[0, 0], p), _ref(x[0, :1], w)[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(B.packed_matmul(x, p, None, "leaky_relu", 0.3),
                                   act_table.apply(_ref(x.reshape(6, 24), w), "leaky_relu", 0.3).reshape(2, 3, 10),
                                   rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match="packed_matmul: unknown activation"):
            B.packed_matmul(x, p, None, "softmax")
        w[...] = 0     # a snapshot in both backends
        assert np.abs(B.packed_matmul(x, p)).max() > 0
        with pytest.raises(ValueError, match="packed_matmul"):
            B.packed_matmul(_f32(rng, 4, 23), p)
        with pytest.raises(ValueError, match="pack_weight"):
            B.pack_weight(np.zeros(3, np.float32))


def test_native_pack_weight_routes_float64_to_the_reference(rng):
    w = rng.standard_normal((6, 4))
    with pynn.use_backend("native"):
        B = backend.current()
        p = B.pack_weight(w)
        x = rng.standard_normal((3, 6))
        got = B.packed_matmul(x, p)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, x @ w, rtol=1e-12)
        with pytest.raises(TypeError, match="packed_matmul: x must be float32"):
            B.packed_matmul(x, B.pack_weight(w.astype(np.float32)))


# ---------------------------------------------------------------- recurrent loops
@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("units,dropout", [(40, 0.0), (150, 0.0), (24, 0.3)])
def test_recurrent_native_matches_numpy_at_every_thread_count(kind, units, dropout):
    """W_hh is packed once per call (and its transpose once per backward): units that are not a
    multiple of the 16-wide panels, ragged last chunks, and the per-gate packs of recurrent dropout."""
    r = np.random.default_rng(7)
    n, t, f = 9, 6, 5
    x = r.standard_normal((n, t, f)).astype(np.float32)
    g = r.standard_normal((n, units)).astype(np.float32)

    def run(be, threads):
        before = pynn.get_num_threads()
        pynn.set_num_threads(threads)
        try:
            with pynn.use_backend(be):
                pynn.set_seed(0)
                layer = getattr(layers, kind)(units, recurrent_dropout=dropout)
                layer.build((None, t, f))
                for w in layer.weights:   # a recurrent kernel large enough to matter
                    w.assign(np.random.default_rng(1).standard_normal(w.shape).astype(np.float32) * 0.2)
                xt = pynn.Tensor(x, requires_grad=True)
                pynn.set_seed(3)   # the same recurrent dropout masks in both backends
                y = layer(xt, training=dropout > 0)
                y.backward(g)
                return [y.data, xt.grad] + [w.grad for w in layer.weights]
        finally:
            pynn.set_num_threads(before)

    ref = run("numpy", 1)
    first = run("native", 1)
    for a, b in zip(ref, first):   # float32 sums of up to 150 terms: error relative to the largest value
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(a).max()))
    for threads in THREADS[1:]:
        for a, b in zip(first[:2], run("native", threads)[:2]):   # outputs and dx: bit-identical
            np.testing.assert_array_equal(b, a, err_msg=f"{threads} threads")


# ---------------------------------------------------------------- Dense inference pack
def _mlp():
    pynn.set_seed(0)
    model = pynn.Sequential([layers.Input((12,)), layers.Dense(20, activation="relu"), layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _forward_from_weights(model, x):
    """The model's output recomputed in float64 from its current get_weights()."""
    h = x.astype(np.float64)
    for i, layer in enumerate(model.layers):
        k, b = layer.get_weights()
        h = h @ k + b
        if i == 0:
            h = np.maximum(h, 0)
    return h


def _assert_fresh(model, x):
    for out in (model.predict_on_batch(x), model.predict(x, verbose=0), model.predict(x[:1], verbose=0)):
        np.testing.assert_allclose(out, _forward_from_weights(model, x[:len(out)]), rtol=1e-4, atol=1e-5)


def test_dense_inference_pack_is_never_stale(rng, tmp_path):
    """Dense packs its kernel once for inference and reuses it while the weights are unchanged;
    every way pynn changes a weight must invalidate it (a stale pack would be a silent wrong answer)."""
    x, y = _f32(rng, 5, 12), _f32(rng, 5, 3)
    with pynn.use_backend("native"):
        model = _mlp()
        dense = model.layers[0]
        _assert_fresh(model, x)
        first = dense._inference_pack()
        assert first is not None
        model.predict_on_batch(x)
        assert dense._inference_pack() is first          # reused while nothing changed

        model.train_on_batch(x, y)                        # optimizer step
        _assert_fresh(model, x)
        assert dense._inference_pack() is not first

        model.fit(x, y, epochs=2, batch_size=2, verbose=0)  # fit's steps
        _assert_fresh(model, x)

        w = [v * 0.5 for v in model.get_weights()]
        model.set_weights(w)                              # Model.set_weights
        _assert_fresh(model, x)

        dense.set_weights([np.ones((12, 20), np.float32), np.zeros(20, np.float32)])   # Layer.set_weights
        _assert_fresh(model, x)

        dense.kernel.assign(np.full((12, 20), -0.1, np.float32))                        # Variable.assign
        _assert_fresh(model, x)

        model.save_weights(str(tmp_path / "w.npz"))
        model.set_weights([np.zeros_like(v) for v in model.get_weights()])
        _assert_fresh(model, x)
        model.load_weights(str(tmp_path / "w.npz"))                                     # load_weights
        _assert_fresh(model, x)

        opt = pynn.optimizers.SGD(learning_rate=0.1)                                    # apply_gradients
        opt.apply_gradients([(np.ones((12, 20), np.float32), dense.kernel)])
        _assert_fresh(model, x)

        with pytest.raises(ValueError, match="read-only"):   # a direct write into a packed kernel
            dense.kernel.data[...] *= 2.0                      # is refused, never silently stale
        pynn.weights_changed()                            # announced first, as documented, it works
        dense.kernel.data[...] *= 2.0
        _assert_fresh(model, x)

        with pytest.raises(ValueError, match="read-only"):   # re-packed, so frozen again
            dense.kernel.data -= 0.05
        _assert_fresh(model, x)


def test_dense_uses_the_pack_only_for_inference(rng):
    """With gradients recorded Dense runs the ordinary fused GEMM (its backward needs x and the
    kernel); the packed forward gives the same values as the unpacked one."""
    x = _f32(rng, 4, 12)
    with pynn.use_backend("native"):
        model = _mlp()
        dense = model.layers[0]
        xt = pynn.Tensor(x, requires_grad=True)
        y = dense(xt)
        y.sum().backward()
        assert xt.grad is not None and dense.kernel.grad is not None
        with pynn.no_grad():
            yp = dense(pynn.Tensor(x))
        np.testing.assert_allclose(yp.data, y.data, rtol=1e-5, atol=1e-6)
