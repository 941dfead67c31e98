"""pynn._alignment places the big arrays a training step streams side by side (a Dense
kernel, the optimizer's slots for it, the graph-free step's gradient buffer) at different
offsets within a 4 KiB page, so the fused optimizer update does not stall on 4K aliasing;
placement must never change a value, a shape, a dtype or a result."""
import numpy as np
import pytest

import pynn
from pynn import _alignment, layers


@pytest.mark.parametrize("offset", [0, 64, 768, 4032, 5000])
def test_empty_at_starts_at_the_offset_within_a_page(offset):
    a = _alignment.empty_at((300, 70), np.float32, offset)
    assert a.shape == (300, 70) and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    assert a.ctypes.data % 4096 == (offset // 64 * 64) % 4096
    a[...] = 1.0   # the whole extent is ours
    assert a.sum() == 300 * 70


def test_staggered_full_and_empty_keep_shape_dtype_value_and_skip_small_arrays():
    big = _alignment.aligned_copy(np.arange(784 * 256, dtype=np.float32).reshape(784, 256))
    assert big.ctypes.data % 4096 == 0
    np.testing.assert_array_equal(big, np.arange(784 * 256, dtype=np.float32).reshape(784, 256))
    offsets = {big.ctypes.data % 4096}
    for slot in (1, 2, 3, 4):
        s = _alignment.staggered_full(big, slot, 0.5)
        assert s.shape == big.shape and s.dtype == big.dtype and np.all(s == 0.5)
        offsets.add(s.ctypes.data % 4096)
    assert len(offsets) == 5 and min(np.diff(sorted(offsets))) >= _alignment.STAGGER
    small = np.ones((10, 10), np.float64)
    s = _alignment.staggered_full(small, 2, 3.0)
    assert s.shape == (10, 10) and s.dtype == np.float64 and np.all(s == 3.0)
    assert _alignment.aligned_copy(small).ctypes.data % 64 == 0
    z = _alignment.staggered_empty(np.zeros((0, 5), np.float32), 1)
    assert z.shape == (0, 5)


def test_training_places_kernel_slots_and_gradients_apart_and_trains_as_before():
    pynn.set_seed(0)
    model = pynn.Sequential([layers.Input((784,)), layers.Dense(256, activation="relu"), layers.Dense(10)])
    model.compile(pynn.optimizers.Adam(1e-3), pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 784)).astype(np.float32), rng.integers(0, 10, 64)
    model.train_on_batch(x, y)
    k = model.layers[0].kernel.data
    m, v = model.optimizer._slots["m"][0], model.optimizer._slots["v"][0]
    assert k.ctypes.data % 4096 == 0
    assert {m.ctypes.data % 4096, v.ctypes.data % 4096} == {768, 1536}
    # Same values as plainly allocated state: a copy with numpy-allocated arrays takes the same step.
    pynn.set_seed(0)
    ref = pynn.Sequential([layers.Input((784,)), layers.Dense(256, activation="relu"), layers.Dense(10)])
    ref.compile(pynn.optimizers.Adam(1e-3), pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref.train_on_batch(x, y)
    for layer in ref.layers:
        layer.kernel.data = np.array(layer.kernel.data)
    ref.optimizer._slots = {n: [np.array(s) for s in ss] for n, ss in ref.optimizer._slots.items()}
    for _ in range(3):
        assert model.train_on_batch(x, y) == ref.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
