"""The native LSTM/GRU time loops (csrc/rnn/recurrent.cpp over the AVX2 block passes of
csrc/rnn/cells_avx2.cpp): equal at every thread count, equal to the numpy reference for
widths with vector tails and for saturated gates, and the no-grad path that skips saving
the gates computes the same states."""
import numpy as np
import pytest

import pynn
from pynn.autograd import Tensor

nb = pytest.importorskip("pynn.backend.native")

THREADS = (1, 2, 3, 4, 7, 8)


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _lstm_case(n=24, t=9, u=72, seed=0, xscale=1.0):
    r = np.random.default_rng(seed)
    xw = _f32(r, n, t, 4 * u, scale=xscale)
    return xw, _f32(r, n, u), _f32(r, n, u), _f32(r, u, 4 * u, scale=0.15)


def _per_thread(fn):
    out = {}
    for k in THREADS:
        pynn.set_num_threads(k)
        out[k] = fn()
    return out


@pytest.mark.parametrize("u", [20, 72, 160])
@pytest.mark.parametrize("masked", [False, True])
def test_lstm_forward_and_backward_are_bit_identical_at_every_thread_count(restore_threads, u, masked):
    """Chunk widths change with the thread count (16-unit multiples, ragged last chunk);
    every element still goes through the same instructions, so all but the split-K weight
    gradient are bit-identical; dU agrees to rounding."""
    xw, h0, c0, rk = _lstm_case(u=u, seed=u)
    mask = (np.arange(xw.shape[1])[None, :] < np.random.default_rng(1).integers(1, xw.shape[1] + 1, xw.shape[0])[:, None]
            if masked else None)
    dhs = _f32(np.random.default_rng(2), *xw.shape[:2], u)
    dcl = _f32(np.random.default_rng(3), xw.shape[0], u)

    def run():
        hs, cs, gates = nb.lstm(xw, h0, c0, rk, mask)
        return (hs, cs, gates) + tuple(nb.lstm_grad(dhs, dcl, h0, c0, hs, cs, gates, rk, mask))

    res = _per_thread(run)
    ref = res[1]
    for k, out in res.items():
        for i, (a, b) in enumerate(zip(ref[:-1], out[:-1])):
            np.testing.assert_array_equal(b, a, err_msg=f"output {i} at {k} threads")
        np.testing.assert_allclose(out[-1], ref[-1], rtol=1e-4, atol=1e-4, err_msg=f"dU at {k} threads")


def test_gru_forward_and_backward_are_bit_identical_at_every_thread_count(restore_threads):
    r = np.random.default_rng(4)
    n, t, u = 20, 8, 72
    xw, h0, rk, rb = _f32(r, n, t, 3 * u), _f32(r, n, u), _f32(r, u, 3 * u, scale=0.15), _f32(r, 3 * u)
    dhs = _f32(r, n, t, u)

    def run():
        hs, saved = nb.gru(xw, h0, rk, rb)
        return (hs, saved) + tuple(nb.gru_grad(dhs, h0, hs, saved, rk))

    res = _per_thread(run)
    for k, out in res.items():
        for i in (0, 1, 2, 3):  # hs, saved, dxw, dh0
            np.testing.assert_array_equal(out[i], res[1][i], err_msg=f"output {i} at {k} threads")
        for i in (4, 5):  # dU (split-K), drbias
            np.testing.assert_allclose(out[i], res[1][i], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("u,xscale", [(13, 1.0), (20, 1.0), (128, 1.0), (24, 40.0)])
def test_lstm_native_block_pass_matches_numpy_reference(restore_threads, u, xscale):
    """Widths with a masked-vector tail (13, 20), the benchmark's 128, and gates driven far
    into saturation (pre-activations ~ +-100: exp clamping, sigmoid's e/(1+e) branch)."""
    pynn.set_num_threads(2)
    xw, h0, c0, rk = _lstm_case(n=11, t=7, u=u, seed=3, xscale=xscale)
    dhs = _f32(np.random.default_rng(5), 11, 7, u)
    dcl = _f32(np.random.default_rng(6), 11, u)
    with pynn.use_backend("numpy"):
        ref = pynn.backend.current()
        hs, cs, gates = ref.lstm(xw, h0, c0, rk)
        want = (hs, cs, gates) + tuple(ref.lstm_grad(dhs, dcl, h0, c0, hs, cs, gates, rk))
    hs, cs, gates = nb.lstm(xw, h0, c0, rk)
    got = (hs, cs, gates) + tuple(nb.lstm_grad(dhs, dcl, h0, c0, hs, cs, gates, rk))
    for i, (a, b) in enumerate(zip(want, got)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=f"output {i}")


@pytest.mark.parametrize("u", [44, 128])
def test_lstm_native_gate_activations_are_float32_accurate(restore_threads, u):
    """The AVX2 cell's sigmoid (one exp, one reciprocal) and rational tanh against float64, at
    relative 1e-6 (measured max over every 7th float of [-100, 100]: 2.0e-7 and 3.4e-7), from
    tiny to saturating pre-activations. With h0 = 0 the first step's pre-activations are xw's
    own values (0·U adds exact zeros), so the saved gates are the activations of known inputs."""
    pynn.set_num_threads(2)
    mag = np.concatenate([[0.0], np.logspace(-7, np.log10(95.0), 4 * u * 3 // 2 - 1)])
    vals = np.concatenate([mag, -mag]).astype(np.float32)
    n = vals.size // (4 * u)
    xw = vals[: n * 4 * u].reshape(n, 1, 4 * u)
    xw = xw[np.random.default_rng(0).permutation(n)]  # mixed magnitudes within each row
    zeros = np.zeros((n, u), np.float32)
    rk = _f32(np.random.default_rng(1), u, 4 * u)
    hs, cs, gates = nb.lstm(np.ascontiguousarray(xw), zeros, zeros, rk)
    z = xw[:, 0].astype(np.float64)
    sig, tanh = 1.0 / (1.0 + np.exp(-z)), np.tanh(z)
    want = np.concatenate([sig[:, :u], sig[:, u:2 * u], tanh[:, 2 * u:3 * u], sig[:, 3 * u:]], axis=1)
    np.testing.assert_allclose(gates[:, 0], want, rtol=1e-6, atol=1e-37)
    g = gates[:, 0].astype(np.float64)
    c = g[:, :u] * g[:, 2 * u:3 * u]
    np.testing.assert_allclose(cs[:, 0], c, rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(hs[:, 0], g[:, 3 * u:] * np.tanh(cs[:, 0].astype(np.float64)), rtol=2e-6, atol=1e-37)
    assert np.all(np.abs(gates) <= 1.0)


@pytest.mark.parametrize("backend", ["numpy", "native"])
def test_lstm_without_saved_gates_gives_the_same_states(backend):
    xw, h0, c0, rk = _lstm_case(n=9, t=6, u=40, seed=7)
    with pynn.use_backend(backend):
        be = pynn.backend.current()
        hs, cs, gates = be.lstm(xw, h0, c0, rk)
        hs2, cs2, gates2 = be.lstm(xw, h0, c0, rk, save_gates=False)
    assert gates is not None and gates.shape == xw.shape and gates2 is None
    np.testing.assert_array_equal(hs2, hs)
    np.testing.assert_array_equal(cs2, cs)


def test_lstm_layer_saves_gates_only_when_a_gradient_can_be_asked_for(monkeypatch):
    """Inference (no_grad through the layer, predict_on_batch through the inference plan's
    direct time loop) runs without saving the BPTT state; training saves it, and all three
    give the same output."""
    calls, in_layer = [], []
    real_layer_loop, real_plan_loop = nb.lstm_projected, nb._C.lstm_forward_x

    def layer_spy(*args, **kwargs):
        calls.append(("layer", kwargs.get("save_gates", True)))
        in_layer.append(True)
        try:
            return real_layer_loop(*args, **kwargs)
        finally:
            in_layer.pop()

    def plan_spy(*args, **kwargs):     # the backend's lstm calls _C too: count only the plan's
        if not in_layer:
            calls.append(("plan", kwargs.get("save_gates", True)))
        return real_plan_loop(*args, **kwargs)

    monkeypatch.setattr(nb, "lstm_projected", layer_spy)
    monkeypatch.setattr(nb._C, "lstm_forward_x", plan_spy)
    layer = pynn.layers.LSTM(16)
    x = np.random.default_rng(8).standard_normal((4, 5, 3)).astype(np.float32)
    with pynn.use_backend("native"):
        with pynn.no_grad():
            y_inf = layer(Tensor(x)).data
        model = pynn.Sequential([pynn.layers.Input((5, 3)), layer])
        y_pred = model.predict_on_batch(x)
        y_train = layer(Tensor(x))
        y_train.sum().backward()
    assert calls == [("layer", False), ("plan", False), ("layer", True)]
    np.testing.assert_array_equal(y_inf, y_train.data)
    np.testing.assert_allclose(y_pred, y_train.data, rtol=1e-6, atol=1e-7)
    assert layer.recurrent_kernel.grad is not None


@pytest.mark.parametrize("backend", ["numpy", "native"])
@pytest.mark.parametrize("u,masked,rdrop", [(72, False, False), (13, True, False), (20, False, True)])
def test_lstm_grad_bias_gradient_is_the_sum_of_dxw(backend, u, masked, rdrop):
    """bias_grad=True adds Σ_{n,t} dxw (native: one more row of the dU GEMM, or a column sum
    under recurrent dropout) without changing the other outputs."""
    xw, h0, c0, rk = _lstm_case(n=10, t=6, u=u, seed=9)
    r = np.random.default_rng(10)
    mask = (np.arange(6)[None, :] < r.integers(1, 7, 10)[:, None]) if masked else None
    rmask = (r.random((10, 4 * u)) < 0.7).astype(np.float32) / np.float32(0.7) if rdrop else None
    dhs, dcl = _f32(r, 10, 6, u), _f32(r, 10, u)
    with pynn.use_backend(backend):
        be = pynn.backend.current()
        hs, cs, gates = be.lstm(xw, h0, c0, rk, mask, recurrent_mask=rmask)
        plain = be.lstm_grad(dhs, dcl, h0, c0, hs, cs, gates, rk, mask, recurrent_mask=rmask)
        with_b = be.lstm_grad(dhs, dcl, h0, c0, hs, cs, gates, rk, mask, recurrent_mask=rmask, bias_grad=True)
    assert len(plain) == 4 and len(with_b) == 5
    for a, b in zip(plain, with_b):
        np.testing.assert_array_equal(b, a)
    np.testing.assert_allclose(with_b[4], plain[0].sum(axis=(0, 1), dtype=np.float64), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "native"])
@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_lstm_gates_stored_over_a_scratch_xw_are_the_same(backend, act):
    """xw_scratch=True lets the gates overwrite xw (native: the AVX2 pass of the default
    activations; other activations keep a separate buffer); every output is unchanged."""
    xw, h0, c0, rk = _lstm_case(n=7, t=5, u=20, seed=11)
    mask = np.arange(5)[None, :] < np.array([5, 3, 1, 5, 2, 4, 5])[:, None]
    with pynn.use_backend(backend):
        be = pynn.backend.current()
        want = be.lstm(xw, h0, c0, rk, mask, act)
        scratch = xw.copy()
        got = be.lstm(scratch, h0, c0, rk, mask, act, xw_scratch=True)
        ro = xw.copy()
        ro.flags.writeable = False
        kept = be.lstm(ro, h0, c0, rk, mask, act, xw_scratch=True)
    for a, b, c in zip(want, got, kept):
        np.testing.assert_array_equal(b, a)
        np.testing.assert_array_equal(c, a)
    np.testing.assert_array_equal(ro, xw)  # a read-only xw is never written


# ------------------------------------------------ recurrent kernel packed once (RecurrentKernelPack)
def _forward_case(kind, n, u, seed):
    r = np.random.default_rng(seed)
    g = {"simple_rnn": 1, "gru": 3, "lstm": 4}[kind]
    return g, _f32(r, n, 6, g * u), _f32(r, n, u), _f32(r, u, g * u, scale=0.15), _f32(r, g * u)


def _run_forward(kind, xw, h0, rk, rb, mask, pack):
    C = nb._C
    m = None if mask is None else np.ascontiguousarray(mask, np.uint8)
    if kind == "lstm":
        return C.lstm_forward(xw.copy(), h0, h0, rk, m, "tanh", "sigmoid", None, True, False,
                              packed_recurrent=pack)
    if kind == "gru":
        return C.gru_forward(xw, h0, rk, rb, m, "tanh", "sigmoid", None, packed_recurrent=pack)
    return (C.simple_rnn_forward(xw, h0, rk, m, "tanh", None, packed_recurrent=pack),)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("u", [13, 20, 72, 160])
@pytest.mark.parametrize("n,masked", [(1, False), (5, True), (33, False)])
def test_packed_recurrent_kernel_gives_bit_identical_states_at_every_thread_count(restore_threads, kind, u, n,
                                                                                  masked):
    """One pack (16-unit gate blocks, made once) serves every batch and thread count: the
    chunking changes with both, the pack does not, and every output equals the call that
    packs the kernel itself, bit for bit."""
    g, xw, h0, rk, rb = _forward_case(kind, n, u, seed=u + n)
    mask = (np.random.default_rng(n).random((n, 6)) < 0.7) if masked else None
    pack = nb._C.RecurrentKernelPack(rk, g)
    assert (pack.units, pack.gates) == (u, g) and pack.nbytes >= rk.nbytes
    pynn.set_num_threads(1)
    want = _run_forward(kind, xw, h0, rk, rb, mask, None)
    for k in THREADS:
        pynn.set_num_threads(k)
        for got in (_run_forward(kind, xw, h0, rk, rb, mask, pack), _run_forward(kind, xw, h0, rk, rb, mask, None)):
            for i, (a, b) in enumerate(zip(want, got)):
                np.testing.assert_array_equal(b, a, err_msg=f"{kind} output {i} at {k} threads")


def test_packed_recurrent_kernel_is_a_snapshot():
    _, xw, h0, rk, rb = _forward_case("lstm", 4, 24, seed=1)
    pack = nb._C.RecurrentKernelPack(rk, 4)
    want = _run_forward("lstm", xw, h0, rk, rb, None, None)
    rk2 = rk.copy()
    rk[...] = 0.0       # later writes are not seen by the pack
    got = _run_forward("lstm", xw, h0, rk2, rb, None, pack)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(b, a)


def test_packed_recurrent_kernel_rejects_what_it_cannot_serve():
    C = nb._C
    _, xw, h0, rk, rb = _forward_case("lstm", 3, 16, seed=2)
    with pytest.raises(ValueError, match="gates must be 1"):
        C.RecurrentKernelPack(rk, 2)
    with pytest.raises(ValueError, match=r"kernel must be \(rows, 3\*units\)"):
        C.RecurrentKernelPack(np.zeros((16, 50), np.float32), 3)
    gru_pack = C.RecurrentKernelPack(np.zeros((16, 48), np.float32), 3)
    with pytest.raises(ValueError, match=r"packed from a \(16, 3\*16\) kernel; this call needs \(16, 4\*16\)"):
        _run_forward("lstm", xw, h0, rk, rb, None, gru_pack)
    with pytest.raises(ValueError, match=r"packed from a \(8, 4\*8\) kernel"):
        _run_forward("lstm", xw, h0, rk, rb, None, C.RecurrentKernelPack(np.zeros((8, 32), np.float32), 4))
    with pytest.raises(TypeError, match="packed_recurrent must be a RecurrentKernelPack"):
        _run_forward("lstm", xw, h0, rk, rb, None, C.PackedMatrix(rk))
    rmask = np.ones((3, 64), np.float32)
    with pytest.raises(ValueError, match="cannot be combined with recurrent_mask"):
        C.lstm_forward(xw, h0, h0, rk, None, "tanh", "sigmoid", rmask, packed_recurrent=C.RecurrentKernelPack(rk, 4))


# ------------------------------------------------ LSTM layer without return_sequences: h_T, c_T only
@pytest.mark.parametrize("backend", ["numpy", "native"])
@pytest.mark.parametrize("return_state,masked", [(False, False), (True, True)])
def test_lstm_last_only_matches_the_full_sequence_op(backend, return_state, masked):
    """F.lstm(last_only=True) (what LSTM(return_sequences=False) runs) gives the outputs and
    every gradient of slicing h_T and c_T out of the full (N, T+1, U) op."""
    F = pynn.functional
    r = np.random.default_rng(12)
    n, t, f, u = 5, 7, 3, 20
    arrays = [_f32(r, n, t, f), _f32(r, f, 4 * u, scale=0.5), _f32(r, u, 4 * u, scale=0.3), _f32(r, 4 * u),
              _f32(r, n, u), _f32(r, n, u)]
    mask = (np.arange(t)[None, :] < r.integers(1, t + 1, n)[:, None]) if masked else None
    wh, wc = _f32(r, n, u), _f32(r, n, u)
    results = []
    with pynn.use_backend(backend):
        for last_only in (False, True):
            ts = [Tensor(a.copy(), requires_grad=True) for a in arrays]
            out = F.lstm(*ts, mask=mask, last_only=last_only)
            h, c = (out[:, 0], out[:, 1]) if last_only else (out[:, t - 1], out[:, t])
            ((h * Tensor(wh)).sum() + ((c * Tensor(wc)).sum() if return_state else 0.0)).backward()
            results.append([h.data, c.data] + [v.grad for v in ts])
    for i, (a, b) in enumerate(zip(*results)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7, err_msg=f"item {i}")


# ------------------------------------------------ LSTM with the input projection inside the loop
def _projected_case(n, t, f, u, seed):
    r = np.random.default_rng(seed)
    return _f32(r, n, t, f), _f32(r, f, 4 * u, scale=0.4), _f32(r, 4 * u, scale=0.3), _f32(r, n, u), _f32(r, n, u), \
        _f32(r, u, 4 * u, scale=0.15)


@pytest.mark.parametrize("u", [13, 20, 128])
@pytest.mark.parametrize("masked,use_bias,save", [(False, True, True), (True, True, False), (False, False, True)])
def test_lstm_projection_inside_the_loop_matches_projecting_first(restore_threads, u, masked, use_bias, save):
    """_C.lstm_forward_x (x W + b per step and chunk, no xw array) gives the states and gates of
    lstm_forward on xw = x @ W + b, within rounding of the projection, at every thread count
    bit-identically, with or without packs held by the caller; and the numpy reference's."""
    n, t, f = 9, 7, 5
    x, k, b, h0, c0, rk = _projected_case(n, t, f, u, seed=u)
    bias = b if use_bias else None
    mask = (np.arange(t)[None, :] < np.random.default_rng(2).integers(1, t + 1, n)[:, None]) if masked else None
    m8 = None if mask is None else mask.astype(np.uint8)
    xw = (x.reshape(n * t, f).astype(np.float64) @ k + (0 if bias is None else b)).astype(np.float32).reshape(n, t, -1)
    want = nb._C.lstm_forward(xw, h0, c0, rk, m8, "tanh", "sigmoid", None, True)
    with pynn.use_backend("numpy"):
        ref = pynn.backend.current().lstm_projected(x, k, bias, h0, c0, rk, mask, save_gates=save)
    packs = dict(packed_kernel=nb._C.RecurrentKernelPack(k, 4), packed_recurrent=nb._C.RecurrentKernelPack(rk, 4))
    pynn.set_num_threads(1)
    first = nb._C.lstm_forward_x(x, k, bias, h0, c0, rk, m8, "tanh", "sigmoid", save)
    for i, a in enumerate(first):
        if a is None:
            assert not save and i == 2 and ref[2] is None
            continue
        np.testing.assert_allclose(a, want[i], rtol=1e-5, atol=2e-6, err_msg=f"output {i} vs projecting first")
        np.testing.assert_allclose(a, ref[i], rtol=1e-4, atol=1e-5, err_msg=f"output {i} vs the numpy reference")
    for threads in THREADS:
        pynn.set_num_threads(threads)
        for kw in ({}, packs):
            got = nb._C.lstm_forward_x(x, k, bias, h0, c0, rk, m8, "tanh", "sigmoid", save, **kw)
            for i, (a, g) in enumerate(zip(first, got)):
                if a is None:
                    assert g is None
                else:
                    np.testing.assert_array_equal(g, a, err_msg=f"output {i} at {threads} threads {sorted(kw)}")


@pytest.mark.parametrize("act,ract", [("relu", "hard_sigmoid"), ("tanh", "sigmoid")])
@pytest.mark.parametrize("batch", [1, 6])
def test_lstm_backend_projected_matches_numpy_for_other_activations(act, ract, batch):
    """The generic (auto-vectorised) cell pass without xw, for activations the AVX2 pass does not take;
    batch 1 takes the projection before the loop (below PROJECT_IN_LOOP_MIN_BATCH)."""
    x, k, b, h0, c0, rk = _projected_case(batch, 5, 4, 24, seed=31)
    got = nb.lstm_projected(x, k, b, h0, c0, rk, None, act, ract)
    with pynn.use_backend("numpy"):
        want = pynn.backend.current().lstm_projected(x, k, b, h0, c0, rk, None, act, ract)
    for i, (a, g) in enumerate(zip(want, got)):
        np.testing.assert_allclose(g, a, rtol=1e-4, atol=1e-5, err_msg=f"output {i}")


def test_lstm_projection_inside_the_loop_rejects_bad_shapes():
    C = nb._C
    x, k, b, h0, c0, rk = _projected_case(3, 4, 5, 8, seed=5)
    with pytest.raises(ValueError, match="kernel"):
        C.lstm_forward_x(x, k[:4], b, h0, c0, rk, None, "tanh", "sigmoid")
    with pytest.raises(ValueError, match="bias"):
        C.lstm_forward_x(x, k, b[:5], h0, c0, rk, None, "tanh", "sigmoid")
    with pytest.raises(ValueError, match="recurrent_kernel must be"):
        C.lstm_forward_x(x, k, b, h0, c0, rk[:, :30], None, "tanh", "sigmoid")
    wrong = r"packed_kernel was packed from a \(8, 4\*8\) kernel; this call needs \(5, 4\*8\)"
    with pytest.raises(ValueError, match=wrong):
        C.lstm_forward_x(x, k, b, h0, c0, rk, None, "tanh", "sigmoid", packed_kernel=C.RecurrentKernelPack(rk, 4))
