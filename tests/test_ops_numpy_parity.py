"""pynn.ops against NumPy, call by call, for a user who swaps ``import numpy as np`` for
``import pynn.ops as np``: every accelerated name (and the elementwise names lecture code uses)
on lists, Python and NumPy scalars, 0-d arrays, broadcasting, int/bool/float16/float32/float64
promotion, ``out=``, ``keepdims``, negative and tuple axes, non-contiguous, Fortran-ordered,
reversed, byte-swapped and unaligned views, empty arrays, NaN/inf/-0.0 and float overflow.

"Same" means: the same outcome kind (a value, or an exception of the same type with the same
message), the same warnings (category and message, e.g. NumPy's "overflow encountered in
reduce"), the same result type (ndarray / NumPy scalar / tuple), dtype, shape and strides, and
the same values -- bit for bit, NaN positions and the sign of zero included, wherever NumPy's
own result is deterministic. The only tolerances: float32 GEMMs (the native SGEMM and OpenBLAS
add in different orders; 1e-5 relative) and the sign of a +0.0/-0.0 tie in a max/min over the
last axis (NumPy's SIMD reduction order is its own; both zeros compare equal).
"""
import warnings

import numpy as np
import pytest

import pynn
import pynn.ops as ops
from pynn.ops import _dispatch as D

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

def randn(*shape, dtype=np.float32):
    """The same values for the same shape on every call: each side of a comparison gets its own
    fresh operands (``out=`` and in-place cases write to them), equal to the other side's."""
    rng = np.random.default_rng([7, *shape])
    return (rng.standard_normal(shape) * 3).astype(dtype)


def uniform(*shape):
    return np.random.default_rng([8, *shape]).random(shape)


def _outcome(fn, args, kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = ("value", fn(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 (the exception itself is what is compared)
            value = ("raise", type(e), str(e))
    return value, [(w.category, str(w.message)) for w in caught]


def _same_value(ours, theirs, where, tol, zero_sign):
    assert type(ours) is type(theirs), f"{where}: type {type(ours).__name__} vs NumPy's {type(theirs).__name__}"
    if isinstance(theirs, tuple):
        assert len(ours) == len(theirs), where
        for o, t in zip(ours, theirs):
            _same_value(o, t, where, tol, zero_sign)
        return
    if not isinstance(theirs, (np.ndarray, np.generic)):
        assert ours == theirs or (ours != ours and theirs != theirs), f"{where}: {ours!r} vs {theirs!r}"
        return
    assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} vs NumPy's {theirs.dtype}"
    assert np.shape(ours) == np.shape(theirs), f"{where}: shape {np.shape(ours)} vs {np.shape(theirs)}"
    if isinstance(theirs, np.ndarray):
        assert ours.strides == theirs.strides, f"{where}: strides {ours.strides} vs NumPy's {theirs.strides}"
        assert ours.flags.writeable == theirs.flags.writeable, where
    if tol and ours.dtype.kind == "f":
        # a float32 product's rounding error scales with the magnitude of its terms, not of each
        # (possibly cancelled) element: the absolute tolerance follows the largest finite element
        finite = np.abs(theirs[np.isfinite(theirs)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale, err_msg=where)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=where)
        return
    np.testing.assert_array_equal(ours, theirs, err_msg=where)  # NaN == NaN here
    if ours.dtype.kind == "f" and zero_sign:
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs), err_msg=f"{where}: sign of zero")


def check(name, make, tol=0.0, zero_sign=True, label=""):
    """Call ``ops.<name>`` and ``np.<name>`` on fresh arguments from ``make()`` -> (args, kwargs)
    and require the same outcome; with ``out=``, also the same contents of ``out`` and that the
    result is ``out`` itself whenever NumPy's is."""
    results = []
    for mod in (ops, np):
        args, kwargs = make()
        outcome, warns = _outcome(getattr(mod, name), args, kwargs)
        results.append((outcome, warns, args, kwargs))
    (ours, w_ours, a1, k1), (theirs, w_theirs, a2, k2) = results
    where = f"{name}{label}"
    assert ours[0] == theirs[0], f"{where}: pynn.ops gave {ours}, NumPy {theirs}"
    assert w_ours == w_theirs, f"{where}: warnings {w_ours} vs NumPy's {w_theirs}"
    if ours[0] == "raise":
        assert ours[1:] == theirs[1:], f"{where}: {ours[1].__name__}({ours[2]!r}) vs NumPy's {theirs[1].__name__}({theirs[2]!r})"
        return
    _same_value(ours[1], theirs[1], where, tol, zero_sign)
    out1, out2 = k1.get("out"), k2.get("out")
    if isinstance(out2, np.ndarray):
        assert (ours[1] is out1) == (theirs[1] is out2), f"{where}: result is out"
        _same_value(out1, out2, where + " (out)", tol, zero_sign)
    for x1, x2 in zip(a1, a2):  # inputs are never written (or written the same way)
        if isinstance(x2, np.ndarray):
            _same_value(x1, x2, where + " (input)", tol, zero_sign)


# ------------------------------------------------------------------ operands
def _unaligned_values(x):
    buf = bytearray(x.nbytes + 1)
    a = np.frombuffer(buf, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    a[...] = x
    assert not a.flags.aligned
    return a


def _special(dtype=np.float32):
    x = randn(6, 9, dtype=dtype)
    x[0, 0], x[1, 3], x[2, 8], x[3, 4], x[4, :] = np.nan, np.inf, -np.inf, -0.0, -0.0
    x[5, :] = 0.0
    x[5, 2] = -0.0
    return x


# name -> factory of a fresh operand (a new object per call: out= and in-place cases mutate)
OPERANDS = {
    "f32": lambda: randn(5, 7),
    "f32_3d": lambda: randn(3, 4, 5),
    "f32_1d": lambda: randn(11),
    "f32_wide": lambda: randn(300, 400),  # past the small-call limits: the native kernels' own rules
    "f32_long_row": lambda: randn(70000),
    "f64": lambda: randn(5, 7, dtype=np.float64),
    "f16": lambda: randn(4, 6, dtype=np.float16),
    "int64": lambda: np.arange(-10, 25).reshape(5, 7),
    "int32": lambda: np.arange(-10, 25, dtype=np.int32).reshape(5, 7),
    "uint8": lambda: np.arange(35, dtype=np.uint8).reshape(5, 7),
    "bool": lambda: randn(5, 7) > 0,
    "list": lambda: [[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]],
    "int_list": lambda: [[1, -2, 3], [4, 5, -6]],
    "py_float": lambda: 2.5,
    "py_int": lambda: -3,
    "np_f32_scalar": lambda: np.float32(1.25),
    "np_f64_scalar": lambda: np.float64(-0.75),
    "zero_d_f32": lambda: np.array(2.0, np.float32),
    "zero_d_f64": lambda: np.array(-0.0),
    "noncontig": lambda: randn(6, 14)[:, ::2],
    "fortran": lambda: np.asfortranarray(randn(5, 7)),
    "transposed": lambda: randn(7, 5).T,
    "reversed": lambda: randn(5, 7)[::-1],
    "byteswapped": lambda: randn(5, 7).astype(">f4"),
    "unaligned": lambda: _unaligned_values(randn(5, 7)),
    "readonly": lambda: np.frombuffer(randn(5, 7).tobytes(), np.float32).reshape(5, 7),
    "empty_rows": lambda: np.zeros((0, 7), np.float32),
    "empty_cols": lambda: np.zeros((5, 0), np.float32),
    "empty_1d": lambda: np.zeros(0, np.float32),
    "nan_inf_zeros": _special,
    "nan_inf_zeros_f64": lambda: _special(np.float64),
    "all_nan_row": lambda: np.array([[np.nan] * 4, [1.0, 2.0, 3.0, 4.0]], np.float32),
    "overflowing": lambda: np.full((4, 20), 3e38, np.float32),
    "inf_minus_inf": lambda: np.array([[np.inf, -np.inf, 1.0], [1.0, 2.0, 3.0]], np.float32),
    "subnormal": lambda: np.full((3, 40), 1e-40, np.float32),
    "matrix_subclass": lambda: np.asmatrix(randn(3, 4)),
    "masked": lambda: np.ma.masked_less(randn(4, 5), -1.0),
}

# sign of zero of a +0.0/-0.0 tie over the last axis: NumPy's SIMD order (see the module docstring)
_TIED_ZEROS = {"nan_inf_zeros", "nan_inf_zeros_f64"}
REDUCTIONS = ["sum", "mean", "max", "min", "amax", "amin"]


def _axes(x):
    nd = np.ndim(x)
    axes = [None]
    if nd >= 1:
        axes += [0, -1, nd - 1, -nd, nd, -nd - 1, (0,), np.int64(0), True]
    if nd >= 2:
        axes += [1, -2, (0, 1), (-1, 0), (1, 1)]
    return axes


@pytest.mark.parametrize("operand", sorted(OPERANDS))
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_matches_numpy_for_every_axis_and_keepdims(name, operand):
    make_x = OPERANDS[operand]
    for axis in _axes(make_x()):
        for keepdims in (False, True, 1):
            zero_sign = not (operand in _TIED_ZEROS and name not in ("sum", "mean") and axis is not None
                             and axis not in (0, (0,)) and not (isinstance(axis, np.integer) and axis == 0))
            check(name, lambda: ((make_x(),), {"axis": axis, "keepdims": keepdims}), zero_sign=zero_sign,
                  label=f"({operand}, axis={axis!r}, keepdims={keepdims!r})")
    check(name, lambda: ((make_x(),), {}), label=f"({operand})", zero_sign=operand not in _TIED_ZEROS)


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("operand", ["f32", "f64", "f32_wide", "int64", "noncontig"])
def test_reduction_out_dtype_initial_and_where_match_numpy(name, operand):
    make_x = OPERANDS[operand]
    x0 = make_x()
    moments = name in ("sum", "mean")
    for axis in (None, 0, -1):
        shape = np.sum(x0, axis=axis, keepdims=True).shape
        for out_dtype in (x0.dtype, np.float64, np.int32):
            check(name, lambda: ((make_x(),), {"axis": axis, "keepdims": True, "out": np.empty(shape, out_dtype)}),
                  label=f"({operand}, axis={axis}, out {np.dtype(out_dtype).name})")
        check(name, lambda: ((make_x(),), {"axis": axis, "out": np.empty((99,), x0.dtype)}),
              label=f"({operand}, axis={axis}, out of a wrong shape)")
        if moments:
            check(name, lambda: ((make_x(),), {"axis": axis, "dtype": np.float64}), label=f"({operand}, dtype)")
        else:
            check(name, lambda: ((make_x(),), {"axis": axis, "initial": 0.5}), label=f"({operand}, initial)")
        check(name, lambda: ((make_x(),), {"axis": axis, "where": np.asarray(x0) > 0,
                                           **({} if moments else {"initial": -100})}), label=f"({operand}, where)")
    check(name, lambda: ((make_x(), 0), {}), label=f"({operand}, positional axis)")
    check(name, lambda: ((make_x(),), {"axis": 0, "bogus": 1}), label=f"({operand}, unknown keyword)")


def test_sum_overflow_warns_and_raises_as_numpy_does():
    for name in ("sum", "mean"):
        for axis in (None, 0, -1):
            check(name, lambda: ((np.full((4, 20), 3e38, np.float32),), {"axis": axis}), label=f"(axis={axis})")
            with np.errstate(over="raise"):
                check(name, lambda: ((np.full((4, 20), 3e38, np.float32),), {"axis": axis}),
                      label=f"(axis={axis}, errstate over=raise)")
            with np.errstate(all="ignore"):
                check(name, lambda: ((np.full((4, 20), 3e38, np.float32),), {"axis": axis}),
                      label=f"(axis={axis}, errstate ignore)")
            with np.errstate(invalid="raise"):
                check(name, lambda: ((OPERANDS["inf_minus_inf"](),), {"axis": axis}), label=f"(inf-inf, axis={axis})")


# ------------------------------------------------------------------ maximum / minimum
SECOND = {
    "zero": lambda: 0, "zero_float": lambda: 0.0, "neg_zero": lambda: -0.0, "half": lambda: 0.5,
    "big_int": lambda: 1 << 60, "huge_float": lambda: 1e300, "nan": lambda: float("nan"), "inf": lambda: float("inf"),
    "true": lambda: True, "np_f64": lambda: np.float64(0.25), "np_f32": lambda: np.float32(0.25),
    "np_i64": lambda: np.int64(2), "zero_d": lambda: np.array(0.5, np.float32),
    "row": lambda: randn(7), "col": lambda: randn(5, 1), "same": lambda: randn(5, 7), "f64_row": lambda: randn(7, dtype=np.float64),
    "list": lambda: [0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0], "bad_shape": lambda: randn(3),
    "complex": lambda: 1j, "string": lambda: "a", "none": lambda: None,
}


@pytest.mark.parametrize("operand", sorted(OPERANDS))
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_match_numpy_both_operand_orders(name, operand):
    make_x = OPERANDS[operand]
    for sname, make_s in SECOND.items():
        check(name, lambda: ((make_x(), make_s()), {}), label=f"({operand}, {sname})")
        check(name, lambda: ((make_s(), make_x()), {}), label=f"({sname}, {operand})")


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("operand", ["f32", "f32_wide", "f64", "int64", "noncontig", "nan_inf_zeros", "readonly",
                                     "zero_d_f32"])
def test_maximum_minimum_out_and_ufunc_keywords_match_numpy(name, operand):
    make_x = OPERANDS[operand]
    shape = np.shape(make_x())
    for s in (0, 0.5, -2):
        check(name, lambda: ((make_x(), s), {"out": np.empty(shape, np.asarray(make_x()).dtype)}),
              label=f"({operand}, {s}, out)")
        check(name, lambda: ((make_x(), s), {"out": np.empty(shape, np.float64)}), label=f"({operand}, out f64)")
        check(name, lambda: ((make_x(), s), {"out": np.empty(shape, np.int8)}), label=f"({operand}, out int8)")
        check(name, lambda: ((make_x(), s), {"out": (np.empty(shape, np.asarray(make_x()).dtype),)}),
              label=f"({operand}, out tuple)")
        check(name, lambda: ((make_x(), s), {"dtype": np.float64}), label=f"({operand}, dtype)")
        # where= leaves the masked-out elements as out= had them (uninitialised without out=)
        check(name, lambda: ((make_x(), s), {"where": np.asarray(make_x()) > 0, "out": np.zeros(shape, np.float64)}),
              label=f"({operand}, where)")
        check(name, lambda: ((make_x(), s, np.empty(shape, np.asarray(make_x()).dtype)), {}),
              label=f"({operand}, positional out)")


def test_maximum_in_place_out_is_the_input_itself():
    for operand in ("f32", "f32_wide", "f64", "nan_inf_zeros", "noncontig", "readonly"):
        for s in (0, -0.0, 0.5, float("nan")):
            def make():
                x = OPERANDS[operand]()
                return (x, s), {"out": x}
            check("maximum", make, label=f"({operand}, {s}, out=x)")
            check("minimum", make, label=f"({operand}, {s}, out=x)")


# ------------------------------------------------------------------ dot / matmul
def _gemm_pairs():
    f32 = lambda *s: randn(*s)  # noqa: E731
    pairs = {
        "lecture_fwd": lambda: (f32(32, 64), f32(64, 128)),
        "h512_fwd": lambda: (f32(256, 64), f32(64, 512)),
        "h512_colmajor_a": lambda: (f32(256, 512).T, f32(256, 10)),
        "h512_colmajor_b": lambda: (f32(256, 10), f32(512, 10).T),
        "small_colmajor_b": lambda: (f32(32, 10), f32(128, 10).T),
        "strided": lambda: (f32(300, 130)[::2, ::2], f32(130, 600)[::2, ::3]),
        "reversed": lambda: (f32(256, 64)[::-1], f32(64, 512)[:, ::-1]),
        "f64": lambda: (randn(256, 64, dtype=np.float64), randn(64, 512, dtype=np.float64)),
        "mixed": lambda: (f32(256, 64), randn(64, 512, dtype=np.float64)),
        "int": lambda: (np.arange(12).reshape(3, 4), np.arange(8).reshape(4, 2)),
        "int_f32": lambda: (np.arange(12).reshape(3, 4), f32(4, 2)),
        "bool": lambda: (f32(3, 4) > 0, f32(4, 5) > 0),
        "f16": lambda: (randn(20, 30, dtype=np.float16), randn(30, 4, dtype=np.float16)),
        "lists": lambda: ([[1.0, 2.0], [3.0, 4.0]], [[5.0], [6.0]]),
        "vec_vec": lambda: (f32(64), f32(64)),
        "mat_vec": lambda: (f32(256, 64), f32(64)),
        "vec_mat": lambda: (f32(256), f32(256, 64)),
        "scalar": lambda: (2.0, f32(3, 4)),
        "zero_d": lambda: (np.array(2.0, np.float32), f32(3, 4)),
        "batched": lambda: (f32(4, 32, 64), f32(4, 64, 16)),
        "broadcast_batch": lambda: (f32(4, 32, 64), f32(64, 16)),
        "empty_m": lambda: (np.zeros((0, 64), np.float32), f32(64, 512)),
        "empty_k": lambda: (np.zeros((256, 0), np.float32), np.zeros((0, 512), np.float32)),
        "empty_n": lambda: (f32(256, 64), np.zeros((64, 0), np.float32)),
        "mismatch": lambda: (f32(256, 64), f32(65, 512)),
        "mismatch_small": lambda: (f32(3, 4), f32(5, 6)),
        "nan_inf": lambda: (np.where(uniform(256, 64) < 0.01, np.nan, f32(256, 64)).astype(np.float32),
                            np.where(uniform(64, 512) < 0.01, np.inf, f32(64, 512)).astype(np.float32)),
        "unaligned": lambda: (_unaligned_values(f32(256, 64)), f32(64, 512)),
        "byteswapped": lambda: (f32(256, 64).astype(">f4"), f32(64, 512)),
        "fortran": lambda: (np.asfortranarray(f32(256, 64)), np.asfortranarray(f32(64, 512))),
        "matrix": lambda: (np.asmatrix(f32(3, 4)), f32(4, 2)),
    }
    return pairs


GEMM_PAIRS = _gemm_pairs()


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}threads")
def threads(request):
    before = pynn.get_num_threads()
    pynn.set_num_threads(request.param)
    yield request.param
    pynn.set_num_threads(before)


@pytest.mark.parametrize("pair", sorted(GEMM_PAIRS))
@pytest.mark.parametrize("name", ["dot", "matmul"])
def test_dot_matmul_match_numpy(name, pair, threads):
    make = GEMM_PAIRS[pair]
    a0, b0 = make()
    f32 = np.result_type(np.asarray(a0), np.asarray(b0)) == np.float32
    tol = 1e-5 if f32 else 0.0
    check(name, lambda: (make(), {}), tol=tol, label=f"({pair})")
    if pair in ("mismatch", "mismatch_small", "scalar", "zero_d") or np.ndim(a0) == 0:
        return
    with np.errstate(all="ignore"):
        shape = np.shape(np.dot(a0, b0) if name == "dot" else np.matmul(a0, b0))
    for dt in (np.float32, np.float64):
        check(name, lambda: (make(), {"out": np.empty(shape, dt)}), tol=tol, label=f"({pair}, out {np.dtype(dt).name})")
    if shape:
        check(name, lambda: (make(), {"out": np.empty(shape, np.float32)[::-1]}), tol=tol,
              label=f"({pair}, reversed out)")
        check(name, lambda: (make(), {"out": np.empty(shape[::-1], np.float32).T}), tol=tol,
              label=f"({pair}, Fortran out)")
    check(name, lambda: (make(), {"out": np.empty((1, 1) + shape, np.float32)}), tol=tol, label=f"({pair}, wrong out)")


def test_dot_matmul_out_aliasing_an_operand_matches_numpy(threads):
    def make():
        a = randn(128, 128)
        return (a, a), {"out": a}
    for name in ("dot", "matmul"):
        check(name, make, tol=1e-4, label="(out is a and b)")

    def make_view():
        buf = randn(128, 256)
        return (buf[:, :128], randn(128, 128)), {"out": buf[:, 64:192]}
    check("matmul", make_view, tol=1e-4, label="(out overlaps a)")


# ------------------------------------------------------------------ the elementwise names lecture code uses
UNARY = ["exp", "log", "log1p", "sqrt", "square", "abs", "absolute", "negative", "tanh"]
BINARY = ["add", "subtract", "multiply", "divide", "true_divide", "power"]
_ELEMENTWISE_OPERANDS = ["f32", "f64", "f16", "int64", "bool", "list", "int_list", "py_float", "py_int",
                         "np_f32_scalar", "zero_d_f32", "noncontig", "fortran", "empty_rows", "nan_inf_zeros",
                         "byteswapped", "matrix_subclass", "readonly"]


@pytest.mark.parametrize("operand", _ELEMENTWISE_OPERANDS)
@pytest.mark.parametrize("name", UNARY)
def test_unary_matches_numpy(name, operand):
    make_x = OPERANDS[operand]
    check(name, lambda: ((make_x(),), {}), label=f"({operand})")
    shape = np.shape(make_x())
    check(name, lambda: ((make_x(),), {"out": np.empty(shape, np.float64)}), label=f"({operand}, out)")
    check(name, lambda: ((make_x(),), {"dtype": np.float64}), label=f"({operand}, dtype)")
    check(name, lambda: ((make_x(), np.empty(shape, np.float64)), {}), label=f"({operand}, positional out)")


@pytest.mark.parametrize("operand", _ELEMENTWISE_OPERANDS)
@pytest.mark.parametrize("name", BINARY)
def test_binary_matches_numpy(name, operand):
    make_x = OPERANDS[operand]
    for sname in ("zero", "half", "np_f64", "np_i64", "row", "col", "list", "bad_shape", "string", "none"):
        make_s = SECOND[sname]
        check(name, lambda: ((make_x(), make_s()), {}), label=f"({operand}, {sname})")
        check(name, lambda: ((make_s(), make_x()), {}), label=f"({sname}, {operand})")


def test_where_clip_argmax_match_numpy():
    for operand in ("f32", "f64", "int64", "list", "noncontig", "nan_inf_zeros", "empty_rows", "zero_d_f32"):
        make_x = OPERANDS[operand]
        check("where", lambda: ((np.asarray(make_x()) > 0, make_x(), 0.0), {}), label=f"({operand})")
        check("where", lambda: ((np.asarray(make_x()) > 0,), {}), label=f"({operand}, one argument)")
        check("where", lambda: ((np.asarray(make_x()) > 0, make_x()), {}), label=f"({operand}, two arguments)")
        check("clip", lambda: ((make_x(), -0.5, 0.5), {}), label=f"({operand})")
        check("clip", lambda: ((make_x(),), {"a_min": None, "a_max": 1}), label=f"({operand}, a_max)")
        for name in ("argmax", "argmin"):
            for axis in (None, 0, -1, 5):
                check(name, lambda: ((make_x(),), {"axis": axis}), label=f"({operand}, axis={axis})")
                check(name, lambda: ((make_x(),), {"axis": axis, "keepdims": True}), label=f"({operand}, keepdims)")


def test_numpy_backend_gives_the_same_outcomes():
    with pynn.use_backend("numpy"):
        assert not D.native_on()
        for name in REDUCTIONS:
            for operand in ("f32", "nan_inf_zeros", "overflowing", "empty_rows"):
                for axis in (None, 0, -1):
                    check(name, lambda: ((OPERANDS[operand](),), {"axis": axis}), label=f"({operand}, {axis})")
        check("maximum", lambda: ((OPERANDS["f32_wide"](), 0), {}))
        check("dot", lambda: (GEMM_PAIRS["h512_fwd"](), {}))


def test_float_error_fallback_is_taken_only_when_a_flag_was_raised():
    """The fast entries hand a call back to NumPy (None) only when their kernel raised one of the
    flags NumPy reports; ordinary finite data keeps the native route (no silent slow path)."""
    if not D.native_on():
        pytest.skip("the native backend is not active")
    from pynn.ops import _numeric
    c = _numeric._native()
    before = pynn.get_num_threads()
    pynn.set_num_threads(1)
    try:
        for m, k, n, trans_a, trans_b in [(256, 64, 512, False, False), (256, 512, 10, False, False),
                                          (512, 256, 10, True, False), (32, 10, 128, False, True)]:
            a = randn(k, m).T if trans_a else randn(m, k)
            b = randn(n, k).T if trans_b else randn(k, n)
            assert c.np_gemm_route(a, b)
            r = c.np_fast_dot(a, b, None)
            assert isinstance(r, np.ndarray)
            _same_value(r, np.dot(a, b), f"np_fast_dot {m}x{k}x{n}", 1e-5, True)
            a = np.array(a)  # a writable copy, same layout class for the route
            a[0, 0] = np.inf
            b = np.array(b)
            b[0, :] = 0.0  # inf * 0: invalid
            assert c.np_fast_dot(a, b, None) is None
        x = randn(200, 300)  # within REDUCE_SMALL_MAX_SIZE: every op and axis is native
        for op in range(4):
            for axis in (None, 0, -1):
                assert c.np_fast_reduce(x, op, axis, False) is not None
        big = np.full((4, 20), 3e38, np.float32)
        for op, expect_native in ((0, False), (1, False), (2, True), (3, True)):
            for axis in (None, 0, -1):
                assert (c.np_fast_reduce(big, op, axis, False) is not None) == expect_native
        nan = OPERANDS["nan_inf_zeros"]()
        for op in (2, 3):  # NaN operands raise the invalid flag in the compare; NumPy's max/min never warn
            assert c.np_fast_reduce(nan, op, 0, False) is not None
    finally:
        pynn.set_num_threads(before)
