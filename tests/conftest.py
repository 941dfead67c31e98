import numpy as np
import pytest

import pynn
from pynn import backend

BACKENDS = ["numpy"] + (["native"] if backend.NATIVE_AVAILABLE else [])


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    """Run the test once per backend, restoring the previous one afterwards."""
    with pynn.use_backend(request.param):
        yield request.param


@pytest.fixture
def numpy_backend():
    with pynn.use_backend("numpy"):
        yield


@pytest.fixture
def native_backend():
    if not backend.NATIVE_AVAILABLE:
        pytest.skip("native extension not built")
    with pynn.use_backend("native"):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
