"""Helpers shared by the native convolution tests (test_conv_igemm.py and
test_conv_small_channel.py): random cases, the im2col + GEMM path as a second reference, and a
kernel run at a given thread count. The numpy backend (pynn.backend.numpy) is the reference conv."""
import os

import numpy as np

import pynn


def conv_case(rng, x_shape, k, cout):
    """x (x_shape), w (k + (C_in, cout)) scaled to unit output variance, b (cout,): float32."""
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(k + (x_shape[3], cout)) / np.sqrt(k[0] * k[1] * x_shape[3])).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return x, w, b


def with_path_switched_off(var, fn):
    """fn() with the native conv path that the environment variable var controls switched off (var=0)."""
    os.environ[var] = "0"
    try:
        return fn()
    finally:
        del os.environ[var]


def im2col_path(fn):
    """fn() with the native conv forced onto its portable im2col + sgemm path (PYNN_CONV_IGEMM=0)."""
    return with_path_switched_off("PYNN_CONV_IGEMM", fn)


def at_threads(fn, n):
    """fn() with pynn's kernels on n threads (restored afterwards)."""
    before = pynn.get_num_threads()
    pynn.set_num_threads(n)
    try:
        return fn()
    finally:
        pynn.set_num_threads(before)
