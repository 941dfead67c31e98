"""Losses against hand-computed values from their Keras definitions."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn import losses
from pynn.autograd import Tensor
from pynn.testing import gradcheck


def value(loss, y_true, y_pred):
    return float(loss(np.asarray(y_true), Tensor(np.asarray(y_pred, np.float32))).data)


def test_mean_squared_and_absolute_error_hand_values(backend_name):
    y, p = [[1.0, 2.0], [0.0, 0.0]], [[1.0, 4.0], [1.0, -1.0]]
    assert value(losses.MeanSquaredError(), y, p) == pytest.approx((2.0 + 1.0) / 2)
    assert value(losses.MeanAbsoluteError(), y, p) == pytest.approx((1.0 + 1.0) / 2)
    assert value(losses.get("mse"), [[3.0]], [[1.0]]) == pytest.approx(4.0)


def test_mse_expands_rank_like_keras():
    assert value(losses.MeanSquaredError(), [1.0, 2.0], [[1.0], [4.0]]) == pytest.approx(2.0)


def test_binary_crossentropy_probabilities_and_logits(backend_name):
    bce = -(np.log(0.9) + np.log(0.8)) / 2
    assert value(losses.BinaryCrossentropy(), [[1.0, 0.0]], [[0.9, 0.2]]) == pytest.approx(bce, rel=1e-5)
    from_logits = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0))) / 2
    assert value(losses.BinaryCrossentropy(from_logits=True), [[1.0, 0.0]], [[2.0, -1.0]]) == \
        pytest.approx(from_logits, rel=1e-5)


def test_binary_crossentropy_clips_probabilities_the_keras_way():
    eps = np.float32(1e-7)
    got = value(losses.BinaryCrossentropy(), [[0.0, 1.0]], [[1.0, 0.0]])
    one_minus = np.float32(1.0) - eps
    expected = -(np.log(np.float32(1.0) - one_minus) + np.log(eps)) / 2
    assert np.isfinite(got) and got == pytest.approx(expected, rel=1e-4)


def test_categorical_crossentropy_hand_values(backend_name):
    assert value(losses.CategoricalCrossentropy(), [[0, 1, 0]], [[0.05, 0.95, 0.0]]) == \
        pytest.approx(-np.log(0.95), rel=1e-5)
    # Keras renormalises probabilities that do not sum to one.
    assert value(losses.CategoricalCrossentropy(), [[0, 1]], [[1.0, 3.0]]) == pytest.approx(-np.log(0.75), rel=1e-5)
    expected = np.log(np.exp(1) + np.exp(2) + np.exp(3)) - 3
    assert value(losses.CategoricalCrossentropy(from_logits=True), [[0, 0, 1]], [[1.0, 2.0, 3.0]]) == \
        pytest.approx(expected, rel=1e-5)


def test_sparse_categorical_crossentropy_hand_values(backend_name):
    expected = np.log(np.exp(1) + np.exp(2) + np.exp(3)) - np.array([3.0, 1.0])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert value(loss, [2, 0], [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]) == pytest.approx(expected.mean(), rel=1e-5)
    assert value(loss, [[2], [0]], [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]) == pytest.approx(expected.mean(), rel=1e-5)
    p = [[0.2, 0.7, 0.1]]
    assert value(losses.SparseCategoricalCrossentropy(), [1], p) == pytest.approx(-np.log(0.7), rel=1e-5)


def test_softmax_and_log_softmax_are_stable_at_plus_minus_1000(backend_name):
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        s = pynn.ops.softmax(x)
        ls = pynn.ops.log_softmax(x)
    np.testing.assert_allclose(s, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-7)
    np.testing.assert_allclose(ls, [[0, -2000, -1000], [-np.log(3)] * 3], rtol=1e-6)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert value(loss, [1], x[:1]) == pytest.approx(2000.0)


def test_loss_on_softmax_output_uses_logits_like_keras(backend_name):
    logits = Tensor(np.array([[1000.0, -1000.0]], np.float32))
    probs = F.softmax(logits)
    # From clipped probabilities this would be -log(1e-7) ≈ 16.1; Keras' TF backend
    # (and pynn) compute from the logits underneath: 2000.
    assert float(losses.SparseCategoricalCrossentropy()([1], probs).data) == pytest.approx(2000.0)
    sig = F.sigmoid(Tensor(np.array([[-50.0]], np.float32)))
    assert float(losses.BinaryCrossentropy()([[1.0]], sig).data) == pytest.approx(50.0, rel=1e-5)


def test_sample_weight_and_reductions():
    y, p = np.array([[0.0], [0.0]]), Tensor(np.array([[1.0], [2.0]], np.float32))
    assert float(losses.MeanSquaredError()(y, p, sample_weight=[1.0, 0.0]).data) == pytest.approx(0.5)
    assert float(losses.MeanSquaredError(reduction="sum")(y, p).data) == pytest.approx(5.0)
    np.testing.assert_allclose(losses.MeanSquaredError(reduction="none")(y, p).data, [1.0, 4.0])


@pytest.mark.parametrize("name,y_true,y_pred", [
    ("mean_squared_error", np.array([[0.1, 0.9], [0.4, 0.2]]), np.array([[0.3, 0.5], [0.6, 0.1]])),
    ("mean_absolute_error", np.array([[0.1, 0.9], [0.4, 0.2]]), np.array([[0.3, 0.5], [0.6, 0.1]])),
    ("binary_crossentropy", np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.3, 0.5], [0.6, 0.1]])),
    ("categorical_crossentropy", np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.3, 0.5], [0.6, 0.1]])),
    ("sparse_categorical_crossentropy", np.array([1, 0]), np.array([[0.3, 0.5], [0.6, 0.1]])),
])
def test_loss_gradients_match_finite_differences(numpy_backend, name, y_true, y_pred):
    loss = losses.get(name)
    gradcheck(lambda p: loss(y_true, p), [y_pred])
    if name.endswith("crossentropy"):
        loss = type(loss)(from_logits=True)
        gradcheck(lambda p: loss(y_true, p), [y_pred * 4 - 2])


def test_sparse_labels_out_of_range_name_the_loss_and_label(backend_name):
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy: label 3 is out of range.*3 classes"):
        loss(np.array([0, 3]), Tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match="label -1"):
        loss(np.array([-1, 0]), Tensor(np.zeros((2, 3), np.float32)))


def test_loss_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"mean_squared_error: y_true has shape \(2, 3\) but y_pred has shape \(2, 2\)"):
        losses.MeanSquaredError()(np.zeros((2, 3)), Tensor(np.zeros((2, 2), np.float32)))
    with pytest.raises(ValueError, match=r"categorical_crossentropy: y_true has shape \(4,\)"):
        losses.CategoricalCrossentropy()(np.zeros(4), Tensor(np.zeros((4, 3), np.float32)))


def test_unknown_loss_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown loss 'cross_entropy'"):
        losses.get("cross_entropy")
