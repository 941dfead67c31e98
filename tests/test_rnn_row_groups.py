"""The LSTM time loops' batch split (csrc/rnn/recurrent.cpp, RowGroups): from 16 rows per
thread the batch, not the units, is divided among the threads, and each group of rows runs
its whole recurrence without exchanging h or c with another thread. Pinned here: which calls
take that path (``_C.lstm_row_groups``), that it gives the same bits as one thread and as the
unit split, at 1, 2, 3, 4, 7 and 8 threads, masked or not, with the projection inside the
loop or not, forward and BPTT, and that it agrees with the numpy reference."""
import numpy as np
import pytest

import pynn

nb = pytest.importorskip("pynn.backend.native")
C = nb._C

THREADS = (1, 2, 3, 4, 7, 8)


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _case(n, t, f, u, seed, masked):
    r = np.random.default_rng(seed)
    x, k, b = _f32(r, n, t, f), _f32(r, f, 4 * u, scale=0.4), _f32(r, 4 * u, scale=0.3)
    h0, c0, rk = _f32(r, n, u), _f32(r, n, u), _f32(r, u, 4 * u, scale=0.15)
    dhs, dcl = _f32(r, n, t, u), _f32(r, n, u)
    mask = (np.arange(t)[None, :] < r.integers(1, t + 1, n)[:, None]).astype(np.uint8) if masked else None
    return x, k, b, h0, c0, rk, dhs, dcl, mask


def _run(case, projected):
    x, k, b, h0, c0, rk, dhs, dcl, mask = case
    if projected:
        hs, cs, g = C.lstm_forward_x(x, k, b, h0, c0, rk, mask, "tanh", "sigmoid", True)
    else:
        n, t, f = x.shape
        xw = (x.reshape(n * t, f) @ k + b).reshape(n, t, -1)
        hs, cs, g = C.lstm_forward(xw, h0, c0, rk, mask, "tanh", "sigmoid", None, True)
    back = C.lstm_backward(dhs, dcl, h0, c0, hs, cs, g, rk, mask, "tanh", "sigmoid", None, True)
    return (hs, cs, g) + tuple(back)   # ..., dxw, dh0, dc0, dU, db


def test_row_groups_are_taken_from_16_rows_per_thread(restore_threads):
    pynn.set_num_threads(1)
    assert C.lstm_row_groups(64, 128) == 0           # one thread: nothing to split
    pynn.set_num_threads(2)
    assert C.lstm_row_groups(64, 128) == 2           # the bench's LSTM(128), batch 64
    assert C.lstm_row_groups(31, 128) == 0           # < 16 rows per thread: the units are split
    assert C.lstm_row_groups(33, 128) == 2
    assert C.lstm_row_groups(64, 16) == 2            # one 16-unit chunk: the rows are still split
    pynn.set_num_threads(4)
    assert C.lstm_row_groups(64, 128) == 4
    assert C.lstm_row_groups(130, 128) == 4
    assert C.lstm_row_groups(0, 128) == 0 and C.lstm_row_groups(64, 0) == 0
    with pytest.raises(ValueError, match="lstm_row_groups"):
        C.lstm_row_groups(-1, 8)


@pytest.mark.parametrize("n,u", [(64, 128), (40, 64), (70, 45), (130, 32), (96, 16)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("projected", [False, True])
def test_row_groups_give_the_bits_of_one_thread(restore_threads, n, u, masked, projected):
    """Every output but the split-K weight gradient dU and its bias row (their K = N·T sum is
    divided by the thread count) is bit-identical to one thread's, whichever of the row and
    unit splits the thread count picks."""
    case = _case(n, 7, 5, u, seed=n + u, masked=masked)
    pynn.set_num_threads(1)
    ref = _run(case, projected)
    groups = set()
    for k in THREADS:
        pynn.set_num_threads(k)
        groups.add(C.lstm_row_groups(n, u))
        out = _run(case, projected)
        for i, (a, b) in enumerate(zip(ref[:-2], out[:-2])):
            np.testing.assert_array_equal(b, a, err_msg=f"output {i} at {k} threads")
        for i in (-2, -1):
            np.testing.assert_allclose(out[i], ref[i], rtol=1e-4, atol=1e-4, err_msg=f"output {i} at {k} threads")
    assert max(groups) >= 2, f"no thread count took the row split for n={n}, u={u}: {groups}"


@pytest.mark.parametrize("projected", [False, True])
def test_row_split_rows_equal_the_same_rows_run_under_the_unit_split(restore_threads, projected):
    """Rows are independent: the first 16 rows of a 64-row batch (row split at 2 threads) are
    bitwise the 16-row batch alone (unit split at 2 threads), forward and dxw/dh0/dc0."""
    pynn.set_num_threads(2)
    case = _case(64, 9, 6, 48, seed=5, masked=True)
    sub = tuple(a[:16] if a is not None and a.shape[0] == 64 else a for a in case)
    assert C.lstm_row_groups(64, 48) == 2 and C.lstm_row_groups(16, 48) == 0
    whole, part = _run(case, projected), _run(sub, projected)
    for i in range(6):   # hs, cs, gates, dxw, dh0, dc0
        np.testing.assert_array_equal(whole[i][:16], part[i], err_msg=f"output {i}")


@pytest.mark.parametrize("masked", [False, True])
def test_row_groups_match_the_numpy_reference(restore_threads, masked):
    pynn.set_num_threads(2)
    x, k, b, h0, c0, rk, dhs, dcl, mask = case = _case(48, 6, 4, 40, seed=11, masked=masked)
    assert C.lstm_row_groups(48, 40) == 2
    got = _run(case, projected=True)
    with pynn.use_backend("numpy"):
        ref_backend = pynn.backend.current()
        m = None if mask is None else mask.astype(bool)
        hs, cs, g = ref_backend.lstm_projected(x, k, b, h0, c0, rk, m)
        back = ref_backend.lstm_grad(dhs, dcl, h0, c0, hs, cs, g, rk, m, bias_grad=True)
    for i, (a, r) in enumerate(zip(got, (hs, cs, g) + tuple(back))):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5, err_msg=f"output {i}")
