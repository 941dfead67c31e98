"""Native embedding gather and scatter-add (pynn._C)."""
import numpy as np

from pynn import _C

from ..numpy import gather as _ref

__all__ = ["embedding", "embedding_grad"]


def embedding(table, ids):
    ids = _ref.check_ids("embedding", ids)
    if table.dtype != np.float32:
        return _ref.embedding(table, ids)
    return _C.embedding_gather(np.ascontiguousarray(table), ids)


def embedding_grad(ids, dy, input_dim):
    ids = _ref.check_ids("embedding_grad", ids)
    if dy.dtype != np.float32:
        return _ref.embedding_grad(ids, dy, input_dim)
    return _C.embedding_scatter_add(ids, np.ascontiguousarray(dy), int(input_dim))
