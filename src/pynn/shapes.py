"""Shape arithmetic shared by the backends, ``functional``, ``ops`` and the layers.

Argument normalisation (``2`` -> ``(2, 2)``, padding names) and the window
geometry of convolution and pooling, TensorFlow rules: "valid" uses no
padding; "same" gives out = ceil(in / stride) and pads
pad_total = max((out − 1)·s + (k − 1)·d + 1 − in, 0), pad_total // 2 before and
the rest (the extra one) after (bottom/right). Pure Python on tuples: nothing
here touches an array, so every layer of the package may import it.
"""
from __future__ import annotations

import numbers

PADDINGS = ("valid", "same")


def normalize_tuple(v, n, what="value"):
    """``v`` as a tuple of ``n`` ints: an int repeats (``2`` -> ``(2, 2)``), a sequence of
    ``n`` ints stays. ValueError naming ``what`` for anything else."""
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return (int(v),) * n
    try:
        t = tuple(int(a) for a in v)
    except (TypeError, ValueError):
        t = None
    if t is None or len(t) != n:
        raise ValueError(f"expected an int or a tuple of {n} ints for {what}, got {v!r}")
    return t


def pair(v, what="value"):
    """1 -> (1, 1); (2, 3) -> (2, 3)."""
    return normalize_tuple(v, 2, what)


def normalize_padding(padding, op):
    """"VALID" / "same" ... -> "valid" | "same" (Keras accepts either case); ValueError naming ``op``."""
    p = padding.lower() if isinstance(padding, str) else padding
    if p not in PADDINGS:
        raise ValueError(f"{op}: padding must be 'valid' or 'same', got {padding!r}")
    return p


def pool_args(pool_size, strides):
    """(pool pair, stride pair); strides default to the pool size, as Keras."""
    k = pair(pool_size, "pool_size")
    return k, k if strides is None else pair(strides, "strides")


def window_geometry(op, size, k, s, d, padding, input_shape=None, kernel_shape=None):
    """(out, pad_before, pad_after) for one spatial axis, TensorFlow rules.

    Raises ValueError naming ``op`` and the shapes when the (dilated) window is
    larger than an unpadded input ("valid") or an argument is out of range.
    """
    if padding not in PADDINGS:
        raise ValueError(f"{op}: padding must be 'valid' or 'same', got {padding!r}")
    if k < 1 or s < 1 or d < 1:
        raise ValueError(f"{op}: window {k}, stride {s} and dilation {d} must be >= 1")
    span = (k - 1) * d + 1
    if padding == "valid":
        if span > size:
            raise ValueError(f"{op}: window {span} (kernel {k}, dilation {d}) is larger than the unpadded input "
                             f"{size} with padding='valid'; input shape {input_shape}, kernel/pool shape "
                             f"{kernel_shape}")
        return (size - span) // s + 1, 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + span - size, 0)
    return out, total // 2, total - total // 2


def conv_geometry(op, x_shape, kh, kw, strides, padding, dilation, kernel_shape=None):
    """((OH, OW), (pad_top, pad_bottom), (pad_left, pad_right)) for an NHWC input."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D NHWC input (N, H, W, C), got shape {tuple(x_shape)}")
    sh, sw = pair(strides, "strides")
    dh, dw = pair(dilation, "dilation")
    oh, pt, pb = window_geometry(op, x_shape[1], kh, sh, dh, padding, tuple(x_shape), kernel_shape)
    ow, pl, pr = window_geometry(op, x_shape[2], kw, sw, dw, padding, tuple(x_shape), kernel_shape)
    for k, d, s, size, pads in ((kh, dh, sh, x_shape[1], (pt, pb)), (kw, dw, sw, x_shape[2], (pl, pr))):
        # The native kernels count in int64 and refuse what would wrap; the same limit here
        # (Python ints never wrap, but np.pad of 2**62 rows fails with NumPy's own message).
        if (k - 1) * d + 1 >= 2**63 or size + sum(pads) >= 2**63 or s >= 2**63:
            raise ValueError(f"{op}: window (kernel {k}, dilation {d}, stride {s}) overflows 64-bit size "
                             f"arithmetic; input shape {tuple(x_shape)}")
    dims = [d if d is not None else 1 for d in x_shape]  # shape inference passes a None batch
    padded = dims[0] * (dims[1] + pt + pb) * (dims[2] + pl + pr) * dims[3]
    if padded >= 2**60:  # this reference pads explicitly: an impossible array, said plainly
        raise ValueError(f"{op}: the numpy reference would pad input {tuple(x_shape)} to {padded} elements "
                         f"(padding {(pt, pb)}, {(pl, pr)}); too large to allocate")
    return (oh, ow), (pt, pb), (pl, pr)


def window_output_shape(op, input_shape, window, strides, dilation, padding, channels, kernel_shape=None):
    """(N, *spatial', channels) of a channels_last window op (convolution, pooling) over
    len(window) spatial axes; an unknown (None) spatial size makes every one unknown."""
    spatial = tuple(input_shape[1:-1])
    if None in spatial:
        return (input_shape[0],) + (None,) * len(window) + (channels,)
    out = tuple(window_geometry(op, n, k, s, d, padding, tuple(input_shape), kernel_shape or window)[0]
                for n, k, s, d in zip(spatial, window, strides, dilation))
    return (input_shape[0],) + out + (channels,)
