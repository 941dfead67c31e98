"""Issue #18's remaining Keras names: data_format="channels_first" (model level, .keras
files, the config default), DepthwiseConv2D's depthwise path (native vs numpy,
finite differences), RNN with stacked cells and stateful=True (against Keras 3 on
the same weights). The per-layer Keras comparisons of channels_first,
Conv2DTranspose(output_padding=, dilation_rate=) and UpSampling2D bilinear are rows
of tests/test_keras_fidelity_names.py's LAYERS table."""
import os

import numpy as np
import pytest

import pynn
from pynn import layers

os.environ.setdefault("KERAS_BACKEND", "torch")


def _keras():
    return pytest.importorskip("keras")


def _cnn(data_format, shape):
    inputs = pynn.Input(shape)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", data_format=data_format)(inputs)
    x = layers.MaxPooling2D(2, data_format=data_format)(x)
    x = layers.Conv2D(3, 2, data_format=data_format)(x)
    x = layers.Flatten(data_format=data_format)(x)
    return pynn.Model(inputs, layers.Dense(2, activation="softmax")(x))


def test_channels_first_model_equals_channels_last_on_transposed_input_with_its_gradients():
    rng = np.random.default_rng(0)
    x_last = rng.standard_normal((3, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 2, 3)
    last, first = _cnn("channels_last", (6, 6, 2)), _cnn("channels_first", (2, 6, 6))
    first.set_weights(last.get_weights())          # weights do not depend on the data format
    x_first = np.ascontiguousarray(x_last.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(first.predict(x_first), last.predict(x_last), rtol=1e-5, atol=1e-6)
    grads = []
    for model, x in ((last, x_last), (first, x_first)):
        t = pynn.Tensor(x, requires_grad=True)
        loss = pynn.losses.SparseCategoricalCrossentropy()(y, model(t))
        loss.backward()
        grads.append([w.grad.copy() for w in model.trainable_weights] + [np.moveaxis(t.grad, 1, -1)
                                                                           if model is first else t.grad])
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    first.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = first.fit(np.repeat(x_first, 4, 0), np.repeat(y, 4), epochs=8, batch_size=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_image_data_format_sets_the_default_and_rejects_other_values():
    assert pynn.config.image_data_format() == "channels_last"
    pynn.config.set_image_data_format("channels_first")
    try:
        layer = layers.MaxPooling2D(2)
        assert layer.data_format == "channels_first"
        assert layer(np.zeros((1, 3, 4, 6), np.float32)).shape == (1, 3, 2, 3)
    finally:
        pynn.config.set_image_data_format("channels_last")
    assert layers.Conv2D(2, 3).data_format == "channels_last"
    with pytest.raises(ValueError, match="channels_last' or 'channels_first"):
        layers.Conv2D(2, 3, data_format="NCHW")
    with pytest.raises(ValueError, match="set_image_data_format"):
        pynn.config.set_image_data_format("nchw")


def test_channels_first_survives_pynn_and_keras_files_both_ways(tmp_path):
    keras = _keras()
    pytest.importorskip("h5py")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    pm = _cnn("channels_first", (2, 6, 6))
    pm.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = tmp_path / "cf.keras"
    pm.save(path)
    km = keras.saving.load_model(path)
    assert km.layers[1].data_format == "channels_first"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(km(x)), pm.predict(x), rtol=1e-4, atol=1e-5)
    again = pynn.load_model(path)
    assert again.layers[1].data_format == "channels_first"
    np.testing.assert_allclose(again.predict(x), pm.predict(x), rtol=1e-6)
    # a channels_first model written by Keras loads in pynn
    K = keras.layers
    kin = keras.Input((2, 6, 6))
    h = K.Conv1D(3, 2, data_format="channels_first")(K.Reshape((2, 36))(kin))
    h = K.GlobalAveragePooling1D(data_format="channels_first")(h)
    km2 = keras.Model(kin, K.Dense(2)(h))
    km2.save(tmp_path / "k.keras")
    pm2 = pynn.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(pm2.predict(x), keras.ops.convert_to_numpy(km2(x)), rtol=1e-4, atol=1e-5)
    # pynn's own format too
    pm.save(tmp_path / "cf.pynn")
    np.testing.assert_allclose(pynn.load_model(tmp_path / "cf.pynn").predict(x), pm.predict(x), rtol=1e-6)


def test_onnx_export_refuses_channels_first_clearly():
    model = _cnn("channels_first", (2, 6, 6))
    with pytest.raises(ValueError, match="channels_first"):
        pynn.onnx.export(model, "unused.onnx")


# ---------------------------------------------------------------- DepthwiseConv2D's depthwise path
def _block_diagonal_reference(x, kernel, strides, padding, dilation):
    """The depthwise conv as one dense conv2d with a block-diagonal kernel (the old path)."""
    kh, kw, c, m = kernel.shape
    full = np.zeros((kh, kw, c, c * m), kernel.dtype)
    for ch in range(c):
        full[:, :, ch, ch * m:(ch + 1) * m] = kernel[:, :, ch, :]
    with pynn.no_grad():
        return pynn.functional.conv2d(pynn.Tensor(x), pynn.Tensor(full), None, strides=strides, padding=padding,
                                      dilation_rate=dilation).numpy()


CASES = [((1, 1), "valid", (1, 1)), ((2, 1), "same", (1, 1)), ((1, 1), "same", (2, 2)), ((2, 3), "valid", (1, 1))]


@pytest.mark.parametrize("strides,padding,dilation", CASES)
@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_depthwise_conv_equals_the_block_diagonal_conv_on_each_backend(backend, strides, padding, dilation):
    if backend == "native" and not pynn.backend.NATIVE_AVAILABLE:
        pytest.skip("native extension not built")
    from pynn.layers.conv_more import depthwise_conv2d
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
    k = rng.standard_normal((3, 2, 3, 2)).astype(np.float32)
    with pynn.use_backend(backend):
        ref = _block_diagonal_reference(x, k, strides, padding, dilation)
        xt, kt = pynn.Tensor(x, requires_grad=True), pynn.Tensor(k, requires_grad=True)
        out = depthwise_conv2d(xt, kt, strides, padding, dilation)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)
        r = rng.standard_normal(out.shape).astype(np.float32)
        (out * r).sum().backward()
    # gradients agree between the backends
    with pynn.use_backend("numpy"):
        xn, kn = pynn.Tensor(x, requires_grad=True), pynn.Tensor(k, requires_grad=True)
        (depthwise_conv2d(xn, kn, strides, padding, dilation) * r).sum().backward()
    np.testing.assert_allclose(xt.grad, xn.grad, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(kt.grad, kn.grad, rtol=1e-4, atol=1e-5)


def test_depthwise_kernel_gradient_matches_finite_differences_in_float64():
    from pynn.layers.conv_more import depthwise_conv2d
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 6, 2))
    k = rng.standard_normal((3, 3, 2, 2))
    r = rng.standard_normal((2, 3, 3, 4))
    with pynn.use_backend("numpy"):
        kt = pynn.Tensor(k.copy(), requires_grad=True)
        (depthwise_conv2d(pynn.Tensor(x), kt, (2, 2), "same", (1, 1)) * r).sum().backward()

        def f(kk):
            return float((depthwise_conv2d(pynn.Tensor(x), pynn.Tensor(kk), (2, 2), "same", (1, 1)).numpy() * r).sum())
        num = np.zeros_like(k)
        for idx in np.ndindex(k.shape):
            up, down = k.copy(), k.copy()
            up[idx] += 1e-6
            down[idx] -= 1e-6
            num[idx] = (f(up) - f(down)) / 2e-6
    np.testing.assert_allclose(kt.grad, num, rtol=1e-6, atol=1e-7)


def test_depthwise_conv_does_depthwise_work_not_a_dense_conv():
    """No conv2d runs inside (the old path ran one with a C·m-wide block-diagonal kernel)."""
    import pynn.layers.conv_more as cm
    called = []
    original = cm.F.conv2d
    cm.F.conv2d = lambda *a, **k: called.append(1) or original(*a, **k)
    try:
        layers.DepthwiseConv2D(3)(np.ones((1, 5, 5, 8), np.float32))
    finally:
        cm.F.conv2d = original
    assert not called


# ---------------------------------------------------------------- RNN: stacked cells, stateful
def _stack(m):
    return [m.SimpleRNNCell(4), m.LSTMCell(3), m.GRUCell(2)]


@pytest.mark.parametrize("options", [{}, {"return_sequences": True, "go_backwards": True}])
def test_rnn_with_stacked_cells_matches_keras(options):
    keras = _keras()
    x = np.random.default_rng(4).standard_normal((3, 5, 2)).astype(np.float32)
    k = keras.layers.RNN(_stack(keras.layers), **options)
    kout = keras.ops.convert_to_numpy(k(x))
    p = layers.RNN(_stack(layers), **options)
    p(x)
    assert [tuple(w.shape) for w in p.weights] == [tuple(w.shape) for w in k.weights]
    p.set_weights(k.get_weights())
    np.testing.assert_allclose(p(x).numpy(), kout, rtol=1e-5, atol=1e-6)
    assert layers.RNN(_stack(layers), **options)(pynn.Input((5, 2))).shape == (None,) + kout.shape[1:]
    # the Keras class name and the config round trip
    q = layers.RNN(layers.StackedRNNCells(_stack(layers)), **options)
    clone = layers.RNN.from_config(q.get_config())
    q(x), clone(x)
    clone.set_weights(k.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), kout, rtol=1e-5, atol=1e-6)


def test_rnn_with_stacked_cells_returns_keras_nested_states():
    keras = _keras()
    x = np.random.default_rng(5).standard_normal((2, 4, 3)).astype(np.float32)
    k = keras.layers.RNN([keras.layers.LSTMCell(3), keras.layers.SimpleRNNCell(2)], return_state=True)
    kout = k(x)
    p = layers.RNN([layers.LSTMCell(3), layers.SimpleRNNCell(2)], return_state=True)
    p(x)
    p.set_weights(k.get_weights())
    pout = p(x)
    assert len(pout) == len(kout) == 3 and len(pout[1]) == len(kout[1]) == 2    # out, [h1, c1], [h2]
    assert len(pout[2]) == len(kout[2]) == 1
    for a, b in zip([pout[0], *pout[1], *pout[2]], [kout[0], *kout[1], *kout[2]]):
        np.testing.assert_allclose(a.numpy(), keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="nested states"):
        layers.RNN([layers.LSTMCell(3), layers.SimpleRNNCell(2)], return_state=True)(pynn.Input((4, 3)))


@pytest.mark.parametrize("make", [lambda m: m.LSTMCell(3), lambda m: [m.GRUCell(3), m.LSTMCell(2)]],
                         ids=["lstm_cell", "stacked"])
def test_stateful_rnn_carries_states_across_calls_like_keras(make):
    keras = _keras()
    rng = np.random.default_rng(6)
    a, b = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(2))
    k = keras.layers.RNN(make(keras.layers), stateful=True, return_sequences=True)
    kin = keras.Input(batch_shape=(2, 3, 4))
    km = keras.Model(kin, k(kin))
    p = layers.RNN(make(layers), stateful=True, return_sequences=True)
    p(a)
    p.reset_states()
    p.set_weights(k.get_weights())
    outs = []
    for batch in (a, b):
        kb = keras.ops.convert_to_numpy(km(batch))
        np.testing.assert_allclose(p(batch).numpy(), kb, rtol=1e-5, atol=1e-6)
        outs.append(kb)
    for v in keras.tree.flatten(k.states):    # (Keras' reset_state fails on stacked cells' nested states)
        v.assign(np.zeros(v.shape, np.float32))
    p.reset_states()
    np.testing.assert_allclose(p(b).numpy(), keras.ops.convert_to_numpy(km(b)), rtol=1e-5, atol=1e-6)
    fresh = layers.RNN(make(layers), return_sequences=True)
    fresh(b)
    fresh.set_weights(p.get_weights())
    p.reset_states()
    np.testing.assert_allclose(p(b).numpy(), fresh(b).numpy(), rtol=1e-6)   # reset = zeros, as non-stateful
    with pytest.raises(ValueError, match="batches of 2"):
        p(np.zeros((3, 3, 4), np.float32))


def test_stateful_rnn_config_round_trips_and_reset_states_takes_values():
    layer = layers.RNN(layers.SimpleRNNCell(2), stateful=True)
    clone = layers.RNN.from_config(layer.get_config())
    assert clone.stateful
    x = np.ones((1, 2, 3), np.float32)
    layer(x)
    layer.reset_states([np.full((1, 2), 0.5, np.float32)])
    np.testing.assert_allclose(layer.states[0], 0.5)
    with pytest.raises(ValueError, match="reset_states expected"):
        layer.reset_states([np.zeros((1, 3), np.float32)])
    with pytest.raises(ValueError, match="needs stateful=True"):
        layers.RNN(layers.SimpleRNNCell(2)).reset_states()
