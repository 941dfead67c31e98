"""Embedding lookup: a gather forward, a scatter-add backward."""
import numpy as np

__all__ = ["embedding", "embedding_grad"]


def check_ids(op, ids):
    """ids as an integer array; float or bool ids are a TypeError (they would truncate or mask)."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{op}: ids must be an integer array, got dtype {ids.dtype}")
    return ids


def embedding(table, ids):
    """table (V, D), integer ids (...) -> (..., D). Ids must lie in [0, V)."""
    ids = check_ids("embedding", ids)
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        bad = ids[(ids < 0) | (ids >= table.shape[0])].flat[0]
        raise ValueError(f"embedding: index {bad} is out of range for an embedding table of {table.shape[0]} rows")
    return table[ids]


def embedding_grad(ids, dy, input_dim):
    """d table: row v receives the sum of dy over every position whose id is v."""
    grad = np.zeros((input_dim, dy.shape[-1]), dy.dtype)
    ids = check_ids("embedding_grad", ids)
    if ids.size and (ids.min() < 0 or ids.max() >= input_dim):  # np.add.at would wrap -1 to the last row
        bad = ids[(ids < 0) | (ids >= input_dim)].flat[0]
        raise ValueError(f"embedding_grad: index {bad} is out of range for an embedding table of {input_dim} rows")
    np.add.at(grad, ids.reshape(-1), dy.reshape(ids.size, dy.shape[-1]))  # (-1, 0) cannot be inferred
    return grad
