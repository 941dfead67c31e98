"""Conv1D and 1-D pooling for text CNNs: Keras layouts, vs torch, shapes, learning."""
import numpy as np
import pytest

import pynn
from pynn import layers
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
