"""The fused optimizer steps split the combined element range of all tensors into several
parts per thread, claimed dynamically (csrc/optim/optim.cpp): part boundaries fall inside
tensors and across them, and the result must not depend on the thread count or on which
thread ran which part -- bit for bit against 1 thread, and equal to the numpy reference."""
import numpy as np
import pytest

import pynn
from pynn import backend

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")

SIZES = [70001, 13, 200003, 1, 65536 * 3 + 5, 17]   # ~470k floats: threaded, odd boundaries


def _state(seed):
    rng = np.random.default_rng(seed)
    p = [rng.standard_normal(n).astype(np.float32) for n in SIZES]
    g = [rng.standard_normal(n).astype(np.float32) for n in SIZES]
    return p, g


def _run(kind, mod, threads):
    before = pynn.get_num_threads()
    pynn.set_num_threads(threads)
    try:
        p, g = _state(0)
        s = [[np.zeros_like(x) for x in p] for _ in range(3)]
        for step in (1, 2, 3):
            if kind == "adam":
                mod.adam_step(p, g, s[0], s[1], s[2], 1e-3, 0.9, 0.999, 1e-7, step, 0.01, True, True)
            elif kind == "sgd":
                mod.sgd_step(p, g, s[0], 0.01, 0.9, True, 1e-4)
            else:
                mod.rmsprop_step(p, g, s[0], s[1], s[2], 1e-3, 0.9, 0.5, 1e-7, True)
        return p + [x for st in s for x in st]
    finally:
        pynn.set_num_threads(before)


@pytest.mark.parametrize("kind", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("threads", [2, 3, 4, 7, 8])
def test_multi_tensor_step_is_bit_identical_at_any_thread_count(kind, threads):
    one = _run(kind, backend.native_backend, 1)
    many = _run(kind, backend.native_backend, threads)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["adam", "sgd", "rmsprop"])
def test_multi_tensor_step_matches_numpy_reference(kind):
    nat = _run(kind, backend.native_backend, 2)
    ref = _run(kind, backend.numpy_backend, 1)
    for a, b in zip(nat, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
