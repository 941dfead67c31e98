"""pynn.ops' native NumPy-order kernels (csrc/nn/elementwise.h): sum / mean / max / min over
the last axis, the first axis or all of an array, and maximum / minimum with a Python scalar,
float32 and float64. Each is compared with NumPy bit for bit (the kernels add in NumPy's own
order), at 1 and 2 threads, on both sides of every dispatch threshold; each test also checks
that the native kernel actually ran (a counting wrapper around the binding)."""
import numpy
import pytest

import pynn
import pynn.ops as ops
from pynn import backend
from pynn.ops import _dispatch as D

np = numpy
pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")
R = np.random.default_rng(7)


def data(shape, dtype):
    # Magnitudes over six decades: a changed order of additions shows in the last bits.
    return (R.standard_normal(shape) * 10.0 ** R.uniform(-3, 3, shape)).astype(dtype)


def bits_equal(ours, theirs):
    """Same type, dtype, shape and bit pattern (NaN payloads and zero signs included)."""
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    assert np.shape(ours) == np.shape(theirs) and ours.dtype == theirs.dtype
    a, b = np.asarray(ours).reshape(-1), np.asarray(theirs).reshape(-1)
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


THREAD_COUNTS = [1, 2, 3, 4, 7, 8]  # odd counts and more threads than the 2 cores: same results, same routes


@pytest.fixture(params=THREAD_COUNTS, ids=[f"{n}threads" for n in THREAD_COUNTS])
def threads(request):
    before = pynn.get_num_threads()
    pynn.set_num_threads(request.param)
    yield request.param
    pynn.set_num_threads(before)


@pytest.fixture
def calls(monkeypatch):
    """Counts of the native reductions ("np_reduce") and maximum/minimum-with-a-scalar kernels
    ("np_max_scalar") that pynn.ops ran: through its per-call C entries np_fast_reduce /
    np_fast_ext (a result, not None: the kernel ran) or the pybind11 bindings (out=x)."""
    from pynn import _C
    n = {"np_reduce": 0, "np_max_scalar": 0}
    for name, key in (("np_reduce", "np_reduce"), ("np_fast_reduce", "np_reduce"),
                      ("np_max_scalar", "np_max_scalar"), ("np_fast_ext", "np_max_scalar")):
        fn = getattr(_C, name)

        def counted(*a, _fn=fn, _key=key, **k):
            r = _fn(*a, **k)
            n[_key] += r is not None
            return r
        monkeypatch.setattr(_C, name, counted)
    return n


SHAPES = [(1,), (7,), (8,), (129,), (1000,), (32, 10), (32, 128), (5, 1), (1, 5), (3, 300), (256, 512),
          (70000,), (2, 3, 4), (3, 1, 300), (600, 130)]
AXES = [None, 0, -1]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "amax", "amin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_are_numpys_bit_for_bit(name, dtype, keepdims, threads, calls):
    for shape in SHAPES:
        x = data(shape, dtype)
        for axis in AXES + [len(shape) - 1]:
            bits_equal(getattr(ops, name)(x, axis=axis, keepdims=keepdims),
                       getattr(np, name)(x, axis=axis, keepdims=keepdims))
    assert calls["np_reduce"] > 0


def test_small_reductions_take_the_native_kernel(threads, calls):
    x = data((32, 10), np.float32)
    for f, kw in ((ops.sum, {"axis": 0}), (ops.sum, {"axis": 1, "keepdims": True}), (ops.mean, {}),
                  (ops.max, {"axis": 1, "keepdims": True}), (ops.min, {"axis": -1})):
        f(x, **kw)
    assert calls["np_reduce"] == 5


# (function, shape, axis, native?) just past the small-call limit and around the large-array limits
# of _dispatch: the same at any thread count (the kernels do not split these sizes).
LARGE_ROUTES = [
    (ops.sum, (D.REDUCE_SMALL_MAX_SIZE + 1,), None, False),  # pairwise over a long row: NumPy's loop wins
    (ops.mean, (300, 300), -1, False),
    (ops.sum, (300, 300), 0, True),  # rows added in order: the native column loop wins
    (ops.mean, (512, 1024), 0, True),  # float64: 4 MB, REDUCE_COLS_MAX_BYTES
    (ops.mean, (513, 1024), 0, False),  # past it
    (ops.max, (1024, 1024), 0, False),  # 8 MB of float64: memory-bound, NumPy's row streaming won
    (ops.sum, (70000, 1), 0, False),  # one column: a strided walk
    (ops.max, (300, 300), 0, True),
    (ops.min, (300, 300), -1, True),  # extreme of long rows: the AVX2 kernel wins
    (ops.max, (D.REDUCE_EXT_ROWS_MAX_SIZE,), None, True),
    (ops.max, (D.REDUCE_EXT_ROWS_MAX_SIZE + 1,), None, False),
]


@pytest.mark.parametrize("f,shape,axis,native", LARGE_ROUTES)
def test_large_reductions_go_native_only_where_the_kernel_wins(f, shape, axis, native, threads, calls):
    x = data(shape, np.float64)
    bits_equal(f(x, axis=axis), getattr(np, f.__name__)(x, axis=axis))
    assert calls["np_reduce"] == int(native)


def test_full_reduction_returns_numpys_scalar_type():
    for dtype in (np.float32, np.float64):
        x = data((4, 5), dtype)
        for name in ("sum", "mean", "max", "min"):
            r = getattr(ops, name)(x)
            assert type(r) is dtype and r == getattr(np, name)(x)
        assert type(ops.sum(x[0], axis=0)) is dtype  # 1-D over its only axis: a scalar too


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagates_through_every_reduction(dtype, threads):
    for shape in ((4, 9), (4, 300), (300, 4), (1, 20000)):
        x = data(shape, dtype)
        x[1 % shape[0], 3] = np.nan
        for name in ("sum", "mean", "max", "min"):
            for axis in (None, 0, -1):
                ours, theirs = getattr(ops, name)(x, axis=axis), getattr(np, name)(x, axis=axis)
                np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
                np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_signed_zeros_follow_numpy(dtype):
    z = np.full((3, 5), -0.0, dtype)
    for axis in (None, 0, 1):
        bits_equal(ops.sum(z, axis=axis), np.sum(z, axis=axis))  # add.reduce starts from +0.0
        bits_equal(ops.max(z, axis=axis), np.max(z, axis=axis))
    mixed = np.array([[0.0, -0.0, 0.0], [-0.0, 0.0, -0.0]], dtype)
    # Down the columns NumPy's binary loop keeps the second operand of a tie: so does the kernel.
    bits_equal(ops.max(mixed, axis=0), np.max(mixed, axis=0))
    bits_equal(ops.min(mixed, axis=0), np.min(mixed, axis=0))


def test_inputs_the_kernels_do_not_take_go_to_numpy(calls):
    x = data((6, 7), np.float32)
    for args, kw in (((x.T,), {"axis": 0}), ((x[:, ::2],), {"axis": 1}), ((x.astype(">f4"),), {"axis": 1}),
                     ((data((2, 3, 4), np.float32),), {"axis": 1}), ((x,), {"axis": (0, 1)}),
                     ((x.astype(np.float16),), {"axis": 0}), ((np.zeros((0, 3), np.float32),), {"axis": 0}),
                     ((x,), {"axis": 0, "dtype": np.float64})):
        bits_equal(ops.sum(*args, **kw), np.sum(*args, **kw))
        bits_equal(ops.max(*args, **kw), np.max(*args, **kw)) if "dtype" not in kw and args[0].size else None
    assert calls["np_reduce"] == 0
    for arg in ([[1.0, 5.0], [3.0, 2.0]], 4.0, np.array(2.5), np.float32(3.0)):
        for name in ("sum", "mean", "max", "min"):
            r, ref = getattr(ops, name)(arg), getattr(np, name)(arg)
            assert type(r) is type(ref) and r == ref
    with pytest.raises(numpy.exceptions.AxisError):
        ops.sum(x, axis=2)
    out = np.empty(7, np.float32)
    assert ops.sum(x, axis=0, out=out) is out and np.array_equal(out, np.sum(x, axis=0))
    with pytest.raises(ValueError):
        ops.max(np.zeros((0,), np.float32))


SPECIALS = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1.0, -1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("size", sorted({1, 7, 33, 1000, D.EXT_SCALAR_MIN_SIZE - 1, D.EXT_SCALAR_MIN_SIZE, 4096, (1 << 17) + 5}))
def test_maximum_minimum_with_a_python_scalar_are_numpys_bit_for_bit(dtype, name, size, threads, calls):
    x = data((size,), dtype)
    x[:len(SPECIALS)] = SPECIALS[:size]
    f, g = getattr(ops, name), getattr(np, name)
    for s in (0, 0.0, -0.0, 0.5, 3, -2.25, 1e30, -(2 ** 40)):
        bits_equal(f(x, s), g(x, s))
        bits_equal(f(s, x), g(s, x))
    assert calls["np_max_scalar"] == (16 if size >= D.EXT_SCALAR_MIN_SIZE else 0)  # small: NumPy's own call


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maximum_out_and_other_operands(dtype, calls):
    x = data((40, 60), dtype)
    ref = np.maximum(x, 0)
    y = x.copy()
    assert ops.maximum(y, 0, out=y) is y  # in-place relu: native
    bits_equal(y, ref)
    assert calls["np_max_scalar"] == 1
    out = np.empty_like(x)
    assert ops.maximum(x, 0, out=out) is out  # another out: NumPy's
    bits_equal(out, ref)
    for a, b in ((x, np.float64(0)), (x, np.float32(0)), (x[:, ::2], 0), (x, x.T.copy().T), (x, True),
                 (x.astype(np.int32), 0), ([1.0, -2.0], 0), (x, 1e300), (x, 2 ** 60), (np.array(-1.0, dtype), 0)):
        with np.errstate(over="ignore"):  # 1e300 overflows float32 in NumPy's own cast
            bits_equal(ops.maximum(a, b), np.maximum(a, b))
    assert calls["np_max_scalar"] == 1  # NumPy scalars (strong types), views, bools, big scalars: NumPy's


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_maximum_with_a_cached_scalar_operand_is_numpys_bit_for_bit(dtype, calls):
    # Where the kernel does not apply (a strided view, a 0-d array, below EXT_SCALAR_MIN_SIZE) the
    # scalar becomes a cached read-only 0-d operand of x's dtype (zero at once, any other scalar
    # object on its second use in a row): same results as NumPy's weak-scalar call, whatever the
    # order of scalars, the operand order or out=x.
    x = data((5, 14), dtype)[:, ::2]
    x[0, :len(SPECIALS)] = SPECIALS
    scalars = [0, 0.0, -0.0, 0.5, 0.5, -3, 16777217, 2 ** 53 - 1, -(2 ** 53), 1e30, -1e-45, 3.4e37, 0.5, 0]
    for s in scalars + scalars[::-1]:
        for _ in range(3):  # first sight, second sight (operand made), cached
            for name in ("maximum", "minimum"):
                f, g = getattr(ops, name), getattr(np, name)
                bits_equal(f(x, s), g(x, s))
                bits_equal(f(s, x), g(s, x))
                y, ref = np.repeat(x, 2, axis=1)[:, ::2], x.copy()  # y: a strided view, as x
                assert f(y, s, out=y) is y
                g(ref, s, out=ref)
                bits_equal(y, ref)
    for x0 in (np.array(-0.0, dtype), np.array(np.nan, dtype), np.array(2.5, dtype)):  # 0-d: NumPy scalars back
        for s in (0, 0.0, -0.0, 1.0, 1.0):
            bits_equal(ops.maximum(x0, s), np.maximum(x0, s))
            bits_equal(ops.minimum(s, x0), np.minimum(s, x0))
    assert calls["np_max_scalar"] == 0
    # The cached operands are never handed out or written.
    from pynn.ops import _numeric
    assert _numeric._ZERO32 == 0 and _numeric._ZERO64 == 0 and not _numeric._ZERO32.flags.writeable


def test_small_maximum_from_several_threads_uses_each_threads_own_scalar():
    # The cached operand is one (scalar, 0-d array) pair per dtype, replaced whole: threads
    # alternating their own scalars must never compute with another thread's.
    import threading
    x = data((6, 10), np.float32)[:, ::2]  # a strided view: the cached-operand path, not the kernel
    errors = []

    def work(s):
        ref = np.maximum(x, s)
        for _ in range(3000):
            r = ops.maximum(x, s)
            if r.dtype != ref.dtype or not np.array_equal(r, ref):
                errors.append(s)
                return

    threads_ = [threading.Thread(target=work, args=(v,)) for v in (0.25, -0.5, 1.5, 3)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    assert errors == []


def test_bindings_refuse_what_they_cannot_compute():
    from pynn import _C
    x = data((3, 4), np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        _C.np_reduce(x.astype(np.int64), 0, -1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.np_reduce(x.T, 0, -1)
    with pytest.raises(ValueError, match="empty"):
        _C.np_reduce(np.zeros((0, 4), np.float32), 0, 0)
    with pytest.raises(ValueError, match="op must be"):
        _C.np_reduce(x, 7, 0)
    with pytest.raises(ValueError, match="axis must be"):
        _C.np_reduce(x, 0, 1)
    with pytest.raises(ValueError, match="overlaps"):
        _C.np_max_scalar(x.reshape(-1)[:8], 0.0, out=x.reshape(-1)[4:12])
    with pytest.raises(TypeError, match="dtype"):
        _C.np_max_scalar(x, 0.0, out=np.empty((3, 4), np.float64))
    with pytest.raises(ValueError, match="shape"):
        _C.np_max_scalar(x, 0.0, out=np.empty((4, 3), np.float32))


@pytest.fixture(params=[1, 2, 3], ids=["1thread", "2threads", "3threads"])
def split_threads(request):
    # 8.4M elements give at most 2 reduction threads (4M per thread); 3 checks that a larger
    # thread count than the work deserves changes nothing.
    before = pynn.get_num_threads()
    pynn.set_num_threads(request.param)
    yield request.param
    pynn.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_kernel_splits_keep_numpys_bits(dtype, split_threads):
    """The kernels' own thread splits (rows, column blocks, the two pairwise halves of one long row,
    elementwise blocks) start at 8M elements for a reduction and 1M elementwise: called directly,
    at 1 and 2 threads, still NumPy's bits."""
    from pynn import _C
    for shape in ((1, (1 << 23) + 5), (4100, 2048), (2048, 4100)):
        x = data(shape, dtype)
        for op, f in enumerate((np.sum, np.mean, np.max, np.min)):
            bits_equal(_C.np_reduce(x, op, -1, False), f(x, axis=-1))
            bits_equal(_C.np_reduce(x, op, 0, False), f(x, axis=0))
            bits_equal(_C.np_reduce(x, op, 2, False)[()], f(x))
    x = data(((1 << 20) + 3,), dtype)
    x[::7] = np.nan
    bits_equal(_C.np_max_scalar(x, 0.0), np.maximum(x, 0))
    bits_equal(_C.np_max_scalar(x, 0.0, False, True), np.minimum(0.0, x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [7, 31, 32, 33, 63, 64, 65, 130, 200])
def test_column_extremes_in_register_blocks_are_numpys_bit_for_bit(dtype, cols, threads, calls):
    """The AVX2 column reduction keeps whole blocks of 8 vectors of columns in registers down the
    rows (64 float / 32 double columns); a NaN anywhere in a block sends that block back to the
    exact NaN rule. Blocks with and without NaN (in the first, a middle and the last row), tied
    +0.0/-0.0 columns and partial blocks: NumPy's bits, NaN payloads included, every thread count."""
    rows = 37
    x = data((rows, cols), dtype)
    x[:, 0] = np.where(np.arange(rows) % 2, 0.0, -0.0)  # a column of tied zeros: the order decides the sign
    x[:, -1] = np.where(np.arange(rows) % 3, -0.0, 0.0)
    variants = {"clean": x}
    for r in (0, rows // 2, rows - 1):
        y = x.copy()
        y[r, cols // 2] = np.nan
        variants[f"nan row {r}"] = y
    y = x.copy()
    y[5, 1] = np.float32(np.nan) if dtype is np.float32 else np.nan
    y[9, 1] = -np.nan  # a second NaN, another sign bit: NumPy keeps the first one it meets
    y[3, -2] = np.inf
    variants["two nans"] = y
    before = calls["np_reduce"]
    for label, v in variants.items():
        for name in ("sum", "mean", "max", "min"):
            bits_equal(getattr(ops, name)(v, axis=0), getattr(np, name)(v, axis=0))
            bits_equal(getattr(ops, name)(v, axis=0, keepdims=True), getattr(np, name)(v, axis=0, keepdims=True))
    assert calls["np_reduce"] - before == len(variants) * 8  # every call ran the native kernel
