"""Layers: Keras weight layouts, initialisation, shapes, config and bad input."""
import numpy as np
import pytest

import pynn
from pynn import layers
from pynn.autograd import Tensor


def test_dense_weights_are_keras_layout_and_compute_x_w_plus_b(backend_name):
    pynn.set_seed(0)
    d = layers.Dense(3, activation="relu")
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    y = d(x)
    kernel, bias = d.get_weights()
    assert kernel.shape == (5, 3) and bias.shape == (3,)
    assert np.all(bias == 0)
    np.testing.assert_allclose(y.data, np.maximum(x @ kernel + bias, 0), rtol=1e-5, atol=1e-6)


def test_dense_glorot_uniform_respects_the_keras_limit():
    pynn.set_seed(1)
    d = layers.Dense(300)
    d.build((None, 200))
    limit = np.sqrt(6 / (200 + 300))
    k = d.kernel.data
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.95 * limit
    assert abs(k.std() - limit / np.sqrt(3)) < 0.01


def test_set_seed_makes_initialisation_reproducible():
    pynn.set_seed(7)
    a = layers.Dense(4)
    a.build((None, 3))
    pynn.set_seed(7)
    b = layers.Dense(4)
    b.build((None, 3))
    np.testing.assert_array_equal(a.kernel.data, b.kernel.data)


def test_dense_applies_unfused_activations_after_the_gemm(backend_name):
    pynn.set_seed(0)
    d = layers.Dense(4, activation="softmax")
    y = d(np.ones((2, 3), np.float32))
    np.testing.assert_allclose(y.data.sum(-1), [1.0, 1.0], rtol=1e-6)
    g = layers.Dense(4, activation="gelu")
    assert g(np.ones((2, 3), np.float32)).shape == (2, 4)


def test_dense_on_3d_input_applies_to_the_last_axis(backend_name):
    d = layers.Dense(2)
    x = np.ones((2, 3, 4), np.float32)
    d.build((None, 3, 4))
    k, b = d.get_weights()
    np.testing.assert_allclose(d(x).data, x @ k + b, rtol=1e-5)


def test_dense_wrong_input_shape_names_the_layer_and_shapes():
    d = layers.Dense(3, name="hidden")
    d(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"Dense 'hidden': expected input with last dimension 4, got shape \(2, 5\)"):
        d(np.ones((2, 5), np.float32))


def test_set_weights_checks_every_shape_before_setting_any():
    d = layers.Dense(2, name="d")
    d.build((None, 3))
    before = d.get_weights()
    with pytest.raises(ValueError, match=r"Layer 'd': weight 'd/bias' has shape \(2,\), got an array of shape \(3,\)"):
        d.set_weights([np.ones((3, 2)), np.ones(3)])
    for a, b in zip(before, d.get_weights()):
        np.testing.assert_array_equal(a, b)  # never half-set
    with pytest.raises(ValueError, match="expected 2 arrays"):
        d.set_weights([np.ones((3, 2))])


def test_dense_rejects_bad_units():
    with pytest.raises(ValueError, match="units must be a positive integer"):
        layers.Dense(0)


def test_flatten_and_activation_layers():
    x = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert layers.Flatten()(x).shape == (2, 12)
    assert layers.Flatten().compute_output_shape((None, 3, 4)) == (None, 12)
    np.testing.assert_allclose(layers.Activation("tanh")(x).data, np.tanh(x.data), rtol=1e-6)


def test_dropout_scales_in_training_and_is_identity_at_inference():
    pynn.set_seed(0)
    x = np.ones((200, 100), np.float32)
    d = layers.Dropout(0.25)
    np.testing.assert_array_equal(d(x, training=False).data, x)
    y = d(x, training=True).data
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01
    assert abs(y.mean() - 1.0) < 0.02


def test_frozen_layer_has_no_trainable_weights():
    d = layers.Dense(2)
    d.build((None, 3))
    d.trainable = False
    assert d.trainable_weights == [] and len(d.non_trainable_weights) == 2
    assert not d.kernel.requires_grad


def test_sequential_summary_counts_parameters(capsys):
    m = pynn.Sequential([layers.Input((64,)), layers.Dense(32, activation="relu"), layers.Dense(10)])
    m.summary()
    out = capsys.readouterr().out
    assert "Total params: 2,410" in out  # 64·32+32 + 32·10+10
    assert m.count_params() == 2410 and len(m.layers) == 2  # the Input is not a layer, as in Keras
    assert "(None, 32)" in out and "(None, 10)" in out


def test_activations_and_losses_resolve_by_name():
    assert pynn.activations.get("relu") is pynn.functional.relu
    with pytest.raises(ValueError, match="Unknown activation 'relux'"):
        pynn.activations.get("relux")
    assert pynn.losses.get("sparse_categorical_crossentropy").name == "sparse_categorical_crossentropy"


def test_dropout_seed_gives_the_layer_its_own_reproducible_masks():
    x = np.ones((4, 50), np.float32)
    a, b = layers.Dropout(0.5, seed=3), layers.Dropout(0.5, seed=3)
    pynn.set_seed(0)
    ya = a(x, training=True).data
    pynn.set_seed(99)                                    # the global seed does not matter
    yb = b(x, training=True).data
    np.testing.assert_array_equal(ya, yb)
    assert set(np.unique(ya)) <= {0.0, 2.0} and layers.Dropout.from_config(a.get_config()).seed == 3
