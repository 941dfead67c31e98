"""train_on_batch runs a plain stack of Dense layers through fit's graph-free step
(models/fit_loop.py: train_batch / _DenseStack): the loss and the weights after each call
must be the generic step's (Model._train_step) bit for bit, and anything the stack cannot
run must still go the generic way."""
import numpy as np
import pytest

import pynn
from pynn import layers
from pynn.models import fit_loop

BACKENDS = ["numpy"] + (["native"] if pynn.backend.NATIVE_AVAILABLE else [])


def _data(n=48, f=12, c=4):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, f)).astype(np.float32)
    return x, rng.integers(0, c, n), rng.standard_normal((n, c)).astype(np.float32), \
        rng.uniform(0.5, 1.5, n).astype(np.float32)


def _mlp(loss, dropout=False, regularizer=None, opt=lambda: pynn.optimizers.Adam(1e-2), last=None):
    pynn.set_seed(0)
    stack = [layers.Input((12,)), layers.Dense(16, activation="relu", kernel_regularizer=regularizer)]
    if dropout:
        stack.append(layers.Dropout(0.3))
    stack += [layers.Dense(8, activation="tanh"), layers.Dense(4, activation=last)]
    m = pynn.Sequential(stack)
    m.compile(opt(), loss)
    return m


def _generic(m, x, y, sw=None):
    xs, ys, sw = m._prepare_xy(x, y, sw, "train_on_batch")
    return m._train_step(xs, ys, sw)[0]


def _same_as_generic(make, y_of, sw=None, steps=3, expect_stack=True):
    x, *_ = _data()
    y = y_of()
    a, b = make(), make()
    calls = []
    real = fit_loop._DenseStack.run

    def spy(self, *args):
        calls.append(1)
        return real(self, *args)
    fit_loop._DenseStack.run = spy
    try:   # each model's steps from the same global seed (Dropout may draw from it)
        pynn.set_seed(5)
        la = [a.train_on_batch(x, y, sample_weight=sw) for _ in range(steps)]
    finally:
        fit_loop._DenseStack.run = real
    pynn.set_seed(5)
    lb = [_generic(b, x, y, sw) for _ in range(steps)]
    assert la == lb
    assert all(isinstance(v, float) for v in la)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert a.optimizer.iterations == b.optimizer.iterations == steps
    assert bool(calls) == expect_stack


@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_xent_matches_generic_step_bit_for_bit(backend):
    with pynn.use_backend(backend):
        _same_as_generic(lambda: _mlp(pynn.losses.SparseCategoricalCrossentropy(from_logits=True)),
                         lambda: _data()[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_head_categorical_with_sample_weight_matches_generic_step(backend):
    with pynn.use_backend(backend):
        y = np.eye(4, dtype=np.float32)[_data()[1]]
        _same_as_generic(lambda: _mlp("categorical_crossentropy", last="softmax"), lambda: y, sw=_data()[3])


@pytest.mark.parametrize("backend", BACKENDS)
def test_mse_and_sgd_momentum_match_generic_step(backend):
    with pynn.use_backend(backend):
        _same_as_generic(lambda: _mlp("mse", opt=lambda: pynn.optimizers.SGD(0.05, momentum=0.9)),
                         lambda: _data()[2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_draws_the_generic_masks(backend):
    with pynn.use_backend(backend):
        _same_as_generic(lambda: _mlp(pynn.losses.SparseCategoricalCrossentropy(from_logits=True), dropout=True),
                         lambda: _data()[1])


def test_regularized_model_keeps_the_generic_step():
    _same_as_generic(lambda: _mlp("mse", regularizer=pynn.regularizers.L2(1e-3)), lambda: _data()[2],
                     expect_stack=False)


def test_freezing_a_layer_between_calls_is_seen_at_once():
    x, y, _, _ = _data()
    a = _mlp(pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    b = _mlp(pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    for m in (a, b):
        m.train_on_batch(x, y) if m is a else _generic(m, x, y)
        m.layers[0].trainable = False
    frozen = a.layers[0].get_weights()
    for _ in range(2):
        assert a.train_on_batch(x, y) == _generic(b, x, y)
    for u, v in zip(frozen, a.layers[0].get_weights()):
        np.testing.assert_array_equal(u, v)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_bad_labels_still_raise_through_the_generic_loss():
    x, y, _, _ = _data()
    m = _mlp(pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(Exception):
        m.train_on_batch(x, np.full_like(y, 9))
