"""pynn.ops takes every call NumPy takes, the way NumPy takes it: the same parameters by position
and by keyword, the same "argument not given" behaviour (which decides what an ndarray subclass such
as np.matrix is handed), and the same refusals. Found by running lecture code with the import swapped."""
import inspect

import numpy as np
import pytest

import pynn
import pynn.ops as ops

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
R = np.random.default_rng(0)
X = R.standard_normal((6, 5)).astype(np.float32)

# pynn.ops's own functions that stand for a NumPy function (not a ufunc: those take positional
# operands and NumPy's ufunc keywords, passed through as they are).
_OWN_NUMPY = sorted(n for n in ops._OWN if hasattr(np, n) and callable(getattr(np, n))
                    and not isinstance(getattr(np, n), np.ufunc))


@pytest.mark.parametrize("name", _OWN_NUMPY)
def test_every_numpy_parameter_binds_the_same_way(name):
    """Each of NumPy's parameters can be given to pynn.ops's function as NumPy allows: positionally at
    the same place (up to NumPy's own positional ones), and by keyword unless NumPy makes it positional-only."""
    ours, theirs = inspect.signature(getattr(ops, name)), inspect.signature(getattr(np, name))
    P = inspect.Parameter
    params = list(theirs.parameters.values())
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is P.VAR_POSITIONAL for p in params):
        pytest.skip(f"np.{name} takes *args")
    ours.bind(*[object() for _ in positional])  # NumPy's full positional call
    # ... and its full keyword call: everything NumPy lets one name, named
    head = [object() for p in params if p.kind is P.POSITIONAL_ONLY]
    ours.bind(*head, **{p.name: object() for p in params if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)})


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_of_a_matrix_without_keepdims_is_numpys_scalar(name):
    m = np.asmatrix(X)
    ours, theirs = getattr(ops, name)(m), getattr(np, name)(m)
    assert type(ours) is type(theirs) and ours == theirs  # np.int64, not a 1x1 matrix
    for axis in (0, 1):
        ours, theirs = getattr(ops, name)(m, axis=axis), getattr(np, name)(m, axis=axis)
        assert type(ours) is type(theirs) and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)
    assert getattr(ops, name)(X, 1, None, keepdims=True).shape == (6, 1)


@pytest.mark.parametrize("name", ["std", "var"])
def test_std_and_var_of_a_matrix_without_keepdims_are_numpys(name):
    m = np.asmatrix(X)
    for kwargs in ({}, {"axis": 0}, {"axis": 1, "ddof": 1}):
        ours, theirs = getattr(ops, name)(m, **kwargs), getattr(np, name)(m, **kwargs)
        assert type(ours) is type(theirs)
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", ["sum", "max", "min", "amax", "amin"])
def test_reductions_take_initial_and_where_by_position_too(name):
    mask = X > -0.5
    if name == "sum":
        args = (0, None, None, False, 1.5, mask)
    else:
        args = (0, None, False, 0.25 if name.endswith("max") else -0.25, mask)
    ours, theirs = getattr(ops, name)(X, *args), getattr(np, name)(X, *args)
    assert type(ours) is type(theirs) and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(TypeError):
        getattr(ops, name)(X, no_such_argument=1)  # NumPy's refusal too: nothing is passed on unread


def test_clip_and_stack_take_their_first_argument_by_keyword():
    np.testing.assert_array_equal(ops.clip(a=X, a_min=-0.5, a_max=0.5), np.clip(a=X, a_min=-0.5, a_max=0.5))
    np.testing.assert_array_equal(ops.stack(arrays=[X, X], axis=1), np.stack(arrays=[X, X], axis=1))


@pytest.mark.parametrize("name", ["stack", "concatenate"])
def test_stack_and_concatenate_refuse_a_generator_as_numpy_does(name):
    with pytest.raises(TypeError) as theirs:
        getattr(np, name)(a for a in (X, X))
    with pytest.raises(TypeError) as ours:
        getattr(ops, name)(a for a in (X, X))
    assert str(ours.value) == str(theirs.value)
    # sequences of any kind (and a Tensor among them) still work
    np.testing.assert_array_equal(getattr(ops, name)((X, X)), getattr(np, name)((X, X)))
    t = getattr(ops, name)((pynn.Tensor(X, requires_grad=True), X))
    assert isinstance(t, pynn.Tensor)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_of_a_tensor_with_a_positional_out_none_keeps_the_graph(name):
    t = pynn.Tensor(X, requires_grad=True)
    r = getattr(ops, name)(t, 0.0, None)
    assert isinstance(r, pynn.Tensor)
    r.sum().backward()
    np.testing.assert_array_equal(t.grad, getattr(np, name)(X, 0.0) == X)
    with pytest.raises(TypeError, match="not supported when an input is a pynn.Tensor"):
        getattr(ops, name)(t, 0.0, np.empty_like(X))
