"""Native recurrences: the whole time loop in C++ (pynn._C), one call per sequence.

float64 inputs, and activations whose gradient cannot be read off their output
(``_C.activation_from_output``: the native BPTT sees only the saved activations),
run on the numpy reference kernels, explicitly.
"""
import numpy as np

from pynn import _C

from ..numpy import rnn as _ref

__all__ = list(_ref.__all__)

_NATIVE_ACTS = frozenset(n for n in _C.activation_names() if _C.activation_from_output(n))


def _ok(arrays, *acts):
    return all(a.dtype == np.float32 for a in arrays) and all(a in _NATIVE_ACTS for a in acts)


def _opt(recurrent_mask):
    return () if recurrent_mask is None else (recurrent_mask,)


def _c(x):
    return np.ascontiguousarray(x)


def _mask(mask):
    return None if mask is None else np.ascontiguousarray(mask, dtype=np.uint8)


def _seq(a, recurrent_mask):
    """A saved (N, T, ·) sequence for _C.lstm_backward: a time-major view (lstm_projected's output) goes
    as it is, the BPTT's fast layout; anything else, or with recurrent dropout, in C order."""
    tm = recurrent_mask is None and not a.flags.c_contiguous and a.transpose(1, 0, 2).flags.c_contiguous
    return a if tm else _c(a)


def _rmask(recurrent_mask):
    return None if recurrent_mask is None else np.ascontiguousarray(recurrent_mask)


def simple_rnn(xw, h0, recurrent_kernel, mask=None, activation="tanh", recurrent_mask=None):
    if not _ok((xw, h0, recurrent_kernel) + _opt(recurrent_mask), activation):
        return _ref.simple_rnn(xw, h0, recurrent_kernel, mask, activation, recurrent_mask)
    return _C.simple_rnn_forward(_c(xw), _c(h0), _c(recurrent_kernel), _mask(mask), activation,
                                 _rmask(recurrent_mask))


def simple_rnn_grad(dhs, xw, h0, hs, recurrent_kernel, mask=None, activation="tanh", recurrent_mask=None):
    if not _ok((dhs, h0, hs, recurrent_kernel) + _opt(recurrent_mask), activation):
        return _ref.simple_rnn_grad(dhs, xw, h0, hs, recurrent_kernel, mask, activation, recurrent_mask)
    return _C.simple_rnn_backward(_c(dhs), _c(h0), _c(hs), _c(recurrent_kernel), _mask(mask), activation,
                                  _rmask(recurrent_mask))


def lstm(xw, h0, c0, recurrent_kernel, mask=None, activation="tanh", recurrent_activation="sigmoid",
         recurrent_mask=None, save_gates=True, xw_scratch=False):
    if not _ok((xw, h0, c0, recurrent_kernel) + _opt(recurrent_mask), activation, recurrent_activation):
        return _ref.lstm(xw, h0, c0, recurrent_kernel, mask, activation, recurrent_activation, recurrent_mask,
                         save_gates, xw_scratch)
    return _C.lstm_forward(_c(xw), _c(h0), _c(c0), _c(recurrent_kernel), _mask(mask), activation,
                           recurrent_activation, _rmask(recurrent_mask), bool(save_gates), bool(xw_scratch))


# Below this batch the per-step 1-3 row products x_t W cost more than one projection GEMM over
# all N·T rows before the loop (measured, LSTM(128) x 50: batch 1 190 vs 209 us; equal from 4).
PROJECT_IN_LOOP_MIN_BATCH = 4


def lstm_projected(x, kernel, bias, h0, c0, recurrent_kernel, mask=None, activation="tanh",
                   recurrent_activation="sigmoid", save_gates=True):
    """The LSTM forward with the input projection inside the native time loop (_C.lstm_forward_x):
    each step's chunk of gate columns starts as x_t W + b and the recurrent GEMM adds onto it, so no
    (N, T, 4U) xw goes through memory. hs, cs and gates come back time-major ((N, T, ·) views of
    (T, N, ·) buffers), the layout lstm_grad then runs in without a copy."""
    if not _ok((x, kernel, h0, c0, recurrent_kernel) + (() if bias is None else (bias,)), activation,
               recurrent_activation) or x.ndim != 3:
        return _ref.lstm_projected(x, kernel, bias, h0, c0, recurrent_kernel, mask, activation,
                                   recurrent_activation, save_gates)
    if x.shape[0] < PROJECT_IN_LOOP_MIN_BATCH:
        n, t, f = x.shape
        xw = _C.gemm(_c(x).reshape(n * t, f), _c(kernel), bias=None if bias is None else _c(bias))
        return lstm(xw.reshape(n, t, kernel.shape[1]), h0, c0, recurrent_kernel, mask, activation, recurrent_activation,
                    save_gates=save_gates, xw_scratch=True)
    return _C.lstm_forward_x(_c(x), _c(kernel), None if bias is None else _c(bias), _c(h0), _c(c0),
                             _c(recurrent_kernel), _mask(mask), activation, recurrent_activation, bool(save_gates),
                             time_major=True)


def lstm_grad(dhs, dc_last, h0, c0, hs, cs, gates, recurrent_kernel, mask=None, activation="tanh",
              recurrent_activation="sigmoid", recurrent_mask=None, bias_grad=False):
    if not _ok((dhs, dc_last, h0, c0, hs, cs, gates, recurrent_kernel) + _opt(recurrent_mask), activation,
               recurrent_activation):
        return _ref.lstm_grad(dhs, dc_last, h0, c0, hs, cs, gates, recurrent_kernel, mask, activation,
                              recurrent_activation, recurrent_mask, bias_grad)
    rm = recurrent_mask
    return _C.lstm_backward(_seq(dhs, rm), _c(dc_last), _c(h0), _c(c0), _seq(hs, rm), _seq(cs, rm), _seq(gates, rm),
                            _c(recurrent_kernel), _mask(mask), activation, recurrent_activation, _rmask(rm),
                            bool(bias_grad))


def gru(xw, h0, recurrent_kernel, recurrent_bias, mask=None, activation="tanh", recurrent_activation="sigmoid",
        recurrent_mask=None):
    if not _ok((xw, h0, recurrent_kernel, recurrent_bias) + _opt(recurrent_mask), activation, recurrent_activation):
        return _ref.gru(xw, h0, recurrent_kernel, recurrent_bias, mask, activation, recurrent_activation,
                        recurrent_mask)
    return _C.gru_forward(_c(xw), _c(h0), _c(recurrent_kernel), _c(recurrent_bias), _mask(mask), activation,
                          recurrent_activation, _rmask(recurrent_mask))


def gru_grad(dhs, h0, hs, saved, recurrent_kernel, mask=None, activation="tanh", recurrent_activation="sigmoid",
             recurrent_mask=None):
    if not _ok((dhs, h0, hs, saved, recurrent_kernel) + _opt(recurrent_mask), activation, recurrent_activation):
        return _ref.gru_grad(dhs, h0, hs, saved, recurrent_kernel, mask, activation, recurrent_activation,
                             recurrent_mask)
    return _C.gru_backward(_c(dhs), _c(h0), _c(hs), _c(saved), _c(recurrent_kernel), _mask(mask), activation,
                           recurrent_activation, _rmask(recurrent_mask))


def weight_grad(x, dy):
    """xᵀ·dy, (K, M) and (K, N) -> (M, N), K-split across the threads (sgemm_split_k, csrc/gemm/split_k.cpp)."""
    if x.dtype != np.float32 or dy.dtype != np.float32 or x.ndim != 2 or dy.ndim != 2:
        return _ref.weight_grad(x, dy)
    return _C.weight_grad(_c(x), _c(dy))
