"""End-to-end training on both backends, and fit()'s checks on bad input."""
import numpy as np
import pytest

import pynn
from pynn import layers, optimizers

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], np.float32)


def test_xor_is_learned_to_100_percent_with_sgd(backend_name):
    pynn.set_seed(3)
    model = pynn.Sequential([layers.Input((2,)), layers.Dense(8, activation="tanh"),
                             layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(XOR_X, XOR_Y, batch_size=4, epochs=600, verbose=0)
    assert history.history["loss"][-1] < 0.1
    pred = model.predict(XOR_X)
    np.testing.assert_array_equal(pred > 0.5, XOR_Y > 0.5)
    assert model.evaluate(XOR_X, XOR_Y)[1] == 1.0


def test_digits_mlp_reaches_95_percent_test_accuracy(backend_name):
    pytest.importorskip("sklearn")
    pynn.set_seed(0)
    (x_train, y_train), (x_test, y_test) = pynn.datasets.load_digits(flatten=True)
    model = pynn.Sequential([layers.Input((64,)), layers.Dense(128, activation="relu"),
                             layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=25, verbose=0)
    loss, acc = model.evaluate(x_test, y_test)
    assert acc >= 0.95, f"test accuracy {acc:.3f}"


def test_same_seed_gives_identical_training_on_the_same_backend(backend_name):
    def run():
        pynn.set_seed(11)
        m = pynn.Sequential([layers.Input((2,)), layers.Dense(4, activation="tanh"), layers.Dense(1)])
        m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
        h = m.fit(XOR_X, XOR_Y, batch_size=2, epochs=5, verbose=0)
        return h.history["loss"], m.get_weights()
    (l1, w1), (l2, w2) = run(), run()
    assert l1 == l2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_fit_prints_a_progress_bar_with_loss_and_metrics(capsys):
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((2,)), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy", metrics=["accuracy"])
    m.fit(XOR_X, XOR_Y, batch_size=2, epochs=2, validation_data=(XOR_X, XOR_Y))
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "2/2 [==============================]" in out
    assert "loss:" in out and "accuracy:" in out and "val_loss:" in out


def test_history_records_validation_split_metrics():
    pynn.set_seed(0)
    x = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.float32)[:, None]
    m = pynn.Sequential([layers.Input((3,)), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy", metrics=["accuracy"])
    h = m.fit(x, y, epochs=3, validation_split=0.2, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(h.history["val_loss"]) == 3


def test_train_on_batch_returns_the_loss_and_updates_weights():
    pynn.set_seed(0)
    m = pynn.Sequential([layers.Input((2,)), layers.Dense(1)])
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    before = m.get_weights()
    loss = m.train_on_batch(XOR_X, XOR_Y)
    expected = float(np.mean((XOR_X @ before[0] + before[1] - XOR_Y) ** 2))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert not np.allclose(before[0], m.get_weights()[0])


def _model():
    m = pynn.Sequential([layers.Input((2,)), layers.Dense(1, name="out")])
    m.compile(optimizer=optimizers.SGD(), loss="mse")
    return m


def test_fit_rejects_mismatched_sample_counts_before_training():
    m = _model()
    w = m.get_weights()
    with pytest.raises(ValueError, match=r"x has 4 .*\(4, 2\).*y has 3"):
        m.fit(XOR_X, XOR_Y[:3], verbose=0)
    np.testing.assert_array_equal(w[0], m.get_weights()[0])


def test_fit_rejects_wrong_input_shape_naming_the_model_and_shapes():
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 2\), got an array of shape \(4, 3\)"):
        _model().fit(np.ones((4, 3), np.float32), XOR_Y, verbose=0)


def test_fit_rejects_nan_inputs_before_training():
    x = XOR_X.copy()
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"fit: x contains NaN or Inf \(first at index \(2, 1\)"):
        _model().fit(x, XOR_Y, verbose=0)


def test_fit_requires_compile_and_a_known_loss():
    m = pynn.Sequential([layers.Input((2,)), layers.Dense(1)])
    with pytest.raises(RuntimeError, match="compile"):
        m.fit(XOR_X, XOR_Y)
    with pytest.raises(ValueError, match="Unknown loss"):
        m.compile(optimizer="sgd", loss="nope")


def test_save_weights_round_trip_is_atomic(tmp_path):
    m = _model()
    path = tmp_path / "w.npz"
    m.save_weights(path)
    saved = m.get_weights()
    m.set_weights([np.zeros_like(w) for w in saved])
    m.load_weights(path)
    for a, b in zip(saved, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary left behind


def test_train_step_leaves_no_gradients_behind_and_matches_tensor_backward():
    # fit/train_on_batch take the gradients straight from the backward pass
    # (autograd.grad(copy=False)); they must equal Tensor.backward's and leave
    # every weight's .grad untouched.
    r = np.random.default_rng(0)
    x, y = r.standard_normal((16, 5)).astype(np.float32), r.integers(0, 3, 16)
    pynn.set_seed(0)
    model = pynn.Sequential([layers.Input((5,)), layers.Dense(4, activation="tanh"), layers.Dense(3)])
    model.compile(optimizer=optimizers.SGD(0.1),
                  loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.data.copy() for w in model.trainable_weights]
    loss = model.loss(y, model(x, training=True))
    loss.backward()
    expected = [w.data - 0.1 * w.grad for w in model.trainable_weights]
    for w in model.trainable_weights:
        w.grad = None
    model.train_on_batch(x, y)
    for w, b, e in zip(model.trainable_weights, before, expected):
        assert w.grad is None
        np.testing.assert_allclose(w.data, e, rtol=1e-5, atol=1e-6)
        assert not np.array_equal(w.data, b)


def test_autograd_grad_without_copy_gives_the_same_values_in_each_inputs_dtype():
    from pynn.autograd import Tensor, grad
    a = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    b = Tensor(np.ones(3, np.float32), requires_grad=True)
    c = Tensor(np.ones(2, np.float32), requires_grad=True)   # unconnected
    out = ((a * b) + a).sum()
    copied = grad(out, [a, b, c], retain_graph=True)
    shared = grad(out, [a, b, c], copy=False)
    for x, y, t in zip(copied, shared, (a, b, c)):
        assert y.dtype == t.data.dtype and y.shape == t.shape
        np.testing.assert_array_equal(x, y)


def test_backward_gives_each_leaf_its_own_gradient_array():
    # Tensor.backward adopts the backward pass's arrays instead of copying them when
    # nothing else can see them; accumulation must still never leak between leaves,
    # into the caller's grad, or across retained graphs.
    from pynn.autograd import Tensor
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    b = Tensor(np.ones(3, np.float32), requires_grad=True)
    (a + b).sum().backward()              # Add hands the same array to both parents
    assert a.grad is not b.grad
    a.grad += 1
    np.testing.assert_array_equal(b.grad, np.ones(3))

    x = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    g = np.full((2, 2), 3.0, np.float32)
    x.backward(g)                          # a leaf as the root: its grad is not the caller's array
    x.backward(g)
    np.testing.assert_array_equal(g, np.full((2, 2), 3.0))
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 6.0))

    w = Tensor(np.arange(4, dtype=np.float32), requires_grad=True)
    y = (w * 2.0).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(w.grad, np.full(4, 4.0))

    v = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    v.reshape(6).sum().backward()          # reshape's backward returns a view: copied
    assert v.grad.base is None and v.grad.flags.writeable
