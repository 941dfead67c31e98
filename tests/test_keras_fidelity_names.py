"""The everyday Keras names of issue #18: layers, losses, metrics, callbacks and
utils, each checked against Keras 3 on the same input (where Keras is installed)
and against its definition otherwise; layers also round-trip their config and
pass gradients."""
import os

import numpy as np
import pytest

import pynn
from pynn import layers

os.environ.setdefault("KERAS_BACKEND", "torch")


def _keras():
    return pytest.importorskip("keras")


R = np.random.default_rng(0)
X2 = R.standard_normal((3, 5)).astype(np.float32)
X3 = R.standard_normal((2, 4, 3)).astype(np.float32)
X4 = R.standard_normal((2, 4, 5, 3)).astype(np.float32)

# (name, pynn factory, keras factory (gets the keras.layers module), inputs)
LAYERS = [
    ("relu", lambda: layers.ReLU(), lambda L: L.ReLU(), X2),
    ("relu6_slope_threshold", lambda: layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2),
     lambda L: L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2), X2),
    ("leaky_relu", lambda: layers.LeakyReLU(), lambda L: L.LeakyReLU(), X2),
    ("elu", lambda: layers.ELU(alpha=0.7), lambda L: L.ELU(alpha=0.7), X2),
    ("softmax", lambda: layers.Softmax(), lambda L: L.Softmax(), X3),
    ("softmax_axis1", lambda: layers.Softmax(axis=1), lambda L: L.Softmax(axis=1), X3),
    ("prelu", lambda: layers.PReLU(alpha_initializer="ones"), lambda L: L.PReLU(alpha_initializer="ones"), X3),
    ("prelu_shared", lambda: layers.PReLU(alpha_initializer="ones", shared_axes=[1]),
     lambda L: L.PReLU(alpha_initializer="ones", shared_axes=[1]), X3),
    ("subtract", lambda: layers.Subtract(), lambda L: L.Subtract(), [X2, 2 * X2]),
    ("average", lambda: layers.Average(), lambda L: L.Average(), [X2, X2 * 3, -X2]),
    ("maximum", lambda: layers.Maximum(), lambda L: L.Maximum(), [X2, -X2]),
    ("minimum", lambda: layers.Minimum(), lambda L: L.Minimum(), [X2, -X2]),
    ("dot_2d", lambda: layers.Dot(axes=1), lambda L: L.Dot(axes=1), [X2, X2[::-1].copy()]),
    ("dot_2d_normalize", lambda: layers.Dot(axes=1, normalize=True), lambda L: L.Dot(axes=1, normalize=True),
     [X2, X2[::-1].copy()]),
    ("dot_3d_22", lambda: layers.Dot(axes=(2, 2)), lambda L: L.Dot(axes=(2, 2)), [X3, X3[:, :3].copy()]),
    ("dot_3d_11", lambda: layers.Dot(axes=(1, 1)), lambda L: L.Dot(axes=(1, 1)), [X3, X3[..., :2].copy()]),
    ("upsampling2d", lambda: layers.UpSampling2D((2, 3)), lambda L: L.UpSampling2D((2, 3)), X4),
    ("upsampling1d", lambda: layers.UpSampling1D(3), lambda L: L.UpSampling1D(3), X3),
    ("zeropadding2d", lambda: layers.ZeroPadding2D(((1, 2), (0, 3))), lambda L: L.ZeroPadding2D(((1, 2), (0, 3))), X4),
    ("zeropadding1d", lambda: layers.ZeroPadding1D((2, 1)), lambda L: L.ZeroPadding1D((2, 1)), X3),
    ("cropping2d", lambda: layers.Cropping2D(((1, 0), (1, 2))), lambda L: L.Cropping2D(((1, 0), (1, 2))), X4),
    ("cropping1d", lambda: layers.Cropping1D((1, 2)), lambda L: L.Cropping1D((1, 2)), X3),
    ("repeat_vector", lambda: layers.RepeatVector(3), lambda L: L.RepeatVector(3), X2),
    ("permute", lambda: layers.Permute((2, 1)), lambda L: L.Permute((2, 1)), X3),
    ("identity", lambda: layers.Identity(), lambda L: L.Identity(), X3),
    ("unit_normalization", lambda: layers.UnitNormalization(), lambda L: L.UnitNormalization(), X3),
    ("unit_normalization_axes", lambda: layers.UnitNormalization(axis=[1, 2]),
     lambda L: L.UnitNormalization(axis=[1, 2]), X3),
    ("spatial_dropout_inference", lambda: layers.SpatialDropout1D(0.5), lambda L: L.SpatialDropout1D(0.5), X3),
    ("gaussian_noise_inference", lambda: layers.GaussianNoise(1.0), lambda L: L.GaussianNoise(1.0), X3),
    ("group_normalization", lambda: layers.GroupNormalization(groups=3), lambda L: L.GroupNormalization(groups=3),
     X4),
    ("depthwise_conv", lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
     lambda L: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), X4),
    ("depthwise_conv_strided", lambda: layers.DepthwiseConv2D((2, 3), strides=2),
     lambda L: L.DepthwiseConv2D((2, 3), strides=2), X4),
    ("separable_conv", lambda: layers.SeparableConv2D(4, 3, depth_multiplier=2, activation="relu"),
     lambda L: L.SeparableConv2D(4, 3, depth_multiplier=2, activation="relu"), X4),
    ("conv_transpose", lambda: layers.Conv2DTranspose(4, 3), lambda L: L.Conv2DTranspose(4, 3), X4),
    ("conv_transpose_s2_same", lambda: layers.Conv2DTranspose(2, 3, strides=2, padding="same"),
     lambda L: L.Conv2DTranspose(2, 3, strides=2, padding="same"), X4),
    ("conv_transpose_s2_valid", lambda: layers.Conv2DTranspose(2, (2, 3), strides=(2, 1)),
     lambda L: L.Conv2DTranspose(2, (2, 3), strides=(2, 1)), X4),
    ("conv_transpose_k2_s3_same", lambda: layers.Conv2DTranspose(2, 2, strides=3, padding="same"),
     lambda L: L.Conv2DTranspose(2, 2, strides=3, padding="same"), X4),
    # data_format="channels_first" (transposed around the channels_last kernels): X4 read as (N, C, H, W)
    ("conv2d_channels_first", lambda: layers.Conv2D(4, (2, 3), padding="same", data_format="channels_first"),
     lambda L: L.Conv2D(4, (2, 3), padding="same", data_format="channels_first"), X4),
    ("conv1d_channels_first", lambda: layers.Conv1D(2, 2, data_format="channels_first", activation="tanh"),
     lambda L: L.Conv1D(2, 2, data_format="channels_first", activation="tanh"), X3),
    ("maxpool2d_channels_first", lambda: layers.MaxPooling2D(2, data_format="channels_first"),
     lambda L: L.MaxPooling2D(2, data_format="channels_first"), X4),
    ("avgpool2d_same_channels_first", lambda: layers.AveragePooling2D(3, 2, "same", data_format="channels_first"),
     lambda L: L.AveragePooling2D(3, 2, "same", data_format="channels_first"), X4),
    ("maxpool1d_channels_first", lambda: layers.MaxPooling1D(2, data_format="channels_first"),
     lambda L: L.MaxPooling1D(2, data_format="channels_first"), X3),
    ("avgpool1d_channels_first", lambda: layers.AveragePooling1D(2, 1, data_format="channels_first"),
     lambda L: L.AveragePooling1D(2, 1, data_format="channels_first"), X3),
    ("global_avg2d_channels_first", lambda: layers.GlobalAveragePooling2D(data_format="channels_first"),
     lambda L: L.GlobalAveragePooling2D(data_format="channels_first"), X4),
    ("global_max2d_keepdims_channels_first",
     lambda: layers.GlobalMaxPooling2D(data_format="channels_first", keepdims=True),
     lambda L: L.GlobalMaxPooling2D(data_format="channels_first", keepdims=True), X4),
    ("global_avg1d_channels_first", lambda: layers.GlobalAveragePooling1D(data_format="channels_first"),
     lambda L: L.GlobalAveragePooling1D(data_format="channels_first"), X3),
    ("global_max1d_channels_first", lambda: layers.GlobalMaxPooling1D(data_format="channels_first"),
     lambda L: L.GlobalMaxPooling1D(data_format="channels_first"), X3),
    ("flatten_channels_first", lambda: layers.Flatten(data_format="channels_first"),
     lambda L: L.Flatten(data_format="channels_first"), X4),
    ("upsampling2d_channels_first", lambda: layers.UpSampling2D((2, 3), data_format="channels_first"),
     lambda L: L.UpSampling2D((2, 3), data_format="channels_first"), X4),
    ("zeropadding2d_channels_first", lambda: layers.ZeroPadding2D(((1, 2), (0, 3)), data_format="channels_first"),
     lambda L: L.ZeroPadding2D(((1, 2), (0, 3)), data_format="channels_first"), X4),
    ("zeropadding1d_channels_first", lambda: layers.ZeroPadding1D((2, 1), data_format="channels_first"),
     lambda L: L.ZeroPadding1D((2, 1), data_format="channels_first"), X3),
    ("cropping2d_channels_first", lambda: layers.Cropping2D(((1, 0), (1, 1)), data_format="channels_first"),
     lambda L: L.Cropping2D(((1, 0), (1, 1)), data_format="channels_first"), X4),
    ("depthwise_conv_channels_first",
     lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", data_format="channels_first"),
     lambda L: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", data_format="channels_first"), X4),
    ("separable_conv_channels_first", lambda: layers.SeparableConv2D(3, 2, data_format="channels_first"),
     lambda L: L.SeparableConv2D(3, 2, data_format="channels_first"), X4),
    ("conv_transpose_channels_first",
     lambda: layers.Conv2DTranspose(2, 3, strides=2, padding="same", data_format="channels_first"),
     lambda L: L.Conv2DTranspose(2, 3, strides=2, padding="same", data_format="channels_first"), X4),
    # Conv2DTranspose(output_padding=, dilation_rate=), UpSampling2D bilinear, dilated depthwise
    ("conv_transpose_output_padding_valid", lambda: layers.Conv2DTranspose(2, 3, strides=2, output_padding=1),
     lambda L: L.Conv2DTranspose(2, 3, strides=2, output_padding=1), X4),
    ("conv_transpose_output_padding_same",
     lambda: layers.Conv2DTranspose(2, (4, 3), strides=(2, 3), padding="same", output_padding=(0, 2)),
     lambda L: L.Conv2DTranspose(2, (4, 3), strides=(2, 3), padding="same", output_padding=(0, 2)), X4),
    ("conv_transpose_dilated", lambda: layers.Conv2DTranspose(3, 2, dilation_rate=2),
     lambda L: L.Conv2DTranspose(3, 2, dilation_rate=2), X4),
    ("conv_transpose_dilated_same", lambda: layers.Conv2DTranspose(3, 3, dilation_rate=(2, 1), padding="same"),
     lambda L: L.Conv2DTranspose(3, 3, dilation_rate=(2, 1), padding="same"), X4),
    ("depthwise_conv_dilated", lambda: layers.DepthwiseConv2D(2, dilation_rate=2, depth_multiplier=3),
     lambda L: L.DepthwiseConv2D(2, dilation_rate=2, depth_multiplier=3), X4),
    ("upsampling2d_bilinear", lambda: layers.UpSampling2D((2, 3), interpolation="bilinear"),
     lambda L: L.UpSampling2D((2, 3), interpolation="bilinear"), X4),
    ("upsampling2d_bilinear_channels_first",
     lambda: layers.UpSampling2D(3, interpolation="bilinear", data_format="channels_first"),
     lambda L: L.UpSampling2D(3, interpolation="bilinear", data_format="channels_first"), X4),
    ("normalization_fixed", lambda: layers.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0]),
     lambda L: L.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0]), X3),
]


@pytest.mark.parametrize("name,make,kmake,x", LAYERS, ids=[c[0] for c in LAYERS])
def test_new_layer_matches_keras_and_its_symbolic_shape(name, make, kmake, x):
    keras = _keras()
    layer, klayer = make(), kmake(keras.layers)
    kout = keras.ops.convert_to_numpy(klayer(x))
    out = layer(x)
    if layer.weights:
        layer.set_weights(klayer.get_weights())
        out = layer(x)
    np.testing.assert_allclose(out.numpy(), kout, rtol=1e-5, atol=1e-6)
    # the symbolic shape (compute_output_shape) agrees with the real one
    ins = [pynn.Input(v.shape[1:]) for v in x] if isinstance(x, list) else pynn.Input(x.shape[1:])
    sym = make()(ins)
    assert sym.shape == (None,) + tuple(out.shape[1:])


@pytest.mark.parametrize("name,make,kmake,x", LAYERS, ids=[c[0] for c in LAYERS])
def test_new_layer_config_round_trips_and_gradients_match_finite_differences(name, make, kmake, x):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    xs = [v.astype(np.float64) for v in x] if isinstance(x, list) else x.astype(np.float64)
    with pynn.use_backend("numpy"):
        layer.dtype = clone.dtype = np.dtype("float64")
        tensors = [pynn.Tensor(v, requires_grad=True) for v in xs] if isinstance(xs, list) else \
            pynn.Tensor(xs, requires_grad=True)
        out = layer(tensors)
        clone(tensors)
        if layer.weights:
            clone.set_weights(layer.get_weights())
        np.testing.assert_allclose(clone(tensors).numpy(), out.numpy(), rtol=1e-12)
        r = np.random.default_rng(1).standard_normal(out.shape)
        (out * r).sum().backward()
        first = tensors[0] if isinstance(tensors, list) else tensors
        base = first.data
        num = np.zeros_like(base)
        eps = 1e-6
        for idx in np.ndindex(base.shape):
            old = base[idx]
            base[idx] = old + eps
            up = float((layer(tensors).numpy() * r).sum())
            base[idx] = old - eps
            down = float((layer(tensors).numpy() * r).sum())
            base[idx] = old
            num[idx] = (up - down) / (2 * eps)
        if name in ("maximum", "minimum", "relu6_slope_threshold", "relu", "leaky_relu", "prelu", "prelu_shared",
                    "elu"):
            ok = np.abs(base) > 1e-3   # kinks at 0 (and at the ReLU's threshold/max) have no derivative
            if name == "relu6_slope_threshold":
                ok &= (np.abs(base - 0.2) > 1e-3) & (np.abs(base - 1.0) > 1e-3)
            np.testing.assert_allclose(first.grad[ok], num[ok], rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_allclose(first.grad, num, rtol=1e-6, atol=1e-7)


def test_training_only_noise_layers_act_in_training_with_their_seed():
    x = np.ones((4, 6, 8), np.float32)
    a = layers.SpatialDropout1D(0.5, seed=3)(x, training=True).numpy()
    b = layers.SpatialDropout1D(0.5, seed=3)(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)                          # seeded: reproducible
    assert set(np.unique(a)) <= {0.0, 2.0} and np.all(a == a[:, :1, :])   # whole channels dropped
    g = layers.GaussianNoise(0.5, seed=1)(x, training=True).numpy()
    assert 0.3 < g.std() < 0.7


def test_masking_feeds_the_recurrent_layers_mask():
    x = np.ones((2, 5, 3), np.float32)
    x[0, 3:] = 0.0
    inputs = pynn.Input((5, 3))
    m = pynn.Model(inputs, layers.SimpleRNN(4, return_sequences=True)(layers.Masking()(inputs)))
    out = m.predict(x, verbose=0)
    # masked steps carry the last unmasked state, as Keras
    np.testing.assert_allclose(out[0, 3], out[0, 2], rtol=1e-6)
    np.testing.assert_allclose(out[0, 4], out[0, 2], rtol=1e-6)


def test_input_layer_and_function_forms():
    model = pynn.Sequential([layers.InputLayer(shape=(4,)), layers.Dense(2)])
    assert model.input_shape == (None, 4) and model.output_shape == (None, 2)
    a, b = pynn.Input((3,)), pynn.Input((3,))
    for fn, cls in ((layers.add, layers.Add), (layers.subtract, layers.Subtract),
                    (layers.multiply, layers.Multiply), (layers.average, layers.Average),
                    (layers.maximum, layers.Maximum), (layers.minimum, layers.Minimum)):
        t = fn([a, b])
        assert isinstance(t.layer, cls) and t.shape == (None, 3)
    assert layers.concatenate([a, b], axis=-1).shape == (None, 6)
    assert layers.dot([a, b], axes=1).shape == (None, 1)
    with pytest.raises(ValueError, match="channels_last' or 'channels_first"):
        layers.UpSampling2D(data_format="NHWC")
    with pytest.raises(ValueError, match="'nearest' or 'bilinear'"):
        layers.UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match=r"output_padding must be in \[0, stride\)"):
        layers.Conv2DTranspose(2, 3, strides=2, output_padding=2)


# ---------------------------------------------------------------- losses and metrics
def test_huber_and_binary_focal_crossentropy_match_keras():
    keras = _keras()
    r = np.random.default_rng(2)
    y = (r.random((6, 3)) > 0.5).astype(np.float32)
    p = r.random((6, 3)).astype(np.float32) * 0.98 + 0.01
    logits = r.standard_normal((6, 3)).astype(np.float32) * 3
    cases = [(pynn.losses.Huber(), keras.losses.Huber(), y * 3, p * 3),
             (pynn.losses.Huber(delta=0.3), keras.losses.Huber(delta=0.3), y * 3, p * 3),
             (pynn.losses.BinaryFocalCrossentropy(), keras.losses.BinaryFocalCrossentropy(), y, p),
             (pynn.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.3, gamma=1.5,
                                                  label_smoothing=0.1),
              keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.3, gamma=1.5,
                                                   label_smoothing=0.1), y, p),
             (pynn.losses.BinaryFocalCrossentropy(from_logits=True),
              keras.losses.BinaryFocalCrossentropy(from_logits=True), y, logits)]
    for ours, theirs, yt, yp in cases:
        np.testing.assert_allclose(float(ours(yt, yp).data), float(keras.ops.convert_to_numpy(theirs(yt, yp))),
                                   rtol=1e-5)
    assert isinstance(pynn.losses.get("huber"), pynn.losses.Huber)
    assert isinstance(pynn.losses.get("binary_focal_crossentropy"), pynn.losses.BinaryFocalCrossentropy)


def test_r2_score_and_f1_score_match_keras():
    keras = _keras()
    r = np.random.default_rng(3)
    y = r.standard_normal((20, 2)).astype(np.float32)
    p = (y + 0.5 * r.standard_normal((20, 2))).astype(np.float32)
    ours, theirs = pynn.metrics.R2Score(), keras.metrics.R2Score()
    for sl in (slice(0, 7), slice(7, 20)):   # accumulated over batches
        ours.update_state(y[sl], p[sl])
        theirs.update_state(y[sl], p[sl])
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-5)
    labels = np.eye(3, dtype=np.float32)[r.integers(0, 3, 30)]
    probs = r.random((30, 3)).astype(np.float32)
    for kwargs in ({}, {"average": "macro"}, {"average": "micro"}, {"average": "weighted"},
                   {"average": "macro", "threshold": 0.5}):
        ours, theirs = pynn.metrics.F1Score(**kwargs), keras.metrics.F1Score(**kwargs)
        ours.update_state(labels, probs)
        theirs.update_state(labels, probs)
        np.testing.assert_allclose(ours.result(), keras.ops.convert_to_numpy(theirs.result()), rtol=1e-5,
                                   err_msg=str(kwargs))


def test_f1_score_in_compile_logs_a_number():
    inputs = pynn.Input((4,))
    m = pynn.Model(inputs, layers.Dense(3, activation="softmax")(inputs))
    m.compile("adam", "categorical_crossentropy", metrics=[pynn.metrics.F1Score(average="macro"), "r2_score"])
    h = m.fit(np.ones((8, 4), np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2, 0, 1]], verbose=0)
    assert isinstance(h.history["f1_score"][0], float) and "r2_score" in h.history


# ---------------------------------------------------------------- utils and callbacks
def test_to_categorical_and_pad_sequences_match_keras():
    keras = _keras()
    np.testing.assert_array_equal(pynn.utils.to_categorical([[1], [0], [3]]),
                                  keras.utils.to_categorical([[1], [0], [3]]))
    np.testing.assert_array_equal(pynn.utils.to_categorical([2, 0], num_classes=5),
                                  keras.utils.to_categorical([2, 0], num_classes=5))
    seqs = [[1, 2, 3, 4], [5], [], [6, 7]]
    for kwargs in ({}, {"maxlen": 3}, {"maxlen": 3, "padding": "post", "truncating": "post", "value": -1}):
        ours, theirs = pynn.utils.pad_sequences(seqs, **kwargs), keras.utils.pad_sequences(seqs, **kwargs)
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype
    with pytest.raises(ValueError, match="out of range"):
        pynn.utils.to_categorical([3], num_classes=3)


def test_set_random_seed_makes_initialisation_reproducible():
    pynn.utils.set_random_seed(5)
    a = layers.Dense(3)
    a.build((None, 4))
    r1 = np.random.random()
    pynn.utils.set_random_seed(5)
    b = layers.Dense(3)
    b.build((None, 4))
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    assert np.random.random() == r1


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)

    def make():
        pynn.set_seed(0)
        inputs = pynn.Input((3,))
        m = pynn.Model(inputs, layers.Dense(1)(inputs))
        m.compile(optimizer=pynn.optimizers.Adam(0.05), loss="mse")
        return m

    class Crash(pynn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted")

    reference = make()
    reference.fit(x, y, epochs=5, batch_size=4, shuffle=False, verbose=0)
    backup = str(tmp_path / "backup")
    m = make()
    with pytest.raises(RuntimeError, match="interrupted"):
        m.fit(x, y, epochs=5, batch_size=4, shuffle=False, verbose=0,
              callbacks=[pynn.callbacks.BackupAndRestore(backup), Crash()])
    resumed = make()
    epochs = []
    resumed.fit(x, y, epochs=5, batch_size=4, shuffle=False, verbose=0,
                callbacks=[pynn.callbacks.BackupAndRestore(backup),
                           pynn.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs=None: epochs.append(e))])
    assert epochs == [3, 4]   # epochs 0-2 were done and backed up (the crash came after the backup)
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not os.path.exists(backup)   # deleted after a completed fit (delete_checkpoint=True)


def test_py_dataset_feeds_fit_evaluate_and_predict_and_gets_on_epoch_end():
    class Batches(pynn.utils.PyDataset):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size, self.epochs_ended = x, y, batch_size, 0

        def __len__(self):
            return -(-len(self.x) // self.batch_size)

        def __getitem__(self, i):
            s = slice(i * self.batch_size, (i + 1) * self.batch_size)
            return {"features": self.x[s]}, self.y[s]

        def on_epoch_end(self):
            self.epochs_ended += 1

    r = np.random.default_rng(0)
    x = r.standard_normal((20, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    inputs = pynn.Input((3,), name="features")
    m = pynn.Model(inputs, layers.Dense(1)(inputs))
    m.compile(optimizer=pynn.optimizers.SGD(0.1), loss="mse")
    ds = Batches(x, y, 8)
    h = m.fit(ds, epochs=3, verbose=0)
    assert ds.epochs_ended == 3 and len(h.history["loss"]) == 3
    assert m.evaluate(ds, verbose=0) == pytest.approx(m.evaluate(x, y, verbose=0), rel=1e-5)
    np.testing.assert_allclose(m.predict(ds, verbose=0), m.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match="workers"):
        Batches(x, y, 8, workers=4)


def test_cli_has_version_and_every_demo_option_has_help():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "pynn", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"pynn {pynn.__version__}"
    text = subprocess.run([sys.executable, "-m", "pynn", "demo", "--help"], capture_output=True, text=True,
                          check=True).stdout
    options = ("--model", "--epochs", "--batch-size", "--hidden", "--lr", "--repeats", "--seed")
    assert all(o in text for o in options)
    assert text.count("(default:") == len(options)   # each option has a help line ending in its default


def test_normalization_adapt_matches_keras_and_trains_in_a_model(tmp_path):
    keras = _keras()
    r = np.random.default_rng(4)
    x = (r.standard_normal((50, 3)) * [1.0, 5.0, 0.1] + [0.0, 10.0, -3.0]).astype(np.float32)
    for kwargs in ({}, {"axis": None}, {"invert": True}):
        ours, theirs = layers.Normalization(**kwargs), keras.layers.Normalization(**kwargs)
        ours.adapt(x)
        theirs.adapt(x)
        assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=str(kwargs))
        np.testing.assert_allclose(ours(x).numpy(), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-5)
    fixed = layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 4.0, 4.0])
    np.testing.assert_allclose(fixed(np.ones((1, 3), np.float32)).numpy(), [[0.0, -0.5, -1.0]], rtol=1e-6)
    # batches (a list of arrays) give the same statistics as the whole array
    batched = layers.Normalization()
    batched.adapt([x[:20], x[20:]])
    np.testing.assert_allclose(batched.get_weights()[0], x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(batched.get_weights()[1], x.var(0), rtol=1e-4)
    norm = layers.Normalization()
    norm.adapt(x)
    model = pynn.Sequential([pynn.Input((3,)), norm, layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(x, x[:, 1:2], epochs=2, verbose=0)
    model.save(tmp_path / "n.pynn")
    np.testing.assert_allclose(pynn.load_model(tmp_path / "n.pynn").predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)


def test_category_encoding_and_group_normalization_match_keras():
    keras = _keras()
    ids = np.array([[0, 2, 2], [1, 1, 3]])
    for mode in ("multi_hot", "count"):
        np.testing.assert_array_equal(layers.CategoryEncoding(4, output_mode=mode)(ids).numpy(),
                                      keras.ops.convert_to_numpy(keras.layers.CategoryEncoding(4, output_mode=mode)(ids)))
    np.testing.assert_array_equal(layers.CategoryEncoding(4, output_mode="one_hot")(np.array([3, 0])).numpy(),
                                  np.eye(4, dtype=np.float32)[[3, 0]])
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 6)).astype(np.float32)
    ours, theirs = layers.GroupNormalization(groups=3), keras.layers.GroupNormalization(groups=3)
    kout = keras.ops.convert_to_numpy(theirs(x))
    ours(x)
    ours.set_weights([w * 1.5 + 0.1 for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x).numpy(), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-4, atol=1e-5)
    assert not np.allclose(kout, ours(x).numpy())   # the weights did matter
    inputs = pynn.Input((3, 4, 6))
    assert layers.GroupNormalization(groups=2)(inputs).shape == (None, 3, 4, 6)


# ---------------------------------------------------------------- RNN(cell)
CELLS = [("simple", lambda m: m.SimpleRNNCell(5)), ("lstm", lambda m: m.LSTMCell(5)),
         ("gru", lambda m: m.GRUCell(5)), ("gru_reset_before", lambda m: m.GRUCell(5, reset_after=False))]


@pytest.mark.parametrize("name,make", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("options", [{}, {"return_sequences": True, "go_backwards": True}, {"return_state": True}])
def test_rnn_with_a_cell_matches_keras(name, make, options):
    keras = _keras()
    x = np.random.default_rng(6).standard_normal((3, 4, 2)).astype(np.float32)
    k = keras.layers.RNN(make(keras.layers), **options)
    kout = k(x)
    p = layers.RNN(make(layers), **options)
    p(x)
    assert [tuple(w.shape) for w in p.weights] == [tuple(w.shape) for w in k.weights]
    p.set_weights(k.get_weights())
    pout = p(x)
    kouts = kout if isinstance(kout, (list, tuple)) else [kout]
    pouts = pout if isinstance(pout, (list, tuple)) else [pout]
    assert len(pouts) == len(kouts)
    for a, b in zip(pouts, kouts):
        np.testing.assert_allclose(a.numpy(), keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)
    sym = layers.RNN(make(layers), **options)(pynn.Input((4, 2)))
    syms = sym if isinstance(sym, list) else [sym]
    assert [s.shape for s in syms] == [(None,) + tuple(o.shape[1:]) for o in pouts]


def test_rnn_lstm_cell_equals_the_fused_lstm_layer_and_respects_the_mask():
    x = np.random.default_rng(7).standard_normal((3, 6, 4)).astype(np.float32)
    x[0, 4:] = 0.0
    generic, fused = layers.RNN(layers.LSTMCell(5), return_sequences=True), layers.LSTM(5, return_sequences=True)
    generic(x)
    fused(x)
    fused.set_weights(generic.get_weights())
    np.testing.assert_allclose(generic(x).numpy(), fused(x).numpy(), rtol=1e-5, atol=1e-6)
    inputs = pynn.Input((None, 4))
    masked = pynn.Model(inputs, layers.RNN(layers.GRUCell(3))(layers.Masking()(inputs)))
    full = masked.predict(x, verbose=0)
    np.testing.assert_allclose(full[0], masked.predict(x[:1, :4], verbose=0)[0], rtol=1e-5, atol=1e-6)


class MinimalRNNCell(layers.Layer):
    """keras.io's custom cell (Working with RNNs)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="uniform",
                                                name="recurrent_kernel")

    def call(self, inputs, states):
        output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_custom_cell_trains_saves_and_loads(tmp_path):
    pynn.saving.register_keras_serializable()(MinimalRNNCell)
    pynn.set_seed(0)
    r = np.random.default_rng(8)
    x = r.standard_normal((32, 5, 2)).astype(np.float32) * 0.5
    y = x[:, :, :1].sum(1)
    inputs = pynn.Input((5, 2))
    model = pynn.Model(inputs, layers.Dense(1)(layers.RNN(MinimalRNNCell(4))(inputs)))
    model.compile(optimizer=pynn.optimizers.Adam(0.02), loss="mse")
    h = model.fit(x, y, epochs=30, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    model.save(tmp_path / "rnn.pynn")
    np.testing.assert_allclose(pynn.load_model(tmp_path / "rnn.pynn").predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)


def test_kerass_initializer_aliases_and_class_names_resolve():
    init = pynn.initializers
    assert isinstance(init.get("uniform"), init.RandomUniform) and isinstance(init.get("normal"), init.RandomNormal)
    assert isinstance(init.get("GlorotUniform"), init.GlorotUniform)
    w = init.get("truncated_normal")((1000,))
    assert np.abs(w).max() <= 2 * 0.05 + 1e-7 and 0.03 < w.std() < 0.05
    assert init.serialize(init.get("uniform"))["class_name"] == "random_uniform"
    lecun = init.get("lecun_uniform")((100, 50))
    assert np.abs(lecun).max() <= np.sqrt(3.0 / 100) + 1e-6


def test_plot_model_writes_graphviz_source_and_needs_dot_for_images(tmp_path):
    a, b = pynn.Input((3,), name="a"), pynn.Input((2,), name="b")
    out = layers.Dense(1, name="head")(layers.Concatenate(name="cat")([a, layers.Dense(4, name="proj")(b)]))
    model = pynn.Model([a, b], out)
    path = pynn.utils.plot_model(model, to_file=str(tmp_path / "m.dot"), show_shapes=True)
    text = open(path).read()
    assert text.startswith("digraph") and "cat (Concatenate)" in text and "output: (None, 7)" in text
    assert text.count("->") == 4   # a->cat, b->proj, proj->cat, cat->head
    seq = pynn.Sequential([pynn.Input((4,)), layers.Dense(2, name="d")])
    assert "d (Dense)" in pynn.utils.model_to_dot(seq)
    import shutil
    if shutil.which("dot") is None:
        with pytest.raises(ImportError, match="Graphviz"):
            pynn.utils.plot_model(model, to_file=str(tmp_path / "m.png"))
    else:
        pynn.utils.plot_model(model, to_file=str(tmp_path / "m.png"))
        assert os.path.getsize(tmp_path / "m.png") > 0


def test_recurrent_layer_signatures_name_kerass_arguments():
    import inspect
    for cls in (layers.SimpleRNN, layers.LSTM, layers.GRU):
        params = inspect.signature(cls).parameters
        for name in ("units", "activation", "return_sequences", "return_state", "dropout", "recurrent_dropout",
                     "go_backwards", "stateful", "kernel_initializer", "recurrent_initializer"):
            assert name in params, (cls.__name__, name)
    lstm = layers.LSTM(3, return_sequences=True, dropout=0.1, recurrent_activation="sigmoid")
    assert lstm.return_sequences and lstm.dropout == 0.1


def _read_events(path):
    """Decode an event file with protobuf's own parser (an independent check of the encoding)."""
    pb = pytest.importorskip("google.protobuf")
    del pb
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="event_test.proto", package="evtest")
    summary = fdp.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, type_name=".evtest.Summary.Value",
                      label=F.LABEL_REPEATED)
    ev = fdp.message_type.add(name="Event")
    ev.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    ev.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    ev.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    ev.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, type_name=".evtest.Summary", label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    Event = message_factory.GetMessageClass(pool.FindMessageTypeByName("evtest.Event"))
    import struct
    from pynn.tensorboard import _masked_crc
    data, events, pos = open(path, "rb").read(), [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        assert struct.unpack_from("<I", data, pos + 8)[0] == _masked_crc(data[pos:pos + 8])
        payload = data[pos + 12:pos + 12 + n]
        assert struct.unpack_from("<I", data, pos + 12 + n)[0] == _masked_crc(payload)
        events.append(Event.FromString(payload))
        pos += 16 + n
    return events


def test_tensorboard_callback_writes_kerass_scalar_layout(tmp_path):
    from pynn.tensorboard import crc32c
    assert crc32c(b"123456789") == 0xE3069283   # the CRC-32C check value
    m = _small_classifier()
    x, y = np.ones((8, 3), np.float32), np.zeros(8, np.int64)
    h = m.fit(x, y, epochs=3, verbose=0, validation_data=(x, y),
              callbacks=[pynn.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"))])
    for which, prefix in (("train", ""), ("validation", "val_")):
        files = os.listdir(tmp_path / "logs" / which)
        assert len(files) == 1 and files[0].startswith("events.out.tfevents.")
        events = _read_events(tmp_path / "logs" / which / files[0])
        assert events[0].file_version == "brain.Event:2"
        assert [e.step for e in events[1:]] == [0, 1, 2]
        got = {v.tag: [] for v in events[1].summary.value}
        for e in events[1:]:
            for v in e.summary.value:
                got[v.tag].append(v.simple_value)
        assert set(got) == {"epoch_loss", "epoch_accuracy"}
        np.testing.assert_allclose(got["epoch_loss"], h.history[prefix + "loss"], rtol=1e-6)
    with pytest.raises(ValueError, match="histogram_freq"):
        pynn.callbacks.TensorBoard(histogram_freq=1)


def _small_classifier():
    inputs = pynn.Input((3,))
    m = pynn.Model(inputs, layers.Dense(2, activation="softmax")(inputs))
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_clone_model_copies_the_architecture_with_fresh_weights():
    inputs = pynn.Input((4,), name="x")
    model = pynn.Model(inputs, layers.Dense(2, name="out")(layers.Dense(3)(inputs)))
    clone = pynn.models.clone_model(model)
    assert [type(la).__name__ for la in clone.layers] == ["Dense", "Dense"] and clone.input_names == ["x"]
    assert not np.allclose(clone.get_weights()[0], model.get_weights()[0])
    clone.set_weights(model.get_weights())
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
