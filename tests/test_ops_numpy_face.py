"""pynn.ops as a NumPy drop-in: same values, dtypes and shapes as NumPy for the same call,
on both sides of every dispatch threshold (NumPy path and native path)."""
import numpy
import pytest

import pynn
import pynn.ops as ops
from pynn.ops import _dispatch as D

np = numpy
R = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return R.standard_normal(shape).astype(dtype)


def assert_same(ours, theirs, exact=True, rtol=1e-6):
    """Same type, dtype and shape as NumPy's result, and equal values (bitwise where NumPy is deterministic)."""
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    assert np.shape(ours) == np.shape(theirs)
    if hasattr(theirs, "dtype"):
        assert ours.dtype == theirs.dtype
    if exact:
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol)


def test_numpy_names_pynn_adds_nothing_to_are_numpys_own_objects():
    for name in ("random", "float32", "float64", "newaxis", "pi", "linalg", "inf", "ndarray", "errstate",
                 "zeros", "eye", "arange", "asarray"):  # creation/conversion: no gradient to lose
        assert getattr(ops, name) is getattr(np, name), name
    for name in ("outer", "sin", "cumsum", "hstack", "tensordot"):
        assert getattr(ops, name).__wrapped__ is getattr(np, name), name  # NumPy's function behind the Tensor guard
    assert_same(ops.zeros((2, 3), dtype=np.float32), np.zeros((2, 3), dtype=np.float32))
    assert_same(ops.eye(3), np.eye(3))
    assert_same(ops.outer([1.0, 2.0], [3.0, 4.0, 5.0]), np.outer([1.0, 2.0], [3.0, 4.0, 5.0]))
    assert_same(ops.arange(5), np.arange(5))
    assert_same(ops.sin(np.float32(1.0)), np.sin(np.float32(1.0)))
    assert_same(ops.random.default_rng(3).standard_normal(4), np.random.default_rng(3).standard_normal(4))
    assert set(ops.NUMPY_OWN).isdisjoint(ops.TENSOR_FACE)
    assert ops.random.default_rng is np.random.default_rng
    with pytest.raises(AttributeError, match="neither a pynn function nor a NumPy name"):
        ops.no_such_function


def test_lecture_names_from_the_issue_all_exist():
    names = ("dot maximum minimum exp log log1p sqrt square power abs sum mean max std argmax zeros zeros_like eye "
             "where clip outer transpose reshape concatenate einsum multiply add subtract divide matmul tanh").split()
    missing = [n for n in names if not hasattr(ops, n)]
    assert not missing


UNARY = ["exp", "log", "log1p", "sqrt", "square", "abs", "absolute", "negative", "tanh"]
BINARY = ["add", "subtract", "multiply", "divide", "true_divide", "power", "maximum", "minimum"]


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("arg", [0.5, [0.25, 1.5], np.float32(2.0), np.array(3.0), randn(4, 5) ** 2,
                                 randn(3, 1, dtype=np.float64) ** 2, np.arange(1, 6)],
                         ids=["pyscalar", "list", "f32scalar", "0d", "f32", "f64", "int"])
def test_unary_matches_numpy(name, arg):
    assert_same(getattr(ops, name)(arg), getattr(np, name)(arg))


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("a,b", [
    (randn(3, 4) ** 2, randn(4) ** 2),                                # broadcast
    (randn(2, 1, 3) ** 2, np.float64(2.0)),                          # numpy scalar promotes (NEP 50)
    (randn(5) ** 2, 2),                                               # python scalar stays float32
    ([1.0, 2.0], [[3.0], [4.0]]),                                     # lists
    (np.arange(1, 7).reshape(2, 3), randn(3, dtype=np.float32) ** 2),  # int + float32 -> float64
    (np.array(2.0), np.array(3.0)),                                   # 0-d
], ids=["broadcast", "npscalar", "pyscalar", "lists", "int_f32", "0d"])
def test_binary_matches_numpy_broadcasting_and_promotion(name, a, b):
    assert_same(getattr(ops, name)(a, b), getattr(np, name)(a, b))


@pytest.mark.parametrize("name", ["add", "multiply", "exp", "maximum"])
def test_out_argument_writes_in_place(name):
    a = randn(3, 4)
    out = np.empty_like(a)
    args = (a,) if name == "exp" else (a, 0.5)
    r = getattr(ops, name)(*args, out=out)
    assert r is out
    np.testing.assert_array_equal(out, getattr(np, name)(*args))


@pytest.mark.parametrize("size", [3, 255, 256, 1 << 16, (1 << 17) + 3])
def test_maximum_with_zero_matches_numpy_bitwise_at_every_size(size):
    x = randn(size)
    x[:3] = [np.nan, -0.0, np.inf]
    for ours, theirs in ((ops.maximum(x, 0), np.maximum(x, 0)), (ops.maximum(0, x), np.maximum(0, x)),
                         (ops.maximum(x, 0.0), np.maximum(x, 0.0))):
        assert_same(ours, theirs)  # NaN propagates
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))  # and -0.0 stays where NumPy keeps it
    # a non-contiguous view and a numpy-scalar zero (float64 under NEP 50) follow NumPy too
    assert_same(ops.maximum(x[::2], 0), np.maximum(x[::2], 0))
    assert_same(ops.maximum(x, np.float64(0)), np.maximum(x, np.float64(0)))


def test_wrapped_ufuncs_keep_their_methods():
    g = np.zeros(4, np.float32)
    ops.add.at(g, [0, 0, 3], 1.0)  # the scatter-add of lecture embedding/col2im backward
    np.testing.assert_array_equal(g, [2, 0, 0, 1])
    x = randn(3, 4)
    assert_same(ops.maximum.reduce(x, axis=1), np.maximum.reduce(x, axis=1))
    assert_same(ops.multiply.outer([1.0, 2.0], [3.0]), np.multiply.outer([1.0, 2.0], [3.0]))
    assert ops.exp.nin == 1 and ops.subtract.nin == 2


REDUCE_CASES = [(None, False), (0, False), (1, True), (-1, False), ((0, 1), True)]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "amax", "amin"])
@pytest.mark.parametrize("axis,keepdims", REDUCE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_reductions_match_numpy_bitwise(name, axis, keepdims, dtype):
    x = (randn(6, 7) * 10).astype(dtype)
    assert_same(getattr(ops, name)(x, axis=axis, keepdims=keepdims), getattr(np, name)(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "std", "var", "argmax", "argmin"])
def test_reductions_accept_lists_scalars_and_0d(name):
    for arg in ([[1.0, 5.0], [3.0, 2.0]], 4.0, np.array(2.5)):
        assert_same(getattr(ops, name)(arg), getattr(np, name)(arg))


def test_reduction_extras_go_to_numpy_unchanged():
    x = randn(4, 5)
    assert_same(ops.sum(x, axis=1, dtype=np.float64), np.sum(x, axis=1, dtype=np.float64))
    assert_same(ops.sum(x, where=x > 0), np.sum(x, where=x > 0))
    assert_same(ops.max(x, axis=0, initial=10.0), np.max(x, axis=0, initial=10.0))
    assert_same(ops.mean(x, axis=0, dtype=np.float64), np.mean(x, axis=0, dtype=np.float64))
    assert_same(ops.std(x, axis=1, ddof=1, keepdims=True), np.std(x, axis=1, ddof=1, keepdims=True))
    assert_same(ops.argmax(x, axis=1, keepdims=True), np.argmax(x, axis=1, keepdims=True))
    out = np.empty(5, np.float32)
    assert ops.sum(x, axis=0, out=out) is out
    np.testing.assert_array_equal(out, np.sum(x, axis=0))
    with pytest.raises(ValueError):
        ops.max(np.zeros((0,), np.float32))  # NumPy's own error for an empty max


@pytest.mark.parametrize("shape", [(32, 10), (32, 128), (181, 181), (256, 512)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_column_sum_is_numpys_bit_for_bit(shape, keepdims):
    x = randn(*shape)
    assert_same(ops.sum(x, axis=0, keepdims=keepdims), np.sum(x, axis=0, keepdims=keepdims))


@pytest.fixture(params=[1, 2, 3, 4, 7, 8], ids=lambda n: f"{n}threads")
def gemm_threads(request):
    """GEMMs go native on one thread only (_dispatch.GEMM_MAX_THREADS): run both routes."""
    before = pynn.get_num_threads()
    pynn.set_num_threads(request.param)
    yield request.param
    pynn.set_num_threads(before)


GEMM_SHAPES = [(32, 64, 128), (32, 128, 10), (128, 32, 10), (64, 32, 128), (256, 64, 512), (512, 256, 10),
               (64, 256, 512), (9, 2000, 8), (1, 7, 1), (0, 3, 4)]


@pytest.mark.parametrize("m,k,n", GEMM_SHAPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("fn", ["dot", "matmul"])
def test_gemm_matches_numpy_below_and_above_the_native_threshold(m, k, n, trans_a, fn, gemm_threads):
    a = randn(k, m).T if trans_a else randn(m, k)
    b = randn(k, n)
    ours, theirs = getattr(ops, fn)(a, b), getattr(np, fn)(a, b)
    assert_same(ours, theirs, exact=False, rtol=1e-4)
    # Two float32 GEMMs that sum in different orders differ by a few ulps of sum|a_i*b_i| per entry,
    # not of the entry itself (an entry near 0 has large terms that cancel): bound it so.
    bound = 1e-5 * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert np.all(np.abs(ours.astype(np.float64) - theirs) <= bound)


def test_gemm_float64_is_numpys_blas_bit_for_bit():
    a, b = randn(256, 64, dtype=np.float64), randn(64, 512, dtype=np.float64)
    assert_same(ops.dot(a, b), np.dot(a, b))


@pytest.mark.parametrize("fn", ["dot", "matmul"])
def test_gemm_out_argument_on_native_and_aliasing_paths(fn, gemm_threads):
    a, b = randn(256, 64), randn(64, 512)
    if D.native_on():
        assert D.native_gemm_wins(a, b) == (gemm_threads <= D.GEMM_MAX_THREADS)
    out = np.empty((256, 512), np.float32)
    r = getattr(ops, fn)(a, b, out=out)
    assert r is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    sq = randn(128, 128)
    expected = sq @ sq
    assert getattr(ops, fn)(sq, sq, out=sq) is sq  # out aliases the inputs: NumPy's path buffers it
    np.testing.assert_allclose(sq, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("a,b", [
    ([1.0, 2.0], [3.0, 4.0]), (randn(3), randn(3, 4)), (randn(2, 3, 4), randn(4, 5)), (2.0, randn(3)),
    (np.arange(6).reshape(2, 3), np.arange(3)), (randn(2, 3, 4), randn(5, 4, 2)),
])
def test_dot_other_ranks_and_types_are_numpys(a, b):
    assert_same(ops.dot(a, b), np.dot(a, b))


class _Overriding(np.ndarray):
    """An ndarray subclass with its own __array_function__: NumPy's dispatcher must still see it."""
    def __array_function__(self, func, types, args, kwargs):
        return ("override", func.__name__)


def test_dot_and_where_skip_numpys_dispatcher_only_for_exact_ndarrays():
    # Exact ndarrays reach NumPy's C function directly (bit for bit the same result) ...
    a, b = randn(32, 10), randn(10, 128)
    assert_same(ops.dot(a, b), np.dot(a, b))
    a64, b64 = randn(32, 64, dtype=np.float64), randn(64, 128, dtype=np.float64)
    out = np.empty((32, 128))
    assert ops.dot(a64, b64, out=out) is out
    assert_same(out, np.dot(a64, b64))
    x = randn(4, 5)
    assert_same(ops.where(x > 0, x, 0), np.where(x > 0, x, 0))
    assert_same(ops.where(x > 0, 1.5, x), np.where(x > 0, 1.5, x))
    # ... anything else keeps NumPy's __array_function__ protocol.
    sub = randn(3, 3).view(_Overriding)
    assert ops.dot(sub, randn(3, 3)) == ("override", "dot")
    assert ops.dot(randn(3, 3), sub) == ("override", "dot")
    assert ops.where(x[:3, :3] > 0, sub, 0.0) == ("override", "where")
    assert ops.dot(randn(3, 3), randn(3, 3), out=np.empty((3, 3), np.float32).view(_Overriding)) == \
        ("override", "dot")


def test_small_product_with_a_transposed_b_and_tiny_inner_dimension_goes_native(gemm_threads):
    # Backprop's dh = dscores @ W2.T of the lecture MLP (32x10x128): B a column-major view, k < 16.
    on = D.native_on()
    if not on:
        pytest.skip("the native backend is not active")
    a, w = randn(32, 10), randn(128, 10)
    assert D.native_gemm_wins(a, w.T) == on
    assert not D.native_gemm_wins(a, np.ascontiguousarray(w.T))  # row-major B: OpenBLAS's small path
    assert not D.native_gemm_wins(randn(256, 10), randn(512, 10).T)  # past GEMM_NT_MAX_MACS
    assert not D.native_gemm_wins(randn(8, 10), w.T)  # fewer rows than measured
    assert_same(ops.dot(a, w.T), np.dot(a, w.T), exact=False, rtol=1e-5)
    out = np.empty((32, 128), np.float32)
    assert ops.dot(a, w.T, out=out) is out
    assert_same(out, np.dot(a, w.T), exact=False, rtol=1e-5)
    if on:  # each element is one FMA chain whatever the thread count: the same bits at 1..8 threads
        from pynn import _C
        before = pynn.get_num_threads()
        try:
            pynn.set_num_threads(1)
            one = _C.mm(a, w.T)
        finally:
            pynn.set_num_threads(before)
        assert_same(ops.dot(a, w.T), one)
        assert_same(ops.matmul(a, w.T), one)


def test_split_route_for_mid_sized_products_is_off_by_default_and_correct_when_on(gemm_threads, monkeypatch):
    # GEMM_SPLIT_MIN_MACS (None: off) sends 2**18..2**20-MAC products to the native SGEMM at 2+ threads.
    if not D.native_on():
        pytest.skip("the native backend is not active")
    from pynn.ops import _numeric
    a, b, at = randn(32, 64), randn(64, 128), randn(64, 32).T  # at: column-major (32, 64)
    assert D.GEMM_SPLIT_MIN_MACS is None and not D.native_gemm_wins(a, b)
    monkeypatch.setattr(D, "GEMM_SPLIT_MIN_MACS", 1 << 18)
    _numeric._set_limits(_numeric._native())
    try:
        on = gemm_threads >= 2
        assert D.native_gemm_wins(a, b) == on and D.native_gemm_wins(at, b) == on
        assert not D.native_gemm_wins(randn(16, 64), randn(64, 128))  # 131072 MACs: below the split
        for x, y in ((a, b), (at, b)):
            assert_same(ops.dot(x, y), np.dot(x, y), exact=False, rtol=1e-5)
            assert_same(ops.matmul(x, y), np.matmul(x, y), exact=False, rtol=1e-5)
    finally:
        monkeypatch.undo()
        _numeric._set_limits(_numeric._native())
    assert not D.native_gemm_wins(a, b)


def test_gemm_with_a_tiny_inner_dimension_stays_on_numpy():
    # k = 10 (the lecture's dscores @ W2.T at hidden 512) is mostly packing for the native kernel.
    assert not D.native_gemm_wins(randn(256, 10), randn(10, 512))


def test_column_major_a_goes_native_only_with_a_narrow_output_and_short_inner_dimension(gemm_threads):
    # The lecture's h.T @ dscores (512x256x10) wins natively; wide outputs and long inner
    # dimensions of a column-major A stay on NumPy (measured ties or losses).
    routes = {(m, k, n): D.native_gemm_wins(randn(k, m).T, randn(k, n))
              for m, k, n in [(512, 256, 10), (512, 256, 32), (512, 1024, 10), (256, 256, 64), (512, 157, 10)]}
    one = gemm_threads <= D.GEMM_MAX_THREADS and D.native_on()
    assert routes == {(512, 256, 10): one, (512, 256, 32): one, (512, 1024, 10): False, (256, 256, 64): False,
                      (512, 157, 10): False}  # the last is below GEMM_MIN_MACS: OpenBLAS's small-matrix path
    a, b = randn(256, 512).T, randn(256, 10)
    assert_same(ops.dot(a, b), np.dot(a, b), exact=False, rtol=1e-5)
    view = randn(256, 600)[:, :512].T  # column-major with a leading dimension of 600: native, same values
    assert D.native_gemm_wins(view, b) == one
    assert_same(ops.dot(view, b), np.dot(view, b), exact=False, rtol=1e-5)


@pytest.mark.parametrize("a,b", [(randn(16, 128, 64), randn(16, 64, 128)), (randn(4, 128, 256), randn(256, 512)),
                                 (randn(3), randn(2, 3, 4)), ([[1.0, 2.0]], [[3.0], [4.0]])])
def test_matmul_batched_and_broadcast(a, b):
    assert_same(ops.matmul(a, b), np.matmul(a, b), exact=False, rtol=1e-5)


def test_matmul_error_is_numpys():
    with pytest.raises(ValueError):
        ops.matmul(randn(3, 4), randn(5, 6))
    with pytest.raises(ValueError):
        ops.dot(randn(300, 400), randn(500, 600))


def test_shape_and_joining_functions_match_numpy():
    x = randn(2, 3, 4)
    assert_same(ops.reshape(x, (6, 4)), np.reshape(x, (6, 4)))
    assert_same(ops.reshape(x, -1, order="F"), np.reshape(x, -1, order="F"))
    assert_same(ops.transpose(x), np.transpose(x))
    assert_same(ops.transpose(x, (1, 0, 2)), np.transpose(x, (1, 0, 2)))
    assert_same(ops.expand_dims(x, (0, 2)), np.expand_dims(x, (0, 2)))
    assert_same(ops.squeeze(x[:, :1]), np.squeeze(x[:, :1]))
    assert_same(ops.concatenate([x, x], axis=1), np.concatenate([x, x], axis=1))
    assert_same(ops.concatenate([x, x], axis=None), np.concatenate([x, x], axis=None))
    assert_same(ops.stack([x, x], axis=-1), np.stack([x, x], axis=-1))
    for ours, theirs in zip(ops.split(x, 2, axis=2), np.split(x, 2, axis=2)):
        assert_same(ours, theirs)
    assert ops.shape([[1, 2, 3]]) == np.shape([[1, 2, 3]])
    assert_same(ops.zeros_like(x, dtype=np.int32), np.zeros_like(x, dtype=np.int32))
    assert_same(ops.ones_like([1.0, 2.0]), np.ones_like([1.0, 2.0]))


def test_where_clip_einsum_match_numpy():
    x, y = randn(3, 4), randn(4)
    assert_same(ops.where(x > 0, x, y), np.where(x > 0, x, y))
    for ours, theirs in zip(ops.where(x > 0), np.where(x > 0)):
        assert_same(ours, theirs)
    assert_same(ops.clip(x, -0.5, 0.5), np.clip(x, -0.5, 0.5))
    assert_same(ops.clip(x, None, 0.1), np.clip(x, None, 0.1))
    assert_same(ops.clip(x, min=-0.2), np.clip(x, min=-0.2))
    assert_same(ops.einsum("ij,j->i", x, y), np.einsum("ij,j->i", x, y))
    assert_same(ops.einsum("ij->", x), np.einsum("ij->", x))


def test_keras_only_names_on_arrays():
    assert_same(ops.cast([1.7, -2.2], "int32"), np.asarray([1.7, -2.2]).astype("int32"))
    assert_same(ops.one_hot(np.array([2, 0]), 3), np.eye(3, dtype=np.float32)[[2, 0]])
    assert ops.one_hot([[1], [0]], 2, axis=0).shape == (2, 2, 1)
    with pytest.raises(ValueError, match=r"one_hot: labels must lie in \[0, 3\)"):
        ops.one_hot([-1, 2], 3)
    t = ops.convert_to_tensor([1.0, 2.0])
    assert isinstance(t, pynn.Tensor) and t.dtype == np.float32
    assert_same(ops.convert_to_numpy(t), np.array([1.0, 2.0], np.float32))


def test_pynn_functions_accept_lists_and_keep_their_signatures():
    np.testing.assert_array_equal(ops.relu([1.0, -1.0]), [1.0, 0.0])
    np.testing.assert_allclose(ops.softmax([[0.0, 0.0]]), [[0.5, 0.5]])
    loss, d = ops.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 2]))
    np.testing.assert_allclose(loss, np.log(3), rtol=1e-6)
    x, w = randn(4, 3), randn(3, 2)
    np.testing.assert_allclose(ops.dense(x, w, np.zeros(2, np.float32), "relu"), np.maximum(x @ w, 0), rtol=1e-6)
    assert callable(ops.relu_grad) and callable(ops.sgd_step)  # backend kernels stay reachable by name


def test_numpy_backend_turns_every_native_path_off():
    a, b = randn(256, 64), randn(64, 512)
    with pynn.use_backend("numpy"):
        assert not D.native_on()
        assert_same(ops.dot(a, b), np.dot(a, b))
        x = randn(1000)
        assert_same(ops.maximum(x, 0), np.maximum(x, 0))
        s = randn(32, 10)
        assert_same(ops.sum(s, axis=0), np.sum(s, axis=0))  # bitwise: NumPy's own reduce


def test_lecture_snippet_runs_identically_with_either_module():
    """CS231n-style two-layer net step with the name np bound to each module in turn."""
    def step(np, X, y, W1, b1, W2, b2):
        h = np.maximum(0, np.dot(X, W1) + b1)
        scores = np.dot(h, W2) + b2
        scores = scores - np.max(scores, axis=1, keepdims=True)
        probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)
        loss = -np.mean(np.log(probs[np.arange(len(y)), y]))
        d = probs.copy()
        d[np.arange(len(y)), y] -= 1
        dW2 = np.dot(h.T, d / len(y))
        return loss, dW2, np.argmax(scores, axis=1), np.sqrt(np.square(dW2).sum()), np.std(h), np.where(h > 0, 1.0, 0.0)

    rng = numpy.random.default_rng(1)
    X = rng.standard_normal((32, 64)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    W1 = (0.1 * rng.standard_normal((64, 128))).astype(np.float32)
    W2 = (0.1 * rng.standard_normal((128, 10))).astype(np.float32)
    b1, b2 = np.zeros(128, np.float32), np.zeros(10, np.float32)
    for ours, theirs in zip(step(ops, X, y, W1, b1, W2, b2), step(numpy, X, y, W1, b1, W2, b2)):
        assert_same(ours, theirs)


def test_set_limits_reaches_the_c_entries_at_once_and_restores():
    if not D.native_on():
        pytest.skip("the native backend is not active")
    a, b = randn(256, 64), randn(64, 512)
    before = pynn.get_num_threads()
    pynn.set_num_threads(2)
    try:
        assert not D.native_gemm_wins(a, b)  # GEMM_MAX_THREADS = 1: NumPy's at 2 threads
        old = D.set_limits(GEMM_MAX_THREADS=2)
        try:
            assert old == {"GEMM_MAX_THREADS": 1} and D.GEMM_MAX_THREADS == 2
            assert D.native_gemm_wins(a, b)
            assert_same(ops.dot(a, b), np.dot(a, b), exact=False, rtol=1e-5)
        finally:
            D.set_limits(**old)
        assert not D.native_gemm_wins(a, b)
    finally:
        pynn.set_num_threads(before)
    with pytest.raises(TypeError, match="unknown limit 'GEMM_MAX_THREAD'"):
        D.set_limits(GEMM_MAX_THREAD=2)
    with pytest.raises(TypeError, match="GEMM_MIN_K must be an int"):
        D.set_limits(GEMM_MIN_K=1.5)
    assert D.GEMM_MIN_K == 16
