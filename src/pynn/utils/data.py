"""Keras' everyday data helpers: ``to_categorical``, ``pad_sequences``, ``set_random_seed``."""
import random

import numpy as np


def to_categorical(x, num_classes=None):
    """Integer class ids -> one-hot float32 rows (``keras.utils.to_categorical``).

    Args:
        x: array-like of non-negative ints, any shape; a trailing dimension of 1
            is dropped first, as Keras does.
        num_classes: total classes; default ``max(x) + 1``.
    Returns:
        float32 array of shape ``x.shape + (num_classes,)``.

    Example:
        >>> print(pynn.utils.to_categorical([0, 2], 3))
        [[1. 0. 0.]
         [0. 0. 1.]]
    """
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if not np.all(x == np.round(x)):
            raise ValueError("to_categorical: x must hold integer class ids, got non-integer floats")
        x = x.astype(np.int64)
    if x.dtype.kind not in "iub":
        raise TypeError(f"to_categorical: x must hold integer class ids, got dtype {x.dtype}")
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: class ids must be >= 0, got {int(x.min())}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and int(x.max()) >= num_classes:
        raise ValueError(f"to_categorical: class id {int(x.max())} is out of range for num_classes={num_classes}")
    out = np.zeros(x.shape + (int(num_classes),), np.float32)
    np.put_along_axis(out, x[..., None].astype(np.int64), 1.0, axis=-1)
    return out


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Lists of sequences -> one (num_sequences, maxlen) array (``keras.utils.pad_sequences``).

    Args:
        sequences: list of lists (or arrays) of numbers; items may have trailing
            feature dimensions, equal across sequences.
        maxlen: output length; default the longest sequence.
        dtype: output dtype (Keras' default ``"int32"``).
        padding / truncating: ``"pre"`` (default, Keras) or ``"post"``: where to
            add ``value`` / where to cut long sequences.
        value: the padding value.

    Returns:
        A ``(len(sequences), maxlen) + item shape`` array of ``dtype``.

    Example:
        >>> print(pynn.utils.pad_sequences([[1, 2], [3]], maxlen=3))
        [[0 1 2]
         [0 0 3]]
    """
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: padding and truncating must be 'pre' or 'post', got "
                         f"{padding!r}, {truncating!r}")
    seqs = [np.asarray(s) for s in sequences]
    lengths = [len(s) for s in seqs]
    if maxlen is None:
        maxlen = max(lengths, default=0)
    tail = next((s.shape[1:] for s in seqs if len(s)), ())
    out = np.full((len(seqs), maxlen) + tuple(tail), value, dtype=dtype)
    for i, s in enumerate(seqs):
        if not len(s) or maxlen == 0:
            continue
        if s.shape[1:] != tuple(tail):
            raise ValueError(f"pad_sequences: sequence {i} has item shape {s.shape[1:]}, expected {tuple(tail)}")
        s = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if padding == "post":
            out[i, :len(s)] = s
        else:
            out[i, maxlen - len(s):] = s
    return out


def set_random_seed(seed):
    """Seed Python's ``random``, NumPy's global generator and pynn's own (weight
    initialisation, shuffling, dropout), as ``keras.utils.set_random_seed`` does.

    Args:
        seed: an int.

    Returns:
        None.

    Example:
        >>> pynn.utils.set_random_seed(7)
        >>> a = np.random.rand(2)
        >>> pynn.utils.set_random_seed(7)
        >>> bool(np.array_equal(a, np.random.rand(2)))
        True
    """
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_random_seed: seed must be an int, got {type(seed).__name__}")
    from ..random import set_seed
    random.seed(int(seed))
    np.random.seed(int(seed))
    set_seed(int(seed))


class PyDataset:
    """Keras' PyDataset: subclass it, define ``__len__`` (batches per epoch) and
    ``__getitem__(index)`` returning a batch ``(x, y)``, ``(x, y, sample_weight)``
    or ``x``; pass it to ``fit``/``evaluate``/``predict``. ``fit`` calls
    ``on_epoch_end()`` after every epoch (shuffle there).

    Batches are produced in the training thread: ``workers`` > 1 and
    ``use_multiprocessing`` are not supported and raise.

    Example::

        class Batches(pynn.utils.PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size
            def __len__(self):
                return -(-len(self.x) // self.batch_size)
            def __getitem__(self, i):
                s = slice(i * self.batch_size, (i + 1) * self.batch_size)
                return self.x[s], self.y[s]
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        if workers not in (None, 1) or use_multiprocessing:
            raise ValueError("PyDataset: workers > 1 and use_multiprocessing are not supported by pynn; batches "
                             "are produced in the training thread")
        self.workers, self.use_multiprocessing, self.max_queue_size = 1, False, max_queue_size

    def __len__(self):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __len__ (the number of batches)")

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index) -> a batch")

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def on_epoch_end(self):
        """Called by fit after every epoch; override to reshuffle."""
