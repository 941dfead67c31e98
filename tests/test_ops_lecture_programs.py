"""Lecture-style NumPy programs run unchanged on ``pynn.ops``: the name ``np`` is bound to NumPy, then
to pynn.ops (what swapping ``import numpy as np`` for ``import pynn.ops as np`` does), and every
result must match NumPy's: the same type (ndarray / NumPy scalar / Python object), dtype, shape,
strides and warnings, and the same values.

The programs are the kind found in CS231n / d2l / "neural networks from scratch" notes: perceptron and
logistic regression, a two-layer softmax MLP with manual backprop, an im2col CNN with max-pool masks and
col2im by ``np.add.at``, a vanilla RNN and an LSTM with manual BPTT and gradient clipping, batch norm and
Adam by hand, gradient checking in float64 with ``np.nditer`` / ``np.ndindex``, data handling, and
kNN / k-means / PCA / dropout / embeddings. Each takes the module as ``np`` and returns {name: value}.

Bit for bit with pynn's GEMM routes switched off (every other accelerated path -- reductions,
maximum/minimum, dot/where without NumPy's dispatcher -- gives NumPy's bits); with the routes on, float
results that went through a native float32 GEMM may differ by the GEMMs' rounding (1e-4 relative to the
largest element), at every thread count.
"""
import warnings

import numpy
import pytest

import pynn
import pynn.ops as ops
from pynn.ops import _dispatch as D


def perceptron_logreg(np):
    out = {}
    np.random.seed(0)
    N = 200
    X = np.random.randn(N, 2)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0.1, 1, -1)
    w = np.zeros(2)
    b = 0.0
    for epoch in range(5):
        for i in np.random.permutation(N):
            if y[i] * (np.dot(w, X[i]) + b) <= 0:
                w += y[i] * X[i]
                b += y[i]
    out["perc_w"], out["perc_b"] = w, b
    out["perc_acc"] = np.mean(np.sign(X.dot(w) + b) == y)
    # logistic regression, float32, batch GD
    Xf = X.astype(np.float32)
    yf = (y > 0).astype(np.float32)
    w = np.zeros((2, 1), dtype=np.float32)
    b = np.float32(0)
    lr = 0.5
    losses = []
    for it in range(50):
        z = Xf @ w + b
        p = 1.0 / (1.0 + np.exp(-z))
        eps = 1e-7
        loss = -np.mean(yf[:, None] * np.log(p + eps) + (1 - yf[:, None]) * np.log(1 - p + eps))
        losses.append(loss)
        dz = (p - yf[:, None]) / N
        dw = Xf.T @ dz
        db = np.sum(dz)
        w -= lr * dw
        b -= lr * db
    out["lr_w"], out["lr_b"], out["lr_losses"] = w, b, np.array(losses)
    out["lr_loss_type"] = losses[-1]
    pred = (1 / (1 + np.exp(-(Xf @ w + b))) > 0.5).ravel()
    out["lr_acc"] = np.mean(pred == (yf > 0))
    out["lr_sum_bool"] = np.sum(pred)
    out["lr_count"] = np.count_nonzero(pred)
    return out


def mlp_softmax(np):
    out = {}
    rng = np.random.default_rng(1)
    N, D, H, C = 256, 64, 128, 10
    X = rng.standard_normal((N, D)).astype(np.float32)
    y = rng.integers(0, C, N)
    W1 = (0.01 * np.random.RandomState(2).randn(D, H)).astype(np.float32)
    b1 = np.zeros(H, dtype=np.float32)
    W2 = (0.01 * np.random.RandomState(3).randn(H, C)).astype(np.float32)
    b2 = np.zeros((1, C), dtype=np.float32)
    reg, lr = 1e-3, 0.5
    losses = []
    for epoch in range(3):
        idx = rng.permutation(N)
        for batch in np.array_split(idx, N // 32):
            Xb, yb = X[batch], y[batch]
            z1 = np.dot(Xb, W1) + b1
            h = np.maximum(0, z1)
            scores = h.dot(W2) + b2
            scores -= np.max(scores, axis=1, keepdims=True)
            exp_s = np.exp(scores)
            probs = exp_s / np.sum(exp_s, axis=1, keepdims=True)
            n = Xb.shape[0]
            correct_logprobs = -np.log(probs[np.arange(n), yb])
            loss = np.sum(correct_logprobs) / n + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
            losses.append(loss)
            dscores = probs.copy()
            dscores[range(n), yb] -= 1
            dscores /= n
            dW2 = np.dot(h.T, dscores) + reg * W2
            db2 = np.sum(dscores, axis=0, keepdims=True)
            dh = np.dot(dscores, W2.T)
            dh[z1 <= 0] = 0
            dW1 = np.dot(Xb.T, dh) + reg * W1
            db1 = np.sum(dh, axis=0)
            for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
                p += -lr * g
    out["W1"], out["W2"], out["b1"], out["b2"] = W1, W2, b1, b2
    out["losses"] = np.array(losses)
    out["loss_type"] = losses[0]
    scores = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    pred = np.argmax(scores, axis=1)
    out["pred"] = pred
    out["acc"] = np.mean(pred == y)
    onehot = np.eye(C)[y]
    out["onehot"] = onehot
    out["onehot_f32"] = np.eye(C, dtype=np.float32)[y]
    out["conf"] = np.bincount(y * C + pred, minlength=C * C).reshape(C, C)
    return out


def _im2col_idx(np, C, H, W, kh, kw, pad, stride):
    OH = (H + 2 * pad - kh) // stride + 1
    OW = (W + 2 * pad - kw) // stride + 1
    i0 = np.repeat(np.arange(kh), kw)
    i0 = np.tile(i0, C)
    i1 = stride * np.repeat(np.arange(OH), OW)
    j0 = np.tile(np.arange(kw), kh * C)
    j1 = stride * np.tile(np.arange(OW), OH)
    i = i0.reshape(-1, 1) + i1.reshape(1, -1)
    j = j0.reshape(-1, 1) + j1.reshape(1, -1)
    k = np.repeat(np.arange(C), kh * kw).reshape(-1, 1)
    return k, i, j, OH, OW


def cnn_im2col(np):
    out = {}
    np.random.seed(4)
    N, C, H, W, F, k, pad, stride = 4, 3, 8, 8, 6, 3, 1, 1
    x = np.random.randn(N, C, H, W).astype(np.float32)
    w = (np.random.randn(F, C, k, k) * 0.1).astype(np.float32)
    b = np.zeros(F, np.float32)
    # forward via fancy-index im2col (CS231n fast_layers)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    kk, ii, jj, OH, OW = _im2col_idx(np, C, H, W, k, k, pad, stride)
    cols = xp[:, kk, ii, jj]
    cols = cols.transpose(1, 2, 0).reshape(k * k * C, -1)
    res = w.reshape(F, -1) @ cols + b.reshape(-1, 1)
    y = res.reshape(F, OH, OW, N).transpose(3, 0, 1, 2)
    out["conv_y"] = y
    # forward via stride tricks
    s = xp.strides
    patches = np.lib.stride_tricks.as_strided(
        xp, shape=(N, C, OH, OW, k, k), strides=(s[0], s[1], s[2] * stride, s[3] * stride, s[2], s[3]))
    y2 = np.einsum("ncijkl,fckl->nfij", patches, w) + b[None, :, None, None]
    out["conv_y_strided"] = y2
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    out["conv_y_swv"] = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    # naive loop conv for reference
    y3 = np.zeros((N, F, OH, OW), dtype=np.float32)
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    y3[n, f, i, j] = np.sum(xp[n, :, i:i + k, j:j + k] * w[f]) + b[f]
    out["conv_y_loop"] = y3
    # backward
    dout = np.random.randn(*y.shape).astype(np.float32)
    db = np.sum(dout, axis=(0, 2, 3))
    dout_r = dout.transpose(1, 2, 3, 0).reshape(F, -1)
    dw = (dout_r @ cols.T).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ dout_r
    dxp = np.zeros_like(xp)
    dcols_r = dcols.reshape(C * k * k, -1, N).transpose(2, 0, 1)
    np.add.at(dxp, (slice(None), kk, ii, jj), dcols_r)
    dx = dxp[:, :, pad:-pad, pad:-pad]
    out["db"], out["dw"], out["dx"] = db, dw, dx
    # max pool 2x2 with argmax masks
    yr = np.maximum(y, 0)
    Hp = OH // 2
    pool = np.zeros((N, F, Hp, Hp), np.float32)
    mask = np.zeros_like(yr)
    for i in range(Hp):
        for j in range(Hp):
            win = yr[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(N, F, -1)
            a = np.argmax(win, axis=2)
            pool[:, :, i, j] = np.max(win, axis=2)
            m = np.zeros_like(win)
            np.put_along_axis(m, a[..., None], 1, axis=2)
            mask[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2] = m.reshape(N, F, 2, 2)
    out["pool"], out["mask"] = pool, mask
    # reshape-based pool
    pool2 = yr.reshape(N, F, Hp, 2, Hp, 2).max(axis=(3, 5))
    out["pool2"] = pool2
    pool3 = np.max(np.max(yr.reshape(N, F, Hp, 2, Hp, 2), axis=3), axis=4)
    out["pool3"] = pool3
    dpool = np.ones_like(pool)
    dy = mask * np.repeat(np.repeat(dpool, 2, axis=2), 2, axis=3)
    out["dpool"] = dy
    out["pool_eq"] = np.all(pool == pool2)
    return out


def rnn_bptt(np):
    out = {}
    np.random.seed(5)
    vocab, H, T = 12, 16, 10
    data = np.random.randint(0, vocab, size=T + 1)
    Wxh = np.random.randn(H, vocab) * 0.01
    Whh = np.random.randn(H, H) * 0.01
    Why = np.random.randn(vocab, H) * 0.01
    bh, by = np.zeros((H, 1)), np.zeros((vocab, 1))
    hprev = np.zeros((H, 1))
    mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    mbh, mby = np.zeros_like(bh), np.zeros_like(by)
    losses = []
    for it in range(20):
        inputs, targets = data[:-1], data[1:]
        xs, hs, ys, ps = {}, {}, {}, {}
        hs[-1] = np.copy(hprev)
        loss = 0
        for t in range(len(inputs)):
            xs[t] = np.zeros((vocab, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            ys[t] = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(Why.T, dy) + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(Whh.T, dhraw)
        for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
            np.clip(dparam, -5, 5, out=dparam)
        for param, dparam, mem in zip([Wxh, Whh, Why, bh, by], [dWxh, dWhh, dWhy, dbh, dby],
                                      [mWxh, mWhh, mWhy, mbh, mby]):
            mem += dparam * dparam
            param += -0.1 * dparam / np.sqrt(mem + 1e-8)
        hprev = hs[len(inputs) - 1]
        losses.append(loss)
    out["losses"], out["Wxh"], out["Whh"], out["Why"], out["hprev"] = np.array(losses), Wxh, Whh, Why, hprev
    out["loss_type"] = losses[-1]
    # sampling
    h = hprev
    x = np.zeros((vocab, 1))
    x[0] = 1
    ixes = []
    rs = np.random.RandomState(9)
    for t in range(8):
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
        y = np.dot(Why, h) + by
        p = np.exp(y) / np.sum(np.exp(y))
        ix = rs.choice(range(vocab), p=p.ravel())
        x = np.zeros((vocab, 1))
        x[ix] = 1
        ixes.append(ix)
    out["sample"] = ixes
    return out


def lstm_bptt(np):
    out = {}
    np.random.seed(6)
    N, T, D, H = 4, 6, 5, 8
    x = np.random.randn(N, T, D).astype(np.float32)
    h0 = np.zeros((N, H), np.float32)
    Wx = (np.random.randn(D, 4 * H) / np.sqrt(D)).astype(np.float32)
    Wh = (np.random.randn(H, 4 * H) / np.sqrt(H)).astype(np.float32)
    b = np.zeros(4 * H, np.float32)

    def sigmoid(z):
        pos = z >= 0
        neg = ~pos
        zz = np.zeros_like(z)
        zz[pos] = np.exp(-z[pos])
        zz[neg] = np.exp(z[neg])
        top = np.ones_like(z)
        top[neg] = zz[neg]
        return top / (1 + zz)

    h, c = h0, np.zeros_like(h0)
    cache = []
    hs = np.zeros((N, T, H), np.float32)
    for t in range(T):
        a = x[:, t, :] @ Wx + h @ Wh + b
        ai, af, ao, ag = np.split(a, 4, axis=1)
        i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), np.tanh(ag)
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        cache.append((x[:, t, :], h, c, i, f, o, g, c_new))
        h, c = h_new, c_new
        hs[:, t, :] = h
    out["hs"] = hs
    dhs = np.random.randn(*hs.shape).astype(np.float32)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dx = np.empty_like(x)
    dh_next, dc_next = np.zeros((N, H), np.float32), np.zeros((N, H), np.float32)
    for t in reversed(range(T)):
        xt, hp, cp, i, f, o, g, cn = cache[t]
        dh = dhs[:, t, :] + dh_next
        tc = np.tanh(cn)
        do = dh * tc
        dc = dc_next + dh * o * (1 - tc ** 2)
        di, df, dg = dc * g, dc * cp, dc * i
        dc_next = dc * f
        da = np.hstack((di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g * g)))
        dx[:, t, :] = da @ Wx.T
        dWx += xt.T @ da
        dWh += hp.T @ da
        db += da.sum(axis=0)
        dh_next = da @ Wh.T
    for g_ in (dWx, dWh, db):
        np.clip(g_, -1.0, 1.0, out=g_)
    out["dx"], out["dWx"], out["dWh"], out["db"], out["dh0"] = dx, dWx, dWh, db, dh_next
    # gradient norm clipping
    gnorm = np.sqrt(sum(np.sum(g_ ** 2) for g_ in (dWx, dWh, db)))
    out["gnorm"] = gnorm
    out["gnorm_linalg"] = np.linalg.norm(np.concatenate([g_.ravel() for g_ in (dWx, dWh, db)]))
    stacked = np.vstack([dWx, dWh])
    out["stacked"] = stacked
    out["stack_axis1"] = np.stack([h, c], axis=1)
    return out


def batchnorm_adam(np):
    out = {}
    np.random.seed(7)
    N, D = 32, 20
    x = (np.random.randn(N, D) * 3 + 1).astype(np.float32)
    gamma, beta = np.ones(D, np.float32), np.zeros(D, np.float32)
    eps = 1e-5
    mu = np.mean(x, axis=0)
    xmu = x - mu
    var = np.mean(xmu ** 2, axis=0)
    sqrtvar = np.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    y = gamma * xhat + beta
    out["bn_y"], out["bn_mu"], out["bn_var"] = y, mu, var
    out["bn_var_np"] = np.var(x, axis=0)
    out["bn_std_np"] = np.std(x, axis=0, keepdims=True)
    dout = np.random.randn(N, D).astype(np.float32)
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dx = (1.0 / N) * ivar * (N * dxhat - np.sum(dxhat, axis=0) - xhat * np.sum(dxhat * xhat, axis=0))
    out["bn_dx"], out["bn_dgamma"], out["bn_dbeta"] = dx, dgamma, dbeta
    # keepdims form, spatial BN (NCHW)
    z = np.random.randn(4, 3, 5, 5)
    m = z.mean(axis=(0, 2, 3), keepdims=True)
    v = z.var(axis=(0, 2, 3), keepdims=True)
    out["sbn"] = (z - m) / np.sqrt(v + eps)
    out["sbn_m2"] = np.mean(z, axis=(0, 2, 3), keepdims=True)
    # running averages, in place
    running_mean = np.zeros(D, np.float32)
    running_mean *= 0.9
    running_mean += 0.1 * mu
    out["running_mean"] = running_mean
    # Adam by hand, float64, with out=
    w = np.random.randn(10, 3)
    m, v = np.zeros_like(w), np.zeros_like(w)
    b1, b2, lr = 0.9, 0.999, 1e-2
    traj = []
    for t in range(1, 51):
        g = 2 * (w - 1.5) + 0.1 * np.sign(w)
        np.multiply(m, b1, out=m)
        np.add(m, (1 - b1) * g, out=m)
        v = b2 * v + (1 - b2) * np.square(g)
        mhat = m / (1 - b1 ** t)
        vhat = v / (1 - b2 ** t)
        w -= lr * mhat / (np.sqrt(vhat) + 1e-8)
        traj.append(np.linalg.norm(w - 1.5))
    out["adam_w"], out["adam_traj"] = w, np.array(traj)
    out["adam_traj_last"] = traj[-1]
    # float32 Adam with in-place ufuncs
    w32 = np.random.randn(64).astype(np.float32)
    m32 = np.zeros_like(w32)
    v32 = np.zeros_like(w32)
    tmp = np.empty_like(w32)
    for t in range(1, 11):
        g = w32 * 2
        m32 *= 0.9
        m32 += 0.1 * g
        np.square(g, out=tmp)
        v32 *= 0.999
        v32 += 0.001 * tmp
        np.sqrt(v32 / (1 - 0.999 ** t), out=tmp)
        tmp += 1e-8
        w32 -= 1e-2 * (m32 / (1 - 0.9 ** t)) / tmp
    out["adam32"] = w32
    out["adam32_maxabs"] = np.max(np.abs(w32))
    out["adam32_minmax"] = np.minimum(np.maximum(w32, -0.5), 0.5)
    return out


def gradcheck(np):
    out = {}
    np.random.seed(8)

    def f(W, X, y):
        s = X.dot(W)
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        return -np.log(p[np.arange(X.shape[0]), y]).mean(), p

    X = np.random.randn(5, 4)
    y = np.array([0, 2, 1, 2, 0])
    W = np.random.randn(4, 3) * 0.1
    loss, p = f(W, X, y)
    dp = p.copy()
    dp[np.arange(5), y] -= 1
    grad = X.T.dot(dp) / 5
    num = np.zeros_like(W)
    h = 1e-5
    it = np.nditer(W, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = W[ix]
        W[ix] = old + h
        fp, _ = f(W, X, y)
        W[ix] = old - h
        fm, _ = f(W, X, y)
        W[ix] = old
        num[ix] = (fp - fm) / (2 * h)
        it.iternext()
    rel = np.linalg.norm(grad - num) / np.linalg.norm(grad + num)
    out["loss"], out["grad"], out["num"], out["rel"] = loss, grad, num, rel
    out["rel_ok"] = rel < 1e-7
    num2 = np.zeros_like(W)
    for ix in np.ndindex(*W.shape):
        old = W[ix]
        W[ix] = old + h
        fp = f(W, X, y)[0]
        W[ix] = old - h
        fm = f(W, X, y)[0]
        W[ix] = old
        num2[ix] = (fp - fm) / (2 * h)
    out["num2"] = num2
    out["allclose"] = np.allclose(num, num2)
    out["isclose"] = np.isclose(grad, num, rtol=1e-5, atol=1e-8)
    rel_err = np.max(np.abs(grad - num) / np.maximum(1e-8, np.abs(grad) + np.abs(num)))
    out["rel_err"] = rel_err
    # 1-D dot, scalar results, python floats
    v = np.random.randn(7)
    out["vdot"] = np.dot(v, v)
    out["vmat"] = v @ v
    out["outer"] = np.outer(v, v[:3])
    out["norm_ord"] = np.linalg.norm(W, ord="fro"), np.linalg.norm(v, 1), np.linalg.norm(W, axis=0)
    out["pyfloat_exp"] = np.exp(1.0)
    out["pyint_sum"] = np.sum([1, 2, 3])
    out["pylist_mean"] = np.mean([1.0, 2.0, 4.0])
    out["max_list"] = np.max([3, 1, 2])
    out["sqrt_int"] = np.sqrt(16)
    out["log_0d"] = np.log(np.array(2.0, np.float32))
    out["sum_0d"] = np.sum(np.array(2.0, np.float32))
    out["max_0d"] = np.max(np.float32(3.0))
    out["mean_f32_scalar"] = np.mean(np.float32(3.0))
    return out


def data_handling(np):
    out = {}
    np.random.seed(10)
    N, C = 50, 4
    X = np.random.rand(N, 3)
    y = np.random.randint(0, C, N)
    perm = np.random.permutation(N)
    Xs, ys = X[perm], y[perm]
    out["perm"], out["Xs"] = perm, Xs
    a = np.arange(10)
    np.random.shuffle(a)
    out["shuffled"] = a
    splits = np.array_split(Xs, 3)
    out["split_shapes"] = [s.shape for s in splits]
    out["split0"] = splits[0]
    out["bincount"] = np.bincount(y)
    out["bincount_w"] = np.bincount(y, weights=X[:, 0])
    u, counts = np.unique(y, return_counts=True)
    out["unique"], out["counts"] = u, counts
    out["unique_inv"] = np.unique(y, return_inverse=True)[1]
    out["onehot"] = np.eye(C)[y]
    out["mean_keep"] = np.mean(X, axis=1, keepdims=True)
    out["mean_ax0"] = np.mean(X, 0)
    out["sum_pos_axis"] = np.sum(X, 1)
    out["max_pos_axis"] = np.max(X, 0)
    out["sum_keep_int"] = np.sum(X, axis=0, keepdims=1)
    out["sum_axis_npint"] = np.sum(X, axis=np.int64(1))
    out["mean_bool"] = np.mean(y == 2)
    out["sum_bool_axis"] = np.sum(X > 0.5, axis=0)
    out["sum_int"] = np.sum(y), np.sum(y, axis=0)
    out["mean_int"] = np.mean(y)
    out["max_int"] = np.max(y), np.min(y, axis=0)
    Xn = (X - X.mean(axis=0)) / X.std(axis=0)
    out["Xn"] = Xn
    out["concat"] = np.concatenate([X, y[:, None]], axis=1)
    out["concat_none"] = np.concatenate((X[:2], X[3:5]), axis=None)
    out["stack"] = np.stack([X[:, 0], X[:, 1]])
    out["vstack"] = np.vstack([X[:2], X[2:4]])
    out["hstack"] = np.hstack([y[:3], y[3:6]])
    out["column_stack"] = np.column_stack([X[:, 0], y])
    out["where1"] = np.where(y == 1)[0]
    out["where3"] = np.where(X > 0.5, X, 0.0)
    out["where3_int"] = np.where(y > 1, 1, -1)
    out["where3_mixed"] = np.where(y > 1, X[:, 0], -1)
    out["nonzero"] = np.nonzero(y)
    out["isclose"] = np.isclose(X, X + 1e-9)
    out["allclose"] = np.allclose(X, X + 1e-9)
    out["prod"] = np.prod(X[:3], axis=0), np.prod([1, 2, 3, 4])
    out["cumsum"] = np.cumsum(y), np.cumsum(X, axis=0)
    out["sign"] = np.sign(X - 0.5)
    out["argmax"] = np.argmax(X, axis=1), np.argmax(X), np.argmin(X, axis=0)
    out["argsort"] = np.argsort(X[:, 0]), np.sort(y)[::-1]
    out["fancy"] = X[[0, 2, 4], [1, 1, 2]], X[y == 0], X[:, [2, 0]]
    Z = X.copy()
    Z[Z < 0.2] = 0
    Z[np.arange(N), y % 3] += 1.0
    out["Z"] = Z
    out["clip"] = np.clip(X, 0.2, 0.8), np.clip(y, 1, 2)
    out["abs_neg"] = np.abs(-y), np.absolute(X - 0.5)
    out["round"] = np.round(X, 2), np.floor(X * 3), np.ceil(X * 3)
    out["linspace"] = np.linspace(0, 1, 5), np.logspace(0, 2, 3)
    xx, yy = np.meshgrid(np.arange(3), np.arange(2))
    out["meshgrid"] = xx, yy
    out["c_"] = np.c_[xx.ravel(), yy.ravel()]
    out["r_"] = np.r_[0:3, 7]
    out["tile_repeat"] = np.tile([1, 2], 3), np.repeat([1, 2], 2)
    out["full"] = np.full((2, 2), 7.0), np.ones((2, 3), dtype=int), np.empty((0, 3)).shape
    out["scalar_ops"] = np.float32(1.5) * 2, np.float64(2) ** 0.5, np.int64(3) / 2
    out["maximum_list"] = np.maximum(0, [-1, 2, -3]), np.minimum([1.5, -2], 0)
    out["maximum_int"] = np.maximum(y, 2)
    out["max_f32_int"] = np.maximum(np.arange(4, dtype=np.float32), 2)
    out["exp_int"] = np.exp(y[:4]), np.log(np.arange(1, 5))
    out["dot_int"] = np.dot(y[:4], y[:4]), np.dot(np.arange(6).reshape(2, 3), np.arange(3))
    out["matmul_vec"] = np.matmul(X[:3], np.ones(3))
    out["power"] = np.power(X, 2), np.power(2, y[:4]), X ** 0.5
    out["divide"] = np.divide(y, 2), y // 2, np.divide(1, 3)
    out["transpose"] = np.transpose(X[:2]), X[:2].T, np.transpose(np.zeros((2, 3, 4)), (2, 0, 1)).shape
    out["reshape"] = np.reshape(X, (3, -1)), np.reshape(X, -1, order="F")[:5]
    out["squeeze_expand"] = np.squeeze(X[:, :1]).shape, np.expand_dims(y, 1).shape, X[np.newaxis].shape
    out["zeros_like_int"] = np.zeros_like(y), np.ones_like(X, dtype=np.float32)
    out["any_all"] = np.any(y > 2), np.all(X >= 0), np.isnan(X).any()
    out["nan"] = np.nanmean(np.array([1.0, np.nan, 3.0])), np.isinf(np.array([np.inf, 1.0]))
    out["log_softmax"] = X - np.log(np.sum(np.exp(X), axis=1, keepdims=True))
    out["logsumexp"] = np.logaddexp(X[:, 0], X[:, 1])
    out["float32_mean"] = np.mean(X.astype(np.float32)), np.mean(X.astype(np.float32), axis=0)
    out["std_f32"] = np.std(X.astype(np.float32)), np.var(X.astype(np.float32), axis=1, ddof=1)
    out["amax"] = np.amax(X, axis=1), np.amin(X)
    out["sum_list_of_arrays"] = np.sum([X[:2], X[2:4]], axis=0)
    out["mean_tuple_axis"] = np.mean(np.zeros((2, 3, 4)) + 1, axis=(0, 2))
    out["sum_generator"] = np.sum(np.array([i * i for i in range(5)]))
    out["histogram"] = np.histogram(X[:, 0], bins=5)
    out["percentile"] = np.percentile(X[:, 0], [25, 50, 75]), np.median(X, axis=0)
    out["split_eq"] = [s.shape for s in np.split(np.arange(12), 4)]
    out["diag_trace"] = np.diag(np.arange(3)), np.trace(np.eye(3))
    out["einsum"] = np.einsum("ij,ij->i", X, X), np.einsum("ij->j", X)
    out["dtypes"] = np.zeros(3).dtype, np.array([1, 2]).dtype, np.float32, np.array(1.0, dtype="float32").dtype
    out["astype_int"] = (X * 10).astype(np.int32), np.asarray([1, 2], dtype=np.float32)
    out["arange_float"] = np.arange(0, 1, 0.25), np.arange(5, dtype=np.float32)
    out["int_div_mean"] = np.sum(y) / len(y)
    out["isscalar"] = np.isscalar(np.sum(X)), np.ndim(X), np.size(X), np.shape(X)
    return out




def knn_kmeans_pca_dropout(np):
    out = {}
    np.random.seed(11)
    Xtr = np.random.randn(60, 8).astype(np.float32)
    ytr = np.random.randint(0, 3, 60)
    Xte = np.random.randn(10, 8).astype(np.float32)
    d = np.sqrt(np.sum(Xte ** 2, axis=1)[:, np.newaxis] + np.sum(Xtr ** 2, axis=1) - 2 * Xte.dot(Xtr.T))
    out["dists"] = d
    d2 = np.linalg.norm(Xte[:, None, :] - Xtr[None, :, :], axis=2)
    out["dists_norm"] = d2
    nn = np.argsort(d2, axis=1)[:, :5]
    votes = ytr[nn]
    out["knn_pred"] = np.array([np.bincount(v, minlength=3).argmax() for v in votes])
    folds = np.array_split(np.arange(60), 5)
    out["folds"] = [f.tolist() for f in folds]
    # k-means
    X = np.vstack([np.random.randn(20, 2) + c for c in ([0, 0], [5, 5], [0, 5])])
    cent = X[np.random.choice(len(X), 3, replace=False)]
    for it in range(10):
        lab = np.argmin(((X[:, None, :] - cent[None]) ** 2).sum(axis=2), axis=1)
        cent = np.array([X[lab == k].mean(axis=0) if np.any(lab == k) else cent[k] for k in range(3)])
    out["kmeans"], out["labels"] = cent, lab
    out["inertia"] = np.sum((X - cent[lab]) ** 2)
    # PCA
    Xc = X - X.mean(axis=0)
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    out["pca_var"] = S ** 2 / (len(X) - 1)
    out["cov"] = np.cov(Xc, rowvar=False)
    w, V = np.linalg.eigh(out["cov"])
    out["eig"] = w
    out["explained"] = np.cumsum(S ** 2) / np.sum(S ** 2)
    # inverted dropout
    h = np.random.randn(16, 32).astype(np.float32)
    p = 0.5
    mask = (np.random.rand(*h.shape) < p) / p
    out["dropout"] = h * mask
    out["mask_dtype"] = mask.dtype
    # embedding lookup + scatter-add backward
    E = np.random.randn(20, 4)
    idx = np.array([[1, 3, 3], [0, 19, 1]])
    emb = E[idx]
    dE = np.zeros_like(E)
    np.add.at(dE, idx, np.ones_like(emb))
    out["emb"], out["dE"] = emb, dE
    # linear regression closed form
    A = np.c_[np.ones(30), np.random.rand(30)]
    yv = A @ np.array([1.0, 2.0]) + 0.01 * np.random.randn(30)
    out["lstsq"] = np.linalg.lstsq(A, yv, rcond=None)[0]
    out["normal_eq"] = np.linalg.solve(A.T @ A, A.T @ yv)
    out["inv"] = np.linalg.inv(A.T @ A)
    # softmax with temperature, float32 scalars
    logits = np.array([2.0, 1.0, 0.1], dtype=np.float32)
    T = np.float32(0.5)
    e = np.exp(logits / T)
    out["softmax_T"] = e / e.sum()
    out["entropy"] = -np.sum(out["softmax_T"] * np.log(out["softmax_T"]))
    out["maximum_accumulate"] = np.maximum.accumulate(np.array([1, 3, 2, 5, 4]))
    out["minimum_f32_list"] = np.minimum(logits, [1.0, 1.0, 1.0])
    return out


PROGRAMS = [perceptron_logreg, mlp_softmax, cnn_im2col, rnn_bptt, lstm_bptt, batchnorm_adam, gradcheck,
            data_handling, knn_kmeans_pca_dropout]


def _run(program, module):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = program(module)
    return result, [(w.category, str(w.message)) for w in caught]


def _same(ours, theirs, where, tol):
    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} vs NumPy's {type(theirs).__name__}"
    if isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (o, t) in enumerate(zip(ours, theirs)):
            _same(o, t, f"{where}[{i}]", tol)
    elif isinstance(theirs, (numpy.ndarray, numpy.generic)):
        assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} vs NumPy's {theirs.dtype}"
        assert numpy.shape(ours) == numpy.shape(theirs), where
        if isinstance(theirs, numpy.ndarray):
            assert ours.strides == theirs.strides, f"{where}: strides {ours.strides} vs NumPy's {theirs.strides}"
        if tol and theirs.dtype.kind == "f" and theirs.size:
            scale = max(1.0, float(numpy.max(numpy.abs(theirs))))
            numpy.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale, err_msg=where)
        else:
            numpy.testing.assert_array_equal(ours, theirs, err_msg=where)
    else:
        assert ours == theirs or (ours != ours and theirs != theirs), f"{where}: {ours!r} vs NumPy's {theirs!r}"


def _check(program, tol):
    ours, w_ours = _run(program, ops)
    theirs, w_theirs = _run(program, numpy)
    assert w_ours == w_theirs
    assert ours.keys() == theirs.keys()
    for key in theirs:
        _same(ours[key], theirs[key], f"{program.__name__}: {key}", tol)


@pytest.fixture
def gemm_routes_off():
    old = D.set_limits(GEMM_MIN_MACS=1 << 62, GEMM_NT_MAX_MACS=0, GEMM_COLMAJOR_MAX_N=0)
    yield
    D.set_limits(**old)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_lecture_program_gives_numpys_bits_with_gemm_routes_off(program, gemm_routes_off):
    _check(program, tol=0.0)


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 7, 8])
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_lecture_program_matches_numpy_at_every_thread_count(program, threads, restore_threads):
    pynn.set_num_threads(threads)
    _check(program, tol=1e-4)


def test_lecture_program_runs_from_its_source_with_only_the_import_line_changed():
    # The literal swap: the program's own source, executed with ``import pynn.ops as np`` at the top.
    import inspect
    src = "import numpy as np\n" + inspect.getsource(mlp_softmax) + "\nresult = mlp_softmax(np)\n"
    ns_np, ns_ops = {}, {}
    exec(compile(src, "<lecture>", "exec"), ns_np)
    exec(compile(src.replace("import numpy as np", "import pynn.ops as np", 1), "<lecture>", "exec"), ns_ops)
    assert ns_ops["np"] is ops
    for key in ns_np["result"]:
        _same(ns_ops["result"][key], ns_np["result"][key], key, 1e-4)


def _numpy_rnn_example():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "numpy_rnn.py"
    spec = importlib.util.spec_from_file_location("numpy_rnn", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("dtype,hidden,batch", [("float32", 128, 32), ("float32", 24, 8), ("float64", 24, 8)])
def test_numpy_rnn_example_trains_the_same_with_pynn_ops_as_np(dtype, hidden, batch, restore_threads):
    """examples/numpy_rnn.py (LSTM, manual BPTT, clipping, Adam): only the module bound to ``np`` changes.
    float64 and the small float32 model stay on NumPy's GEMMs: the same losses bit for bit."""
    mod = _numpy_rnn_example()
    for threads in (1, 2):
        pynn.set_num_threads(threads)
        mod.use("numpy")
        loss_np, _ = mod.run(hidden, batch, steps=8, epochs=2, dtype=dtype)
        mod.use("pynn")
        assert mod.np is ops
        loss_ops, _ = mod.run(hidden, batch, steps=8, epochs=2, dtype=dtype)
        mod.use("numpy")
        assert loss_np[-1] < loss_np[0]  # it learns
        if dtype == "float64" or hidden < 64:
            assert loss_ops == loss_np
        else:
            numpy.testing.assert_allclose(loss_ops, loss_np, rtol=1e-4)
