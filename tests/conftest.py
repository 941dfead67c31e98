import pathlib
import sys

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
def restore_threads():
    """Put the native thread count back after a test that changes it."""
    before = pynn.get_num_threads()
    yield
    pynn.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def examples_on_path():
    """Make examples/ importable for the tests that run the example scripts."""
    sys.path.insert(0, str(EXAMPLES))
    yield EXAMPLES
    sys.path.remove(str(EXAMPLES))


@pytest.fixture(scope="module")
def bench_on_path():
    """Make bench/'s model definitions importable (tests pin that they are right)."""
    path = str(EXAMPLES.parent / "bench")
    sys.path.insert(0, path)
    yield path
    sys.path.remove(path)
