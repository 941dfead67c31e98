"""Functional, subclassed and nested models; normalization and merge layers."""
import numpy as np
import pytest

import pynn
from pynn import layers, optimizers
from pynn.autograd import Tensor
from pynn.testing import gradcheck


def test_functional_model_with_a_shared_layer_shares_weights_and_gradients(backend_name):
    pynn.set_seed(0)
    inp = pynn.Input((4,))
    shared = layers.Dense(3, activation="tanh", name="shared")
    a, b = shared(inp), shared(layers.Rescaling(2.0)(inp))
    out = layers.Dense(1, name="head")(layers.Concatenate()([layers.Add()([a, b]), a]))
    model = pynn.Model(inp, out)
    assert [layer.name for layer in model.layers].count("shared") == 1
    assert model.count_params() == (4 * 3 + 3) + (6 + 1)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    k, bias = shared.get_weights()
    ha, hb = np.tanh(x @ k + bias), np.tanh(2 * x @ k + bias)
    hk, hbias = model.get_layer("head").get_weights()
    expected = np.concatenate([ha + hb, ha], axis=1) @ hk + hbias
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)


def test_functional_model_with_two_inputs_and_two_outputs_trains():
    pynn.set_seed(0)
    x1, x2 = pynn.Input((3,)), pynn.Input((2,))
    h = layers.Dense(8, activation="relu")(layers.Concatenate()([x1, x2]))
    out_a, out_b = layers.Dense(1)(h), layers.Dense(2, activation="softmax")(h)
    model = pynn.Model([x1, x2], [out_a, out_b])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05), loss=["mse", "sparse_categorical_crossentropy"],
                  metrics=["accuracy"])
    r = np.random.default_rng(0)
    a, b = r.standard_normal((64, 3)).astype(np.float32), r.standard_normal((64, 2)).astype(np.float32)
    ya, yb = a.sum(1, keepdims=True), (b[:, 0] > 0).astype(np.int64)
    h = model.fit([a, b], [ya, yb], epochs=30, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0] * 0.5
    # Keras 3's keys: "<output layer name>_loss" / "<output layer name>_<metric>".
    assert f"{out_b.layer.name}_accuracy" in h.history and f"{out_a.layer.name}_loss" in h.history
    pa, pb = model.predict([a, b])
    assert pa.shape == (64, 1) and pb.shape == (64, 2)


def test_subclassed_model_with_a_skip_connection_trains(backend_name):
    class Net(pynn.Model):
        def __init__(self):
            super().__init__()
            self.d1 = layers.Dense(8, activation="relu")
            self.d2 = layers.Dense(8)
            self.out = layers.Dense(1)

        def call(self, x, training=False):
            h = self.d1(x)
            return self.out((h + self.d2(h)).relu())

    pynn.set_seed(0)
    model = Net()
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05), loss="mse")
    x = np.random.default_rng(1).standard_normal((64, 3)).astype(np.float32)
    y = (x ** 2).sum(1, keepdims=True)
    h = model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert len(model.trainable_weights) == 6
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]


def test_nested_sequential_inside_a_functional_model():
    pynn.set_seed(0)
    block = pynn.Sequential([layers.Input((4,)), layers.Dense(4, activation="relu"), layers.Dense(4)])
    inp = pynn.Input((4,))
    out = layers.Add()([inp, block(inp)])
    model = pynn.Model(inp, out)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(model.predict(x), x + block.predict(x), rtol=1e-6)
    assert model.count_params() == block.count_params() == 40


def test_batch_normalization_training_and_inference_follow_the_formula(backend_name):
    bn = layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    x = np.random.default_rng(0).normal(3.0, 2.0, (64, 5)).astype(np.float32)
    y = bn(x, training=True).data
    mean, var = x.mean(0), x.var(0)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    gamma, beta, moving_mean, moving_var = bn.get_weights()
    np.testing.assert_allclose(moving_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(moving_var, 0.9 + 0.1 * var, rtol=1e-5)
    y_inf = bn(x, training=False).data
    np.testing.assert_allclose(y_inf, (x - moving_mean) / np.sqrt(moving_var + 1e-3), rtol=1e-4, atol=1e-5)
    bn.trainable = False  # frozen BN runs in inference mode even when training, as Keras
    np.testing.assert_allclose(bn(x, training=True).data, y_inf, rtol=1e-6)
    assert len(bn.weights) == 4 and len(layers.BatchNormalization().trainable_weights) == 0  # unbuilt


def test_batch_normalization_gradient_matches_finite_differences(numpy_backend):
    bn = layers.BatchNormalization(axis=-1)
    bn.build((None, 3, 4))
    bn.gamma.data[...] = [0.5, 1.5, -1.0, 2.0]
    bn.gamma.data = bn.gamma.data.astype(np.float64)
    bn.beta.data = np.array([0.1, 0.2, 0.3, 0.4])
    x = np.random.default_rng(0).standard_normal((5, 3, 4))
    gradcheck(lambda t: bn(t, training=True), [x])


def test_layer_normalization_normalises_each_sample_and_has_correct_gradients(numpy_backend):
    ln = layers.LayerNormalization(epsilon=1e-3)
    x = np.random.default_rng(0).standard_normal((3, 6))
    y = ln(Tensor(x)).data
    np.testing.assert_allclose(y, (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3),
                               rtol=1e-5)
    ln.gamma.data = np.linspace(0.5, 2, 6)
    ln.beta.data = np.linspace(-1, 1, 6)
    gradcheck(lambda t: ln(t), [x])


def test_reshape_layer_and_errors():
    r = layers.Reshape((2, -1))
    assert r(np.zeros((3, 8), np.float32)).shape == (3, 2, 4)
    assert r.compute_output_shape((None, 8)) == (None, 2, 4)
    with pytest.raises(ValueError, match=r"cannot reshape input of shape \(7,\)"):
        layers.Reshape((2, 3))(np.zeros((1, 7), np.float32))


def test_merge_layers_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="Add 'bad_add'"):
        layers.Add(name="bad_add")([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])


def test_model_input_of_wrong_shape_names_the_model():
    inp = pynn.Input((4,))
    model = pynn.Model(inp, layers.Dense(2)(inp), name="tiny")
    with pytest.raises(ValueError, match=r"model 'tiny' expects input of shape \(None, 4\), got .*\(3, 5\)"):
        model.predict(np.zeros((3, 5), np.float32))


def test_frozen_layers_are_unchanged_by_fit():
    pynn.set_seed(0)
    base = layers.Dense(4, activation="relu")
    model = pynn.Sequential([layers.Input((3,)), base, layers.Dense(1)])
    base.trainable = False
    frozen = base.get_weights()
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    model.fit(np.ones((8, 3), np.float32), np.ones((8, 1), np.float32), epochs=3, verbose=0)
    for a, b in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2


def test_fit_accepts_a_generator_of_batches():
    pynn.set_seed(0)
    model = pynn.Sequential([layers.Input((2,)), layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 2)).astype(np.float32)
    y = x.sum(1, keepdims=True)

    def batches():
        while True:
            for i in range(0, 32, 8):
                yield x[i:i + 8], y[i:i + 8]
    h = model.fit(batches(), steps_per_epoch=4, epochs=20, verbose=0)
    assert h.history["loss"][-1] < 0.05

    class Batches:  # a re-iterable object with a length: no steps_per_epoch needed
        def __len__(self):
            return 2

        def __iter__(self):
            return iter([(x[:16], y[:16]), (x[16:], y[16:])])
    h2 = model.fit(Batches(), epochs=2, verbose=0)
    assert len(h2.history["loss"]) == 2


def test_class_weight_scales_the_loss_per_class():
    model = pynn.Sequential([layers.Input((1,)), layers.Dense(2, kernel_initializer="zeros")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.0),
                  loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.zeros((2, 1), np.float32), np.array([0, 1])
    plain = model.train_on_batch(x, y)
    weighted = model.train_on_batch(x, y, class_weight={0: 1.0, 1: 3.0})
    assert plain == pytest.approx(np.log(2))
    assert weighted == pytest.approx(np.log(2) * (1 + 3) / 2)
