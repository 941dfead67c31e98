"""NHWC convolution and pooling, reference kernels: textbook sliding windows.

Layout: x (N, H, W, C) channels_last, kernel w (kh, kw, C_in, C_out) as Keras.
Padding follows TensorFlow (the geometry is in ``pynn.shapes``).

Every kernel loops over the kh·kw window offsets and does one whole-tensor
NumPy operation per offset: y += x[rows i·d :: s, cols j·d :: s] @ w[i, j].
Backward kernels are the adjoints of exactly those slices. This module is the
spec the native kernels are tested against; it favours reading like the math.
"""
import numpy as np

from ...shapes import conv_geometry, pair, pool_args
from . import activations as _act
from .core import check_activation

__all__ = [
    "max_pool2d_argmax", "max_pool2d_backward_argmax", "max_pool2d_relu_bias_grad",
    "conv2d", "conv2d_backward_input", "conv2d_backward_kernel", "conv2d_backward_bias",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward", "global_max_pool2d", "global_max_pool2d_backward",
]


def _check_conv(op, x_shape, w_shape):
    if len(w_shape) != 4:
        raise ValueError(f"{op}: expected a kernel of shape (kh, kw, C_in, C_out), got {tuple(w_shape)}")
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D NHWC input (N, H, W, C), got shape {tuple(x_shape)}")
    if x_shape[3] != w_shape[2]:
        raise ValueError(f"{op}: input has {x_shape[3]} channels but the kernel (kh, kw, C_in, C_out) = "
                         f"{tuple(w_shape)} expects {w_shape[2]}; input shape {tuple(x_shape)}")


def _windows(oh, ow, kh, kw, strides, dilation):
    """For each kernel offset (i, j): the slices of the padded input it reads."""
    sh, sw = pair(strides)
    dh, dw = pair(dilation)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
            cols = slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)
            yield i, j, rows, cols


def _pad(x, ph, pw, value=0.0):
    if not any(ph + pw):
        return x
    return np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=value)


# ---------------------------------------------------------------- convolution
def conv2d(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), activation=None, alpha=None):
    """y = act(conv(x, w) + b): x (N, H, W, C_in), w (kh, kw, C_in, C_out), b (C_out,) or None
    -> y (N, OH, OW, C_out). Cross-correlation, as every DL framework. ``activation``: None or
    a name of the activation table, ``alpha`` its parameter (None: the default)."""
    _check_conv("conv2d", x.shape, w.shape)
    check_activation("conv2d", activation)
    kh, kw, _, cout = w.shape
    (oh, ow), ph, pw = conv_geometry("conv2d", x.shape, kh, kw, strides, padding, dilation, w.shape)
    xp = _pad(x, ph, pw)
    dtype = np.result_type(x, w)
    y = np.zeros((x.shape[0], oh, ow, cout), dtype)
    for i, j, rows, cols in _windows(oh, ow, kh, kw, strides, dilation):
        y += xp[:, rows, cols, :] @ w[i, j]
    if b is not None:
        y += b
    return y if activation is None else _act.apply(y, activation, alpha).astype(dtype, copy=False)


def conv2d_backward_input(dy, w, x_shape, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """dx (x_shape) for y = conv2d(x, w): each window offset scatters dy @ w[i, j]ᵀ back."""
    _check_conv("conv2d_backward_input", x_shape, w.shape)
    kh, kw, _, _ = w.shape
    (oh, ow), ph, pw = conv_geometry("conv2d_backward_input", x_shape, kh, kw, strides, padding, dilation, w.shape)
    n, h, wd, c = x_shape
    dxp = np.zeros((n, h + sum(ph), wd + sum(pw), c), np.result_type(dy, w))
    for i, j, rows, cols in _windows(oh, ow, kh, kw, strides, dilation):
        dxp[:, rows, cols, :] += dy @ w[i, j].T
    return dxp[:, ph[0]:ph[0] + h, pw[0]:pw[0] + wd, :]


def conv2d_backward_kernel(x, dy, w_shape, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """dw (kh, kw, C_in, C_out): dw[i, j] = Σ_{n,oh,ow} x[window (i, j)]ᵀ · dy."""
    _check_conv("conv2d_backward_kernel", x.shape, w_shape)
    kh, kw, cin, cout = w_shape
    (oh, ow), ph, pw = conv_geometry("conv2d_backward_kernel", x.shape, kh, kw, strides, padding, dilation, w_shape)
    xp = _pad(x, ph, pw)
    dw = np.zeros(tuple(w_shape), np.result_type(x, dy))
    m = x.shape[0] * oh * ow  # explicit: reshape(-1, 0) is ambiguous for empty arrays
    for i, j, rows, cols in _windows(oh, ow, kh, kw, strides, dilation):
        dw[i, j] = xp[:, rows, cols, :].reshape(m, cin).T @ dy.reshape(m, cout)
    return dw


def conv2d_backward_bias(dy):
    """db (C_out,) = Σ dy over batch and space."""
    return dy.sum(axis=(0, 1, 2))


# ---------------------------------------------------------------- pooling
def _live_window(k, s, out, pad, size):
    """Trim a pooling window to the offsets that reach a real cell for some output.

    Padded cells never count in pooling (-inf for max, excluded from the mean), so
    offsets that only ever land on padding can go: the window becomes k' cells with
    pad_before' before the input. Exact, and it keeps a "same" window of 10**6 cells on
    a small input from a 10**6-step loop over a 10**6-row padded copy.
    """
    before, after = pad
    if out == 0 or size == 0:
        return k, pad
    lo = max(0, before - (out - 1) * s)  # first offset that reaches row 0 for the last output
    hi = min(k, before + size)  # past it, every output's row is beyond the input
    k2, before2 = hi - lo, before - lo
    return k2, (before2, max(0, k2 + (out - 1) * s - before2 - size))


def _argmax_cells(op, x_shape, pool_size, strides, padding):
    """Trimmed geometry plus t(i, j): offset (i, j) of the trimmed window as its number
    i·kw + j in the full window, the token both backends' argmax uses."""
    (fh, fw), st = pool_args(pool_size, strides)
    if fh * fw > 256:
        raise ValueError(f"{op}: a window of at most 256 cells (uint8 argmax), got {fh}x{fw}")
    (oh, ow), ph_full, pw_full = conv_geometry(op, x_shape, fh, fw, st, padding, 1, (fh, fw))
    kh, kw, st, oh, ow, ph, pw = _pool_geometry(op, x_shape, pool_size, strides, padding)
    lo_h, lo_w = ph_full[0] - ph[0], pw_full[0] - pw[0]
    return kh, kw, st, oh, ow, ph, pw, lambda i, j: (i + lo_h) * fw + (j + lo_w)


def _pool_geometry(op, x_shape, pool_size, strides, padding):
    (kh, kw), strides = pool_args(pool_size, strides)
    (oh, ow), ph, pw = conv_geometry(op, x_shape, kh, kw, strides, padding, 1, (kh, kw))
    kh, ph = _live_window(kh, strides[0], oh, ph, x_shape[1])
    kw, pw = _live_window(kw, strides[1], ow, pw, x_shape[2])
    return kh, kw, strides, oh, ow, ph, pw


def max_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """y (N, OH, OW, C) = max over each pool window; padded cells never win
    (padding is −inf). strides default to pool_size, as Keras."""
    kh, kw, strides, oh, ow, ph, pw = _pool_geometry("max_pool2d", x.shape, pool_size, strides, padding)
    xp = _pad(x, ph, pw, -np.inf)
    y = np.full((x.shape[0], oh, ow, x.shape[3]), -np.inf, x.dtype)
    for _, _, rows, cols in _windows(oh, ow, kh, kw, strides, 1):
        np.maximum(y, xp[:, rows, cols, :], out=y)
    return y


def max_pool2d_backward(x, y, dy, pool_size=(2, 2), strides=None, padding="valid"):
    """dx: each dy goes to the first cell of its window (row-major window order)
    that holds the maximum y — one cell per window even on ties, as TensorFlow."""
    kh, kw, strides, oh, ow, ph, pw = _pool_geometry("max_pool2d_backward", x.shape, pool_size, strides, padding)
    n, h, wd, c = x.shape
    xp = _pad(x, ph, pw, -np.inf)
    dxp = np.zeros(xp.shape, np.result_type(x, dy))
    taken = np.zeros(y.shape, bool)
    # Only real cells win: a window whose real cells are all -inf equals its -inf padding too,
    # and its gradient belongs to its first real cell (as the native kernel and PyTorch).
    real = _pad(np.ones((1, h, wd, 1), bool), ph, pw, False)
    for _, _, rows, cols in _windows(oh, ow, kh, kw, strides, 1):
        cell = xp[:, rows, cols, :]
        hit = ((cell == y) | (np.isnan(cell) & np.isnan(y))) & real[:, rows, cols, :] & ~taken  # NaN: first NaN
        dxp[:, rows, cols, :] += np.where(hit, dy, 0)
        taken |= hit
    return dxp[:, ph[0]:ph[0] + h, pw[0]:pw[0] + wd, :]


def max_pool2d_argmax(x, pool_size=(2, 2), strides=None, padding="valid"):
    """(y, idx): max_pool2d's y and, per output element, the window cell that won (uint8,
    i·kw + j in the full pool window, as the native kernel): the first maximum in window
    order, the first NaN if any (as max_pool2d_backward routes). At most 256 cells."""
    kh, kw, strides, oh, ow, ph, pw, cell_id = _argmax_cells("max_pool2d_argmax", x.shape, pool_size, strides,
                                                             padding)
    y = max_pool2d(x, pool_size, strides, padding)
    xp = _pad(x, ph, pw, -np.inf)
    real = _pad(np.ones((1, x.shape[1], x.shape[2], 1), bool), ph, pw, False)
    idx = np.zeros(y.shape, np.uint8)
    taken = np.zeros(y.shape, bool)
    for i, j, rows, cols in _windows(oh, ow, kh, kw, strides, 1):
        cell = xp[:, rows, cols, :]
        hit = ((cell == y) | (np.isnan(cell) & np.isnan(y))) & real[:, rows, cols, :] & ~taken
        idx[hit] = cell_id(i, j)
        taken |= hit
    return y, idx


def max_pool2d_backward_argmax(idx, dy, x_shape, pool_size=(2, 2), strides=None, padding="valid", relu_y=None):
    """dx (x_shape) of max_pool2d from max_pool2d_argmax's idx: each dy to the cell that won.

    ``relu_y`` (the forward's y), when x was a ReLU's output: that ReLU's backward fused in,
    dy passes only where relu_y > 0 (the winning cell's value is the window's maximum)."""
    x_shape = tuple(int(d) for d in x_shape)
    kh, kw, strides, oh, ow, ph, pw, cell_id = _argmax_cells("max_pool2d_backward_argmax", x_shape, pool_size,
                                                             strides, padding)
    n, h, wd, c = x_shape
    if idx.shape != dy.shape or dy.shape != (n, oh, ow, c):
        raise ValueError(f"max_pool2d_backward_argmax: idx and dy must have shape {(n, oh, ow, c)}, "
                         f"got {idx.shape} and {dy.shape}")
    if relu_y is not None:
        if relu_y.shape != dy.shape:
            raise ValueError(f"max_pool2d_backward_argmax: relu_y must have shape {dy.shape}, got {relu_y.shape}")
        dy = np.where(relu_y > 0, dy, 0).astype(dy.dtype, copy=False)
    dxp = np.zeros((n, h + ph[0] + ph[1], wd + pw[0] + pw[1], c), dy.dtype)
    for i, j, rows, cols in _windows(oh, ow, kh, kw, strides, 1):
        dxp[:, rows, cols, :] += np.where(idx == cell_id(i, j), dy, 0)
    return dxp[:, ph[0]:ph[0] + h, pw[0]:pw[0] + wd, :]


def max_pool2d_relu_bias_grad(dy, relu_y):
    """db (C,) of a conv + bias + ReLU feeding max_pool2d, from the pooling's output gradient
    dy and output relu_y (N, OH, OW, C): Σ dy where relu_y > 0. Each window's masked dy lands in
    one input cell, so this is the sum of max_pool2d_backward_argmax(..., relu_y=relu_y)."""
    if dy.ndim != 4 or relu_y.shape != dy.shape:
        raise ValueError(f"max_pool2d_relu_bias_grad: dy must be 4-D NHWC and relu_y of its shape, "
                         f"got {dy.shape} and {relu_y.shape}")
    return np.where(relu_y > 0, dy, 0).astype(dy.dtype, copy=False).sum(axis=(0, 1, 2))


def _valid_counts(x_shape, kh, kw, strides, oh, ow, ph, pw, dtype):
    """How many real (unpadded) cells each window covers, shape (1, OH, OW, 1)."""
    ones = _pad(np.ones((1, x_shape[1], x_shape[2], 1), dtype), ph, pw)
    count = np.zeros((1, oh, ow, 1), dtype)
    for _, _, rows, cols in _windows(oh, ow, kh, kw, strides, 1):
        count += ones[:, rows, cols, :]
    return count


def avg_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """y = mean over each window's real cells: with "same" padding the padded
    cells are not counted (Keras/TensorFlow semantics)."""
    kh, kw, strides, oh, ow, ph, pw = _pool_geometry("avg_pool2d", x.shape, pool_size, strides, padding)
    xp = _pad(x, ph, pw)
    total = np.zeros((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    for _, _, rows, cols in _windows(oh, ow, kh, kw, strides, 1):
        total += xp[:, rows, cols, :]
    return total / _valid_counts(x.shape, kh, kw, strides, oh, ow, ph, pw, x.dtype)


def avg_pool2d_backward(dy, x_shape, pool_size=(2, 2), strides=None, padding="valid"):
    """dx: each dy / count spread evenly over its window's real cells."""
    kh, kw, strides, oh, ow, ph, pw = _pool_geometry("avg_pool2d_backward", x_shape, pool_size, strides, padding)
    n, h, wd, c = x_shape
    share = dy / _valid_counts(x_shape, kh, kw, strides, oh, ow, ph, pw, dy.dtype)
    dxp = np.zeros((n, h + sum(ph), wd + sum(pw), c), dy.dtype)
    for _, _, rows, cols in _windows(oh, ow, kh, kw, strides, 1):
        dxp[:, rows, cols, :] += share
    return dxp[:, ph[0]:ph[0] + h, pw[0]:pw[0] + wd, :]


def _check4(op, x_shape):
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D NHWC input (N, H, W, C), got shape {tuple(x_shape)}")


def global_avg_pool2d(x):
    """(N, H, W, C) -> (N, C): mean over space."""
    _check4("global_avg_pool2d", x.shape)
    if x.shape[1] * x.shape[2] == 0:  # a mean of nothing: an error, as global_max_pool2d (native agrees)
        raise ValueError(f"global_avg_pool2d: empty spatial extent, input shape {x.shape}")
    return x.mean(axis=(1, 2))


def global_avg_pool2d_backward(dy, x_shape):
    _check4("global_avg_pool2d_backward", x_shape)
    n, h, w, c = x_shape
    return np.broadcast_to((dy / max(h * w, 1))[:, None, None, :], tuple(x_shape)).copy()


def global_max_pool2d(x):
    """(N, H, W, C) -> (N, C): max over space."""
    _check4("global_max_pool2d", x.shape)
    if x.shape[1] * x.shape[2] == 0:
        raise ValueError(f"global_max_pool2d: empty spatial extent, input shape {x.shape}")
    return x.max(axis=(1, 2))


def global_max_pool2d_backward(x, y, dy):
    """dx: each dy to the first maximum in row-major (h, w) order, as max_pool2d."""
    _check4("global_max_pool2d_backward", x.shape)
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    is_max = (flat == y[:, None, :]) | (np.isnan(flat) & np.isnan(y)[:, None, :])  # NaN max: its first NaN
    first = np.argmax(is_max, axis=1)  # (N, C): first spatial index holding the max
    dx = np.zeros((n, h * w, c), np.result_type(x, dy))
    np.put_along_axis(dx, first[:, None, :], dy[:, None, :], axis=1)
    return dx.reshape(x.shape)
