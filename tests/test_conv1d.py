"""Conv1D and 1-D pooling for text CNNs: Keras layouts, vs torch, shapes, learning."""
import numpy as np
import pytest

import pynn
from pynn import constraints, layers
from pynn.autograd import Tensor

R = np.random.default_rng(0)
X = R.standard_normal((2, 9, 4)).astype(np.float32)


@pytest.mark.parametrize("padding,strides,dilation", [("valid", 1, 1), ("same", 2, 1), ("valid", 1, 2)])
def test_conv1d_matches_torch_conv1d(backend_name, padding, strides, dilation):
    torch = pytest.importorskip("torch")
    pynn.set_seed(0)
    conv = layers.Conv1D(5, 3, strides=strides, padding=padding, dilation_rate=dilation, bias_initializer="ones")
    x = Tensor(X.copy(), requires_grad=True)
    y = conv(x)
    k, b = conv.get_weights()
    assert k.shape == (3, 4, 5)
    xt = torch.from_numpy(X.copy()).permute(0, 2, 1).requires_grad_(True)          # NCL for torch
    pad = 0
    if padding == "same":  # TF "same": total = max((out-1)*s + k - n, 0), extra at the end
        out = -(-9 // strides)
        total = max((out - 1) * strides + 3 - 9, 0)
        xt_pad = torch.nn.functional.pad(xt, (total // 2, total - total // 2))
    else:
        xt_pad = xt
    yt = torch.nn.functional.conv1d(xt_pad, torch.from_numpy(k.transpose(2, 1, 0).copy()), torch.from_numpy(b),
                                    stride=strides, padding=pad, dilation=dilation).permute(0, 2, 1)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = R.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(x.grad, xt.grad.permute(0, 2, 1).numpy(), rtol=1e-4, atol=1e-5)
    assert conv.compute_output_shape((None, 9, 4)) == (None,) + y.shape[1:]


def test_max_and_average_pooling_1d_hand_values(backend_name):
    x = np.arange(12, dtype=np.float32).reshape(1, 6, 2)
    np.testing.assert_array_equal(layers.MaxPooling1D(2)(x).data, [[[2, 3], [6, 7], [10, 11]]])
    np.testing.assert_array_equal(layers.AveragePooling1D(3)(x).data, [[[2, 3], [8, 9]]])
    assert layers.MaxPooling1D(4, padding="same").compute_output_shape((None, 6, 2)) == (None, 2, 2)


def test_conv1d_rejects_wrong_rank_naming_the_layer():
    with pytest.raises(ValueError, match=r"Conv1D 'c1': expected an input of shape \(batch, steps, channels\)"):
        layers.Conv1D(3, 2, name="c1")(np.zeros((2, 4), np.float32))


def test_text_cnn_learns_a_local_pattern(backend_name):
    """Is the bigram (1, 2) anywhere in the sequence? A Conv1D + global max pool task."""
    pynn.set_seed(0)
    r = np.random.default_rng(4)
    x = r.integers(3, 8, (400, 12))
    y = r.integers(0, 2, 400)
    for row, label in zip(x, y):
        if label:
            i = r.integers(0, 11)
            row[i], row[i + 1] = 1, 2
        else:  # the same tokens, but never adjacent in that order
            row[r.integers(0, 5)], row[r.integers(7, 12)] = 2, 1
    model = pynn.Sequential([layers.Input((12,), dtype="int64"), layers.Embedding(8, 8),
                             layers.Conv1D(16, 2, activation="relu"), layers.MaxPooling1D(2, padding="same"),
                             layers.GlobalMaxPooling1D(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=pynn.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[:320], y[:320], epochs=15, batch_size=32, verbose=0)
    assert model.evaluate(x[320:], y[320:])[1] >= 0.95


def test_conv1d_shares_conv2d_settings_constraints_and_case_insensitive_padding(backend_name):
    """BaseConv(rank): Conv1D takes constraints and "SAME" as Conv2D does, and its config is unchanged."""
    conv = layers.Conv1D(4, 3, padding="SAME", kernel_constraint=constraints.NonNeg(), name="c")
    model = pynn.Sequential([layers.Input((9, 2)), conv])
    model.compile(optimizer=pynn.optimizers.SGD(learning_rate=1.0), loss="mse")
    model.fit(X[:, :, :2], -np.ones((2, 9, 4), np.float32), epochs=2, verbose=0)
    assert conv.padding == "same" and conv.kernel.constraint is not None
    assert (conv.get_weights()[0] >= 0).all()            # the constraint ran after each step
    config = conv.get_config()
    assert (config["kernel_size"], config["strides"], config["dilation_rate"]) == (3, 1, 1)  # ints, as saved before
    assert layers.Conv1D.from_config(config).kernel_size == (3,)
    with pytest.raises(ValueError, match="Conv1D: strides > 1 together with dilation_rate > 1"):
        layers.Conv1D(2, 3, strides=2, dilation_rate=2)


@pytest.mark.parametrize("cls,shape,config_pool", [(layers.MaxPooling1D, (None, 6, 2), 2),
                                                   (layers.AveragePooling2D, (None, 6, 6, 2), [2, 2])])
def test_pooling_by_rank_keeps_its_config_and_lowercases_padding(cls, shape, config_pool):
    pool = cls(2, padding="Same")
    assert pool.padding == "same" and pool.get_config()["pool_size"] == config_pool
    assert cls.from_config(pool.get_config()).compute_output_shape(shape) == pool.compute_output_shape(shape)


def test_global_pooling_1d_keepdims(backend_name):
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    y = layers.GlobalAveragePooling1D(keepdims=True)(x)
    assert y.shape == (2, 1, 2)
    np.testing.assert_allclose(y.data[:, 0], x.mean(1))
