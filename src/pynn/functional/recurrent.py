"""Recurrent layers as single differentiable ops over a whole sequence.

Each op does the input projection of all T steps as one GEMM (x @ W + b), runs
the recurrence kernel of the active backend, and in backward runs the BPTT
kernel and one GEMM for each of dx and dW. Keras weight layouts.
"""
import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled
from .registry import register


def _B():
    return backend.current()


def _project(x, kernel, bias):
    """(N, T, F) @ (F, G) + b -> (N, T, G), as one GEMM over N·T rows."""
    n, t, f = x.shape
    return _B().matmul(x.reshape(n * t, f), kernel, bias=bias).reshape(n, t, kernel.shape[1])


def _time_major(a):
    """Whether (N, T, ·) ``a`` is a view of a C-contiguous (T, N, ·) buffer (and not C order itself)."""
    return not a.flags.c_contiguous and a.transpose(1, 0, 2).flags.c_contiguous


def _project_grad(x, kernel, dxw, need_x, need_kernel):
    """dx = dxw Wᵀ and dW = xᵀ dxw, each one GEMM over all N·T rows, taken in dxw's memory order:
    (n, t) rows, or (t, n) rows when dxw is time-major (the native LSTM BPTT's layout), with x's rows
    put in the same order (a copy of x, not of the 4x wider dxw)."""
    n, t, f = x.shape
    if _time_major(dxw):
        d2 = dxw.transpose(1, 0, 2).reshape(n * t, -1)
        dx = (np.ascontiguousarray(_B().matmul(d2, kernel.T).reshape(t, n, f).transpose(1, 0, 2))
              if need_x else None)
        dk = (_B().weight_grad(np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(n * t, f), d2)
              if need_kernel else None)
        return dx, dk
    d2 = dxw.reshape(n * t, -1)
    dx = _B().matmul(d2, kernel.T).reshape(x.shape) if need_x else None
    dk = _B().weight_grad(x.reshape(n * t, f), d2) if need_kernel else None
    return dx, dk


def _prepare(x, mask, go_backwards):
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    return np.ascontiguousarray(x), None if mask is None else np.ascontiguousarray(mask, dtype=bool)


@register("simple_rnn")
class SimpleRNNOp(Function):
    """Outputs hs (N, T, U): h_t = act(x_t W + h_{t−1} U + b)."""

    def forward(self, x, kernel, recurrent_kernel, bias, h0, mask=None, go_backwards=False, activation="tanh",
                recurrent_mask=None):
        self.go_backwards, self.activation, self.rmask = go_backwards, activation, recurrent_mask
        self.x, self.mask = _prepare(x, mask, go_backwards)
        self.kernel, self.recurrent_kernel, self.h0 = kernel, recurrent_kernel, h0
        self.xw = _project(self.x, kernel, bias)
        self.hs = _B().simple_rnn(self.xw, h0, recurrent_kernel, self.mask, activation, recurrent_mask)
        return self.hs

    def backward(self, g):
        need = self.needs_input_grad
        dxw, dh0, dU = _B().simple_rnn_grad(g, self.xw, self.h0, self.hs, self.recurrent_kernel, self.mask,
                                            self.activation, self.rmask)
        dx, dk = _project_grad(self.x, self.kernel, dxw, need[0], need[1])
        if dx is not None and self.go_backwards:
            dx = dx[:, ::-1]
        return dx, dk, dU, dxw.sum(axis=(0, 1)), dh0


@register("lstm")
class LSTMOp(Function):
    """Outputs (N, T+1, U): hs for the T steps, then the final cell state c_T
    (packed so one op can return both; the layer splits them). With ``last_only``
    (N, 2, U): h_T and c_T alone, for a layer that returns no sequence -- its
    backward then never builds, copies or slices (N, T, U) gradients that are zero
    but for the last step."""

    def forward(self, x, kernel, recurrent_kernel, bias, h0, c0, mask=None, go_backwards=False,
                activation="tanh", recurrent_activation="sigmoid", recurrent_mask=None, last_only=False):
        self.go_backwards, self.acts, self.rmask = go_backwards, (activation, recurrent_activation), recurrent_mask
        self.last_only = last_only
        self.x, self.mask = _prepare(x, mask, go_backwards)
        self.kernel, self.recurrent_kernel, self.h0, self.c0 = kernel, recurrent_kernel, h0, c0
        # Nothing to differentiate (inference, predict_on_batch, no_grad): the
        # kernel skips saving the activated gates for the BPTT.
        save = is_grad_enabled() and any(self.needs_input_grad)
        if recurrent_mask is None:   # the projection runs inside the time loop (native: no xw array)
            self.hs, self.cs, self.gates = _B().lstm_projected(self.x, kernel, bias, h0, c0, recurrent_kernel,
                                                               self.mask, *self.acts, save_gates=save)
        else:
            xw = _project(self.x, kernel, bias)
            # xw is this call's own temporary: the gates may be stored over it.
            self.hs, self.cs, self.gates = _B().lstm(xw, h0, c0, recurrent_kernel, self.mask, *self.acts,
                                                     recurrent_mask=recurrent_mask, save_gates=save, xw_scratch=True)
        if last_only:
            return np.stack([self.hs[:, -1], self.cs[:, -1]], axis=1)
        return np.concatenate([self.hs, self.cs[:, -1:]], axis=1)

    def backward(self, g):
        need = self.needs_input_grad
        steps = self.hs.shape[1]
        # dhs in the memory layout of hs (time-major from the native forward: see lstm_grad)
        if self.last_only:   # only h_T carries a gradient among the hs
            dhs = np.zeros_like(self.hs, dtype=g.dtype)
            dhs[:, -1] = g[:, 0]
            dc_last = np.ascontiguousarray(g[:, 1])
        else:
            dhs = np.empty_like(self.hs, dtype=g.dtype)
            dhs[...] = g[:, :steps]
            dc_last = np.ascontiguousarray(g[:, steps])
        # The bias gradient Σ dxw comes out of the kernel (native: one more row of its dU GEMM).
        dxw, dh0, dc0, dU, db = _B().lstm_grad(dhs, dc_last,
                                               self.h0, self.c0, self.hs, self.cs, self.gates, self.recurrent_kernel,
                                               self.mask, *self.acts, recurrent_mask=self.rmask, bias_grad=True)
        dx, dk = _project_grad(self.x, self.kernel, dxw, need[0], need[1])
        if dx is not None and self.go_backwards:
            dx = dx[:, ::-1]
        return dx, dk, dU, db, dh0, dc0


@register("gru")
class GRUOp(Function):
    """Keras GRU with reset_after=True; bias (2, 3U) = [input bias, recurrent bias]. Outputs hs."""

    def forward(self, x, kernel, recurrent_kernel, bias, h0, mask=None, go_backwards=False,
                activation="tanh", recurrent_activation="sigmoid", recurrent_mask=None):
        self.go_backwards, self.acts, self.rmask = go_backwards, (activation, recurrent_activation), recurrent_mask
        self.x, self.mask = _prepare(x, mask, go_backwards)
        self.kernel, self.recurrent_kernel, self.h0 = kernel, recurrent_kernel, h0
        xw = _project(self.x, kernel, bias[0])
        self.hs, self.saved = _B().gru(xw, h0, recurrent_kernel, bias[1], self.mask, *self.acts,
                                       recurrent_mask=recurrent_mask)
        return self.hs

    def backward(self, g):
        need = self.needs_input_grad
        dxw, dh0, dU, drb = _B().gru_grad(g, self.h0, self.hs, self.saved, self.recurrent_kernel, self.mask,
                                          *self.acts, recurrent_mask=self.rmask)
        dx, dk = _project_grad(self.x, self.kernel, dxw, need[0], need[1])
        if dx is not None and self.go_backwards:
            dx = dx[:, ::-1]
        return dx, dk, dU, np.stack([dxw.sum(axis=(0, 1)), drb]), dh0


def simple_rnn(x, kernel, recurrent_kernel, bias, h0, mask=None, go_backwards=False, activation="tanh",
               recurrent_mask=None):
    """Returns hs (N, T, U). ``recurrent_mask`` (N, U): recurrent dropout, a constant
    (already scaled) multiplier of h_{t−1} in front of the recurrent kernel at every step."""
    return SimpleRNNOp.apply(x, kernel, recurrent_kernel, bias, h0, mask=mask, go_backwards=go_backwards,
                             activation=activation, recurrent_mask=recurrent_mask)


def lstm(x, kernel, recurrent_kernel, bias, h0, c0, mask=None, go_backwards=False, activation="tanh",
         recurrent_activation="sigmoid", recurrent_mask=None, last_only=False):
    """Returns (N, T+1, U): hs then c_T; with ``last_only`` (N, 2, U): h_T then c_T. Weights as Keras:
    kernel (F, 4U), recurrent (U, 4U), gates i, f, c, o. ``recurrent_mask`` (N, 4U): recurrent dropout,
    one mask per gate (block k multiplies h_{t−1} for gate k)."""
    return LSTMOp.apply(x, kernel, recurrent_kernel, bias, h0, c0, mask=mask, go_backwards=go_backwards,
                        activation=activation, recurrent_activation=recurrent_activation,
                        recurrent_mask=recurrent_mask, last_only=bool(last_only))


def gru(x, kernel, recurrent_kernel, bias, h0, mask=None, go_backwards=False, activation="tanh",
        recurrent_activation="sigmoid", recurrent_mask=None):
    """Returns hs (N, T, U). ``recurrent_mask`` (N, 3U): recurrent dropout per gate z, r, h (the
    mixing z·h_{t−1} uses the unmasked state, as Keras)."""
    return GRUOp.apply(x, kernel, recurrent_kernel, bias, h0, mask=mask, go_backwards=go_backwards,
                       activation=activation, recurrent_activation=recurrent_activation,
                       recurrent_mask=recurrent_mask)


@register("embedding")
class EmbeddingOp(Function):
    """table[ids]; the table's gradient is a scatter-add of dy by id."""

    def forward(self, table, ids):
        self.ids, self.rows = np.asarray(ids), table.shape[0]
        return _B().embedding(table, self.ids)

    def backward(self, g):
        return _B().embedding_grad(self.ids, g, self.rows), None


def embedding(ids, table):
    """Rows of ``table`` (V, D) for integer ``ids`` (...): (..., D)."""
    return EmbeddingOp.apply(table, getattr(ids, "data", ids))
