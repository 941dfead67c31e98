"""The LSTM training path's time-major layout (SeqLayout, csrc/rnn/recurrent.h):
``_C.lstm_forward_x(time_major=True)`` returns hs, cs and gates as (N, T, ·) views of
(T, N, ·) buffers, ``_C.lstm_backward`` runs on them without a copy and returns dxw the same
way, and ``F.lstm``'s backward takes the input and weight gradients over dxw's rows in that
order. Pinned here: the same bits as the C-order run (the layout moves elements, not
arithmetic) at 1, 2, 3, 4, 7 and 8 threads, masked or not; the returned layouts; a C-order
dhs or recurrent dropout beside time-major inputs; and the layer-level gradients against
the numpy reference."""
import numpy as np
import pytest

import pynn
from pynn import functional as F
from pynn.autograd import Tensor

nb = pytest.importorskip("pynn.backend.native")
C = nb._C

from test_rnn_row_groups import THREADS, _case, _f32  # noqa: E402 (the same random LSTM cases as the row-group tests)


def _time_major(a):
    return not a.flags.c_contiguous and a.transpose(1, 0, 2).flags.c_contiguous


def _run(case, time_major, dhs_c_order=False):
    x, k, b, h0, c0, rk, dhs, dcl, mask = case
    hs, cs, g = C.lstm_forward_x(x, k, b, h0, c0, rk, mask, "tanh", "sigmoid", True, time_major=time_major)
    if time_major and not dhs_c_order:
        dhs = np.ascontiguousarray(dhs.transpose(1, 0, 2)).transpose(1, 0, 2)
    back = C.lstm_backward(dhs, dcl, h0, c0, hs, cs, g, rk, mask, "tanh", "sigmoid", None, True)
    return (hs, cs, g) + tuple(back)   # ..., dxw, dh0, dc0, dU, db


@pytest.mark.parametrize("n,u", [(64, 128), (40, 64), (70, 45), (5, 32)])
@pytest.mark.parametrize("masked", [False, True])
def test_time_major_lstm_gives_the_bits_of_c_order(restore_threads, n, u, masked):
    """hs, cs, gates, dxw, dh0 and dc0 are bit-identical to the C-order run at every thread
    count; dU and its bias row sum the N·T rows in another order (t, n), so they agree to
    rounding."""
    case = _case(n, 6, 5, u, seed=n + u, masked=masked)
    for k in THREADS:
        pynn.set_num_threads(k)
        ref, got = _run(case, False), _run(case, True)
        for i in (0, 1, 2, 3):   # hs, cs, gates, dxw: time-major views
            assert _time_major(got[i]) and ref[i].flags.c_contiguous, f"output {i} at {k} threads"
        for i, (a, b) in enumerate(zip(ref[:-2], got[:-2])):
            np.testing.assert_array_equal(b, a, err_msg=f"output {i} at {k} threads")
        for i in (-2, -1):
            np.testing.assert_allclose(got[i], ref[i], rtol=1e-4, atol=1e-4, err_msg=f"output {i} at {k} threads")


def test_time_major_backward_takes_a_c_order_dhs(restore_threads):
    pynn.set_num_threads(2)
    case = _case(48, 5, 4, 40, seed=3, masked=True)
    want, got = _run(case, True), _run(case, True, dhs_c_order=True)
    for i, (a, b) in enumerate(zip(want, got)):
        np.testing.assert_array_equal(b, a, err_msg=f"output {i}")


def test_time_major_backward_with_recurrent_dropout_runs_in_c_order(restore_threads):
    """Recurrent dropout's per-step BPTT has no time-major form: the native backend hands it
    time-major inputs in C order (dxw comes back C-ordered, with the values of C-order inputs);
    _C.lstm_backward itself refuses them with a clear error instead of copying."""
    pynn.set_num_threads(2)
    x, k, b, h0, c0, rk, dhs, dcl, mask = _case(32, 5, 4, 24, seed=4, masked=False)
    rmask = (np.random.default_rng(1).random((32, 96)) < 0.7).astype(np.float32) / 0.7
    hs, cs, g = C.lstm_forward_x(x, k, b, h0, c0, rk, None, "tanh", "sigmoid", True, time_major=True)
    tm = nb.lstm_grad(dhs, dcl, h0, c0, hs, cs, g, rk, recurrent_mask=rmask, bias_grad=True)
    co = nb.lstm_grad(dhs, dcl, h0, c0, *(np.ascontiguousarray(a) for a in (hs, cs, g)), rk, recurrent_mask=rmask,
                      bias_grad=True)
    assert tm[0].flags.c_contiguous
    for i, (a, r) in enumerate(zip(tm, co)):
        np.testing.assert_array_equal(a, r, err_msg=f"output {i}")
    with pytest.raises(ValueError, match="C-contiguous"):
        C.lstm_backward(dhs, dcl, h0, c0, hs, cs, g, rk, None, "tanh", "sigmoid", rmask, True)


@pytest.mark.parametrize("last_only", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm_op_gradients_through_the_time_major_path_match_numpy(restore_threads, last_only, go_backwards):
    """F.lstm on the native backend (forward time-major, dx and dW over (t, n) rows) gives the
    numpy reference's gradients for every input: x, kernel, recurrent kernel, bias, h0, c0."""
    pynn.set_num_threads(2)
    n, t, f, u = 40, 7, 6, 32
    r = np.random.default_rng(9)
    arrays = [_f32(r, n, t, f), _f32(r, f, 4 * u, scale=0.4), _f32(r, u, 4 * u, scale=0.2),
              _f32(r, 4 * u, scale=0.3), _f32(r, n, u), _f32(r, n, u)]
    mask = np.arange(t)[None, :] < r.integers(1, t + 1, n)[:, None]
    out_shape = (n, 2, u) if last_only else (n, t + 1, u)
    g = _f32(r, *out_shape)
    grads = {}
    for backend in ("numpy", "native"):
        with pynn.use_backend(backend):
            ts = [Tensor(a.copy(), requires_grad=True) for a in arrays]
            out = F.lstm(*ts, mask=mask, go_backwards=go_backwards, last_only=last_only)
            out.backward(g)
            grads[backend] = [tt.grad for tt in ts]
    for i, (a, b) in enumerate(zip(grads["native"], grads["numpy"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=f"gradient of input {i}")
