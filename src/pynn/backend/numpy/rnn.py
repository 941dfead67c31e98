"""Recurrent sequence kernels: a whole sequence forward, and backpropagation
through time, in the order of the textbook equations.

Shapes: N batch, T steps, U units. The input projection ``xw = x @ W + b`` for
all T steps is one GEMM done by the caller; these kernels run the recurrence.
``mask`` (N, T) bool, optional: at a masked step a sample keeps its previous
state (and its output repeats it), as Keras does. Weight layouts and gate
orders are Keras': LSTM [i, f, c, o], GRU [z, r, h] with reset_after.

``recurrent_mask`` (N, G·U), optional: recurrent dropout. Gate block k of it
(columns k·U to (k+1)·U) multiplies h_{t−1} where it enters gate k's recurrent
kernel, the same mask at every step (Keras' cells with recurrent_dropout: one
mask per gate, fixed over the sequence, already scaled by 1/(1−rate)). The
state itself (GRU's z·h_{t−1}, the returned h) is never masked.
"""
import numpy as np

from . import activations as _table

__all__ = ["simple_rnn", "simple_rnn_grad", "lstm", "lstm_projected", "lstm_grad", "gru", "gru_grad", "weight_grad"]


def weight_grad(x, dy):
    """xᵀ·dy for x (K, M), dy (K, N) -> (M, N): a layer's weight gradient summed over
    its K = N·T rows (sequence layers' input projection)."""
    return x.T @ dy


def _act(name):
    """(f, f') of an activation of the table whose derivative its output gives (BPTT keeps
    only each step's output): f(x), and f'(x) computed from y = f(x)."""
    act = _table.ACTIVATIONS.get(name)
    if act is None or not act.from_output:
        raise ValueError(f"recurrent kernels support the activations whose gradient the output determines, "
                         f"{sorted(n for n, a in _table.ACTIVATIONS.items() if a.from_output)}; got {name!r}")
    return (lambda x: act.forward(x, None)), (lambda y: act.grad(y, y, np.ones_like(y), None))


def _recurrent(h, recurrent_kernel, recurrent_mask):
    """h_{t−1} U, or with recurrent dropout [(h ⊙ m_k) U_k for each gate k] side by side."""
    if recurrent_mask is None:
        return h @ recurrent_kernel
    u = h.shape[1]
    return np.concatenate([(h * recurrent_mask[:, k:k + u]) @ recurrent_kernel[:, k:k + u]
                           for k in range(0, recurrent_kernel.shape[1], u)], axis=1)


def _recurrent_grad(h, dz, recurrent_kernel, recurrent_mask):
    """Gradients of _recurrent w.r.t. h and U, given dz = dL/d(output)."""
    if recurrent_mask is None:
        return dz @ recurrent_kernel.T, h.T @ dz
    u = h.shape[1]
    dh = np.zeros_like(h)
    dU = np.empty_like(recurrent_kernel)
    for k in range(0, recurrent_kernel.shape[1], u):
        m = recurrent_mask[:, k:k + u]
        dh += (dz[:, k:k + u] @ recurrent_kernel[:, k:k + u].T) * m
        dU[:, k:k + u] = (h * m).T @ dz[:, k:k + u]
    return dh, dU


def _keep(mask, t):
    """(N, 1) bool: which samples update at step t (all when there is no mask)."""
    return None if mask is None else mask[:, t:t + 1]


# ---------------------------------------------------------------- SimpleRNN
def simple_rnn(xw, h0, recurrent_kernel, mask=None, activation="tanh", recurrent_mask=None):
    """h_t = act(xw_t + (h_{t-1} ⊙ m) U). Returns hs (N, T, U)."""
    f, _ = _act(activation)
    n, steps, _ = xw.shape
    hs = np.empty((n, steps, h0.shape[1]), xw.dtype)
    h = h0
    for t in range(steps):
        h_new = f(xw[:, t] + _recurrent(h, recurrent_kernel, recurrent_mask))
        keep = _keep(mask, t)
        h = h_new if keep is None else np.where(keep, h_new, h)
        hs[:, t] = h
    return hs


def _check_grad_shapes(op, dhs, h0, hs, recurrent_kernel, gates):
    """The backward kernels index by hs's shape: arrays that do not match it would broadcast
    or index past their end (the native binding checks the same)."""
    hs, dhs, h0, u = np.asarray(hs), np.asarray(dhs), np.asarray(h0), np.asarray(recurrent_kernel)
    if hs.ndim != 3:
        raise ValueError(f"{op}: hs must be (N, T, units), got shape {hs.shape}")
    n, _, units = hs.shape
    if dhs.shape != hs.shape or h0.shape != (n, units) or u.shape != (units, gates * units):
        raise ValueError(f"{op}: expected dhs {hs.shape}, h0 {(n, units)}, recurrent_kernel "
                         f"{(units, gates * units)} for hs {hs.shape}; got {dhs.shape}, {h0.shape}, {u.shape}")


def _bptt_buffers(op, dhs, h0, hs, recurrent_kernel, gates):
    """Check the shapes, then start a gated cell's backward pass: (N, T, U) and the zeroed
    accumulators dxw (N, T, gates*U), d recurrent_kernel and the carried dh (N, U)."""
    _check_grad_shapes(op, dhs, h0, hs, recurrent_kernel, gates)
    n, steps, u = hs.shape
    return (n, steps, u, np.zeros((n, steps, gates * u), hs.dtype), np.zeros_like(recurrent_kernel),
            np.zeros((n, u), hs.dtype))


def simple_rnn_grad(dhs, xw, h0, hs, recurrent_kernel, mask=None, activation="tanh", recurrent_mask=None):
    """Returns (dxw, dh0, drecurrent_kernel); dhs holds dL/dh_t for every t
    (the final state's gradient added at t = T−1)."""
    _check_grad_shapes("simple_rnn_grad", dhs, h0, hs, recurrent_kernel, 1)
    _, df = _act(activation)
    n, steps, units = hs.shape
    dxw = np.zeros_like(xw)
    dU = np.zeros_like(recurrent_kernel)
    dh = np.zeros((n, units), xw.dtype)
    for t in reversed(range(steps)):
        h_prev = hs[:, t - 1] if t else h0
        dh = dh + dhs[:, t]
        keep = _keep(mask, t)
        dz = dh * df(hs[:, t])
        if keep is not None:
            dz = np.where(keep, dz, 0)
        dxw[:, t] = dz
        dh_prev, dU_t = _recurrent_grad(h_prev, dz, recurrent_kernel, recurrent_mask)
        dU += dU_t
        dh = dh_prev if keep is None else np.where(keep, dh_prev, dh)
    return dxw, dh, dU


# ---------------------------------------------------------------- LSTM
def lstm_projected(x, kernel, bias, h0, c0, recurrent_kernel, mask=None, activation="tanh",
                   recurrent_activation="sigmoid", save_gates=True):
    """``lstm`` on xw = x @ kernel + bias (x (N, T, F), bias (4U,) or None), the projection included:
    the reference of the native loop that computes it inside the time loop, step by step,
    without an (N, T, 4U) xw. Returns hs, cs, gates (None with ``save_gates=False``)."""
    n, t, f = x.shape
    xw = x.reshape(n * t, f) @ kernel
    if bias is not None:
        xw = xw + bias
    return lstm(xw.reshape(n, t, kernel.shape[1]), h0, c0, recurrent_kernel, mask, activation,
                recurrent_activation, None, save_gates, True)


def lstm(xw, h0, c0, recurrent_kernel, mask=None, activation="tanh", recurrent_activation="sigmoid",
         recurrent_mask=None, save_gates=True, xw_scratch=False):
    """i, f, c̃, o = σ(z_i), σ(z_f), tanh(z_c), σ(z_o) with z = xw_t + h_{t-1} U;
    c_t = f·c_{t-1} + i·c̃; h_t = o·tanh(c_t).
    Returns hs, cs (N, T, U) and the activated gates (N, T, 4U) for backward
    (None with ``save_gates=False``: inference, nothing to differentiate).
    ``xw_scratch``: the caller no longer needs xw, and the gates may be stored over it
    (here they are, step by step, after each step has read its xw_t)."""
    act, _ = _act(activation)
    ract, _ = _act(recurrent_activation)
    n, steps, _ = xw.shape
    u = h0.shape[1]
    hs = np.empty((n, steps, u), xw.dtype)
    cs = np.empty_like(hs)
    gates = (xw if xw_scratch and xw.flags.writeable else np.empty((n, steps, 4 * u), xw.dtype)) if save_gates else None
    h, c = h0, c0
    for t in range(steps):
        z = xw[:, t] + _recurrent(h, recurrent_kernel, recurrent_mask)
        i, f, g, o = ract(z[:, :u]), ract(z[:, u:2 * u]), act(z[:, 2 * u:3 * u]), ract(z[:, 3 * u:])
        c_new = f * c + i * g
        h_new = o * act(c_new)
        keep = _keep(mask, t)
        if keep is not None:
            c_new, h_new = np.where(keep, c_new, c), np.where(keep, h_new, h)
        h, c = h_new, c_new
        hs[:, t], cs[:, t] = h, c
        if save_gates:
            gates[:, t] = np.concatenate([i, f, g, o], axis=1)
    return hs, cs, gates


def lstm_grad(dhs, dc_last, h0, c0, hs, cs, gates, recurrent_kernel, mask=None, activation="tanh",
              recurrent_activation="sigmoid", recurrent_mask=None, bias_grad=False):
    """Backpropagation through time. Returns (dxw, dh0, dc0, drecurrent_kernel), and with
    ``bias_grad`` also the input bias's gradient dxw.sum((0, 1)) last."""
    n, steps, u, dxw, dU, dh = _bptt_buffers("lstm_grad", dhs, h0, hs, recurrent_kernel, 4)
    act, dact = _act(activation)
    _, dract = _act(recurrent_activation)
    dc = dc_last.copy()
    for t in reversed(range(steps)):
        h_prev = hs[:, t - 1] if t else h0
        c_prev = cs[:, t - 1] if t else c0
        i, f, g, o = (gates[:, t, k * u:(k + 1) * u] for k in range(4))
        keep = _keep(mask, t)
        dh = dh + dhs[:, t]
        tc = act(cs[:, t])
        dct = dc + dh * o * dact(tc)
        dz = np.concatenate([dct * g * dract(i), dct * c_prev * dract(f), dct * i * dact(g),
                             dh * tc * dract(o)], axis=1)
        if keep is not None:
            dz = np.where(keep, dz, 0)
        dxw[:, t] = dz
        dh_prev, dU_t = _recurrent_grad(h_prev, dz, recurrent_kernel, recurrent_mask)
        dU += dU_t
        dc_prev = dct * f
        if keep is not None:  # a masked step passed its state through unchanged
            dh_prev, dc_prev = np.where(keep, dh_prev, dh), np.where(keep, dc_prev, dc)
        dh, dc = dh_prev, dc_prev
    if bias_grad:
        return dxw, dh, dc, dU, dxw.sum(axis=(0, 1))
    return dxw, dh, dc, dU


# ---------------------------------------------------------------- GRU (reset_after, Keras default)
def gru(xw, h0, recurrent_kernel, recurrent_bias, mask=None, activation="tanh", recurrent_activation="sigmoid",
        recurrent_mask=None):
    """With r_t = h_{t-1} U + b_rec split into z, r, h parts (h_{t−1} ⊙ m_k for gate k under recurrent dropout):
    z = σ(x_z + r_z), r = σ(x_r + r_r), h̃ = tanh(x_h + r·r_h), h_t = z·h_{t-1} + (1 − z)·h̃.
    Returns hs (N, T, U) and saved (N, T, 4U) = [z, r, h̃, r_h] for backward."""
    act, _ = _act(activation)
    ract, _ = _act(recurrent_activation)
    n, steps, _ = xw.shape
    u = h0.shape[1]
    hs = np.empty((n, steps, u), xw.dtype)
    saved = np.empty((n, steps, 4 * u), xw.dtype)
    h = h0
    for t in range(steps):
        rec = _recurrent(h, recurrent_kernel, recurrent_mask) + recurrent_bias
        x = xw[:, t]
        z = ract(x[:, :u] + rec[:, :u])
        r = ract(x[:, u:2 * u] + rec[:, u:2 * u])
        hh = act(x[:, 2 * u:] + r * rec[:, 2 * u:])
        h_new = z * h + (1 - z) * hh
        keep = _keep(mask, t)
        h = h_new if keep is None else np.where(keep, h_new, h)
        hs[:, t] = h
        saved[:, t] = np.concatenate([z, r, hh, rec[:, 2 * u:]], axis=1)
    return hs, saved


def gru_grad(dhs, h0, hs, saved, recurrent_kernel, mask=None, activation="tanh", recurrent_activation="sigmoid",
             recurrent_mask=None):
    """Returns (dxw, dh0, drecurrent_kernel, drecurrent_bias)."""
    n, steps, u, dxw, dU, dh = _bptt_buffers("gru_grad", dhs, h0, hs, recurrent_kernel, 3)
    _, dact = _act(activation)
    _, dract = _act(recurrent_activation)
    db = np.zeros(3 * u, hs.dtype)
    for t in reversed(range(steps)):
        h_prev = hs[:, t - 1] if t else h0
        z, r, hh, rh = (saved[:, t, k * u:(k + 1) * u] for k in range(4))
        keep = _keep(mask, t)
        dh = dh + dhs[:, t]
        dhh = dh * (1 - z) * dact(hh)              # through h̃'s pre-activation
        dzp = dh * (h_prev - hh) * dract(z)        # z's pre-activation
        drp = dhh * rh * dract(r)                  # r's pre-activation
        dx = np.concatenate([dzp, drp, dhh], axis=1)
        drec = np.concatenate([dzp, drp, dhh * r], axis=1)
        if keep is not None:
            dx, drec = np.where(keep, dx, 0), np.where(keep, drec, 0)
        dxw[:, t] = dx
        dh_rec, dU_t = _recurrent_grad(h_prev, drec, recurrent_kernel, recurrent_mask)
        dU += dU_t
        db += drec.sum(axis=0)
        dh_prev = dh_rec + (dh * z if keep is None else np.where(keep, dh * z, dh))
        dh = dh_prev
    return dxw, dh, dU, db
