"""The compiled inference plan behind predict_on_batch / predict (pynn/models/plan.py):
it computes what the ordinary layer-by-layer path computes, it is rebuilt whenever the
weights or the model change (a stale plan would be a silent failure), and models or
layers it cannot serve run their own code."""
import threading

import numpy as np
import pytest

import pynn
from pynn import backend, layers
from pynn.models import plan as plan_mod

pytestmark = pytest.mark.skipif(not backend.NATIVE_AVAILABLE, reason="the plan runs on the native backend")


@pytest.fixture(autouse=True)
def _native():
    with pynn.use_backend("native"):
        yield


def reference(model, x):
    """The ordinary path: the model called eagerly, without any plan."""
    with pynn.no_grad():
        out = model(x, training=False)
    return [o.data for o in out] if isinstance(out, (list, tuple)) else out.data


def assert_matches_layer_path_and_numpy(got, model, x, rtol=1e-5, atol=1e-6):
    """A plan's result equals the ordinary layer path on the native backend (to rtol/atol)
    and the numpy backend's (float32 kernels of different order: 1e-4 / 1e-5)."""
    np.testing.assert_allclose(got, reference(model, x), rtol=rtol, atol=atol)
    with pynn.use_backend("numpy"):
        want = reference(model, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def current_plan(model):
    return model.__dict__.get("_inference_plan")


def mlp():
    pynn.set_seed(1)
    return pynn.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"), layers.Dropout(0.5),
                            layers.Dense(8), layers.Activation("tanh"), layers.Dense(3, activation="softmax")])


def cnn():
    pynn.set_seed(2)
    return pynn.Sequential([layers.Input((10, 9, 2)), layers.Conv2D(4, 3, activation="relu", padding="same"),
                            layers.MaxPooling2D(2), layers.Conv2D(5, 2, strides=2), layers.Activation("gelu"),
                            layers.AveragePooling2D(1), layers.Flatten(), layers.Dense(6, activation="elu"),
                            layers.Dense(2)])


def branches():
    """Two Dense branches merged by Concatenate, plus a Dense on a rank-3 input."""
    pynn.set_seed(3)
    a = pynn.Input((7,), name="a")
    s = pynn.Input((4, 5), name="s")
    left = layers.Dense(6, activation="relu")(a)
    right = layers.Dense(3, activation="sigmoid")(a)
    seq = layers.Flatten()(layers.Dense(2)(s))
    out = layers.Dense(4)(layers.Concatenate()([left, right, seq]))
    return pynn.Model([a, s], [out, right])


def inputs_for(model, batch, seed=0):
    r = np.random.default_rng(seed)
    shapes = [t.shape for t in model.inputs]
    xs = [r.standard_normal((batch,) + tuple(s[1:])).astype(np.float32) for s in shapes]
    return xs[0] if len(xs) == 1 else xs


@pytest.mark.parametrize("build", [mlp, cnn, branches])
@pytest.mark.parametrize("batch", [1, 5])
def test_plan_matches_the_ordinary_path(build, batch):
    model = build()
    x = inputs_for(model, batch)
    got = model.predict_on_batch(x)
    assert isinstance(current_plan(model), plan_mod.Plan)
    want = reference(model, x)
    for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    pred = model.predict(x, batch_size=2, verbose=0)
    for g, w in zip(pred if isinstance(pred, list) else [pred], want if isinstance(want, list) else [want]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_plan_prepares_dense_conv_pooling_and_fuses_activation_layers():
    model = cnn()
    model.predict_on_batch(inputs_for(model, 2))
    p = current_plan(model)
    names = [layer.name for layer in model.layers]
    # Conv2D(4, relu)+MaxPooling2D and Conv2D(5)+Activation("gelu") run as one call each: the
    # pooling and Activation layers have no step of their own.
    assert p.fused == [(names[0], names[1]), (names[2], names[3])]
    assert p.prepared == [n for i, n in enumerate(names) if i not in (1, 3)]


def test_results_are_fresh_arrays_not_the_reused_buffers():
    model = mlp()
    x1, x2 = inputs_for(model, 3, seed=1), inputs_for(model, 3, seed=2)
    y1 = model.predict_on_batch(x1)
    keep = y1.copy()
    y2 = model.predict_on_batch(x2)
    assert not np.shares_memory(y1, y2)
    np.testing.assert_array_equal(y1, keep)
    # A model whose last layer is a view (Flatten/Dropout) of a buffered Dense output.
    pynn.set_seed(4)
    tail = pynn.Sequential([layers.Input((5,)), layers.Dense(4), layers.Dropout(0.1), layers.Flatten()])
    z1 = tail.predict_on_batch(x1[:, :5])
    keep = z1.copy()
    tail.predict_on_batch(x2[:, :5])
    np.testing.assert_array_equal(z1, keep)


def _changes():
    """(name, fn(model, x)) pairs: each changes what the model computes."""
    def fit(m, x):
        m.compile(optimizer="sgd", loss="mse")
        m.fit(x, np.ones((len(x), 3), np.float32), epochs=1, batch_size=len(x), verbose=0)

    def set_weights(m, x):
        m.set_weights([w * 0.5 for w in m.get_weights()])

    def layer_set_weights(m, x):
        m.layers[0].set_weights([w + 0.25 for w in m.layers[0].get_weights()])

    def load_weights(m, x, tmp=[]):
        import tempfile, os
        other = mlp()
        other.set_weights([w * -1.0 for w in other.get_weights()])
        path = os.path.join(tempfile.mkdtemp(), "w.npz")
        other.save_weights(path)
        m.load_weights(path)

    def train_on_batch(m, x):
        m.compile(optimizer="adam", loss="mse")
        m.train_on_batch(x, np.zeros((len(x), 3), np.float32))

    def apply_gradients(m, x):
        opt = pynn.optimizers.SGD(learning_rate=0.5)
        opt.apply_gradients([(np.ones_like(w.data), w) for w in m.trainable_weights])

    def assign(m, x):
        m.layers[2].kernel.assign(np.full(m.layers[2].kernel.shape, 0.1, np.float32))

    def replace_data(m, x):
        k = m.layers[0].kernel
        k.data = k.data * 2.0

    def in_place(m, x):
        m.layers[0].bias.data[...] = 1.0

    def activation(m, x):
        m.layers[0].activation = pynn.activations.get("sigmoid")

    def pop_add(m, x):
        m.pop()
        m.add(layers.Dense(3, activation="sigmoid"))

    return [fit, set_weights, layer_set_weights, load_weights, train_on_batch, apply_gradients, assign,
            replace_data, in_place, activation, pop_add]


@pytest.mark.parametrize("change", _changes(), ids=lambda f: f.__name__)
@pytest.mark.parametrize("batch", [1, 4])
def test_plan_follows_every_change_to_the_model(change, batch):
    model = mlp()
    x = inputs_for(model, batch)
    before = model.predict_on_batch(x)
    change(model, x)
    after = model.predict_on_batch(x)
    want = reference(model, x)
    np.testing.assert_allclose(after, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(after, before), "the change should change the predictions"


@pytest.mark.parametrize("what", ["layer", "model"])
def test_trainable_changes_rebuild_the_plan(what):
    model = mlp()
    x = inputs_for(model, 2)
    model.predict_on_batch(x)
    first = current_plan(model)
    target = model.layers[0] if what == "layer" else model
    target.trainable = False
    model.predict_on_batch(x)
    assert current_plan(model) is not first
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)


def test_an_unchanged_model_keeps_its_plan():
    model = mlp()
    x = inputs_for(model, 2)
    model.predict_on_batch(x)
    first = current_plan(model)
    model.predict_on_batch(x)
    model.predict(x, verbose=0)
    assert current_plan(model) is first


def test_numpy_backend_does_not_use_the_plan():
    model = mlp()
    x = inputs_for(model, 2)
    model.predict_on_batch(x)
    with pynn.use_backend("numpy"):
        assert not current_plan(model).valid()
        np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)


def test_subclassed_model_runs_its_own_call():
    calls = []

    class Net(pynn.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(3)

        def call(self, x):
            calls.append(1)
            return self.d(x) * 2.0

    net = Net()
    x = np.ones((2, 4), np.float32)
    y = net.predict_on_batch(x)
    assert calls and current_plan(net) is False
    np.testing.assert_allclose(y, reference(net, x), rtol=1e-6)


def test_sequential_subclass_overriding_call_falls_back():
    calls = []

    class Doubled(pynn.Sequential):
        def call(self, x, training=False):
            calls.append(1)
            return super().call(x, training=training) * 2.0

    pynn.set_seed(5)
    model = Doubled([layers.Input((4,)), layers.Dense(3)])
    x = np.ones((2, 4), np.float32)
    y = model.predict_on_batch(x)
    assert calls and current_plan(model) is False
    np.testing.assert_allclose(y, model.layers[0](x).data * 2.0, rtol=1e-6)


def test_custom_layer_subclass_keeps_its_override_inside_the_plan():
    calls = []

    class ShiftedDense(layers.Dense):
        def call(self, x):
            calls.append(1)
            return super().call(x) + 1.0

    pynn.set_seed(6)
    model = pynn.Sequential([layers.Input((4,)), ShiftedDense(3), layers.Dense(2)])
    x = np.ones((2, 4), np.float32)
    y = model.predict_on_batch(x)
    p = current_plan(model)
    assert isinstance(p, plan_mod.Plan) and model.layers[0].name not in p.prepared and calls
    np.testing.assert_allclose(y, reference(model, x), rtol=1e-6)


def test_generic_layers_and_recurrent_models_match():
    pynn.set_seed(7)
    model = pynn.Sequential([layers.Input((6, 3)), layers.LSTM(5, return_sequences=True),
                             layers.LayerNormalization(), layers.GRU(4), layers.Dense(2)])
    for batch in (1, 3):
        x = inputs_for(model, batch)
        np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)


def test_padding_masks_run_the_ordinary_path():
    pynn.set_seed(8)
    model = pynn.Sequential([layers.Input((5,), dtype="int64"), layers.Embedding(9, 4, mask_zero=True),
                             layers.LSTM(3), layers.Dense(2)])
    x = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 0]])
    y = model.predict_on_batch(x)
    assert current_plan(model) is False
    np.testing.assert_allclose(y, reference(model, x), rtol=1e-6)


def test_concurrent_predictions_from_threads_do_not_share_buffers():
    model = mlp()
    xs = [inputs_for(model, 4, seed=s) for s in range(4)]
    want = [reference(model, x) for x in xs]
    errors = []

    def work(k):
        for _ in range(50):
            got = model.predict_on_batch(xs[k])
            if not np.allclose(got, want[k], rtol=1e-5, atol=1e-6):
                errors.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_deepcopy_of_a_model_compiles_its_own_plan():
    import copy
    model = mlp()
    x = inputs_for(model, 2)
    model.predict_on_batch(x)
    clone = copy.deepcopy(model)
    clone.set_weights([w * 3.0 for w in clone.get_weights()])
    np.testing.assert_allclose(clone.predict_on_batch(x), reference(clone, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)


def test_dense_kernels_a_plan_packed_are_read_only_until_pynn_writes_them():
    """The plan's packed copy of a Dense kernel is a snapshot: a direct in-place write would
    leave it stale, so it raises; pynn's own writers (assign, set_weights, optimizer steps)
    release the array first and the plan rebuilds."""
    model = mlp()
    x = inputs_for(model, 2)
    model.predict_on_batch(x)
    kernel = model.layers[0].kernel
    with pytest.raises(ValueError, match="read-only"):
        kernel.data[...] = 0.0
    kernel.assign(np.zeros(kernel.shape, np.float32))
    kernel.data[...] = 0.5        # writeable again after pynn's own write
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="read-only"):
        kernel.data -= 1.0


def test_functional_shared_layers_nested_models_and_multi_output_nodes():
    pynn.set_seed(9)
    inner = pynn.Sequential([layers.Input((6,)), layers.Dense(5, activation="relu"), layers.Dense(4)])
    a = pynn.Input((6,), name="a")
    b = pynn.Input((3, 6), name="b")
    shared = layers.Dense(6, activation="tanh")
    h1 = shared(a)
    h2 = shared(layers.Dense(6)(h1))   # the shared layer called twice
    seq, state_h, state_c = layers.LSTM(4, return_state=True)(b)
    merged = layers.Concatenate()([inner(h1), inner(h2), seq, state_c])
    model = pynn.Model([a, b], [layers.Dense(2)(merged), state_h])
    for batch in (1, 3):
        x = inputs_for(model, batch, seed=batch)
        got, want = model.predict_on_batch(x), reference(model, x)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert isinstance(current_plan(model), plan_mod.Plan)


@pytest.mark.parametrize("build", [mlp, cnn, branches])
@pytest.mark.parametrize("batch", [1, 3])
def test_plan_agrees_with_onnx_runtime_on_the_exported_graph(build, batch, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import pynn.onnx
    model = build()
    path = str(tmp_path / "m.onnx")
    pynn.onnx.export(model, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = inputs_for(model, batch)
    xs = x if isinstance(x, list) else [x]
    want = sess.run(None, {i.name: v for i, v in zip(sess.get_inputs(), xs)})
    got = model.predict_on_batch(x)
    assert isinstance(current_plan(model), plan_mod.Plan)
    for g, w in zip(got if isinstance(got, list) else [got], want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=2e-5)


def test_optimizer_update_called_directly_releases_and_rebuilds():
    """A training loop may call an optimizer's _update itself (pynn's own fast fit loop does):
    every _update moves the weights epoch first, so the frozen kernels are writeable again and
    the plan rebuilds. Also for an optimizer subclass defined outside pynn."""
    class Halving(pynn.optimizers.SGD):
        def _update(self, k, params, grads, slots, lr, step):
            super()._update(k, params, grads, slots, lr * 0.5, step)

    for opt in (pynn.optimizers.Adam(0.1), Halving(0.5)):
        model = mlp()
        x = inputs_for(model, 2)
        before = model.predict_on_batch(x)
        opt.build(model.trainable_weights)
        grads = [np.ones_like(w.data) for w in model.trainable_weights]
        slots = {name: opt._slots[name] for name, _ in opt._slot_specs()}
        opt._update(pynn.backend.current(), [w.data for w in model.trainable_weights], grads, slots,
                    opt.learning_rate, 1)
        after = model.predict_on_batch(x)
        np.testing.assert_allclose(after, reference(model, x), rtol=1e-5, atol=1e-6)
        assert not np.allclose(after, before)


def test_predict_inside_fit_callbacks_does_not_block_training():
    seen = []

    class PredictEachEpoch(pynn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.predict(x, verbose=0))

    model = mlp()
    x = inputs_for(model, 8)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.ones((8, 3), np.float32), epochs=3, batch_size=4, verbose=0, callbacks=[PredictEachEpoch()])
    assert len(seen) == 3 and not np.allclose(seen[0], seen[-1])
    np.testing.assert_allclose(model.predict(x, verbose=0), reference(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_channels_first_layers_run_their_own_call(batch):
    """Prepared conv/pool/flatten steps are NHWC: layers given data_format="channels_first"
    must run their own call (which transposes), and give the ordinary path's result."""
    pynn.set_seed(10)
    model = pynn.Sequential([layers.Input((2, 9, 8)),
                             layers.Conv2D(4, 3, activation="relu", data_format="channels_first"),
                             layers.MaxPooling2D(2, data_format="channels_first"),
                             layers.AveragePooling2D(1, data_format="channels_first"),
                             layers.Flatten(data_format="channels_first"), layers.Dense(3)])
    x = inputs_for(model, batch)
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)
    p = current_plan(model)
    assert p.prepared == [model.layers[-1].name]


def flat_tail():
    """A chain ending in views (Dropout, Flatten) of a buffered Dense output, on rank-3 input."""
    pynn.set_seed(11)
    return pynn.Sequential([layers.Input((3, 5)), layers.Dense(4, activation="relu"), layers.Dropout(0.2),
                            layers.Dense(6), layers.Flatten()])


@pytest.mark.parametrize("build", [mlp, cnn, flat_tail])
def test_chain_plans_run_one_program_per_input_shape(build):
    """A Sequential whose every layer is prepared runs as a recorded program of bare _C
    calls per input shape: the first call at a shape records it, later calls replay it;
    each must give the ordinary path's result, for every batch size in any order."""
    model = build()
    first = None
    for batch in (1, 5, 1, 2, 5):
        x = inputs_for(model, batch, seed=batch)
        got = model.predict_on_batch(x)
        np.testing.assert_allclose(got, reference(model, x), rtol=1e-5, atol=1e-6)
        p = current_plan(model)
        first = first or p
        assert p is first and p.chain
    progs = p._local.progs
    assert sorted(progs) == sorted({inputs_for(model, b).shape for b in (1, 2, 5)})
    assert all(prog for prog in progs.values())


@pytest.mark.parametrize("build", [mlp, cnn, flat_tail])
def test_program_results_are_fresh_at_every_batch_size(build):
    model = build()
    for batch in (1, 4):
        x1, x2 = inputs_for(model, batch, seed=1), inputs_for(model, batch, seed=2)
        y1 = model.predict_on_batch(x1)
        keep = y1.copy()
        y2 = model.predict_on_batch(x2)
        y3 = model.predict_on_batch(x1)
        assert not np.shares_memory(y1, y2) and not np.shares_memory(y1, y3)
        assert not np.shares_memory(y2, x2)
        np.testing.assert_array_equal(y1, keep)
        np.testing.assert_array_equal(y3, keep)


def test_a_plan_of_views_only_copies_its_input():
    model = pynn.Sequential([layers.Input((2, 3)), layers.Dropout(0.5), layers.Flatten()])
    x = inputs_for(model, 2)
    y = model.predict_on_batch(x)
    np.testing.assert_array_equal(y, x.reshape(2, 6))
    assert current_plan(model).chain and not np.shares_memory(y, x)


@pytest.mark.parametrize("batch", [1, 3])
def test_programs_follow_weight_changes(batch):
    """A replayed program holds the plan's packed kernels and buffers: a weight change
    (epoch bump) rebuilds the plan and its programs, at every batch size seen before."""
    model = cnn()
    xs = {b: inputs_for(model, b, seed=b) for b in (batch, 2)}
    for x in xs.values():
        model.predict_on_batch(x)
    old = current_plan(model)
    model.set_weights([w * 0.5 - 0.1 for w in model.get_weights()])
    for x in xs.values():
        np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)
    assert current_plan(model) is not old


def test_non_float32_input_to_a_chain_plan_runs_the_checked_path():
    model = mlp()
    x = inputs_for(model, 3)
    want = reference(model, x)
    np.testing.assert_allclose(model.predict_on_batch(x.astype(np.float64)), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(np.asfortranarray(x)), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x.astype(np.float64), verbose=0), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        model.predict_on_batch(np.ones((2, 5), np.float32))


@pytest.mark.parametrize("build", [mlp, cnn])
def test_chain_plans_match_the_numpy_backend(build):
    model = build()
    for batch in (1, 4):
        x = inputs_for(model, batch)
        got = model.predict_on_batch(x)
        with pynn.use_backend("numpy"):
            want = reference(model, x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def transformer(normalize_first=False, activation="relu"):
    pynn.set_seed(12)
    return pynn.Sequential([layers.Input((6, 16)),
                            layers.TransformerEncoder(intermediate_dim=24, num_heads=4, dropout=0.1,
                                                      activation=activation, normalize_first=normalize_first),
                            layers.LayerNormalization(epsilon=1e-4), layers.GlobalAveragePooling1D(),
                            layers.Dense(3)])


@pytest.mark.parametrize("normalize_first,activation", [(False, "relu"), (True, "gelu")])
@pytest.mark.parametrize("batch", [1, 3])
def test_transformer_block_layer_norm_and_step_mean_run_prepared(normalize_first, activation, batch):
    """TransformerEncoder (post- and pre-norm), LayerNormalization and GlobalAveragePooling1D
    run as prepared steps: the result is the layer path's and the numpy backend's."""
    model = transformer(normalize_first, activation)
    x = inputs_for(model, batch)
    got = model.predict_on_batch(x)
    p = current_plan(model)
    assert p.prepared == [layer.name for layer in model.layers] and p.chain
    assert_matches_layer_path_and_numpy(got, model, x)
    np.testing.assert_allclose(model.predict_on_batch(x), got, rtol=0, atol=0)   # the replayed program


def test_transformer_plan_follows_weight_changes_and_freezes_its_packed_sources():
    model = transformer()
    x = inputs_for(model, 2)
    before = model.predict_on_batch(x)
    mha = model.layers[0].attention
    with pytest.raises(ValueError, match="read-only"):   # packed into the plan: a direct write would go unseen
        mha.query_kernel.data[...] = 0.0
    mha.query_kernel.assign(mha.query_kernel.data * -2.0)
    mha.output_bias.assign(mha.output_bias.data + 0.5)
    model.layers[0].norm2.gamma.assign(np.full(16, 0.5, np.float32))
    after = model.predict_on_batch(x)
    np.testing.assert_allclose(after, reference(model, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(after, before)


def test_transformer_with_a_causal_mask_in_a_functional_model_runs_its_own_call():
    pynn.set_seed(13)
    inp = pynn.Input((5, 8))
    enc = layers.TransformerEncoder(intermediate_dim=12, num_heads=2)
    out = layers.Dense(2)(enc(inp, use_causal_mask=True))
    model = pynn.Model(inp, out)
    for batch in (1, 3):
        x = inputs_for(model, batch)
        np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)
    assert enc.name not in current_plan(model).prepared


def test_layer_norm_over_other_axes_runs_its_own_call():
    pynn.set_seed(14)
    model = pynn.Sequential([layers.Input((4, 5)), layers.LayerNormalization(axis=1), layers.Flatten(),
                             layers.Dense(2)])
    x = inputs_for(model, 3)
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)
    assert model.layers[0].name not in current_plan(model).prepared


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("use_bias", [True, False])
def test_recurrent_layers_run_prepared_without_recording(go_backwards, batch, use_bias):
    """LSTM, GRU and SimpleRNN (no mask, no state in or out) run as projection GEMM + native
    time loop: the layer path's result, and the numpy backend's."""
    pynn.set_seed(15)
    kw = dict(go_backwards=go_backwards, use_bias=use_bias)
    model = pynn.Sequential([layers.Input((7, 5)), layers.LSTM(6, return_sequences=True, **kw),
                             layers.GRU(5, return_sequences=True, recurrent_activation="hard_sigmoid", **kw),
                             layers.SimpleRNN(4, activation="relu", **kw), layers.Dense(2)])
    if use_bias:   # non-zero biases, so the input/recurrent split of the GRU's is pinned
        for layer in model.layers[:3]:
            layer.bias.assign(np.random.default_rng(1).standard_normal(layer.bias.shape).astype(np.float32))
    x = inputs_for(model, batch)
    got = model.predict_on_batch(x)
    p = current_plan(model)
    assert p.prepared == [layer.name for layer in model.layers] and p.chain
    assert_matches_layer_path_and_numpy(got, model, x)
    model.layers[1].recurrent_kernel.assign(model.layers[1].recurrent_kernel.data * 0.5)
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)


def test_lstm_returning_state_runs_its_own_call():
    pynn.set_seed(16)
    inp = pynn.Input((4, 3))
    seq, h, c = layers.LSTM(5, return_state=True)(inp)
    model = pynn.Model(inp, layers.Concatenate()([seq, h, c]))
    x = inputs_for(model, 2)
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)
    lstm = [layer for layer in model.layers if isinstance(layer, layers.LSTM)][0]
    assert lstm.name not in current_plan(model).prepared


def attention_model(use_bias=True, output_shape=None, key_is_value=False):
    """Self-attention on one input, then cross-attention of that on a second, shorter one."""
    pynn.set_seed(17)
    x = pynn.Input((6, 8), name="x")
    c = pynn.Input((4, 8), name="c")
    a = layers.MultiHeadAttention(2, 4, use_bias=use_bias)(x, x)
    cross = layers.MultiHeadAttention(3, 5, value_dim=2, use_bias=use_bias, output_shape=output_shape)
    b = cross(a, c, key=c) if key_is_value else cross(a, c)
    return pynn.Model([x, c], layers.Dense(2)(layers.Flatten()(b)))


@pytest.mark.parametrize("kw", [{}, {"use_bias": False}, {"output_shape": 7}, {"key_is_value": True}],
                         ids=["bias", "no_bias", "output_shape", "key_is_value"])
@pytest.mark.parametrize("batch", [1, 3])
def test_multi_head_attention_runs_prepared_in_functional_models(kw, batch):
    """MultiHeadAttention called with default keywords runs as packed projection GEMMs and
    the fused attention kernel: the layer path's result and the numpy backend's."""
    model = attention_model(**kw)
    x = inputs_for(model, batch)
    got = model.predict_on_batch(x)
    p = current_plan(model)
    mha = [layer.name for layer in model.layers if isinstance(layer, layers.MultiHeadAttention)]
    assert len(mha) == 2 and all(name in p.prepared for name in mha)
    assert_matches_layer_path_and_numpy(got, model, x)
    layer = model.get_layer(mha[1])
    layer.value_kernel.assign(layer.value_kernel.data * -1.5)
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)


def test_multi_head_attention_with_a_causal_mask_runs_its_own_call():
    pynn.set_seed(18)
    x = pynn.Input((5, 8))
    mha = layers.MultiHeadAttention(2, 4)
    model = pynn.Model(x, layers.GlobalAveragePooling1D()(mha(x, x, use_causal_mask=True)))
    for batch in (1, 3):
        xb = inputs_for(model, batch)
        np.testing.assert_allclose(model.predict_on_batch(xb), reference(model, xb), rtol=1e-5, atol=1e-6)
    assert mha.name not in current_plan(model).prepared


@pytest.mark.parametrize("batch", [1, 3])
def test_add_multiply_concatenate_run_prepared(batch):
    """A residual block (Add of three), a gate (Multiply) and a Concatenate on axis 1 run as
    NumPy calls in the plan: the layer path's result and the numpy backend's."""
    pynn.set_seed(19)
    x = pynn.Input((4, 6))
    a = layers.Dense(6, activation="relu")(x)
    b = layers.Dense(6, activation="tanh")(x)
    res = layers.Add()([x, a, b])
    gate = layers.Multiply()([res, layers.Dense(6, activation="sigmoid")(x)])
    cat = layers.Concatenate(axis=1)([gate, res])
    model = pynn.Model(x, layers.Dense(2)(layers.Flatten()(cat)))
    xb = inputs_for(model, batch)
    got = model.predict_on_batch(xb)
    p = current_plan(model)
    assert all(layer.name in p.prepared for layer in model.layers
               if isinstance(layer, (layers.Add, layers.Multiply, layers.Concatenate)))
    assert not p.records
    assert_matches_layer_path_and_numpy(got, model, xb, rtol=1e-6, atol=1e-7)


def bn_cnn():
    pynn.set_seed(20)
    return pynn.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, use_bias=False), layers.BatchNormalization(),
                            layers.Activation("relu"), layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(5),
                            layers.BatchNormalization(center=False, epsilon=1e-2), layers.Activation("softmax")])


@pytest.mark.parametrize("batch", [1, 4])
def test_batch_norm_and_activation_layers_run_prepared(batch):
    """BatchNormalization (inference, last axis) and standalone Activation layers are
    prepared steps: the whole model is one chain program, equal to the layer path and the
    numpy backend, and moving statistics updated in place by a training call are seen."""
    model = bn_cnn()
    x = inputs_for(model, batch)
    for layer in model.layers:   # non-trivial statistics and affine weights
        if isinstance(layer, layers.BatchNormalization):
            r = np.random.default_rng(3)
            layer.moving_mean.assign(r.standard_normal(layer.param_shape).astype(np.float32))
            layer.moving_variance.assign(r.uniform(0.5, 2.0, layer.param_shape).astype(np.float32))
            if layer.gamma is not None:
                layer.gamma.assign(r.uniform(0.5, 1.5, layer.param_shape).astype(np.float32))
    got = model.predict_on_batch(x)
    p = current_plan(model)
    assert p.prepared == [layer.name for layer in model.layers] and p.chain
    assert_matches_layer_path_and_numpy(got, model, x)
    bn = model.layers[1]
    shifted = np.random.default_rng(9).standard_normal((6, 5, 5, 4)).astype(np.float32) + 3.0
    bn(pynn.Tensor(shifted), training=True)   # updates the moving statistics in place, no epoch move
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_conv1d_runs_prepared_on_height_one_views(batch):
    """Conv1D (strides, dilation, "same", an Activation layer fused) runs the 2-D kernel on
    height-1 views: the layer path's result and the numpy backend's."""
    pynn.set_seed(21)
    model = pynn.Sequential([layers.Input((11, 3)), layers.Conv1D(5, 3, padding="same", dilation_rate=2),
                             layers.Activation("relu"), layers.Conv1D(4, 2, strides=2, activation="tanh"),
                             layers.GlobalAveragePooling1D(), layers.Dense(2)])
    x = inputs_for(model, batch)
    got = model.predict_on_batch(x)
    p = current_plan(model)
    assert p.chain and p.fused == [(model.layers[0].name, model.layers[1].name)]
    assert_matches_layer_path_and_numpy(got, model, x)


@pytest.mark.parametrize("build", [mlp, cnn, transformer, bn_cnn])
def test_strided_and_fortran_inputs_give_the_contiguous_result(build):
    """Inputs that are reversed, sliced or Fortran-ordered views: the plan (and a program
    recorded for a contiguous input of the same shape) gives the contiguous input's result."""
    model = build()
    x = inputs_for(model, 8, seed=3)
    for view in (np.ascontiguousarray(x[::2]), x[::2], x[::-2], np.asfortranarray(x[::2])):
        np.testing.assert_allclose(model.predict_on_batch(view), reference(model, np.ascontiguousarray(view)),
                                   rtol=1e-5, atol=1e-6)


def test_recurrent_kernels_are_packed_once_per_weights(monkeypatch):
    """The plan packs each recurrent layer's kernels once (RecurrentKernelPack for the time
    loop, and for the LSTM's input kernel, whose projection runs inside it) and reuses them
    for every call and batch size;
    a weight change rebuilds them, and an in-place write while they are held raises."""
    from pynn.backend import native
    made = []
    real = native._C.RecurrentKernelPack

    def counting(*args):
        made.append(args[1])
        return real(*args)
    monkeypatch.setattr(native._C, "RecurrentKernelPack", counting)
    pynn.set_seed(18)
    model = pynn.Sequential([layers.Input((6, 4)), layers.LSTM(20, return_sequences=True), layers.GRU(16),
                             layers.Dense(3)])
    for batch in (1, 5, 1, 64):
        x = inputs_for(model, batch)
        np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)
    assert sorted(made) == [3, 4, 4]     # GRU recurrent; LSTM input and recurrent kernels
    with pytest.raises(ValueError, match="read-only"):
        model.layers[0].recurrent_kernel.data[0, 0] = 1.0
    model.layers[0].recurrent_kernel.assign(model.layers[0].recurrent_kernel.data * 0.5)
    x = inputs_for(model, 2)
    np.testing.assert_allclose(model.predict_on_batch(x), reference(model, x), rtol=1e-5, atol=1e-6)
    assert len(made) == 6


def conv_pool_cnn(activation_layer):
    """The MNIST-style block twice: Conv2D then MaxPooling2D, the activation either the conv's
    own or a separate Activation layer between them."""
    pynn.set_seed(21)
    if activation_layer:
        block = [layers.Conv2D(16, 3), layers.Activation("relu"), layers.MaxPooling2D(3, strides=2, padding="same")]
    else:
        block = [layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(3, strides=2, padding="same")]
    return pynn.Sequential([layers.Input((14, 13, 1))] + block +
                           [layers.Conv2D(24, 3, activation="tanh", padding="same"), layers.MaxPooling2D(2),
                            layers.Flatten(), layers.Dense(3)])


@pytest.mark.parametrize("activation_layer", [False, True])
@pytest.mark.parametrize("batch", [1, 5, 33])
def test_conv_then_max_pooling_runs_as_one_fused_call(activation_layer, batch):
    """Conv2D (+ Activation) + MaxPooling2D run as one _C.conv2d_max_pool2d call (the conv
    output never written whole), equal to the layer path and the numpy backend, at batch 1
    (the conv's own split) and at batches split into image chunks."""
    model = conv_pool_cnn(activation_layer)
    x = inputs_for(model, batch)
    got = model.predict_on_batch(x)
    p = current_plan(model)
    names = [layer.name for layer in model.layers]
    pools = [n for n, layer in zip(names, model.layers) if isinstance(layer, layers.MaxPooling2D)]
    assert [f[1] for f in p.fused if f[1] in pools] == pools and p.chain
    assert not set(pools) & set(p.prepared)
    assert_matches_layer_path_and_numpy(got, model, x)
    last_pool = model.layers[-3]
    last_pool.pool_size = (1, 1)   # a watched attribute (strides stay 2: same output shape)
    changed = model.predict_on_batch(x)
    assert not np.allclose(changed, got)
    np.testing.assert_allclose(changed, reference(model, x), rtol=1e-5, atol=1e-6)
