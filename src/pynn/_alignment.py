"""Where the big float arrays of a training step start within a 4 KiB page.

A fused optimizer step streams several arrays of one shape at the same index (the weight,
its gradient, the optimizer's slots), loading some while storing others. When two of them
start at nearly the same offset within a page, a load can match a store still in flight
in the low 12 address bits ("4K aliasing") and waits for it: Adam over a 784x256 weight
measured 60 us on one thread with the arrays 1 KiB apart in the page and 73-83 us with
them within 128 bytes, which is where independent allocations of one size tend to land.
Dense kernels start on a page (so also on a 64-byte line: the GEMM reads them in place),
and the arrays streamed beside a weight are placed STAGGER bytes apart from it.
"""
import numpy as np

PAGE = 4096
STAGGER = 768            # weight +0, slots +768, +1536, +2304, gradient +3072
MIN_BYTES = 64 * 1024    # smaller arrays are allocated as usual (the page of slack would dominate)


def empty_at(shape, dtype, offset):
    """An uninitialised C-contiguous array whose data starts ``offset`` bytes (mod 4096,
    rounded down to a multiple of 64) into a page."""
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + PAGE, np.uint8)
    start = (offset // 64 * 64 - buf.ctypes.data) % PAGE
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def aligned_copy(a):
    """A C-contiguous copy of ``a`` starting on a page (a 64-byte line when it is smaller
    than MIN_BYTES: no page of slack for a small weight)."""
    if a.nbytes < MIN_BYTES:
        buf = np.empty(a.nbytes + 64, np.uint8)
        start = -buf.ctypes.data % 64
        out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    else:
        out = empty_at(a.shape, a.dtype, 0)
    out[...] = a
    return out


def staggered_empty(like, slot):
    """An uninitialised array of ``like``'s shape and dtype placed ``slot`` * STAGGER bytes
    after ``like`` within the page (plain np.empty for small or non-contiguous ``like``)."""
    if like.nbytes < MIN_BYTES or not like.flags.c_contiguous:
        return np.empty(like.shape, like.dtype)
    return empty_at(like.shape, like.dtype, like.ctypes.data % PAGE + slot * STAGGER)


def staggered_full(like, slot, value):
    """:func:`staggered_empty` filled with ``value``."""
    out = staggered_empty(like, slot)
    out[...] = value
    return out
