"""Native CTC: per-sample forward-backward in C++ (double inside), threads over the batch."""
import numpy as np

from pynn import _C

from ..numpy import ctc as _ref

__all__ = ["ctc_loss"]


def ctc_loss(log_probs, labels, input_lengths, label_lengths, blank=0):
    if log_probs.dtype != np.float32:
        return _ref.ctc_loss(log_probs, labels, input_lengths, label_lengths, blank)
    n = log_probs.shape[0]
    return _C.ctc_loss(np.ascontiguousarray(log_probs), np.asarray(labels, np.int64).reshape(n, -1),
                       np.asarray(input_lengths, np.int64), np.asarray(label_lengths, np.int64), int(blank))
