"""Connectionist Temporal Classification (Graves et al. 2006), forward-backward
in log space, vectorised over the batch and the extended label; a loop over time.

The extended label l' puts a blank around every label: [b, l1, b, l2, ..., b]
(length 2S+1). α_t(s) sums the probability of every path prefix that ends in
l'(s) at time t, β_t(s) every suffix; both include the emission at t.
"""
import numpy as np

__all__ = ["ctc_loss"]

NEG_INF = -np.inf


def _logsumexp(*xs):
    m = np.maximum.reduce(xs)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(sum(np.exp(x - safe) for x in xs))


def ctc_loss(log_probs, labels, input_lengths, label_lengths, blank=0):
    """Per-sample negative log-likelihood and its gradient w.r.t. log_probs.

    log_probs (N, T, C) (log-softmax outputs), labels (N, S) padded integer ids,
    input_lengths (N,), label_lengths (N,). Returns (loss (N,), grad (N, T, C)):
    grad = −exp(α+β − log_probs + loss) summed over the positions of each class,
    zero past a sample's input length and for impossible alignments (loss = inf).
    """
    lp = np.asarray(log_probs, np.float64)
    n, t_max, _ = lp.shape
    labels = np.asarray(labels, np.int64).reshape(n, -1)
    in_len = np.asarray(input_lengths, np.int64)
    lab_len = np.asarray(label_lengths, np.int64)
    s_max = 2 * labels.shape[1] + 1
    ext = np.full((n, s_max), blank, np.int64)
    ext[:, 1::2] = labels
    ext_len = 2 * lab_len + 1
    # l'(s) may follow l'(s−2) directly when it is a label different from it.
    skip = np.zeros((n, s_max), bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    emit = np.take_along_axis(lp, np.broadcast_to(ext[:, None, :], (n, t_max, s_max)), axis=2)   # (N, T, S')
    rows = np.arange(n)

    alpha = np.full((n, t_max, s_max), NEG_INF)
    alpha[:, 0, 0] = emit[:, 0, 0]
    if s_max > 1:  # labels padded to width 0: only the blank path exists
        alpha[:, 0, 1] = np.where(ext_len > 1, emit[:, 0, 1], NEG_INF)
    for t in range(1, t_max):
        prev = alpha[:, t - 1]
        shift1 = np.concatenate([np.full((n, 1), NEG_INF), prev[:, :-1]], axis=1)
        shift2 = np.concatenate([np.full((n, 2), NEG_INF), prev[:, :-2]], axis=1)[:, :s_max]  # s_max 1: no labels
        step = _logsumexp(prev, shift1, np.where(skip, shift2, NEG_INF)) + emit[:, t]
        alpha[:, t] = np.where((t < in_len)[:, None], step, prev)        # frozen past the input length

    last = alpha[rows, in_len - 1]
    end1 = last[rows, ext_len - 1]
    end2 = np.where(ext_len > 1, last[rows, np.maximum(ext_len - 2, 0)], NEG_INF)
    loss = -_logsumexp(end1, end2)

    beta = np.full((n, t_max, s_max), NEG_INF)
    for t in range(t_max - 1, -1, -1):
        at_end = t == in_len - 1
        init = np.full((n, s_max), NEG_INF)   # β at a sample's last step: end on the last blank or label
        init[rows, ext_len - 1] = emit[rows, t, ext_len - 1]
        two = ext_len > 1
        init[rows[two], ext_len[two] - 2] = emit[rows[two], t, ext_len[two] - 2]
        if t + 1 < t_max:
            nxt = beta[:, t + 1]
            shift1 = np.concatenate([nxt[:, 1:], np.full((n, 1), NEG_INF)], axis=1)
            shift2 = np.concatenate([nxt[:, 2:], np.full((n, 2), NEG_INF)], axis=1)[:, :s_max]
            skip_next = np.concatenate([skip[:, 2:], np.zeros((n, 2), bool)], axis=1)[:, :s_max]
            step = _logsumexp(nxt, shift1, np.where(skip_next, shift2, NEG_INF)) + emit[:, t]
        else:
            step = np.full((n, s_max), NEG_INF)
        beta[:, t] = np.where(at_end[:, None], init, np.where((t < in_len - 1)[:, None], step, NEG_INF))

    grad = np.zeros_like(lp)
    finite = np.isfinite(loss)
    with np.errstate(invalid="ignore", over="ignore"):
        occupancy = np.exp(alpha + beta - emit + np.where(finite, loss, 0.0)[:, None, None])   # P(at s at t)
    occupancy[~finite] = 0.0
    occupancy = np.nan_to_num(occupancy, nan=0.0)
    idx_n = np.broadcast_to(rows[:, None, None], occupancy.shape)
    idx_t = np.broadcast_to(np.arange(t_max)[None, :, None], occupancy.shape)
    idx_c = np.broadcast_to(ext[:, None, :], occupancy.shape)
    np.add.at(grad, (idx_n, idx_t, idx_c), -occupancy)
    return loss.astype(log_probs.dtype), grad.astype(log_probs.dtype)
