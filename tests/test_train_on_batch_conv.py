"""train_on_batch and fit run a Sequential of Conv2D / MaxPooling2D layers, a Flatten and a
Dense tail through the graph-free step (models/fit_loop.py: _ConvStack in front of a
_DenseStack): the loss, the weights after each step and fit's history must be the generic
autograd step's (Model._train_step) bit for bit, on both backends and at any thread count,
and anything the stack does not know exactly (a subclass overriding call or build, another
layer, channels_first, a regularizer, a frozen layer) must go the generic way."""
import numpy as np
import pytest

import pynn
from pynn import layers
from pynn.models import fit_loop

BACKENDS = ["numpy"] + (["native"] if pynn.backend.NATIVE_AVAILABLE else [])
THREADS = [1, 2, 3, 4, 7, 8]
SPARSE = pynn.losses.SparseCategoricalCrossentropy(from_logits=True)


def _data(n=24, hw=12, c=1, classes=5, dtype=np.float32):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, hw, hw, c)).astype(dtype)
    return x, rng.integers(0, classes, n), rng.uniform(0.5, 1.5, n).astype(np.float32)


def _cnn(conv1=None, conv2=None, pool1=None, pool2=None, tail=None, hw=12, c=1):
    """The benchmark's CNN shape at a small size: conv-pool-conv-pool-flatten-dense-dense."""
    conv1 = conv1 or layers.Conv2D(4, 3, activation="relu")
    conv2 = conv2 or layers.Conv2D(6, 3, activation="relu")
    pool1 = pool1 or layers.MaxPooling2D(2)
    pool2 = pool2 or layers.MaxPooling2D(2)
    tail = tail or [layers.Dense(8, activation="relu"), layers.Dense(5)]
    return [layers.Input((hw, hw, c)), conv1, pool1, conv2, pool2, layers.Flatten()] + tail


def _model(stack_of, loss=SPARSE, opt=lambda: pynn.optimizers.Adam(1e-2)):
    pynn.set_seed(0)
    m = pynn.Sequential(stack_of())
    m.compile(opt(), loss)
    return m


def _cnn64():
    f64 = {"dtype": "float64"}
    return [layers.Input((12, 12, 1), dtype="float64"), layers.Conv2D(4, 3, activation="relu", **f64),
            layers.MaxPooling2D(2, **f64), layers.Conv2D(6, 3, activation="relu", **f64), layers.MaxPooling2D(2, **f64),
            layers.Flatten(**f64), layers.Dense(8, activation="relu", **f64), layers.Dense(5, **f64)]


def _generic(m, x, y, sw=None):
    xs, ys, sw = m._prepare_xy(x, y, sw, "train_on_batch")
    return m._train_step(xs, ys, sw)[0]


def _spy(monkeypatch):
    calls = []
    real = fit_loop._ConvStack.run

    def run(self, *args):
        calls.append(1)
        return real(self, *args)
    monkeypatch.setattr(fit_loop._ConvStack, "run", run)
    return calls


def _same_as_generic(monkeypatch, make, x, y, sw=None, steps=3, expect_stack=True):
    a, b = make(), make()
    with monkeypatch.context() as mp:
        calls = _spy(mp)
        pynn.set_seed(5)   # each model's steps from the same global seed (Dropout draws from it)
        la = [a.train_on_batch(x, y, sample_weight=sw) for _ in range(steps)]
    pynn.set_seed(5)
    lb = [_generic(b, x, y, sw) for _ in range(steps)]
    assert bool(calls) == expect_stack, "the conv stack ran" if calls else "the conv stack did not run"
    assert la == lb
    assert all(isinstance(v, float) for v in la)
    for u, v in zip(a.get_weights(), b.get_weights()):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)
    assert a.optimizer.iterations == b.optimizer.iterations == steps
    return a


@pytest.mark.parametrize("backend", BACKENDS)
def test_benchmark_shaped_cnn_matches_the_generic_step_bit_for_bit(backend, monkeypatch):
    x, y, _ = _data()
    with pynn.use_backend(backend):
        m = _same_as_generic(monkeypatch, lambda: _model(_cnn), x, y)
    assert any(np.any(w != 0) for w in m.get_weights()[1::2])   # the biases moved: their gradients flowed


@pytest.mark.skipif(not pynn.backend.NATIVE_AVAILABLE, reason="native backend not built")
@pytest.mark.parametrize("threads", THREADS)
def test_native_cnn_step_matches_the_generic_step_at_every_thread_count(threads, monkeypatch):
    x, y, _ = _data(n=32, hw=16, c=3)
    before = pynn.get_num_threads()
    pynn.set_num_threads(threads)
    try:
        _same_as_generic(monkeypatch, lambda: _model(lambda: _cnn(
            layers.Conv2D(16, 3, activation="relu"), layers.Conv2D(32, 3, activation="relu"), hw=16, c=3)), x, y)
    finally:
        pynn.set_num_threads(before)


VARIANTS = {
    # activations: linear (no relu' hand-off to the pooling), tanh (fused, read off the output)
    "linear_convs": lambda: _cnn(layers.Conv2D(4, 3), layers.Conv2D(6, 3)),
    "tanh_then_relu": lambda: _cnn(layers.Conv2D(4, 3, activation="tanh"), layers.Conv2D(6, 3, activation="relu")),
    "sigmoid_conv": lambda: _cnn(conv2=layers.Conv2D(6, 3, activation="sigmoid")),
    "no_bias": lambda: _cnn(layers.Conv2D(4, 3, activation="relu", use_bias=False),
                            layers.Conv2D(6, 3, activation="relu", use_bias=False)),
    # geometry: same padding, strides, dilation, overlapping and padded pooling
    "same_stride2": lambda: _cnn(layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
                                 layers.Conv2D(6, 3, padding="same", activation="relu")),
    "dilated_5x5": lambda: _cnn(layers.Conv2D(4, 5, dilation_rate=1, activation="relu"),
                                layers.Conv2D(6, 2, dilation_rate=2, activation="relu"), hw=14),
    "pool_3_stride_2_same": lambda: _cnn(pool1=layers.MaxPooling2D(3, strides=2, padding="same"),
                                         pool2=layers.MaxPooling2D((1, 2), strides=1)),
    # orders: two convs in a row, a pooling first (no gradient below the first conv), no pooling
    "conv_conv_pool": lambda: [layers.Input((12, 12, 2)), layers.Conv2D(4, 3, activation="relu"),
                               layers.Conv2D(6, 3, activation="relu"), layers.MaxPooling2D(2),
                               layers.Flatten(), layers.Dense(5)],
    "pool_first": lambda: [layers.Input((12, 12, 2)), layers.MaxPooling2D(2), layers.Conv2D(4, 3, activation="relu"),
                           layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(5)],
    "no_pooling": lambda: [layers.Input((12, 12, 2)), layers.Conv2D(3, 3, activation="relu"), layers.Flatten(),
                           layers.Dense(5)],
    # tail: a Dropout after the Flatten, a softmax head
    "dropout_tail": lambda: _cnn(tail=[layers.Dropout(0.3), layers.Dense(8, activation="relu"), layers.Dense(5)]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cnn_variants_match_the_generic_step_bit_for_bit(variant, backend, monkeypatch):
    make = VARIANTS[variant]
    c = make()[0].shape[-1]
    x, y, _ = _data(hw=14 if variant == "dilated_5x5" else 12, c=c)
    with pynn.use_backend(backend):
        _same_as_generic(monkeypatch, lambda: _model(make), x, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_head_categorical_xent_with_sample_weight_matches_generic(backend, monkeypatch):
    x, y, sw = _data()
    onehot = np.eye(5, dtype=np.float32)[y]
    make = lambda: _model(lambda: _cnn(tail=[layers.Dense(5, activation="softmax")]),  # noqa: E731
                          loss="categorical_crossentropy")
    with pynn.use_backend(backend):
        _same_as_generic(monkeypatch, make, x, onehot, sw=sw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mse_loss_and_sgd_momentum_match_generic(backend, monkeypatch):
    x, _, _ = _data()
    target = np.random.default_rng(2).standard_normal((len(x), 5)).astype(np.float32)
    make = lambda: _model(_cnn, loss="mse", opt=lambda: pynn.optimizers.SGD(0.05, momentum=0.9))  # noqa: E731
    with pynn.use_backend(backend):
        _same_as_generic(monkeypatch, make, x, target)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_cnn_matches_generic(backend, monkeypatch):
    x, y, _ = _data(dtype=np.float64)
    with pynn.use_backend(backend):
        m = _same_as_generic(monkeypatch, lambda: _model(_cnn64), x, y)
    assert all(w.dtype == np.float64 for w in m.get_weights())


def test_float64_stack_gradients_match_finite_differences():
    """The stack's gradients themselves (not only their agreement with the generic step):
    central differences of the float64 loss on a few entries of every weight."""
    x, y, _ = _data(n=6, hw=8, classes=3, dtype=np.float64)
    with pynn.use_backend("numpy"):
        pynn.set_seed(0)
        m = pynn.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(3, 3, activation="tanh"), layers.MaxPooling2D(2),
                             layers.Conv2D(4, 2, activation="relu"), layers.MaxPooling2D(1),
                             layers.Flatten(), layers.Dense(3)])
        for w in m.weights:
            w.data = np.random.default_rng(len(w.data.shape)).standard_normal(w.data.shape) * 0.5
        m.compile(pynn.optimizers.SGD(0.0), SPARSE)
        xs, ys, sw = m._prepare_xy(x, y, None, "t")
        layer_list = fit_loop._fast_layers(m)
        stack = fit_loop._ConvStack.build(m, layer_list, m.trainable_weights, [], xs[0])
        assert stack is not None
        labels = fit_loop._xent_labels(m, stack.head, ys[0], 3, np.float64)
        stack.xent = True
        _, grads, _ = stack.run(m, xs[0], ys, sw, labels)

        def loss_at():
            with pynn.no_grad():
                return float(m._loss_value(ys, m._forward(xs, training=True), None).data)
        rng = np.random.default_rng(0)
        for w, g in zip(m.trainable_weights, grads):
            for flat in rng.choice(w.data.size, size=min(4, w.data.size), replace=False):
                i = np.unravel_index(flat, w.data.shape)
                old = w.data[i]
                w.data[i] = old + 1e-6
                up = loss_at()
                w.data[i] = old - 1e-6
                down = loss_at()
                w.data[i] = old
                np.testing.assert_allclose(g[i], (up - down) / 2e-6, rtol=1e-5, atol=1e-8)


# ------------------------------------------------------------ what must go the generic way
class _ScaledConv(layers.Conv2D):
    """A subclass overriding call: the stack would skip its change."""

    def call(self, x):
        return super().call(x) * 0.5


class _BuildConv(layers.Conv2D):
    """A subclass overriding build (it could add weights or change the kernel)."""

    def build(self, input_shape):
        super().build(input_shape)


def _patched_instance():
    conv = layers.Conv2D(6, 3, activation="relu")
    conv.call = lambda x, training=False: layers.Conv2D.call(conv, x) * 2.0
    return _cnn(conv2=conv)


def _frozen_conv():
    stack = _cnn()
    stack[1].trainable = False
    return stack


GENERIC = {
    "subclass_overriding_call": lambda: _cnn(conv2=_ScaledConv(6, 3, activation="relu")),
    "subclass_overriding_build": lambda: _cnn(conv1=_BuildConv(4, 3, activation="relu")),
    "instance_patched_call": _patched_instance,
    "channels_first_conv": lambda: [layers.Input((1, 12, 12)),
                                    layers.Conv2D(4, 3, activation="relu", data_format="channels_first"),
                                    layers.Flatten(), layers.Dense(5)],
    "regularized_conv": lambda: _cnn(conv1=layers.Conv2D(4, 3, activation="relu",
                                                          kernel_regularizer=pynn.regularizers.L2(1e-3))),
    "frozen_conv": _frozen_conv,
    "average_pooling": lambda: _cnn(pool1=layers.AveragePooling2D(2)),
    "gelu_conv": lambda: _cnn(conv2=layers.Conv2D(6, 3, activation="gelu")),
    "batch_norm": lambda: [layers.Input((12, 12, 1)), layers.Conv2D(4, 3, activation="relu"),
                           layers.BatchNormalization(), layers.Flatten(), layers.Dense(5)],
    "global_pooling_no_flatten": lambda: [layers.Input((12, 12, 1)), layers.Conv2D(4, 3, activation="relu"),
                                          layers.GlobalAveragePooling2D(), layers.Dense(5)],
    "conv1d": lambda: [layers.Input((12, 3)), layers.Conv1D(4, 3, activation="relu"), layers.Flatten(),
                       layers.Dense(5)],
    "activity_regularizer": lambda: _cnn(conv1=layers.Conv2D(4, 3, activation="relu",
                                                              activity_regularizer=pynn.regularizers.L2(1e-2))),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(GENERIC))
def test_models_the_conv_stack_does_not_know_take_the_generic_step(case, backend, monkeypatch):
    make = GENERIC[case]
    shape = make()[0].shape
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16,) + tuple(shape[1:])).astype(np.float32)
    y = rng.integers(0, 5, 16)
    with pynn.use_backend(backend):
        _same_as_generic(monkeypatch, lambda: _model(make), x, y, expect_stack=False)


def test_a_subclass_overriding_call_changes_the_result():
    """The generic step really runs the override: a stack that skipped it would train
    differently (this pins that the fallback case above can tell the two apart)."""
    x, y, _ = _data()
    a = _model(lambda: _cnn(conv2=_ScaledConv(6, 3, activation="relu")))
    b = _model(_cnn)
    assert a.train_on_batch(x, y) != b.train_on_batch(x, y)


def test_freezing_a_conv_between_calls_is_seen_at_once(monkeypatch):
    x, y, _ = _data()
    m = _model(_cnn)
    with monkeypatch.context() as mp:
        calls = _spy(mp)
        m.train_on_batch(x, y)
        assert len(calls) == 1
        m.layers[0].trainable = False
        frozen = m.layers[0].get_weights()
        m.train_on_batch(x, y)
        assert len(calls) == 1   # generic: the stack only knows all-trainable models
        for u, v in zip(frozen, m.layers[0].get_weights()):
            np.testing.assert_array_equal(u, v)
        m.layers[0].trainable = True
        m.train_on_batch(x, y)
        assert len(calls) == 2


def test_a_wrong_input_shape_still_raises_the_generic_error():
    x, y, _ = _data(hw=10)
    m = _model(_cnn)
    with pytest.raises(ValueError, match="expects input of shape"):
        m.train_on_batch(x, y)


# ------------------------------------------------------------ fit() through the prepared plan
def _fit(plan, monkeypatch, backend, **kw):
    x, y, sw = _data(n=70)
    calls = []
    with monkeypatch.context() as mp:
        real = fit_loop._ConvStack.run

        def run(self, *args):
            calls.append(1)
            return real(self, *args)
        mp.setattr(fit_loop._ConvStack, "run", run)
        if not plan:
            mp.setattr(fit_loop, "plan_for", lambda *a, **k: None)
        with pynn.use_backend(backend):
            m = _model(lambda: _cnn(tail=[layers.Dropout(0.2), layers.Dense(8, activation="relu"), layers.Dense(5)]))
            m.compile(pynn.optimizers.Adam(1e-2), SPARSE, metrics=["accuracy"])
            h = m.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.2, **kw)
    return m.get_weights(), h.history, calls


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_runs_the_conv_stack_with_the_generic_loops_weights_and_history(backend, weighted, monkeypatch):
    kw = {"sample_weight": _data(n=70)[2]} if weighted else {}
    w_plan, h_plan, calls = _fit(True, monkeypatch, backend, **kw)
    w_gen, h_gen, calls_gen = _fit(False, monkeypatch, backend, **kw)
    assert calls_gen == []
    assert len(calls) == 2 * 4   # 56 training samples at batch 16: every step of both epochs
    for a, b in zip(w_plan, w_gen):
        np.testing.assert_array_equal(a, b)
    assert h_plan.keys() == h_gen.keys()
    for k in h_gen:
        np.testing.assert_array_equal(np.asarray(h_plan[k]), np.asarray(h_gen[k]), err_msg=k)


def test_benchmark_cnn_stack_gradients_agree_with_pytorch(bench_on_path, backend_name):
    """bench/train_step.py's CNN, its weights copied into the PyTorch twin: the stack's weight
    gradients (one batch, sparse softmax cross-entropy) are PyTorch's, to float32 tolerance."""
    torch = pytest.importorskip("torch")
    import train_step
    s = train_step.STEPS["cnn"]
    x, y = s.data()
    x, y = x[:16], y[:16]
    pynn.set_seed(0)
    model = s.pynn_model()
    model.compile(pynn.optimizers.Adam(1e-3), SPARSE)
    tmodel = s.torch_model(torch)
    train_step.copy_weights_to_torch("cnn", model, tmodel, torch)
    xs, ys, sw = model._prepare_xy(x, y, None, "t")
    stack = fit_loop._ConvStack.build(model, fit_loop._fast_layers(model), model.trainable_weights, [], xs[0])
    assert stack is not None
    labels = fit_loop._xent_labels(model, stack.head, ys[0], 10, np.float32)
    stack.xent = True
    loss, grads, _ = stack.run(model, xs[0], ys, sw, labels)

    tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(s.torch_layout(x))),
                                              torch.from_numpy(y.astype(np.int64)))
    tloss.backward()
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-5)
    mods = [m for m in tmodel if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for j, mod in enumerate(mods):
        gk, gb = grads[2 * j], grads[2 * j + 1]
        tk, tb = mod.weight.grad.numpy(), mod.bias.grad.numpy()
        if gk.ndim == 4:
            tk = tk.transpose(2, 3, 1, 0)                               # (out, in, kh, kw) -> (kh, kw, in, out)
        elif gk.shape[0] == 1600:
            tk = tk.T.reshape(64, 5, 5, -1).transpose(1, 2, 0, 3).reshape(1600, -1)   # torch flattens (C, H, W)
        else:
            tk = tk.T
        for ours, theirs in ((gk, tk), (gb, tb)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5 * np.abs(theirs).max())


def test_train_on_batch_keeps_its_stack_while_the_model_is_unchanged(monkeypatch):
    """The previous call's stack (and its buffers) runs again when a fresh build is the same;
    any change (a frozen layer, a new activation) builds and keeps a new one."""
    x, y, _ = _data()
    m = _model(_cnn)
    seen = []
    real = fit_loop._ConvStack.run

    def run(self, *args):
        seen.append(self)
        return real(self, *args)
    monkeypatch.setattr(fit_loop._ConvStack, "run", run)
    m.train_on_batch(x, y)
    m.train_on_batch(x, y)
    assert seen[0] is seen[1]
    m.layers[2].activation = pynn.activations.get("tanh")   # the second conv
    m.train_on_batch(x, y)
    assert seen[2] is not seen[1] and seen[2].front[2][3] == "tanh"
    m.train_on_batch(x, y)
    assert seen[3] is seen[2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_kept_stack_with_changing_batch_sizes_matches_generic(backend, monkeypatch):
    """The kept stack's buffers are per batch size: a smaller last batch, then the full one
    again, train as the generic step does."""
    x, y, _ = _data(n=40)
    with pynn.use_backend(backend):
        a, b = _model(_cnn), _model(_cnn)
        with monkeypatch.context() as mp:
            calls = _spy(mp)
            la = [a.train_on_batch(x[s], y[s]) for s in (slice(0, 16), slice(16, 40), slice(0, 7), slice(0, 16))]
        lb = [_generic(b, x[s], y[s]) for s in (slice(0, 16), slice(16, 40), slice(0, 7), slice(0, 16))]
    assert len(calls) == 4 and la == lb
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
