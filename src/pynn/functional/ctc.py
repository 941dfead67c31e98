"""CTC loss as a differentiable op (PyTorch's ``ctc_loss`` semantics, batch-major)."""
import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from .registry import register


@register("ctc_loss")
class CTCLoss(Function):
    """Per-sample CTC negative log-likelihood; the kernel returns its gradient too."""

    def forward(self, log_probs, labels, input_lengths, label_lengths, blank=0, zero_infinity=False):
        loss, self.grad = backend.current().ctc_loss(log_probs, labels, input_lengths, label_lengths, blank)
        if zero_infinity:
            bad = ~np.isfinite(loss)
            loss = np.where(bad, 0.0, loss).astype(loss.dtype)
            self.grad[bad] = 0.0
        return loss

    def backward(self, g):
        return g[:, None, None] * self.grad, None, None, None


def _ints(name, x, shape):
    a = np.asarray(getattr(x, "data", x))
    if a.dtype.kind not in "iu":
        raise TypeError(f"ctc_loss: {name} must be integers, got {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"ctc_loss: {name} has shape {a.shape}, expected {shape}")
    return a.astype(np.int64)


def ctc_loss(log_probs, labels, input_lengths, label_lengths, blank=0, reduction="mean", zero_infinity=False):
    """CTC loss of ``log_probs`` (N, T, C) (log-softmax outputs, batch-major like every
    pynn sequence) against padded ``labels`` (N, S).

    reduction: "mean" (each loss divided by its label length, then the batch mean,
    as torch), "sum" or "none". An impossible alignment (a label longer than its
    input allows) gives inf, or 0 with ``zero_infinity``; its gradient is zero.
    """
    lp = log_probs if isinstance(log_probs, Tensor) else Tensor(log_probs)
    if lp.ndim != 3:
        raise ValueError(f"ctc_loss: log_probs must be (N, T, C), got shape {lp.shape}")
    n, t, c = lp.shape
    labels = _ints("labels", labels, None).reshape(n, -1) if n else np.zeros((0, 0), np.int64)
    in_len = _ints("input_lengths", input_lengths, (n,))
    lab_len = _ints("label_lengths", label_lengths, (n,))
    if not 0 <= blank < c:
        raise ValueError(f"ctc_loss: blank={blank} is not a class of log_probs with {c} classes")
    if n and (in_len.min() < 1 or in_len.max() > t):
        raise ValueError(f"ctc_loss: input_lengths must be in [1, {t}], got {in_len.tolist()}")
    if n and (lab_len.min() < 0 or lab_len.max() > labels.shape[1]):
        raise ValueError(f"ctc_loss: label_lengths must be in [0, {labels.shape[1]}], got {lab_len.tolist()}")
    for i in range(n):
        row = labels[i, :lab_len[i]]
        if row.size and (row.min() < 0 or row.max() >= c or np.any(row == blank)):
            raise ValueError(f"ctc_loss: labels of sample {i} must be classes in [0, {c}) other than the blank "
                             f"{blank}, got {row.tolist()}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"ctc_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    losses = CTCLoss.apply(lp, labels, in_len, lab_len, blank=blank, zero_infinity=zero_infinity)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return (losses / np.maximum(lab_len, 1).astype(lp.dtype)).mean()
