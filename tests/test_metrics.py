"""Metrics against hand-computed values; Keras' choice of accuracy by loss."""
import numpy as np
import pytest

from pynn import metrics


def test_accuracy_is_chosen_from_the_loss_like_keras():
    assert isinstance(metrics.get("accuracy", "sparse_categorical_crossentropy"), metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", "binary_crossentropy"), metrics.BinaryAccuracy)
    assert isinstance(metrics.get("accuracy", "categorical_crossentropy"), metrics.CategoricalAccuracy)


def test_accuracies_hand_values_and_state_across_batches():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    m.update_state([1], [[0.3, 0.7]])
    assert m.result() == pytest.approx(2 / 3)
    m.reset_state()
    assert m.result() == 0.0
    b = metrics.BinaryAccuracy()
    b.update_state([[1], [0], [1]], [[0.6], [0.4], [0.2]])
    assert b.result() == pytest.approx(2 / 3)


def test_precision_recall_hand_values():
    y, p = np.array([1, 1, 0, 0, 1]), np.array([0.9, 0.2, 0.7, 0.1, 0.8])
    pr, rc = metrics.Precision(), metrics.Recall()
    pr.update_state(y, p)
    rc.update_state(y, p)
    assert pr.result() == pytest.approx(2 / 3) and rc.result() == pytest.approx(2 / 3)


def test_auc_matches_the_exact_roc_area():
    r = np.random.default_rng(0)
    y = r.integers(0, 2, 400)
    p = np.clip(0.3 * y + r.uniform(0, 0.7, 400), 0, 1)
    pos, neg = p[y == 1], p[y == 0]
    exact = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    auc = metrics.AUC(num_thresholds=1000)
    auc.update_state(y[:200], p[:200])
    auc.update_state(y[200:], p[200:])
    assert auc.result() == pytest.approx(exact, abs=2e-3)


def test_top_k_accuracy():
    m = metrics.SparseTopKCategoricalAccuracy(k=2)
    m.update_state([2, 0], [[0.1, 0.5, 0.4], [0.2, 0.5, 0.3]])
    assert m.result() == pytest.approx(0.5)


def test_mse_mae_metrics():
    m = metrics.get("mae")
    m.update_state([[1.0], [2.0]], [[2.0], [2.0]])
    assert m.result() == pytest.approx(0.5)
