"""Batch statistics over every rank's slice of the global batch
(``BatchNormalization(synchronized=True)``), differentiable.

Forward: one allreduce of [sum x, sum x^2, count] (float64), then
mean = S1/N and var = S2/N - mean^2. Backward: the incoming gradients with
respect to (mean, var) come from this rank's loss only, but the global mean and
variance feed every rank's loss, so they are summed across ranks (one more
allreduce) before the local dx = (g_mean + 2 g_var (x - mean)) / N.

The training loop later scales this rank's weight gradients by its share w_r of
the global batch (so uneven slices give the global mean loss). The summed
statistic gradient must therefore enter as sum_r' w_r' g_r' / w_r: each rank
weighs its contribution by its share before the sum and divides by its own
share after it, and the later scaling restores exactly the global gradient.
"""
import numpy as np

from ..autograd.engine import Function


class GlobalMoments(Function):
    """(x, axes) -> stacked [mean, var] over ``axes`` and all ranks, shape (2, *kept dims)."""

    def forward(self, x, axes, strategy):
        self.axes, self.strategy, self.dtype = axes, strategy, x.dtype
        xd = x.astype(np.float64)
        s1 = xd.sum(axis=axes, keepdims=True)
        s2 = np.square(xd).sum(axis=axes, keepdims=True)
        count = float(np.prod([x.shape[a] for a in axes]))
        buf = np.concatenate([s1.ravel(), s2.ravel(), [count]])
        strategy.comm.Allreduce(strategy._MPI.IN_PLACE, buf)
        k = s1.size
        n = max(buf[-1], 1.0)
        mean = (buf[:k] / n).reshape(s1.shape)
        var = np.maximum(buf[k:2 * k].reshape(s1.shape) / n - np.square(mean), 0.0)
        self.n, self.mean, self.x = n, mean, x
        return np.stack([mean, var]).astype(x.dtype)

    def backward(self, g):
        share = self.strategy.step_scale
        buf = np.ascontiguousarray(g, dtype=np.float64).ravel() * share
        self.strategy.comm.Allreduce(self.strategy._MPI.IN_PLACE, buf)
        if share > 0:
            buf /= share
        g_all = buf.reshape(g.shape)
        dx = (g_all[0] + 2.0 * g_all[1] * (self.x.astype(np.float64) - self.mean)) / self.n
        return dx.astype(self.dtype)
