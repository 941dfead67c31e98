"""Pooling: gradients vs finite differences (numpy, float64), native vs the
reference (float32, with ties), the tie rule, same-padding averages, PyTorch
parity, errors, and the pooling layers."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn import backend, layers
from pynn.autograd import Tensor
from pynn.testing import gradcheck

R = np.random.default_rng(0)
needs_native = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="native extension not built")


def distinct(*shape):
    """No ties, so the max is differentiable at the sample point."""
    return R.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) * 0.37 - 3.0


# (id, x shape, pool_size, strides, padding)
CASES = [
    ("2x2_valid", (2, 6, 8, 3), (2, 2), None, "valid"),
    ("2x2_valid_odd_drops_edge", (1, 7, 5, 5), (2, 2), None, "valid"),
    ("3x3_s2_same_odd", (2, 7, 6, 3), (3, 3), (2, 2), "same"),
    ("3x2_s1_same_overlapping", (1, 5, 6, 9), (3, 2), (1, 1), "same"),
    ("2x2_s2_same_odd", (2, 5, 5, 2), (2, 2), (2, 2), "same"),
    ("3x3_s3_valid", (1, 9, 10, 3), (3, 3), (3, 3), "valid"),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,shape,pool,strides,padding", CASES, ids=IDS)
def test_pool_gradients_match_finite_differences(numpy_backend, name, shape, pool, strides, padding):
    gradcheck(lambda x: F.max_pool2d(x, pool, strides, padding), [distinct(*shape)])
    gradcheck(lambda x: F.avg_pool2d(x, pool, strides, padding), [R.standard_normal(shape)])


def test_global_pool_gradients_match_finite_differences(numpy_backend):
    gradcheck(F.global_max_pool2d, [distinct(2, 3, 4, 5)])
    gradcheck(F.global_average_pool2d, [R.standard_normal((2, 3, 4, 5))])


@needs_native
@pytest.mark.parametrize("name,shape,pool,strides,padding", CASES, ids=IDS)
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_native_matches_reference_including_ties(name, shape, pool, strides, padding, op):
    x = R.integers(0, 4, shape).astype(np.float32)  # many ties
    results = {}
    for bk in ("numpy", "native"):
        with pynn.use_backend(bk):
            t = Tensor(x.copy(), requires_grad=True)
            y = getattr(F, op)(t, pool, strides, padding)
            y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
            results[bk] = (y.data, t.grad)
    for nat, ref in zip(results["native"], results["numpy"]):
        assert nat.dtype == np.float32
        np.testing.assert_allclose(nat, ref, rtol=1e-5, atol=1e-6)


@needs_native
@pytest.mark.parametrize("op", ["global_max_pool2d", "global_average_pool2d"])
def test_global_pool_native_matches_reference(op):
    x = R.integers(0, 3, (5, 7, 6, 19)).astype(np.float32)
    results = {}
    for bk in ("numpy", "native"):
        with pynn.use_backend(bk):
            t = Tensor(x.copy(), requires_grad=True)
            y = getattr(F, op)(t)
            y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
            results[bk] = (y.data, t.grad)
    for nat, ref in zip(results["native"], results["numpy"]):
        np.testing.assert_allclose(nat, ref, rtol=1e-5, atol=1e-6)


def test_max_pool_gradient_goes_to_the_first_maximum_of_each_window(backend_name):
    # Window order is row-major: on a tie the earlier cell wins, once per window (as TensorFlow).
    x = np.array([[1, 5, 2, 2],
                  [5, 0, 2, 2],
                  [0, 0, 7, 1],
                  [3, 3, 0, 7]], np.float32).reshape(1, 4, 4, 1)
    t = Tensor(x, requires_grad=True)
    y = F.max_pool2d(t, 2)
    np.testing.assert_array_equal(y.data[0, :, :, 0], [[5, 2], [3, 7]])
    y.backward(np.array([10, 20, 30, 40], np.float32).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(t.grad[0, :, :, 0], [[0, 10, 20, 0],
                                                       [0, 0, 0, 0],
                                                       [0, 0, 40, 0],
                                                       [30, 0, 0, 0]])


def test_max_pool_overlapping_windows_accumulate_into_a_shared_maximum(backend_name):
    x = np.zeros((1, 1, 4, 1), np.float32)
    x[0, 0, 1, 0] = 9.0
    t = Tensor(x, requires_grad=True)
    y = F.max_pool2d(t, (1, 3), strides=1, padding="same")  # windows [-1..1] [0..2] [1..3] [2..4]
    y.backward(np.ones_like(y.data))
    # three windows hold the 9; the last one ([0, 0, pad]) ties and picks its first cell, index 2
    np.testing.assert_array_equal(t.grad[0, 0, :, 0], [0, 3, 1, 0])


def test_avg_pool_same_padding_averages_real_cells_only(backend_name):
    x = np.ones((1, 3, 3, 2), np.float32)
    y = pynn.ops.avg_pool2d(x, 2, padding="same")  # windows at the bottom/right edge cover padding
    np.testing.assert_array_equal(y, np.ones((1, 2, 2, 2)))
    t = Tensor(x, requires_grad=True)
    F.avg_pool2d(t, 2, padding="same").backward(np.ones((1, 2, 2, 2), np.float32))
    np.testing.assert_allclose(t.grad[0, :, :, 0], [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]])
    img = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    np.testing.assert_allclose(pynn.ops.avg_pool2d(img, 2, padding="same")[0, :, :, 0],
                               [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8]])


def test_max_pool_same_padding_never_picks_the_padding(backend_name):
    x = -np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)  # all negative: a zero pad would win
    np.testing.assert_array_equal(pynn.ops.max_pool2d(x, 2, padding="same")[0, :, :, 0], [[-1, -3], [-7, -9]])


@pytest.mark.parametrize("name,shape,pool,strides,padding", [c for c in CASES if c[4] == "valid"],
                         ids=[c[0] for c in CASES if c[4] == "valid"])
def test_pool_matches_torch(backend_name, name, shape, pool, strides, padding):
    torch = pytest.importorskip("torch")
    x = R.standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x.transpose(0, 3, 1, 2))
    for ours, theirs in ((pynn.ops.max_pool2d, torch.nn.functional.max_pool2d),
                         (pynn.ops.avg_pool2d, torch.nn.functional.avg_pool2d)):
        expected = theirs(xt, pool, strides or pool).numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(ours(x, pool, strides, padding), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- errors
def test_pool_window_larger_than_input_names_op_and_shapes(backend_name):
    with pytest.raises(ValueError, match=r"max_pool2d.*larger than the unpadded input 3.*\(1, 3, 3, 2\)"):
        pynn.ops.max_pool2d(np.zeros((1, 3, 3, 2), np.float32), 4)
    with pytest.raises(ValueError, match=r"avg_pool2d.*\(2, 5, 3, 1\)"):
        pynn.ops.avg_pool2d(np.zeros((2, 5, 3, 1), np.float32), (2, 4))
    with pytest.raises(ValueError, match=r"max_pool2d.*4-D.*\(3, 3\)"):
        pynn.ops.max_pool2d(np.zeros((3, 3), np.float32), 2)


def test_pooling_layers_name_the_layer_and_shapes_in_errors():
    with pytest.raises(ValueError, match=r"MaxPooling2D 'mp'.*larger than the unpadded input 3.*\(1, 3, 3, 1\)"):
        layers.MaxPooling2D(4, name="mp")(np.ones((1, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match=r"GlobalAveragePooling2D 'gap'.*\(2, 8\)"):
        layers.GlobalAveragePooling2D(name="gap").compute_output_shape((2, 8))
    with pytest.raises(ValueError, match="padding"):
        layers.AveragePooling2D(padding="causal")


# ---------------------------------------------------------------- layers
@pytest.mark.parametrize("layer,expected_shape", [
    (layers.MaxPooling2D(), (None, 3, 4, 5)),
    (layers.MaxPooling2D(3, strides=2, padding="same"), (None, 4, 5, 5)),
    (layers.AveragePooling2D((2, 3), padding="same"), (None, 4, 3, 5)),
    (layers.GlobalAveragePooling2D(), (None, 5)),
    (layers.GlobalMaxPooling2D(keepdims=True), (None, 1, 1, 5)),
])
def test_pooling_layer_output_matches_compute_output_shape_and_config(backend_name, layer, expected_shape):
    x = R.standard_normal((2, 7, 9, 5)).astype(np.float32)
    assert layer.compute_output_shape((None, 7, 9, 5)) == expected_shape
    assert layer(x).shape == (2,) + expected_shape[1:]
    clone = type(layer).from_config({**layer.get_config(), "name": layer.name + "_clone"})
    np.testing.assert_array_equal(clone(x).data, layer(x).data)
    assert layer.get_weights() == []


def test_sequential_summary_shows_conv_and_pool_shapes(capsys):
    model = pynn.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, padding="same"), layers.MaxPooling2D(2),
                             layers.Conv2D(6, 3), layers.GlobalMaxPooling2D()])
    model.summary()
    out = capsys.readouterr().out
    for shape in ("(None, 8, 8, 4)", "(None, 4, 4, 4)", "(None, 2, 2, 6)", "(None, 6)"):
        assert shape in out
    assert "Total params: 262" in out  # 3·3·1·4 + 4 + 3·3·4·6 + 6


@needs_native
@pytest.mark.parametrize("pool,strides,padding", [((2, 2), None, "valid"), ((3, 3), (1, 1), "same"),
                                                  ((3, 3), (2, 2), "same")])
def test_pool_native_threaded_sizes_match_reference(pool, strides, padding):
    # Large enough (>= 2 x 2M window visits) that the native kernels split the work over threads.
    from pynn.backend import native as N, numpy as Ref
    x = R.integers(0, 5, (64, 34, 32, 64)).astype(np.float32)
    y = Ref.max_pool2d(x, pool, strides, padding)
    dy = R.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(N.max_pool2d(x, pool, strides, padding), y)
    np.testing.assert_allclose(N.max_pool2d_backward(x, y, dy, pool, strides, padding),
                               Ref.max_pool2d_backward(x, y, dy, pool, strides, padding), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(N.avg_pool2d(x, pool, strides, padding), Ref.avg_pool2d(x, pool, strides, padding),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(N.avg_pool2d_backward(dy, x.shape, pool, strides, padding),
                               Ref.avg_pool2d_backward(dy, x.shape, pool, strides, padding), rtol=1e-6, atol=1e-6)
    g = N.global_max_pool2d(x)
    np.testing.assert_array_equal(g, Ref.global_max_pool2d(x))
    dg = R.standard_normal(g.shape).astype(np.float32)
    np.testing.assert_array_equal(N.global_max_pool2d_backward(x, g, dg), Ref.global_max_pool2d_backward(x, g, dg))
    np.testing.assert_allclose(N.global_avg_pool2d(x), Ref.global_avg_pool2d(x), rtol=1e-5, atol=1e-5)


@needs_native
@pytest.mark.parametrize("c", [1, 7, 8, 16, 17, 64, 72])
@pytest.mark.parametrize("shape_pool", [((3, 6, 8), (2, 2), None, "valid"),     # 2x2 tiles: the straight-line path
                                        ((2, 7, 9), (2, 2), None, "valid"),     # odd sizes drop the last row/col
                                        ((2, 5, 7), (2, 2), (2, 2), "same"),    # padded last window
                                        ((1, 6, 6), (3, 3), (2, 2), "same")])   # overlapping general windows
def test_pool_avx2_channel_tails_and_2x2_fast_path_match_reference_with_ties(c, shape_pool):
    # C not a multiple of 8 takes masked tails; C = 8k with 2x2 tiles the unrolled kernel. Many ties:
    # the gradient must still go to the first maximum of each window only.
    from pynn.backend import native as N, numpy as Ref
    (n, h, w), pool, strides, padding = shape_pool
    x = R.integers(0, 3, (n, h, w, c)).astype(np.float32)
    y = Ref.max_pool2d(x, pool, strides, padding)
    dy = R.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(N.max_pool2d(x, pool, strides, padding), y)
    # Overlapping windows add into shared cells in another order than the reference: allclose.
    np.testing.assert_allclose(N.max_pool2d_backward(x, y, dy, pool, strides, padding),
                               Ref.max_pool2d_backward(x, y, dy, pool, strides, padding), rtol=1e-6, atol=1e-6)
    g = R.standard_normal((n, h, w, c)).astype(np.float32)
    np.testing.assert_allclose(N.global_avg_pool2d(g), Ref.global_avg_pool2d(g), rtol=1e-5, atol=1e-6)
    dg = R.standard_normal((n, c)).astype(np.float32)
    np.testing.assert_allclose(N.global_avg_pool2d_backward(dg, g.shape), Ref.global_avg_pool2d_backward(dg, g.shape),
                               rtol=1e-6, atol=1e-7)


@needs_native
def test_pool_max_nan_never_wins_and_infinities_route_like_the_generic_kernel():
    from pynn.backend import native as N, numpy as Ref
    x = R.standard_normal((1, 4, 4, 16)).astype(np.float32)
    x[0, 0, 1, 3] = -np.inf
    x[0, 2, 2, :8] = np.inf
    y = N.max_pool2d(x, (2, 2))
    np.testing.assert_array_equal(y, Ref.max_pool2d(x, (2, 2)))
    dy = np.ones_like(y)
    np.testing.assert_array_equal(N.max_pool2d_backward(x, y, dy, (2, 2)), Ref.max_pool2d_backward(x, y, dy, (2, 2)))


@needs_native
def test_pool_and_conv_from_two_python_threads_at_once_match_reference():
    # The kernels release the GIL and share their work with helper threads; a second
    # caller arriving meanwhile runs inline. Both must get exact results.
    import threading
    from pynn.backend import native as N, numpy as Ref
    x = R.integers(0, 5, (32, 32, 32, 16)).astype(np.float32)
    w = R.standard_normal((3, 3, 16, 16)).astype(np.float32)
    want_pool, want_conv = Ref.max_pool2d(x, (2, 2)), Ref.conv2d(x[:4], w, None, (1, 1), "same")
    errors = []

    def work():
        try:
            for _ in range(5):
                np.testing.assert_array_equal(N.max_pool2d(x, (2, 2)), want_pool)
                np.testing.assert_allclose(N.conv2d(x[:4], w, None, (1, 1), "same"), want_conv, rtol=1e-4, atol=1e-4)
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
