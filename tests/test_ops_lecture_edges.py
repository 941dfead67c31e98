"""Edge cases of pynn.ops's NumPy face found by the lecture-code audit (see test_ops_lecture_programs.py):
each is a call where pynn.ops answered differently from NumPy."""
import numpy as np
import pytest

import pynn
import pynn.ops as ops


@pytest.mark.parametrize("backend_", ["native", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, -1, 1])
def test_mean_over_an_axis_of_a_0d_array_is_numpys_axis_error(backend_, dtype, axis):
    # add.reduce takes axis 0 of a 0-d array (NumPy keeps that for old code); np.mean does not.
    if backend_ == "native" and not pynn.backend.NATIVE_AVAILABLE:
        pytest.skip("native extension not built")
    z = np.array(2.0, dtype)
    with pynn.use_backend(backend_):
        for keepdims in (False, True):
            with pytest.raises(np.exceptions.AxisError) as theirs:
                np.mean(z, axis=axis, keepdims=keepdims)
            with pytest.raises(np.exceptions.AxisError) as ours:
                ops.mean(z, axis=axis, keepdims=keepdims)
            assert str(ours.value) == str(theirs.value)
        r = ops.mean(z)  # no axis: the value, as NumPy's scalar
        assert type(r) is dtype and r == 2.0
